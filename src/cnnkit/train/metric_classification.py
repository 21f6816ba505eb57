"""Per-class counting metrics: precision, recall and F1 from weighted true positives, false
positives and false negatives, and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from .metric_base import (
    Metric,
    _broadcast_weight,
    _check_labels,
    _is_sparse,
    _np,
    _same_shape,
    _sparse_labels,
)

__all__ = ["Precision", "Recall", "F1Score", "confusion_matrix"]

_AVERAGES = ("micro", "macro", "weighted", None)


class _ClassCounts(Metric):
    """Accumulates per-class weighted true positives, false positives and false negatives."""

    def __init__(self, threshold: float | None, class_id: int | None, average: str | None,
                 name: str | None):
        if average not in _AVERAGES:
            raise ValueError(f"{type(self).__name__}: average must be one of 'micro', 'macro', "
                             f"'weighted' or None, got {average!r}")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"{type(self).__name__} expects a threshold in [0, 1], got "
                             f"{threshold}")
        self.threshold = threshold
        self.class_id = class_id
        self.average = average
        super().__init__(name)

    def reset_state(self) -> None:
        self.true_positives: np.ndarray | None = None
        self.false_positives: np.ndarray | None = None
        self.false_negatives: np.ndarray | None = None

    def _indicators(self, y_true: np.ndarray, y_pred: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        """(true (M, C) bool, predicted (M, C) bool, sample shape) from the inputs."""
        owner = type(self).__name__
        if y_pred.ndim == 0:
            raise ValueError(f"{owner} expects predictions of rank >= 1, got a scalar")
        if y_pred.ndim == 1 or y_pred.shape[-1] == 1:  # binary
            sample_shape = y_pred.shape if y_pred.ndim == 1 else y_pred.shape[:-1]
            if y_true.size != y_pred.size:
                raise ValueError(f"{owner}: y_true of shape {y_true.shape} does not match "
                                 f"y_pred of shape {y_pred.shape}")
            truth = y_true.reshape(-1, 1) >= 0.5
            threshold = 0.5 if self.threshold is None else self.threshold
            return truth, y_pred.reshape(-1, 1) > threshold, sample_shape
        c = y_pred.shape[-1]
        scores = y_pred.reshape(-1, c)
        if _is_sparse(y_true, y_pred):
            labels = _sparse_labels(owner, y_true, y_pred).reshape(-1)
            truth = labels[:, None] == np.arange(c)
        else:
            _same_shape(owner, y_true, y_pred)
            truth = y_true.reshape(-1, c) >= 0.5
        if self.threshold is None:
            pred = np.argmax(scores, axis=-1)[:, None] == np.arange(c)
        else:
            pred = scores > self.threshold
        return truth, pred, y_pred.shape[:-1]

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        truth, pred, sample_shape = self._indicators(_np(y_true), _np(y_pred))
        if self.class_id is not None:
            if not 0 <= self.class_id < truth.shape[1]:
                raise ValueError(f"{type(self).__name__}: class_id {self.class_id} is outside "
                                 f"[0, {truth.shape[1]})")
            truth = truth[:, self.class_id:self.class_id + 1]
            pred = pred[:, self.class_id:self.class_id + 1]
        if sample_weight is None:
            w = np.ones((truth.shape[0], 1))
        else:
            w = _broadcast_weight(type(self).__name__, sample_weight,
                                  np.empty(sample_shape)).reshape(-1, 1)
        t, p = truth.astype(np.float64), pred.astype(np.float64)
        tp = (w * t * p).sum(axis=0)
        fp = (w * (1 - t) * p).sum(axis=0)
        fn = (w * t * (1 - p)).sum(axis=0)
        if self.true_positives is None:
            self.true_positives, self.false_positives, self.false_negatives = tp, fp, fn
        elif self.true_positives.shape != tp.shape:
            raise ValueError(f"{type(self).__name__}: the number of classes changed from "
                             f"{self.true_positives.shape[0]} to {tp.shape[0]}")
        else:
            self.true_positives = self.true_positives + tp
            self.false_positives = self.false_positives + fp
            self.false_negatives = self.false_negatives + fn

    @staticmethod
    def _score(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def result(self) -> Any:
        if self.true_positives is None:
            return 0.0 if self.average is not None else np.zeros(0)
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        if self.average == "micro":
            return float(self._score(tp.sum(keepdims=True), fp.sum(keepdims=True),
                                     fn.sum(keepdims=True))[0])
        per_class = self._score(tp, fp, fn)
        if self.average is None:
            return per_class
        if self.average == "macro":
            return float(per_class.mean())
        support = tp + fn
        return float((per_class * support).sum() / support.sum()) if support.sum() else 0.0

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "class_id": self.class_id, "average": self.average}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    safe = np.where(den > 0, den, 1.0)
    return np.where(den > 0, num / safe, 0.0)


class Precision(_ClassCounts):
    """tp / (tp + fp), 0 when nothing was predicted positive.

    Args:
        thresholds: a prediction counts as positive when ``y_pred > thresholds``; None uses
            0.5 for binary predictions and the argmax for multi-class scores.
        class_id: only this class (column) counts.
        average: "micro" (pool the counts of all classes; Keras's behaviour, and for binary
            inputs the precision of the positive class), "macro" (mean over classes),
            "weighted" (mean weighted by each class's support), or None (one value per
            class, returned as an array).
    """

    def __init__(self, thresholds: float | None = None, class_id: int | None = None,
                 average: str | None = "micro", name: str | None = "precision"):
        super().__init__(thresholds, class_id, average, name)

    @staticmethod
    def _score(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
        return _ratio(tp, tp + fp)

    def get_config(self) -> dict[str, Any]:
        return {"thresholds": self.threshold, **super().get_config()}


class Recall(_ClassCounts):
    """tp / (tp + fn), 0 when there were no positives; arguments as :class:`Precision`."""

    def __init__(self, thresholds: float | None = None, class_id: int | None = None,
                 average: str | None = "micro", name: str | None = "recall"):
        super().__init__(thresholds, class_id, average, name)

    @staticmethod
    def _score(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
        return _ratio(tp, tp + fn)

    def get_config(self) -> dict[str, Any]:
        return {"thresholds": self.threshold, **super().get_config()}


class F1Score(_ClassCounts):
    """2 tp / (2 tp + fp + fn) (the harmonic mean of precision and recall), 0 when undefined.

    Args:
        average: "macro" (default: mean of the per-class F1 over all C classes), "micro"
            (F1 of the pooled counts), "weighted" (per-class F1 weighted by support), or None
            (an array of per-class F1).
        threshold: None takes the argmax of multi-class scores and 0.5 for binary
            predictions; a number thresholds every column (multi-label).
        class_id: only this class counts.
    """

    def __init__(self, average: str | None = "macro", threshold: float | None = None,
                 name: str | None = "f1_score", class_id: int | None = None):
        super().__init__(threshold, class_id, average, name)

    @staticmethod
    def _score(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
        return _ratio(2 * tp, 2 * tp + fp + fn)

    def get_config(self) -> dict[str, Any]:
        return {"threshold": self.threshold, **super().get_config()}


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None,
                     sample_weight: Any = None) -> np.ndarray:
    """Counts of (true class, predicted class) pairs: row i, column j = true i predicted j.

    ``y_true``: integer labels or one-hot rows. ``y_pred``: integer labels, or class scores
    with one more axis (their argmax is taken; one-hot rows alike). ``num_classes`` defaults
    to 1 + the largest label seen (or the score width). Integer counts, or float sums of
    ``sample_weight`` when given.
    """
    yt, yp = _np(y_true), _np(y_pred)
    if yp.dtype.kind == "f" and yp.ndim >= 1 and (yp.ndim == yt.ndim + 1 or (
            yp.ndim == yt.ndim and yp.ndim >= 2 and yp.shape[-1] > 1)):
        width = yp.shape[-1]
        if yt.shape == yp.shape:
            yt = np.argmax(yt, axis=-1)
        elif yt.ndim == yp.ndim:
            yt = yt[..., 0]
        yp = np.argmax(yp, axis=-1)
        num_classes = width if num_classes is None else num_classes
    elif yt.ndim == yp.ndim + 1 and yt.ndim >= 2 and yt.shape[-1] > 1:  # one-hot vs ids
        width = yt.shape[-1]
        yt = np.argmax(yt, axis=-1)
        num_classes = width if num_classes is None else num_classes
    if yt.size != yp.size:
        raise ValueError(f"confusion_matrix: y_true of shape {_np(y_true).shape} and y_pred "
                         f"of shape {_np(y_pred).shape} hold different numbers of samples")
    if num_classes is None:
        largest = max(int(yt.max(initial=0)), int(yp.max(initial=0)))
        num_classes = largest + 1
    elif num_classes < 1:
        raise ValueError(f"confusion_matrix expects num_classes >= 1, got {num_classes}")
    yt = _check_labels("confusion_matrix", yt.ravel(), num_classes)
    yp = _check_labels("confusion_matrix", yp.ravel(), num_classes)
    index = yt * num_classes + yp
    if sample_weight is None:
        counts = np.bincount(index, minlength=num_classes * num_classes)
    else:
        w = np.broadcast_to(_np(sample_weight).astype(np.float64).ravel(), index.shape)
        counts = np.bincount(index, weights=w, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)
