"""Class-wise non-maximum suppression, hard and soft.

Hard NMS: within each class, take the boxes from the highest score down (ties: the lower
index first); a box is kept unless a box already kept has IoU > ``iou_threshold`` with it.
Soft-NMS (Bodla et al. 2017): the best remaining box is kept and every other box of its class
has its score decayed, linear: s <- s (1 - IoU) where IoU > Nt, or Gaussian:
s <- s exp(-IoU^2 / sigma); boxes whose score falls below ``score_threshold`` are dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .boxes import check_boxes, iou

__all__ = ["nms", "batched_nms", "soft_nms"]


def _inputs(boxes: Any, scores: Any, classes: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = check_boxes(boxes).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    c = np.zeros(len(b), np.int64) if classes is None else np.asarray(classes).reshape(-1)
    if not len(b) == len(s) == len(c):
        raise ValueError(f"nms: boxes, scores and classes must have one entry per box, got "
                         f"{len(b)} boxes, {len(s)} scores, {len(c)} classes")
    return b, s, c


def nms(boxes: Any, scores: Any, iou_threshold: float = 0.5) -> np.ndarray:
    """Indices of the boxes hard NMS keeps (one class), by decreasing score."""
    b, s, _ = _inputs(boxes, scores, None)
    order = np.argsort(-s, kind="stable")
    overlaps = iou(b[order], b[order])
    alive = np.ones(len(order), bool)
    keep = []
    for i in range(len(order)):
        if alive[i]:
            keep.append(order[i])
            alive[i + 1:] &= overlaps[i, i + 1:] <= iou_threshold
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: Any, scores: Any, classes: Any, iou_threshold: float = 0.5
                ) -> np.ndarray:
    """Hard NMS within each class; indices kept, by decreasing score over all classes."""
    b, s, c = _inputs(boxes, scores, classes)
    keep = [np.flatnonzero(c == k)[nms(b[c == k], s[c == k], iou_threshold)]
            for k in np.unique(c)]
    kept = np.concatenate(keep) if keep else np.zeros(0, np.int64)
    return kept[np.argsort(-s[kept], kind="stable")]


def soft_nms(boxes: Any, scores: Any, classes: Any = None, method: str = "gaussian",
             sigma: float = 0.5, iou_threshold: float = 0.3, score_threshold: float = 1e-3
             ) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS within each class: (indices kept, their decayed scores), by decreasing score."""
    if method not in ("linear", "gaussian"):
        raise ValueError(f"soft_nms: method must be 'linear' or 'gaussian', got {method!r}")
    if sigma <= 0:
        raise ValueError(f"soft_nms: sigma must be > 0, got {sigma}")
    b, s, c = _inputs(boxes, scores, classes)
    kept, new_scores = [], []
    for k in np.unique(c):
        idx = np.flatnonzero(c == k)
        cur = s[idx].copy()
        overlaps = iou(b[idx], b[idx])
        alive = cur >= score_threshold
        while alive.any():
            i = np.flatnonzero(alive)[np.argmax(cur[alive])]  # first of equal maxima
            kept.append(idx[i])
            new_scores.append(cur[i])
            alive[i] = False
            o = overlaps[i]
            if method == "linear":
                decay = np.where(o > iou_threshold, 1 - o, 1.0)
            else:
                decay = np.exp(-(o * o) / sigma)
            cur = np.where(alive, cur * decay, cur)
            alive &= cur >= score_threshold
    kept_a, scores_a = np.asarray(kept, np.int64), np.asarray(new_scores, np.float64)
    order = np.argsort(-scores_a, kind="stable")
    return kept_a[order], scores_a[order]
