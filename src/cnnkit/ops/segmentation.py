"""Segmentation losses on Tensors (the maths is in ``kernels/segmentation.py``): soft Dice and
focal loss from per-pixel logits (N, ..., C) and integer label maps (N, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..kernels import segmentation as K
from ._core import Tensor, floating, record

__all__ = ["soft_dice_loss", "focal_loss", "ce_dice_loss"]


def _labels(op: str, logits: Tensor, labels: Any) -> np.ndarray:
    lab = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    want = logits.shape[:-1]
    if lab.shape == (*want, 1):
        lab = lab.reshape(want)
    if lab.shape != want:
        raise ValueError(f"{op} expects labels of shape {want} (class ids) for logits of shape "
                         f"{logits.shape}, got {lab.shape}")
    if lab.dtype.kind == "f":
        if not np.all(np.mod(lab, 1) == 0):
            raise ValueError(f"{op}: labels must be whole class ids")
    elif lab.dtype.kind not in "iub":
        raise TypeError(f"{op}: labels must be integers, got dtype {lab.dtype}")
    lab = lab.astype(np.int64)
    c = logits.shape[-1]
    if lab.size and (lab.min() < 0 or lab.max() >= c):
        raise ValueError(f"{op}: labels must lie in [0, {c}), got {int(lab.min())}..."
                         f"{int(lab.max())}")
    return lab


def _logits(op: str, logits: Any) -> Tensor:
    z = floating(logits, "logits")
    if z.ndim < 3:
        raise ValueError(f"{op} expects logits (N, ..., C) with at least one spatial axis, got "
                         f"shape {z.shape}")
    return z


def soft_dice_loss(logits: Any, labels: Any, smooth: float = 1.0,
                   ignore_background: bool = True, per_sample: bool = False) -> Tensor:
    """1 - mean over classes of (2 sum p t + e) / (sum p + sum t + e), p the softmax of
    ``logits``, summed over the batch (or per sample, then averaged, with ``per_sample``);
    class 0 is left out with ``ignore_background``."""
    op = "soft_dice_loss"
    z = _logits(op, logits)
    lab = _labels(op, z, labels)
    if not smooth > 0:
        raise ValueError(f"{op}: smooth must be > 0 (it defines the Dice of empty masks), got "
                         f"{smooth}")
    classes = np.ones(z.shape[-1], bool)
    if ignore_background:
        if z.shape[-1] < 2:
            raise ValueError(f"{op}: ignore_background needs at least 2 classes")
        classes[0] = False
    value, cache = K.soft_dice_forward(z.data, lab, classes, float(smooth), bool(per_sample))
    return record(value, (z,), lambda g: (K.soft_dice_backward(g, cache),), op)


def _class_weights(op: str, name: str, weights: Any, classes: int) -> np.ndarray | None:
    """``weights`` as float64 (classes,), or None; one weight per class is required."""
    if weights is None:
        return None
    a = np.asarray(weights, dtype=np.float64).reshape(-1)
    if a.shape != (classes,):
        raise ValueError(f"{op}: {name} needs one weight per class ({classes}), got {a.size}")
    return a


def focal_loss(logits: Any, labels: Any, gamma: float = 2.0,
               alpha: Sequence[float] | None = None) -> Tensor:
    """Mean over pixels of -a_y (1 - p_y)^gamma log p_y, p the softmax of ``logits``."""
    op = "focal_loss"
    z = _logits(op, logits)
    lab = _labels(op, z, labels)
    if not gamma >= 0:
        raise ValueError(f"{op}: gamma must be >= 0, got {gamma}")
    a = _class_weights(op, "alpha", alpha, z.shape[-1])
    per, cache = K.focal_forward(z.data, lab, float(gamma), a)
    m = per.size
    value = np.asarray(per.sum() / max(m, 1), dtype=z.dtype)

    def backward(g):
        return (K.focal_backward(np.full(per.shape, float(g) / max(m, 1), z.dtype), cache),)

    return record(value, (z,), backward, op)


def ce_dice_loss(logits: Any, labels: Any, class_weights: Sequence[float] | None = None,
                 ce_weight: float = 1.0, dice_weight: float = 1.0, smooth: float = 1.0,
                 ignore_background: bool = True) -> Tensor:
    """ce_weight * mean over pixels of -a_y log p_y + dice_weight * soft_dice_loss (batch
    Dice), in one pass over the softmax: the sum of ``focal_loss(gamma=0, alpha=a)`` and
    ``soft_dice_loss`` so weighted, computed once."""
    op = "ce_dice_loss"
    z = _logits(op, logits)
    lab = _labels(op, z, labels)
    if not smooth > 0:
        raise ValueError(f"{op}: smooth must be > 0, got {smooth}")
    a = _class_weights(op, "class_weights", class_weights, z.shape[-1])
    classes = np.ones(z.shape[-1], bool)
    if ignore_background:
        if z.shape[-1] < 2:
            raise ValueError(f"{op}: ignore_background needs at least 2 classes")
        classes[0] = False
    value, cache = K.ce_dice_forward(z.data, lab, a, classes, float(smooth), float(ce_weight),
                                     float(dice_weight))
    return record(value, (z,), lambda g: (K.ce_dice_backward(g, cache),), op)
