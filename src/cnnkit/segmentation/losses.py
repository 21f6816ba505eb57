"""Segmentation losses for ``model.compile(loss=...)`` or a hand-written loop, called Keras's
way, ``loss(y_true, y_pred)``: integer label maps (N, H, W) and per-pixel logits
(N, H, W, C). The maths and its gradient are in ``kernels/segmentation.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import ops
from ..ops.segmentation import ce_dice_loss, focal_loss, soft_dice_loss

__all__ = ["DiceLoss", "FocalLoss", "CombinedLoss"]


class DiceLoss:
    """1 - mean soft Dice over classes, counted over the batch (``per_sample``: per sample,
    then averaged); class 0 left out with ``ignore_background``; ``smooth`` e makes a class
    empty in both an empty-vs-empty (0 + e) / (0 + e) = 1."""

    def __init__(self, smooth: float = 1.0, ignore_background: bool = True,
                 per_sample: bool = False):
        self.smooth, self.ignore_background = float(smooth), bool(ignore_background)
        self.per_sample = bool(per_sample)
        self.name = "dice_loss"

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        return soft_dice_loss(y_pred, y_true, self.smooth, self.ignore_background,
                              self.per_sample)


class FocalLoss:
    """Mean over pixels of -a_y (1 - p_y)^gamma log p_y (gamma 0, no alpha: cross-entropy)."""

    def __init__(self, gamma: float = 2.0, alpha: Sequence[float] | None = None):
        self.gamma, self.alpha = float(gamma), alpha
        self.name = "focal_loss"

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        return focal_loss(y_pred, y_true, self.gamma, self.alpha)


class CombinedLoss:
    """ce_weight * (cross-entropy, or focal loss with ``gamma``; weighted per class by
    ``class_weights``) + dice_weight * Dice loss."""

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0,
                 gamma: float | None = None, smooth: float = 1.0,
                 ignore_background: bool = True,
                 class_weights: Sequence[float] | None = None):
        self.ce_weight, self.dice_weight = float(ce_weight), float(dice_weight)
        self.gamma, self.smooth, self.class_weights = gamma, float(smooth), class_weights
        self.ignore_background = bool(ignore_background)
        weighted = gamma is not None or class_weights is not None
        self.pixel = FocalLoss(gamma or 0.0, class_weights) if weighted else None
        self.dice = DiceLoss(smooth, ignore_background)
        self.name = "combined_loss"

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        if not self.gamma:  # cross-entropy: one fused pass (ops.segmentation.ce_dice_loss)
            return ce_dice_loss(y_pred, y_true, self.class_weights, self.ce_weight,
                                self.dice_weight, self.smooth, self.ignore_background)
        if self.pixel is not None:
            first = self.pixel(y_true, y_pred)
        else:
            first = ops.softmax_cross_entropy(y_pred, y_true)
        return first * self.ce_weight + self.dice(y_true, y_pred) * self.dice_weight
