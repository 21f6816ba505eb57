"""Anchor boxes: sizes chosen by k-means on box shapes with 1 - IoU as the distance (YOLOv2),
the grid of anchor centres, and the anchor that best fits a box's shape."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["shape_iou", "kmeans_anchors", "best_anchor", "anchor_grid"]


def shape_iou(wh: Any, anchors: Any) -> np.ndarray:
    """IoU of boxes and anchors sharing a centre: min(w)min(h) / (w h + a_w a_h - min(w)min(h));
    shapes (M, 2) and (A, 2) give (M, A)."""
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    an = np.asarray(anchors, np.float64).reshape(-1, 2)
    inter = np.minimum(wh[:, None, 0], an[None, :, 0]) * np.minimum(wh[:, None, 1], an[None, :, 1])
    union = wh.prod(1)[:, None] + an.prod(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def kmeans_anchors(wh: Any, k: int, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """``k`` anchor sizes (k, 2) from box sizes ``wh`` (M, 2): k-means with d = 1 - IoU, each
    centre the median of its boxes; sorted by area."""
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    if not 1 <= k <= len(wh):
        raise ValueError(f"kmeans_anchors: k must lie in [1, {len(wh)}] (the number of "
                         f"boxes), got {k}")
    rng = np.random.default_rng(seed)
    centres = wh[rng.choice(len(wh), k, replace=False)]
    for _ in range(iterations):
        nearest = np.argmax(shape_iou(wh, centres), axis=1)
        new = np.array([np.median(wh[nearest == j], axis=0) if (nearest == j).any()
                        else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return centres[np.argsort(centres.prod(1))]


def best_anchor(wh: Any, anchors: Any) -> np.ndarray:
    """Index of the anchor with the largest shape IoU for each box (M,)."""
    return np.argmax(shape_iou(wh, anchors), axis=1)


def anchor_grid(grid: tuple[int, int], stride: float, anchors: Any) -> np.ndarray:
    """xyxy anchor boxes centred on every cell: (rows, cols, A, 4)."""
    an = np.asarray(anchors, np.float64).reshape(-1, 2)
    cy, cx = np.meshgrid((np.arange(grid[0]) + 0.5) * stride, (np.arange(grid[1]) + 0.5) * stride,
                         indexing="ij")
    c = np.stack([cx, cy], -1)[:, :, None, :]
    return np.concatenate([c - an / 2, c + an / 2], axis=-1)
