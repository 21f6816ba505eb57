"""Keras's per-sample loss functions (Keras names and argument order): one value per sample, or
per position for dense predictions. Cross-entropies sum over the class axis, the regression
losses and binary cross-entropy average over the last axis; probabilities (``from_logits=False``)
are clipped to [EPSILON, 1 - EPSILON] before the log, as Keras does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops
from ..autograd import Tensor
from .loss_args import class_ids as _class_ids
from .loss_args import prediction as _prediction
from .loss_args import same_shape as _same_shape
from .loss_args import target as _target

__all__ = ["sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
           "mean_squared_error", "mean_absolute_error", "huber", "kl_divergence",
           "sparse_ce_values", "EPSILON"]

EPSILON = 1e-7


def _last_axis_mean(values: Tensor) -> Tensor:
    return values if values.ndim <= 1 else ops.mean(values, axis=-1)


def _per_row(op: Callable[..., Tensor], pred: Tensor, target: np.ndarray, **kw: Any) -> Tensor:
    """A cnnkit loss op (mean over non-batch axes) applied per last-axis row (Keras)."""
    if pred.ndim <= 2:
        return op(pred, target, reduction="none", **kw)
    rows = ops.reshape(pred, (-1, pred.shape[-1]))
    out = op(rows, target.reshape(-1, pred.shape[-1]), reduction="none", **kw)
    return ops.reshape(out, pred.shape[:-1])


def _categorical_from_probs(t: np.ndarray, p: Tensor, axis: int) -> Tensor:
    p = ops.divide(p, ops.sum(p, axis=axis, keepdims=True))
    p = ops.clip(p, EPSILON, 1.0 - EPSILON)
    return ops.negative(ops.sum(ops.multiply(t, ops.log(p)), axis=axis))


def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> Tensor:
    """-sum_c t_c log p_c along ``axis``; ``y_true`` one-hot (or a distribution).

    Label smoothing e uses t = (1 - e) t + e / C.
    """
    owner = "categorical_crossentropy"
    p = _prediction(owner, y_pred)
    t = _same_shape(owner, _target(owner, y_true, p.dtype), p.shape)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{owner}: label_smoothing must lie in [0, 1], got {label_smoothing}")
    if from_logits:
        return ops.softmax_cross_entropy(p, t, label_smoothing=label_smoothing,
                                         reduction="none", axis=axis)
    if label_smoothing:
        t = t * (1 - label_smoothing) + label_smoothing / p.shape[axis]
    return _categorical_from_probs(t, p, axis)


def sparse_ce_values(y_true: Any, y_pred: Any, from_logits: bool, ignore_class: int | None,
               label_smoothing: float = 0.0) -> tuple[Tensor, np.ndarray | None]:
    owner = "sparse_categorical_crossentropy"
    p = _prediction(owner, y_pred)
    labels, mask = _class_ids(owner, y_true, p, ignore_class)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{owner}: label_smoothing must lie in [0, 1], got {label_smoothing}")
    e = float(label_smoothing)
    if from_logits and mask is not None:  # ignored positions get t = 0, not 0 * inf later
        onehot = (labels[..., None] == np.arange(p.shape[-1])) & mask[..., None]
        t = onehot.astype(p.dtype)
        if e:
            t = (t * (1 - e) + e / p.shape[-1]) * mask[..., None]
        values = ops.softmax_cross_entropy(p, t.astype(p.dtype), reduction="none")
    elif from_logits:
        values = ops.softmax_cross_entropy(p, labels, label_smoothing=e, reduction="none")
    else:
        onehot = (labels[..., None] == np.arange(p.shape[-1])).astype(p.dtype)
        if e:
            onehot = (onehot * (1 - e) + e / p.shape[-1]).astype(p.dtype)
        values = _categorical_from_probs(onehot, p, -1)
    if mask is not None:
        values = ops.multiply(values, mask.astype(p.dtype))
    return values, mask


def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                                    ignore_class: int | None = None,
                                    label_smoothing: float = 0.0) -> Tensor:
    """-sum_c t_c log p_c per position with t the one-hot of the integer label; ``y_true``
    integer ids of shape y_pred.shape[:-1] (or with a trailing 1). Label smoothing e uses
    t = (1 - e) t + e / C (PyTorch's ``cross_entropy(label_smoothing=e)``). Positions
    labelled ``ignore_class`` give 0."""
    return sparse_ce_values(y_true, y_pred, from_logits, ignore_class, label_smoothing)[0]


def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                        label_smoothing: float = 0.0) -> Tensor:
    """mean over the last axis of -(y log p + (1 - y) log(1 - p)); smoothing e uses
    y = (1 - e) y + e / 2."""
    owner = "binary_crossentropy"
    p = _prediction(owner, y_pred)
    y = _same_shape(owner, _target(owner, y_true, p.dtype), p.shape)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{owner}: label_smoothing must lie in [0, 1], got {label_smoothing}")
    if label_smoothing:
        y = y * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        return _per_row(ops.binary_cross_entropy, p, y)
    p = ops.clip(p, EPSILON, 1.0 - EPSILON)
    elementwise = ops.negative(ops.add(ops.multiply(y, ops.log(p)),
                                       ops.multiply(1 - y, ops.log(ops.subtract(1.0, p)))))
    return _last_axis_mean(elementwise)


def mean_squared_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean((y_pred - y_true)^2) over the last axis."""
    p = _prediction("mean_squared_error", y_pred)
    t = _same_shape("mean_squared_error", _target("mean_squared_error", y_true, p.dtype),
                    p.shape)
    return _per_row(ops.mean_squared_error, p, t)


def mean_absolute_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean(|y_pred - y_true|) over the last axis."""
    p = _prediction("mean_absolute_error", y_pred)
    t = _same_shape("mean_absolute_error", _target("mean_absolute_error", y_true, p.dtype),
                    p.shape)
    return _per_row(ops.mean_absolute_error, p, t)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Tensor:
    """mean over the last axis of d^2/2 (|d| <= delta) or delta (|d| - delta/2), d = y_pred -
    y_true."""
    p = _prediction("huber", y_pred)
    t = _same_shape("huber", _target("huber", y_true, p.dtype), p.shape)
    return _per_row(ops.huber, p, t, delta=delta)


def kl_divergence(y_true: Any, y_pred: Any) -> Tensor:
    """sum over the last axis of t log(t / p), with t and p clipped to [1e-7, 1] (Keras)."""
    owner = "kl_divergence"
    p = _prediction(owner, y_pred)
    t = np.clip(_same_shape(owner, _target(owner, y_true, p.dtype), p.shape), EPSILON, 1.0)
    log_ratio = ops.subtract(np.log(t), ops.log(ops.clip(p, EPSILON, 1.0)))
    return ops.sum(ops.multiply(t, log_ratio), axis=-1)
