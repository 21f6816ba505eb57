"""First-order optimizer: SGD with optional (Nesterov) momentum, torch's formulation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import Tensor
from .optimizer_base import LearningRate, Optimizer, _check_range

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, torch's formulation.

    ``g <- g + weight_decay * p``; with momentum ``b <- momentum * b + (1 - dampening) * g``
    (``b = g`` on the first step); ``d = g + momentum * b`` (Nesterov) or ``d = b``;
    ``p <- p - lr * d``. For a constant learning rate this equals Keras's velocity form.
    """

    _default_lr = 0.01

    def __init__(self, params: Iterable[Tensor] | None = None,
                 learning_rate: LearningRate = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None, *,
                 dampening: float = 0.0, lr: LearningRate | None = None):
        _check_range("SGD", "momentum", momentum, 0.0, 1.0)
        _check_range("SGD", "dampening", dampening, 0.0, 1.0)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening 0, got "
                             f"momentum={momentum!r}, dampening={dampening!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.dampening = float(dampening)
        super().__init__(params, learning_rate, weight_decay, clipnorm, clipvalue,
                         global_clipnorm, name, lr)

    def _reads_grads_only(self) -> bool:
        return self.weight_decay == 0.0 and not self.nesterov

    def _update(self, i: int, p: Tensor, g: np.ndarray, lr: float) -> None:
        if self._decays(p):
            g += self.weight_decay * p.data
        if self.momentum != 0.0:
            slots = self._slots.setdefault(i, {})
            buf = slots.get("momentum")
            if buf is None:
                buf = slots["momentum"] = g.copy()
            else:
                buf *= self.momentum
                if self.dampening == 0.0:
                    buf += g
                else:
                    buf += (1.0 - self.dampening) * g
            if self.nesterov:
                g += self.momentum * buf
            else:
                g = buf
        p.data -= lr * g

    def _config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov,
                "dampening": self.dampening}
