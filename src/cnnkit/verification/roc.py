"""ROC curve, its area, and the distance threshold that separates same from different pairs.

Scores rank pairs, higher meaning "more likely the same"; pass ``-distance`` for distances.
At each distinct score t, TPR(t) = #{same, s >= t} / #same and FPR(t) = #{different, s >= t} /
#different; the curve starts at (0, 0) and tied scores move both rates in one step. The area
is the trapezoid sum, which equals P(s_same > s_diff) + 1/2 P(s_same = s_diff).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["roc_curve", "auc", "roc_auc", "best_threshold", "pair_accuracy"]


def _scored(scores: Any, same: Any, op: str) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(same).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"{op} expects one label per score: {s.size} scores, {y.size} labels")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{op} expects finite scores, got {s[~np.isfinite(s)][0]}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"{op} expects labels 0 (different) and 1 (same), got values "
                         f"{np.unique(y)[:5]}")
    y = y.astype(bool)
    if y.all() or not y.any():
        raise ValueError(f"{op} needs both same (1) and different (0) pairs, got only "
                         f"{int(y[0])}")
    return s, y


def roc_curve(scores: Any, same: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds): one point per distinct score (descending) after (0, 0), whose
    threshold is +inf; a pair counts as "same" when its score >= the threshold."""
    s, y = _scored(scores, same, "roc_curve")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    fpr = np.r_[0.0, fp / (~y).sum()]
    tpr = np.r_[0.0, tp / y.sum()]
    return fpr, tpr, np.r_[np.inf, s[last]]


def auc(x: Any, y: Any) -> float:
    """Trapezoid area under the curve through the points (x_k, y_k), x non-decreasing."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"auc expects two 1-D arrays of one length >= 2, got shapes "
                         f"{x.shape} and {y.shape}")
    if np.any(np.diff(x) < 0):
        raise ValueError("auc expects x in non-decreasing order")
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def roc_auc(scores: Any, same: Any) -> float:
    """Area under :func:`roc_curve`."""
    fpr, tpr, _ = roc_curve(scores, same)
    return auc(fpr, tpr)


def best_threshold(distances: Any, same: Any) -> tuple[float, float]:
    """(t, accuracy): the distance threshold maximising the accuracy of "same iff d <= t" on
    these (validation) pairs; t lies midway between neighbouring distinct distances."""
    d, y = _scored(distances, same, "best_threshold")
    order = np.argsort(d, kind="stable")
    d, y = d[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(d)), d.size - 1]
    # predicting "same" for the first k pairs: correct = same among them + different after
    correct = np.cumsum(y)[last] + ((~y).sum() - np.cumsum(~y)[last])
    k = int(np.argmax(correct))
    upper = d[last[k] + 1] if last[k] + 1 < d.size else d[last[k]] + 1.0
    nothing = (~y).sum()  # accuracy when no pair is called "same"
    if nothing > correct[k]:
        return float(d[0] - 1.0), float(nothing / d.size)
    return float((d[last[k]] + upper) / 2), float(correct[k] / d.size)


def pair_accuracy(distances: Any, same: Any, threshold: float) -> float:
    """Fraction of pairs where (d <= threshold) equals the label."""
    d, y = _scored(distances, same, "pair_accuracy")
    return float(np.mean((d <= threshold) == y))
