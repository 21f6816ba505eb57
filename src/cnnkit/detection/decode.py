"""From raw grid outputs to scored boxes: decoding, then class-wise NMS.

Decoding (YOLOv2): the slot of anchor (a_w, a_h) in row r, column c predicts the centre
((c + s(t_x)) stride, (r + s(t_y)) stride), the size (a_w e^{t_w}, a_h e^{t_h}), objectness
s(t_o) and class probabilities softmax(c); the score of class k is s(t_o) softmax(c)_k.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels.activation import sigmoid_forward, softmax_forward
from .boxes import clip, convert
from .nms import batched_nms, soft_nms

__all__ = ["decode", "postprocess"]


def decode(raw: Any, anchors: Any, stride: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes xyxy (N, rows, cols, A, 4), objectness (N, rows, cols, A), class probabilities
    (N, rows, cols, A, C)) from raw outputs (N, rows, cols, A, 5 + C)."""
    z = np.asarray(raw, dtype=np.float64)
    an = np.asarray(anchors, np.float64).reshape(-1, 2)
    if z.ndim != 5 or z.shape[3] != len(an) or z.shape[4] < 6:
        raise ValueError(f"decode expects raw outputs (N, rows, cols, {len(an)}, 5 + C), got "
                         f"shape {z.shape}")
    rows, cols = z.shape[1:3]
    gy, gx = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    cx = (gx[None, :, :, None] + sigmoid_forward(z[..., 0])) * stride
    cy = (gy[None, :, :, None] + sigmoid_forward(z[..., 1])) * stride
    w = an[:, 0] * np.exp(np.clip(z[..., 2], -10, 10))  # clipped: no overflow from wild logits
    h = an[:, 1] * np.exp(np.clip(z[..., 3], -10, 10))
    boxes = convert(np.stack([cx, cy, w, h], -1), "cxcywh", "xyxy")
    return boxes, sigmoid_forward(z[..., 4]), softmax_forward(z[..., 5:], axis=-1)


def postprocess(raw: Any, anchors: Any, stride: float, image_size: tuple[int, int],
                score_threshold: float = 0.05, iou_threshold: float = 0.5,
                max_dets: int = 100, soft: bool = False) -> list[dict]:
    """Detections per image: {'boxes' xyxy clipped to the image, 'scores', 'classes'}, the
    (box, class) pairs scoring above ``score_threshold`` after class-wise NMS (hard, or
    Gaussian soft-NMS with ``soft``), the best ``max_dets``, by decreasing score."""
    boxes, obj, probs = decode(raw, anchors, stride)
    out = []
    for i in range(boxes.shape[0]):
        b = boxes[i].reshape(-1, 4)
        s = (obj[i].reshape(-1, 1) * probs[i].reshape(len(b), -1))
        slot, cls = np.nonzero(s > score_threshold)
        b, sc = clip(b[slot], *image_size), s[slot, cls]
        if soft:
            keep, sc = soft_nms(b, sc, cls, score_threshold=score_threshold)
        else:
            keep = batched_nms(b, sc, cls, iou_threshold)
            sc = sc[keep]
        keep, sc = keep[:max_dets], sc[:max_dets]
        out.append({"boxes": b[keep], "scores": sc, "classes": cls[keep]})
    return out
