"""Axis-aligned boxes as float arrays (..., 4), in pixels, with x to the right and y down.

Formats: ``xyxy`` = (x1, y1, x2, y2) corners; ``xywh`` = (x1, y1, w, h), COCO's; ``cxcywh`` =
(cx, cy, w, h), YOLO's. A box with x2 <= x1 or y2 <= y1 has zero area. IoU and GIoU use the
continuous definition (no +1 pixel), as COCO does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["FORMATS", "convert", "area", "iou", "giou", "clip", "check_boxes"]

FORMATS = ("xyxy", "xywh", "cxcywh")


def check_boxes(boxes: Any, name: str = "boxes") -> np.ndarray:
    """``boxes`` as a float array with a last axis of 4 (ValueError otherwise)."""
    b = np.asarray(boxes)
    if b.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be numeric, got dtype {b.dtype}")
    if b.ndim == 1 and b.size == 0:
        b = b.reshape(0, 4)
    if b.ndim < 1 or b.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., 4), got shape {b.shape}")
    return b.astype(np.float64) if b.dtype.kind != "f" else b


def convert(boxes: Any, src: str, dst: str) -> np.ndarray:
    """Boxes from format ``src`` to ``dst`` (each one of xyxy, xywh, cxcywh)."""
    for fmt, arg in ((src, "src"), (dst, "dst")):
        if fmt not in FORMATS:
            raise ValueError(f"convert: {arg} must be one of {FORMATS}, got {fmt!r}")
    b = check_boxes(boxes)
    a, c = b[..., :2], b[..., 2:]
    if src == "xywh":
        xyxy = np.concatenate([a, a + c], axis=-1)
    elif src == "cxcywh":
        xyxy = np.concatenate([a - c / 2, a + c / 2], axis=-1)
    else:
        xyxy = b.copy()
    lo, hi = xyxy[..., :2], xyxy[..., 2:]
    if dst == "xywh":
        return np.concatenate([lo, hi - lo], axis=-1)
    if dst == "cxcywh":
        return np.concatenate([(lo + hi) / 2, hi - lo], axis=-1)
    return xyxy


def area(boxes: Any) -> np.ndarray:
    """(x2 - x1)(y2 - y1) of xyxy boxes, 0 for empty boxes."""
    b = check_boxes(boxes)
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(intersection, union) of every pair: shapes (len(a), len(b))."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return inter, union


def iou(a: Any, b: Any) -> np.ndarray:
    """Pairwise IoU = |A n B| / |A u B| of xyxy boxes (M, 4) and (K, 4): shape (M, K); 0 where
    the union is empty."""
    a, b = check_boxes(a, "a").reshape(-1, 4), check_boxes(b, "b").reshape(-1, 4)
    inter, union = _overlap(a, b)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def giou(a: Any, b: Any) -> np.ndarray:
    """Pairwise generalised IoU (Rezatofighi et al. 2019): IoU - |C \\ (A u B)| / |C|, C the
    smallest box enclosing A and B; in [-1, 1]. Shape (M, K)."""
    a, b = check_boxes(a, "a").reshape(-1, 4), check_boxes(b, "b").reshape(-1, 4)
    inter, union = _overlap(a, b)
    ious = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    lo = np.minimum(a[:, None, :2], b[None, :, :2])
    hi = np.maximum(a[:, None, 2:], b[None, :, 2:])
    hull = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    extra = np.divide(hull - union, hull, out=np.zeros_like(hull), where=hull > 0)
    return ious - extra


def clip(boxes: Any, height: float, width: float) -> np.ndarray:
    """xyxy boxes clipped to the image [0, width] x [0, height]."""
    b = check_boxes(boxes).copy()
    b[..., 0::2] = np.clip(b[..., 0::2], 0, width)
    b[..., 1::2] = np.clip(b[..., 1::2], 0, height)
    return b
