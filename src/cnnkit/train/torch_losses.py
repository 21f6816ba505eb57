"""PyTorch-style criteria: ``criterion(outputs, targets)`` with torch's reductions and
argument names (``CrossEntropyLoss``, ``MSELoss``, ``BCEWithLogitsLoss``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..autograd import Tensor
from .loss_args import class_ids as _class_ids
from .loss_args import prediction as _prediction
from .loss_args import target as _target

__all__ = ["CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss"]


def _torch_reduction(owner: str, reduction: str) -> str:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{owner}: reduction must be 'mean', 'sum' or 'none', got "
                         f"{reduction!r}")
    return reduction


class CrossEntropyLoss:
    """``torch.nn.CrossEntropyLoss`` semantics: ``criterion(logits, targets)``.

    ``logits`` (N, C) or (N, ..., C) -- note cnnkit puts the class axis last, torch second.
    ``targets``: integer class ids (N, ...) or class probabilities of the logits' shape.
    ``weight`` (C,) rescales each class; ``ignore_index`` labels are left out; "mean"
    divides by the summed weights of the counted targets (their number without ``weight``;
    N positions for probability targets), as torch does.
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        self.weight = None if weight is None else np.asarray(getattr(weight, "data", weight))
        self.ignore_index = ignore_index
        self.reduction = _torch_reduction("CrossEntropyLoss", reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must lie in [0, 1], got "
                             f"{label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def __call__(self, input: Any, target: Any) -> Tensor:  # noqa: A002  (torch's names)
        owner = "CrossEntropyLoss"
        logits = _prediction(owner, input)
        c = logits.shape[-1]
        tgt = np.asarray(getattr(target, "data", target))
        w = None
        if self.weight is not None:
            if self.weight.shape != (c,):
                raise ValueError(f"{owner}: weight must have shape ({c},) for {c} classes, got "
                                 f"shape {self.weight.shape}")
            w = self.weight.astype(logits.dtype)
        if tgt.shape == logits.shape and np.issubdtype(tgt.dtype, np.floating):
            t = tgt.astype(logits.dtype)
            mask, divisor_w = None, None
        else:
            labels, mask = _class_ids(owner, tgt, logits, self.ignore_index)
            t = (labels[..., None] == np.arange(c)).astype(logits.dtype)
            if w is not None:
                divisor_w = w[labels] * (1 if mask is None else mask)
            else:
                divisor_w = None if mask is None else mask.astype(logits.dtype)
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + self.label_smoothing / c
        if w is not None:
            t = t * w
        if mask is not None:  # ignored positions get t = 0: loss 0 even where log p = -inf
            t = t * mask[..., None].astype(logits.dtype)
        values = ops.softmax_cross_entropy(logits, t, reduction="none")
        if self.reduction == "none":
            return values
        total = ops.sum(values)
        if self.reduction == "sum":
            return total
        divisor = float(values.size if divisor_w is None else divisor_w.sum())
        if divisor == 0:
            return ops.multiply(total, float("nan"))  # torch gives nan when nothing counts
        return ops.divide(total, np.asarray(divisor, dtype=logits.dtype))

    def get_config(self) -> dict[str, Any]:
        return {"weight": None if self.weight is None else self.weight.tolist(),
                "ignore_index": self.ignore_index, "reduction": self.reduction,
                "label_smoothing": self.label_smoothing}


class MSELoss:
    """``torch.nn.MSELoss``: elementwise (input - target)^2, then mean / sum / none over all
    elements. ``criterion(input, target)``."""

    def __init__(self, reduction: str = "mean"):
        self.reduction = _torch_reduction("MSELoss", reduction)

    def __call__(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        p = _prediction("MSELoss", input)
        t = _target("MSELoss", target, p.dtype)
        if t.shape != p.shape:
            raise ValueError(f"MSELoss expects target of shape {p.shape} (the input's shape), "
                             f"got shape {t.shape}")
        e = ops.square(ops.subtract(p, t))
        if self.reduction == "none":
            return e
        return ops.sum(e) if self.reduction == "sum" else ops.mean(e)

    def get_config(self) -> dict[str, Any]:
        return {"reduction": self.reduction}


class BCEWithLogitsLoss:
    """``torch.nn.BCEWithLogitsLoss``: elementwise sigmoid + binary cross-entropy from
    logits, ``pos_weight`` p giving -[p y log s(x) + (1 - y) log(1 - s(x))], ``weight``
    rescaling each element; then mean / sum / none over all elements."""

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None):
        self.weight = None if weight is None else np.asarray(getattr(weight, "data", weight))
        self.reduction = _torch_reduction("BCEWithLogitsLoss", reduction)
        self.pos_weight = (None if pos_weight is None
                           else np.asarray(getattr(pos_weight, "data", pos_weight)))

    def __call__(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        owner = "BCEWithLogitsLoss"
        x = _prediction(owner, input)
        y = _target(owner, target, x.dtype)
        if y.shape != x.shape:
            raise ValueError(f"{owner} expects target of shape {x.shape} (the input's shape), "
                             f"got shape {y.shape}")
        flat = ops.reshape(x, (-1,))
        e = ops.binary_cross_entropy(flat, y.reshape(-1), reduction="none")
        if self.pos_weight is not None:
            # p y (-log s(x)) = bce(x, y) + (p - 1) y bce(x, 1)
            extra = np.broadcast_to(self.pos_weight.astype(x.dtype) - 1, x.shape) * y
            ones = np.ones(flat.shape, dtype=x.dtype)
            e = ops.add(e, ops.multiply(ops.binary_cross_entropy(flat, ones, reduction="none"),
                                        extra.reshape(-1)))
        e = ops.reshape(e, x.shape)
        if self.weight is not None:
            e = ops.multiply(e, np.broadcast_to(self.weight.astype(x.dtype), x.shape))
        if self.reduction == "none":
            return e
        return ops.sum(e) if self.reduction == "sum" else ops.mean(e)

    def get_config(self) -> dict[str, Any]:
        return {"weight": None if self.weight is None else self.weight.tolist(),
                "reduction": self.reduction,
                "pos_weight": None if self.pos_weight is None else self.pos_weight.tolist()}


# ----- lookup and serialisation -----------------------------------------------------------
