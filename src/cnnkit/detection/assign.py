"""Target assignment for the grid detector (YOLOv2/v3): each ground-truth box goes to the
cell holding its centre and to the anchor whose shape fits it best (the next best if that
slot is taken; a box left without a free slot is counted in ``dropped``). Slots whose current
prediction already overlaps some box with IoU > ``ignore_threshold`` are neither positive nor
negative."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .anchors import shape_iou
from .boxes import check_boxes, convert, iou

__all__ = ["GridTargets", "assign_targets"]


@dataclass
class GridTargets:
    """Arrays of shape (N, rows, cols, A) (box_target adds an axis of 4) for the loss."""

    positive: np.ndarray
    negative: np.ndarray
    box_target: np.ndarray
    class_target: np.ndarray
    box_weight: np.ndarray
    dropped: int = 0


def _one_image(t: GridTargets, i: int, boxes: np.ndarray, classes: np.ndarray,
               anchors: np.ndarray, stride: float, image_area: float) -> None:
    rows, cols = t.positive.shape[1:3]
    cxcy = convert(boxes, "xyxy", "cxcywh")
    prefs = np.argsort(-shape_iou(cxcy[:, 2:], anchors), axis=1, kind="stable")
    for b in np.argsort(-(cxcy[:, 2] * cxcy[:, 3]), kind="stable"):  # larger boxes first
        cx, cy, w, h = cxcy[b]
        col = min(max(int(cx // stride), 0), cols - 1)
        row = min(max(int(cy // stride), 0), rows - 1)
        free = [a for a in prefs[b] if not t.positive[i, row, col, a]]
        if not free or w <= 0 or h <= 0:
            t.dropped += 1
            continue
        a = free[0]
        t.positive[i, row, col, a] = True
        t.box_target[i, row, col, a] = (cx / stride - col, cy / stride - row,
                                        np.log(w / anchors[a, 0]), np.log(h / anchors[a, 1]))
        t.class_target[i, row, col, a] = classes[b]
        t.box_weight[i, row, col, a] = 2.0 - w * h / image_area


def assign_targets(ground_truths: Sequence[dict], grid: tuple[int, int], stride: float,
                   anchors: Any, predicted_boxes: np.ndarray | None = None,
                   ignore_threshold: float = 0.5) -> GridTargets:
    """Targets for a batch: ``ground_truths`` one dict per image ('boxes' xyxy, 'classes');
    ``predicted_boxes`` (N, rows, cols, A, 4) xyxy, the current decoded predictions, for the
    ignore rule (None: no slot is ignored). Box weight 2 - w h / image area (YOLOv3)."""
    an = np.asarray(anchors, np.float64).reshape(-1, 2)
    shape = (len(ground_truths), int(grid[0]), int(grid[1]), len(an))
    t = GridTargets(np.zeros(shape, bool), np.ones(shape, np.float32),
                    np.zeros((*shape, 4), np.float32), np.zeros(shape, np.int64),
                    np.zeros(shape, np.float32))
    image_area = float(grid[0] * grid[1] * stride * stride)
    for i, gt in enumerate(ground_truths):
        boxes = check_boxes(gt["boxes"], f"ground_truths[{i}]['boxes']").reshape(-1, 4)
        classes = np.asarray(gt["classes"], np.int64).reshape(-1)
        if len(boxes) != len(classes):
            raise ValueError(f"assign_targets: image {i} has {len(boxes)} boxes and "
                             f"{len(classes)} classes")
        if not len(boxes):
            continue
        _one_image(t, i, boxes, classes, an, stride, image_area)
        if predicted_boxes is not None:
            best = iou(predicted_boxes[i].reshape(-1, 4), boxes).max(axis=1)
            t.negative[i][best.reshape(shape[1:]) > ignore_threshold] = 0
    t.negative[t.positive] = 0
    return t
