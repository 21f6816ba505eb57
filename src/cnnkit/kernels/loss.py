"""Loss functions: forward values and gradients with respect to the prediction (or logits).

A loss is computed in three steps, each with its backward:

1. an elementwise (or per-position) loss l, e.g. (p - t)^2;
2. per-sample values: the mean of l over every non-batch axis (``per_sample_mean``) for the
   regression losses and binary cross-entropy; softmax cross-entropy and KL divergence are
   already one value per position (the class axis is summed);
3. the reduction over samples (``reduce_loss``): "none" gives w * l, "sum" gives sum(w * l),
   "mean" gives sum(w * l) / count(l) (Keras' "sum_over_batch_size"; w = 1 without weights).

Targets are constants: no gradient is returned for them.
"""

from __future__ import annotations

import numpy as np

from .activation import log_softmax_forward, sigmoid_forward

REDUCTIONS = ("none", "sum", "mean")


# ----------------------------------------------------------------------------------------
# Reductions
# ----------------------------------------------------------------------------------------
def align_sample_weight(owner: str, weight: np.ndarray, shape: tuple[int, ...],
                        dtype: np.dtype) -> np.ndarray:
    """``weight`` (batch axis first) in ``dtype``, shaped to broadcast onto per-sample losses
    of ``shape``: trailing size-1 axes beyond their rank dropped, missing axes added as 1."""
    w = np.asarray(weight).astype(dtype, copy=False)
    given = w.shape
    while w.ndim > len(shape) and w.shape[-1] == 1:
        w = w[..., 0]
    if w.ndim < len(shape):
        w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    try:
        ok = np.broadcast_shapes(w.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{owner}: sample_weight of shape {given} does not fit per-sample "
                         f"losses of shape {shape}")
    return w


def reduce_loss(loss: np.ndarray, reduction: str = "mean",
                sample_weight: np.ndarray | None = None) -> np.ndarray:
    """none: w * l; sum: sum(w * l); mean: sum(w * l) / size(l) (w broadcast onto l)."""
    if sample_weight is not None:
        loss = loss * sample_weight
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return np.asarray(total, dtype=loss.dtype)
    return np.asarray(total / max(loss.size, 1), dtype=loss.dtype)


def reduce_loss_backward(g: np.ndarray, shape: tuple[int, ...], reduction: str = "mean",
                         sample_weight: np.ndarray | None = None) -> np.ndarray:
    """dL/dl for L = reduce_loss(l): g * w, divided by size(l) for "mean"."""
    g = np.asarray(g)
    if reduction == "mean":
        size = int(np.prod(shape))
        g = g / np.asarray(max(size, 1), dtype=g.dtype)
    if sample_weight is not None:
        g = g * sample_weight
    return np.broadcast_to(g, shape).copy()


def per_sample_mean(e: np.ndarray) -> np.ndarray:
    """Mean of e over every axis but the first: shape (N,). A rank-1 e is returned as is."""
    if e.ndim <= 1:
        return e
    return e.reshape(e.shape[0], -1).mean(axis=1)


