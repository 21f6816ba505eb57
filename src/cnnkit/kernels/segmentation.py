"""Segmentation losses on per-pixel logits z (N, ..., C), channels last, with integer labels y
(N, ...); p = softmax(z) over the class axis and t the one-hot labels.

Soft Dice (Milletari et al. 2016) for each counted class c, with smoothing e, the sums over
the whole batch ("batch Dice"; with ``per_sample`` over each sample n, then averaged):
    I = sum_x p t,  S = sum_x p + sum_x t,  D = (2 I + e) / (S + e),  L = 1 - mean_c D
    dL/dp = -(2 t - D) / ((S + e) M), M = the number of (sample,) class terms averaged; then
    through the softmax: dL/dz = p (dL/dp - sum_c p dL/dp).
Per sample, a class absent from a sample scores 1 only when its probabilities sum to much
less than e over the whole image, which pulls every foreground probability down; batch
Dice (the default, as in nnU-Net) counts it over the batch.
Focal loss (Lin et al. 2017), per pixel, p_t = p_y:
    l = -a_y (1 - p_t)^g log p_t
    dl/dz_j = a_y [g (1 - p_t)^(g - 1) p_t log p_t - (1 - p_t)^g] (delta_jy - p_j)
(g = 0, a = 1 is cross-entropy). The first term is written g (1 - p_t)^g p_t log p_t / (1 - p_t),
taken as 0 where p_t = 1, its limit.
"""

from __future__ import annotations

import numpy as np

from . import parallel
from .activation import log_softmax_forward

__all__ = ["soft_dice_forward", "soft_dice_backward", "focal_forward", "focal_backward",
           "ce_dice_forward", "ce_dice_backward"]


def _one_hot(labels: np.ndarray, n_classes: int, dtype: np.dtype) -> np.ndarray:
    return (labels[..., None] == np.arange(n_classes)).astype(dtype)


def soft_dice_forward(logits: np.ndarray, labels: np.ndarray, classes: np.ndarray,
                      smooth: float = 1.0, per_sample: bool = False) -> tuple[np.ndarray, tuple]:
    """(L, cache); ``classes`` bool (C,) picks the classes averaged (e.g. all but 0)."""
    p = np.exp(log_softmax_forward(logits, axis=-1))
    t = _one_hot(labels, logits.shape[-1], logits.dtype)
    axes = tuple(range(1 if per_sample else 0, logits.ndim - 1))
    inter = (p * t).sum(axis=axes, keepdims=True)  # (N or 1, 1, ..., C)
    total = p.sum(axis=axes, keepdims=True) + t.sum(axis=axes, keepdims=True) + smooth
    dice = (2 * inter + smooth) / total
    loss = 1 - dice[..., classes].mean()
    return np.asarray(loss, dtype=logits.dtype), (p, t, dice, total, classes)


def soft_dice_backward(g: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dz (see the module docstring)."""
    p, t, dice, total, classes = cache
    terms = dice.shape[0] * int(classes.sum())
    coef = np.where(classes, -1.0 / (total * terms), 0.0)
    gp = coef * (2 * t - dice) * float(g)
    return (p * (gp - (gp * p).sum(axis=-1, keepdims=True))).astype(p.dtype, copy=False)


def focal_forward(logits: np.ndarray, labels: np.ndarray, gamma: float = 2.0,
                  alpha: np.ndarray | None = None) -> tuple[np.ndarray, tuple]:
    """(per-pixel losses, shape of labels; cache). ``alpha``: per-class weights (C,) or None."""
    logp = log_softmax_forward(logits, axis=-1)
    lab = labels[..., None]
    logpt = np.take_along_axis(logp, lab, axis=-1)[..., 0]
    q = -np.expm1(logpt)  # 1 - p_t, accurate near p_t = 1
    a = np.ones_like(logpt) if alpha is None else alpha.astype(logits.dtype)[labels]
    mod = q ** gamma if gamma else np.ones_like(q)
    return -a * mod * logpt, (logp, lab, logpt, q, a, mod, gamma)


def focal_backward(g: np.ndarray, cache: tuple) -> np.ndarray:
    """dl/dz for upstream gradients ``g`` of the per-pixel losses."""
    logp, lab, logpt, q, a, mod, gamma = cache
    pt = np.exp(logpt)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(q > 0, gamma * mod * pt * logpt / np.where(q > 0, q, 1), 0.0)
    coef = (a * (first - mod) * g)[..., None]
    d = -np.exp(logp)
    np.put_along_axis(d, lab, np.take_along_axis(d, lab, axis=-1) + 1, axis=-1)
    return (coef * d).astype(logp.dtype, copy=False)


def ce_dice_forward(logits: np.ndarray, labels: np.ndarray, alpha: np.ndarray | None,
                    classes: np.ndarray, smooth: float = 1.0, ce_weight: float = 1.0,
                    dice_weight: float = 1.0) -> tuple[np.ndarray, tuple]:
    """(L, cache) of L = ce_weight * mean_x -a_y log p_y + dice_weight * (1 - mean_c D_c), the
    batch soft Dice D_c above: one softmax and per-class sums (bincount) for both terms.
    Works on the logits as (C, pixels), so every reduction over the classes is vectorised."""
    c = logits.shape[-1]
    z = np.ascontiguousarray(logits.reshape(-1, c).T)
    lab = labels.reshape(-1)
    cols = np.arange(len(lab))
    p = np.exp(z - z.max(axis=0))
    p /= p.sum(axis=0)
    pt = p[lab, cols]
    a = np.ones(len(lab), logits.dtype) if alpha is None else alpha.astype(logits.dtype)[lab]
    m = max(len(lab), 1)
    ce = -(a * np.log(np.maximum(pt, np.finfo(p.dtype).tiny))).sum(dtype=np.float64) / m
    inter = np.bincount(lab, weights=pt, minlength=c)
    total = p.sum(axis=1, dtype=np.float64) + np.bincount(lab, minlength=c) + smooth
    dice = (2 * inter + smooth) / total
    loss = ce_weight * ce + dice_weight * (1 - dice[classes].mean())
    coef = np.where(classes, -dice_weight / (total * int(classes.sum())), 0.0)
    cache = (p, lab, cols, pt, a * (ce_weight / m), coef, dice, logits.shape)
    return np.asarray(loss, dtype=logits.dtype), cache


def ce_dice_backward(g: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dz: with q_c = -coef_c D_c (coef_c = -dice_weight / (S_c M)), w = ce_weight a_y / n
    and r = sum_c p_c q_c + 2 coef_y p_y, dL/dz_c = p_c (q_c + w - r) + [c = y] (2 coef_y p_y
    - w) (cross-entropy p - t plus the Dice gradient through the softmax)."""
    p, lab, cols, pt, w, coef, dice, shape = cache
    q = (-coef * dice).astype(p.dtype)
    cy = coef.astype(p.dtype)[lab] * 2 * pt
    # q @ p with BLAS held to one thread: OpenBLAS's two threads took 8 ms instead of 0.1 ms
    # for this (11,) @ (11, 65536) product with other processes on the machine
    grad = (w - (parallel.matmul(q[None], p)[0] + cy)) + q[:, None]
    grad *= p
    grad[lab, cols] += cy - w
    grad *= float(g)
    return np.ascontiguousarray(grad.T).reshape(shape)
