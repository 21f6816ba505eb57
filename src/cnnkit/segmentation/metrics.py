"""Dice and IoU of label maps (N, H, W) of class ids, per class and averaged.

Per class k, with TP, FP and FN counted over the pixels: Dice = 2 TP / (2 TP + FP + FN),
IoU = TP / (TP + FP + FN). ``average="macro"``: the mean of the per-class scores; ``"micro"``:
the score of TP, FP, FN summed over the classes first; None: the per-class scores.

Empty-mask rule: a class absent from both prediction and target (TP + FP + FN = 0) has no
score (NaN) and is left out of the macro mean; a micro score (or a macro mean) with nothing
to count is 1.0 (both masks empty agree perfectly). With ``per_image=True`` the counts are per
image and the scores are averaged over the images where they are defined; otherwise the
counts are summed over the whole set first. Class 0 (background) is left out with
``ignore_background``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["confusion_counts", "dice_score", "iou_score"]


def _maps(pred: Any, target: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred), np.asarray(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction and target label maps must have the same shape, got "
                         f"{p.shape} and {t.shape}")
    for name, a in (("prediction", p), ("target", t)):
        if a.dtype.kind not in "iub":
            raise TypeError(f"{name} must hold integer class ids, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} class ids must lie in [0, {num_classes}), got "
                             f"{int(a.min())}..{int(a.max())}")
    return p.astype(np.int64), t.astype(np.int64)


def confusion_counts(pred: Any, target: Any, num_classes: int) -> np.ndarray:
    """(N, 3, classes): TP, FP, FN of each class in each image (axis 0 of the maps)."""
    p, t = _maps(pred, target, num_classes)
    n = p.shape[0] if p.ndim > 1 else 1
    p, t = p.reshape(n, -1), t.reshape(n, -1)
    k = num_classes
    flat = (p * k + t) + (np.arange(n) * k * k)[:, None]
    cm = np.bincount(flat.ravel(), minlength=n * k * k).reshape(n, k, k)  # [pred, target]
    tp = np.diagonal(cm, axis1=1, axis2=2)
    return np.stack([tp, cm.sum(axis=2) - tp, cm.sum(axis=1) - tp], axis=1)


def _score(counts: np.ndarray, dice: bool) -> np.ndarray:
    tp, fp, fn = counts[..., 0, :], counts[..., 1, :], counts[..., 2, :]
    num = 2 * tp if dice else tp
    den = (2 * tp if dice else tp) + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _average(pred: Any, target: Any, num_classes: int, average: str | None,
             ignore_background: bool, per_image: bool, dice: bool) -> Any:
    if average not in ("macro", "micro", None):
        raise ValueError(f"average must be 'macro', 'micro' or None, got {average!r}")
    counts = confusion_counts(pred, target, num_classes).astype(np.float64)
    if ignore_background:
        counts = counts[..., 1:]
    if not per_image:
        counts = counts.sum(axis=0, keepdims=True)
    if average == "micro":
        s = _score(counts.sum(axis=-1, keepdims=True), dice)[:, 0]
        s = np.where(np.isnan(s), 1.0, s)
        return float(s.mean())
    with warnings.catch_warnings():  # an all-NaN column (class never present) is expected
        warnings.simplefilter("ignore", RuntimeWarning)
        per_class = np.nanmean(_score(counts, dice), axis=0)
    if average is None:
        return per_class
    ok = ~np.isnan(per_class)
    return float(per_class[ok].mean()) if ok.any() else 1.0


def dice_score(pred: Any, target: Any, num_classes: int, average: str | None = "macro",
               ignore_background: bool = True, per_image: bool = False) -> Any:
    """Dice of predicted and target label maps (see the module docstring)."""
    return _average(pred, target, num_classes, average, ignore_background, per_image, True)


def iou_score(pred: Any, target: Any, num_classes: int, average: str | None = "macro",
              ignore_background: bool = True, per_image: bool = False) -> Any:
    """IoU (Jaccard) of predicted and target label maps (see the module docstring)."""
    return _average(pred, target, num_classes, average, ignore_background, per_image, False)
