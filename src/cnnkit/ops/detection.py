"""The grid detector's loss on Tensors (the maths is in ``kernels/detection.py``); the gradient
flows into the raw outputs only, the targets are constants."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels import detection as K
from ._core import Tensor, floating, record

__all__ = ["grid_detection_loss"]


def grid_detection_loss(raw: Any, positive: Any, negative: Any, box_target: Any,
                        class_target: Any, box_weight: Any, lambda_box: float = 5.0,
                        lambda_noobj: float = 1.0, lambda_cls: float = 1.0
                        ) -> tuple[Tensor, dict[str, float]]:
    """(loss Tensor, its parts) of raw grid outputs (N, ..., 5 + C); see kernels.detection."""
    op = "grid_detection_loss"
    raw = floating(raw, "raw")
    slots = raw.shape[:-1]
    pos = np.asarray(positive, dtype=bool)
    neg = np.asarray(negative, dtype=raw.dtype)
    boxes = np.asarray(box_target, dtype=raw.dtype)
    classes = np.asarray(class_target)
    weight = np.asarray(box_weight, dtype=raw.dtype)
    for name, arr, want in (("positive", pos, slots), ("negative", neg, slots),
                            ("box_target", boxes, (*slots, 4)),
                            ("class_target", classes, slots), ("box_weight", weight, slots)):
        if arr.shape != want:
            raise ValueError(f"{op}: {name} must have shape {want} for raw outputs of shape "
                             f"{raw.shape}, got {arr.shape}")
    n_classes = raw.shape[-1] - 5
    if n_classes < 1:
        raise ValueError(f"{op}: raw outputs need 5 + classes values per slot, got "
                         f"{raw.shape[-1]}")
    k = classes[pos]
    if k.size and (k.min() < 0 or k.max() >= n_classes):
        raise ValueError(f"{op}: class targets must lie in [0, {n_classes}), got "
                         f"{int(k.min())}..{int(k.max())}")
    value, parts, cache = K.grid_detection_loss_forward(raw.data, pos, neg, boxes, classes,
                                                        weight, lambda_box, lambda_noobj,
                                                        lambda_cls)
    out = record(value, (raw,), lambda g: (K.grid_detection_loss_backward(g, cache),), op)
    return out, parts
