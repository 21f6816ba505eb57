"""The loss of a YOLO-style single-stage grid detector, forward and backward.

Raw outputs z (..., 5 + C) per grid cell and anchor hold (t_x, t_y, t_w, t_h, t_o, c_1..c_C).
Per slot, with s = sigmoid, targets (g_x, g_y) the box centre's offset in its cell (in [0, 1)),
(g_w, g_h) = log(box size / anchor size), positives P (the slot a box is assigned to), negative
weights n (1 for background slots, 0 for positives and ignored slots), box weights w:

    L_box = lambda_box * sum_P w [(s(t_x) - g_x)^2 + (s(t_y) - g_y)^2
                                  + (t_w - g_w)^2 + (t_h - g_h)^2]
    L_obj = sum_P bce(t_o, 1) + lambda_noobj * sum n bce(t_o, 0),
            bce(t, y) = max(t, 0) - t y + log(1 + e^-|t|)
    L_cls = lambda_cls * sum_P -log softmax(c)_k   (k the box's class)
    L = (L_box + L_obj + L_cls) / N   (N the batch size)

Gradients: d(s(t) - g)^2/dt = 2 (s - g) s (1 - s); d(t - g)^2/dt = 2 (t - g);
dbce/dt = s(t) - y; dL_cls/dc = lambda_cls (softmax(c) - onehot(k)).
"""

from __future__ import annotations

import numpy as np

from .activation import log_softmax_forward, sigmoid_forward

__all__ = ["grid_detection_loss_forward", "grid_detection_loss_backward"]


def _bce(t: np.ndarray, y: float) -> np.ndarray:
    return np.maximum(t, 0) - t * y + np.log1p(np.exp(-np.abs(t)))


def grid_detection_loss_forward(raw: np.ndarray, positive: np.ndarray, negative: np.ndarray,
                                box_target: np.ndarray, class_target: np.ndarray,
                                box_weight: np.ndarray, lambda_box: float = 5.0,
                                lambda_noobj: float = 1.0, lambda_cls: float = 1.0
                                ) -> tuple[np.ndarray, dict[str, float], tuple]:
    """(L, {"box", "obj", "cls"} per-batch parts, cache). ``positive`` bool and ``negative``
    float have raw's shape without the last axis; ``box_target`` (..., 4) = (g_x, g_y, g_w,
    g_h); ``class_target`` int; ``box_weight`` float; only positive slots' targets are read."""
    n = raw.shape[0]
    z = raw[positive]  # (P, 5 + C)
    sxy = sigmoid_forward(z[:, :2])
    gb = box_target[positive]
    w = box_weight[positive][:, None]
    d_xy, d_wh = sxy - gb[:, :2], z[:, 2:4] - gb[:, 2:4]
    l_box = lambda_box * float((w * (d_xy ** 2)).sum() + (w * (d_wh ** 2)).sum())
    to = raw[..., 4]
    l_obj = float(_bce(z[:, 4], 1.0).sum() + lambda_noobj * (negative * _bce(to, 0.0)).sum())
    logp = log_softmax_forward(z[:, 5:], axis=-1)
    k = class_target[positive].astype(np.int64)
    l_cls = lambda_cls * float(-logp[np.arange(len(k)), k].sum())
    total = np.asarray((l_box + l_obj + l_cls) / n, dtype=raw.dtype)
    parts = {"box": l_box / n, "obj": l_obj / n, "cls": l_cls / n}
    cache = (raw.shape, positive, negative, sxy, d_xy, d_wh, w, to, logp, k, lambda_box,
             lambda_noobj, lambda_cls)
    return total, parts, cache


def grid_detection_loss_backward(g: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dz for the upstream gradient ``g`` (a scalar)."""
    (shape, positive, negative, sxy, d_xy, d_wh, w, to, logp, k, lambda_box,
     lambda_noobj, lambda_cls) = cache
    n = shape[0]
    scale = float(g) / n
    grad = np.zeros(shape, dtype=to.dtype)
    grad[..., 4] = lambda_noobj * negative * sigmoid_forward(to)
    gp = np.zeros((int(positive.sum()), shape[-1]), dtype=to.dtype)
    gp[:, :2] = lambda_box * w * 2 * d_xy * sxy * (1 - sxy)
    gp[:, 2:4] = lambda_box * w * 2 * d_wh
    gp[:, 4] = sigmoid_forward(to[positive]) - 1
    p = np.exp(logp)
    p[np.arange(len(k)), k] -= 1
    gp[:, 5:] = lambda_cls * p
    grad[positive] += gp
    return grad * np.asarray(scale, dtype=grad.dtype)
