"""Loss functions on Tensors; the gradient flows into the prediction / logits only.

Reductions (Keras semantics): ``"none"`` returns the per-sample losses (for the regression
losses and binary cross-entropy: the mean over every non-batch axis, shape (N,); for softmax
cross-entropy and KL divergence: one value per position, the input shape without the class
axis); ``"sum"`` sums them; ``"mean"`` divides that sum by their number. A ``sample_weight``
multiplies the per-sample losses first ("mean" is then sum(w * l) / count(l), as in Keras).
Note that "sum" adds per-sample *means*: for an (N, D) regression it is PyTorch's
``reduction="sum"`` divided by D.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..kernels import loss as K
from ._core import Tensor, floating, record

__all__ = ["softmax_cross_entropy", "binary_cross_entropy", "mean_squared_error",
           "mean_absolute_error", "huber", "kl_divergence", "distillation_kl"]


# ----------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------
def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in K.REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {', '.join(map(repr, K.REDUCTIONS))}, "
                         f"got {reduction!r}")


def _pred(op: str, name: str, x: Any) -> Tensor:
    t = floating(x, name)
    if t.ndim < 1:
        raise ValueError(f"{op} expects {name} of rank >= 1 (N, ...), got a scalar")
    return t


def _constant(op: str, name: str, value: Any, dtype: np.dtype) -> np.ndarray:
    """A target array in ``dtype``; a floating array of another dtype is a TypeError."""
    is_array = isinstance(value, (Tensor, np.ndarray))
    arr = value.data if isinstance(value, Tensor) else np.asarray(value)
    if np.issubdtype(arr.dtype, np.floating) and arr.dtype != dtype and is_array:
        raise TypeError(f"{op}: {name} has dtype {arr.dtype} but the prediction has dtype "
                        f"{dtype}; cast one of them so they match")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{op}: {name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def match_shape(op: str, name: str, target: np.ndarray, shape: tuple[int, ...]
                 ) -> np.ndarray:
    """``target`` reshaped to ``shape``, allowing one trailing axis of size 1 on either side."""
    if target.shape == shape:
        return target
    if target.shape + (1,) == shape or target.shape == shape + (1,):
        return target.reshape(shape)
    raise ValueError(f"{op} expects {name} of shape {shape} (the prediction's shape), "
                     f"got shape {target.shape}")


def _weights(op: str, sample_weight: Any, shape: tuple[int, ...], dtype: np.dtype
             ) -> np.ndarray | None:
    """Sample weights aligned from the batch axis onto per-sample losses of ``shape``."""
    if sample_weight is None:
        return None
    w = sample_weight.data if isinstance(sample_weight, Tensor) else sample_weight
    return K.align_sample_weight(op, w, shape, dtype)


def _reduced(name: str, pred: Tensor, per: np.ndarray, per_backward: Callable,
             reduction: str, w: np.ndarray | None) -> Tensor:
    value = K.reduce_loss(per, reduction, w)

    def backward(g):
        return (per_backward(K.reduce_loss_backward(g, per.shape, reduction, w)),)

    return record(value, (pred,), backward, name)


def _axis(op: str, axis: int, ndim: int) -> int:
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis!r} is out of range for logits of rank {ndim}")
    return int(axis) % ndim


def _class_labels(op: str, logits: Tensor, labels: Any, axis: int) -> np.ndarray:
    """Integer class ids (shape of logits without ``axis``) or a distribution (logits' shape)."""
    lab = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if lab.shape == logits.shape:
        return _constant(op, "labels", labels, logits.dtype)
    n_classes = logits.shape[axis]
    id_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    if lab.shape == id_shape + (1,) and axis == logits.ndim - 1:
        lab = lab.reshape(id_shape)
    if lab.shape != id_shape:
        raise ValueError(
            f"{op} expects labels of shape {id_shape} (integer class ids) or {logits.shape} "
            f"(one-hot / probabilities) for logits of shape {logits.shape}, got shape "
            f"{lab.shape}")
    if np.issubdtype(lab.dtype, np.floating):
        if not np.all(np.mod(lab, 1) == 0):
            bad = lab[np.mod(lab, 1) != 0].flat[0]
            raise ValueError(f"{op}: integer labels must be whole numbers, got {bad}")
    elif not (np.issubdtype(lab.dtype, np.integer) or lab.dtype == np.bool_):
        raise TypeError(f"{op}: labels must be integers or floats, got dtype {lab.dtype}")
    lab = lab.astype(np.int64, copy=False)
    bad = (lab < 0) | (lab >= n_classes)
    if bad.any():
        raise ValueError(f"{op}: label {lab[bad].flat[0]} is out of range for {n_classes} "
                         f"classes (labels must lie in [0, {n_classes}))")
    return lab


# ----------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------
def softmax_cross_entropy(logits: Any, labels: Any, label_smoothing: float = 0.0,
                          reduction: str = "mean", sample_weight: Any = None,
                          axis: int = -1) -> Tensor:
    """-sum_c t_c log softmax(logits)_c along ``axis``, from unnormalised logits.

    ``labels``: integer class ids of shape logits.shape without ``axis``, or one-hot /
    probability targets of the shape of ``logits``. ``label_smoothing`` e replaces t by
    (1 - e) t + e / C. The gradient is (softmax - t) per position, scaled by the reduction.
    """
    op = "softmax_cross_entropy"
    _check_reduction(op, reduction)
    logits = _pred(op, "logits", logits)
    ax = _axis(op, axis, logits.ndim)
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"{op}: label_smoothing must lie in [0, 1], got {label_smoothing}")
    lab = _class_labels(op, logits, labels, ax)
    per, cache = K.softmax_cross_entropy_forward(logits.data, lab, float(label_smoothing), ax)
    w = _weights(op, sample_weight, per.shape, logits.dtype)
    return _reduced(op, logits, per,
                    lambda g: K.softmax_cross_entropy_backward(g, cache, ax), reduction, w)


