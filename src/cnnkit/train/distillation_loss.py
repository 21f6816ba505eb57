"""The knowledge-distillation loss (Hinton, Vinyals and Dean 2015)."""

from __future__ import annotations

import math
from typing import Any

from .. import ops
from ..autograd import Tensor


class DistillationLoss:
    """``loss(y_true, student_logits, teacher_logits, sample_weight=None)`` =
    alpha * CE(y, softmax(s)) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T)).

    Both terms are summed over the classes and averaged over the batch (the KL term is
    PyTorch's ``kl_div(log q, p, reduction="batchmean")`` times T^2). ``y_true``: integer class
    ids (N,) or (N, 1), or one-hot / probability rows (N, C). The T^2 factor keeps the soft
    term's gradient, which scales as 1 / T, comparable to the hard term's for any T.
    """

    def __init__(self, temperature: float = 3.0, alpha: float = 0.1,
                 name: str = "distillation_loss"):
        t, a = float(temperature), float(alpha)
        if not math.isfinite(t) or t <= 0:
            raise ValueError(f"DistillationLoss: temperature must be a positive finite number, "
                             f"got {temperature!r}")
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"DistillationLoss: alpha must lie in [0, 1], got {alpha!r}")
        self.temperature, self.alpha, self.name = t, a, name

    def __call__(self, y_true: Any, student_logits: Any, teacher_logits: Any,
                 sample_weight: Any = None) -> Tensor:
        terms = []
        if self.alpha > 0:
            ce = ops.softmax_cross_entropy(student_logits, y_true, sample_weight=sample_weight)
            terms.append(ce * self.alpha if self.alpha != 1 else ce)
        if self.alpha < 1:
            kd = ops.distillation_kl(student_logits, teacher_logits, self.temperature,
                                     sample_weight=sample_weight)
            terms.append(kd * (1.0 - self.alpha))
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]

    def get_config(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "alpha": self.alpha, "name": self.name}

    def __repr__(self) -> str:
        return f"DistillationLoss(temperature={self.temperature!r}, alpha={self.alpha!r})"