def per_sample_mean_backward(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """d(per_sample_mean)/de = 1 / M for the M elements of each sample."""
    if len(shape) <= 1:
        return g
    m = int(np.prod(shape[1:]))
    g = g.reshape((shape[0],) + (1,) * (len(shape) - 1)) / np.asarray(m, dtype=g.dtype)
    return np.broadcast_to(g, shape)


# ----------------------------------------------------------------------------------------
# Classification
# ----------------------------------------------------------------------------------------
def softmax_cross_entropy_forward(logits: np.ndarray, labels: np.ndarray,
                                  label_smoothing: float = 0.0, axis: int = -1
                                  ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """l = -sum_c t_c log softmax(z)_c along ``axis``; returns (l, cache).

    ``labels`` are integer class ids (the shape of ``logits`` without ``axis``) or a target
    distribution (the shape of ``logits``). With smoothing e, t = (1 - e) t + e / C.
    log softmax is z - m - log sum exp(z - m), m = max z, so large logits stay finite. Classes
    with t_c = 0 add nothing even where log softmax is -inf (logits [3e38, 0, -3e38] in
    float32), so the loss is -log p of the labelled class, as in PyTorch, not 0 * -inf = NaN.
    """
    z = np.moveaxis(logits, axis, -1)
    n_classes = z.shape[-1]
    logp = log_softmax_forward(z, axis=-1)
    if labels.shape == logits.shape:
        t = np.moveaxis(labels, axis, -1).astype(z.dtype)
    else:
        t = (labels[..., None] == np.arange(n_classes)).astype(z.dtype)
    if label_smoothing:
        t = t * (1 - label_smoothing) + label_smoothing / n_classes
    with np.errstate(over="ignore"):  # a weighted t times -3e38 may round to -inf, as in torch
        terms = np.multiply(t, logp, out=np.zeros_like(logp), where=t != 0)
    loss = -terms.sum(axis=-1)
    return loss, (logp, t)


def softmax_cross_entropy_backward(g: np.ndarray, cache: tuple[np.ndarray, np.ndarray],
                                   axis: int = -1) -> np.ndarray:
    """dl/dz_c = softmax(z)_c * sum_k t_k - t_c (= softmax - t for a distribution t)."""
    logp, t = cache
    d = np.exp(logp) * t.sum(axis=-1, keepdims=True) - t
    d *= g[..., None]
    return np.moveaxis(d, -1, axis)


def binary_cross_entropy_forward(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """l = -y log sigmoid(x) - (1 - y) log(1 - sigmoid(x)) = max(x, 0) - x y + log1p(e^-|x|)."""
    return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


def binary_cross_entropy_backward(g: np.ndarray, logits: np.ndarray,
                                  labels: np.ndarray) -> np.ndarray:
    """dl/dx = sigmoid(x) - y."""
    return g * (sigmoid_forward(logits) - labels)


def kl_divergence_forward(pred: np.ndarray, target: np.ndarray, axis: int = -1,
                          epsilon: float = 1e-7) -> np.ndarray:
    """l = sum_c t_c (log t_c - log max(p_c, eps)) along ``axis`` (terms with t_c = 0 are 0)."""
    p = np.maximum(pred, epsilon)
    pos = target > 0
    log_t = np.log(np.where(pos, target, 1))
    return np.where(pos, target * (log_t - np.log(p)), 0).sum(axis=axis)


def kl_divergence_backward(g: np.ndarray, pred: np.ndarray, target: np.ndarray, axis: int = -1,
                           epsilon: float = 1e-7) -> np.ndarray:
    """dl/dp_c = -t_c / p_c where p_c > eps, else 0 (the clip is flat there)."""
    d = np.where(pred > epsilon, -target / np.maximum(pred, epsilon), 0)
    return (np.expand_dims(g, axis) * d).astype(pred.dtype, copy=False)


# ----------------------------------------------------------------------------------------
# Regression (elementwise)
# ----------------------------------------------------------------------------------------
def mean_squared_error_forward(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """l = (p - t)^2."""
    d = pred - target
    return d * d


def mean_squared_error_backward(g: np.ndarray, pred: np.ndarray,
                                target: np.ndarray) -> np.ndarray:
    """dl/dp = 2 (p - t)."""
    return g * (2 * (pred - target))


def mean_absolute_error_forward(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """l = |p - t|."""
    return np.abs(pred - target)


def mean_absolute_error_backward(g: np.ndarray, pred: np.ndarray,
                                 target: np.ndarray) -> np.ndarray:
    """dl/dp = sign(p - t) (0 where p = t)."""
    return g * np.sign(pred - target)


def huber_forward(pred: np.ndarray, target: np.ndarray, delta: float = 1.0) -> np.ndarray:
    """l = d^2 / 2 if |d| <= delta else delta (|d| - delta / 2), d = p - t."""
    d = np.abs(pred - target)
    q = np.minimum(d, delta)
    return q * (d - 0.5 * q)


def huber_backward(g: np.ndarray, pred: np.ndarray, target: np.ndarray,
                   delta: float = 1.0) -> np.ndarray:
    """dl/dp = clip(d, -delta, delta)."""
    return g * np.clip(pred - target, -delta, delta)


# ----------------------------------------------------------------------------------------
# Knowledge distillation (Hinton et al. 2015)
# ----------------------------------------------------------------------------------------
def distillation_kl_forward(student: np.ndarray, teacher: np.ndarray, temperature: float
                            ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """l = T^2 sum_c p_c (log p_c - log q_c) over the last (class) axis, with
    p = softmax(teacher / T) and q = softmax(student / T); one value per row; returns
    (l, cache). The T^2 keeps the gradient's size independent of T (Hinton et al. 2015)."""
    t = float(temperature)
    logq = log_softmax_forward(student / np.asarray(t, student.dtype), axis=-1)
    logp = log_softmax_forward(teacher / np.asarray(t, teacher.dtype), axis=-1)
    p = np.exp(logp)
    terms = np.multiply(p, logp - logq, out=np.zeros_like(p), where=p > 0)
    loss = (t * t) * terms.sum(axis=-1)
    return loss.astype(student.dtype, copy=False), (p, np.exp(logq))


def distillation_kl_backward(g: np.ndarray, cache: tuple[np.ndarray, np.ndarray],
                             temperature: float) -> np.ndarray:
    """dl/ds_c = T^2 * (q_c - p_c) / T = T (q_c - p_c) (the teacher is a constant)."""
    p, q = cache
    d = (q - p) * np.asarray(float(temperature), q.dtype)
    return (np.expand_dims(g, -1) * d).astype(q.dtype, copy=False)