def binary_cross_entropy(logits: Any, labels: Any, reduction: str = "mean",
                         sample_weight: Any = None) -> Tensor:
    """-y log sigmoid(x) - (1 - y) log(1 - sigmoid(x)) from logits x, computed stably as
    max(x, 0) - x y + log1p(exp(-|x|)); per-sample value = mean over non-batch axes."""
    op = "binary_cross_entropy"
    _check_reduction(op, reduction)
    logits = _pred(op, "logits", logits)
    y = match_shape(op, "labels", _constant(op, "labels", labels, logits.dtype), logits.shape)
    e = K.binary_cross_entropy_forward(logits.data, y)
    per = K.per_sample_mean(e)
    w = _weights(op, sample_weight, per.shape, logits.dtype)
    return _reduced(
        op, logits, per,
        lambda g: K.binary_cross_entropy_backward(K.per_sample_mean_backward(g, e.shape),
                                                  logits.data, y),
        reduction, w)


def _regression(op: str, pred: Any, target: Any, reduction: str, sample_weight: Any,
                forward: Callable, backward: Callable, **params: Any) -> Tensor:
    _check_reduction(op, reduction)
    pred = _pred(op, "pred", pred)
    t = match_shape(op, "target", _constant(op, "target", target, pred.dtype), pred.shape)
    e = forward(pred.data, t, **params)
    per = K.per_sample_mean(e)
    w = _weights(op, sample_weight, per.shape, pred.dtype)
    return _reduced(
        op, pred, per,
        lambda g: backward(K.per_sample_mean_backward(g, e.shape), pred.data, t, **params),
        reduction, w)


def mean_squared_error(pred: Any, target: Any, reduction: str = "mean",
                       sample_weight: Any = None) -> Tensor:
    """(pred - target)^2, averaged over non-batch axes per sample, then reduced."""
    return _regression("mean_squared_error", pred, target, reduction, sample_weight,
                       K.mean_squared_error_forward, K.mean_squared_error_backward)


def mean_absolute_error(pred: Any, target: Any, reduction: str = "mean",
                        sample_weight: Any = None) -> Tensor:
    """|pred - target|, averaged over non-batch axes per sample, then reduced."""
    return _regression("mean_absolute_error", pred, target, reduction, sample_weight,
                       K.mean_absolute_error_forward, K.mean_absolute_error_backward)


def huber(pred: Any, target: Any, delta: float = 1.0, reduction: str = "mean",
          sample_weight: Any = None) -> Tensor:
    """d^2 / 2 if |d| <= delta else delta (|d| - delta / 2), d = pred - target."""
    if not float(delta) > 0:
        raise ValueError(f"huber: delta must be > 0, got {delta}")
    return _regression("huber", pred, target, reduction, sample_weight,
                       K.huber_forward, K.huber_backward, delta=float(delta))


def kl_divergence(pred: Any, target: Any, reduction: str = "mean", sample_weight: Any = None,
                  axis: int = -1) -> Tensor:
    """sum_c t_c log(t_c / p_c) along ``axis``, p (probabilities) clipped below at 1e-7.

    Note the argument order (prediction first, like every cnnkit loss; Keras' is y_true, y_pred).
    """
    op = "kl_divergence"
    _check_reduction(op, reduction)
    pred = _pred(op, "pred", pred)
    ax = _axis(op, axis, pred.ndim)
    t = match_shape(op, "target", _constant(op, "target", target, pred.dtype), pred.shape)
    per = K.kl_divergence_forward(pred.data, t, ax)
    w = _weights(op, sample_weight, per.shape, pred.dtype)
    return _reduced(op, pred, per, lambda g: K.kl_divergence_backward(g, pred.data, t, ax),
                    reduction, w)


def distillation_kl(student_logits: Any, teacher_logits: Any, temperature: float = 1.0,
                    reduction: str = "mean", sample_weight: Any = None) -> Tensor:
    """T^2 KL(softmax(teacher / T) || softmax(student / T)), summed over the last (class)
    axis; "mean" averages the rows (PyTorch's ``kl_div(..., reduction="batchmean")`` times
    T^2). The gradient flows into ``student_logits`` only."""
    op = "distillation_kl"
    _check_reduction(op, reduction)
    s = _pred(op, "student_logits", student_logits)
    t = _constant(op, "teacher_logits", teacher_logits, s.dtype)
    if t.shape != s.shape:
        raise ValueError(f"{op} expects teacher_logits of shape {s.shape} (the student's), "
                         f"got shape {t.shape}")
    temp = float(temperature)
    if not np.isfinite(temp) or temp <= 0:
        raise ValueError(f"{op}: temperature must be a positive finite number, got "
                         f"{temperature!r}")
    per, cache = K.distillation_kl_forward(s.data, t, temp)
    w = _weights(op, sample_weight, per.shape, s.dtype)
    return _reduced(op, s, per, lambda g: K.distillation_kl_backward(g, cache, temp),
                    reduction, w)
