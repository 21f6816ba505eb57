"""Keras-style stateful metrics on NumPy arrays (Tensors are accepted and read via ``.data``).

Every metric has ``update_state(y_true, y_pred, sample_weight=None)``, ``result() -> float``,
``reset_state()``, ``name`` and ``get_config()``; calling a metric updates it and returns the
result. ``sample_weight`` weights each sample (shape (N,), or broadcastable to the per-sample
values, e.g. (N, H, W) for per-pixel accuracies).

Label formats (``C`` = number of classes = ``y_pred.shape[-1]``):

* sparse: integer class ids ``y_true`` of shape ``y_pred.shape[:-1]`` (or with a trailing 1);
* categorical: one-hot (or probability) ``y_true`` of the same shape as ``y_pred``;
* binary: ``y_pred`` of shape (N,) or (N, ..., 1) holding probabilities, ``y_true`` 0/1.

Precision, recall and F1 count per-class true positives, false positives and false negatives;
a class's prediction is the argmax of ``y_pred`` for multi-class scores, or
``y_pred > threshold`` (binary, multi-label, or when a threshold is given).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Metric", "Mean", "MeanMetricWrapper", "Accuracy", "SparseCategoricalAccuracy",
           "CategoricalAccuracy", "BinaryAccuracy", "TopKCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "Precision", "Recall", "F1Score",
           "MeanSquaredError", "MeanAbsoluteError", "confusion_matrix", "get", "serialize",
           "deserialize"]


def _np(x: Any) -> np.ndarray:
    """A Tensor's ``.data`` or ``np.asarray(x)``."""
    return np.asarray(getattr(x, "data", x))


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _broadcast_weight(owner: str, sample_weight: Any, values: np.ndarray) -> np.ndarray:
    """``sample_weight`` shaped like ``values`` (trailing 1s dropped, trailing axes added)."""
    sw = _np(sample_weight).astype(np.float64)
    while sw.ndim > values.ndim and sw.shape[-1] == 1:
        sw = sw[..., 0]
    while sw.ndim < values.ndim:
        sw = sw[..., None]
    try:
        return np.broadcast_to(sw, values.shape)
    except ValueError:
        raise ValueError(f"{owner}: sample_weight of shape {_np(sample_weight).shape} does not "
                         f"fit values of shape {values.shape}") from None


def _check_labels(owner: str, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer class ids in [0, num_classes), else ValueError naming the first bad one."""
    if labels.dtype.kind == "f":
        if not np.all(labels == np.round(labels)):
            raise ValueError(f"{owner} expects integer class labels, got non-integer values "
                             f"such as {labels[labels != np.round(labels)].ravel()[0]}")
    elif labels.dtype.kind not in "iub":
        raise TypeError(f"{owner} expects integer class labels, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise ValueError(f"{owner}: label {labels[bad].ravel()[0]} is outside [0, {num_classes})"
                         f" for {num_classes} classes")
    return labels


def _is_sparse(y_true: np.ndarray, y_pred: np.ndarray) -> bool:
    """True for integer class ids ``y_true`` against class scores ``y_pred``."""
    if y_pred.ndim == y_true.ndim + 1:
        return True
    return (y_pred.ndim == y_true.ndim and y_true.ndim > 0 and y_true.shape[-1] == 1
            and y_pred.shape[-1] > 1)


def _sparse_labels(owner: str, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    if y_true.ndim == y_pred.ndim:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(f"{owner}: sparse labels of shape {y_true.shape} do not match "
                         f"predictions of shape {y_pred.shape} (expected labels of shape "
                         f"{y_pred.shape[:-1]})")
    return _check_labels(owner, y_true, y_pred.shape[-1])


def _same_shape(owner: str, y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{owner}: y_true of shape {y_true.shape} does not match y_pred of "
                         f"shape {y_pred.shape}")


class Metric:
    """Base class of stateful metrics.

    Subclasses implement ``update_state``, ``result`` and ``reset_state``; ``get_config``
    returns the constructor arguments.
    """

    def __init__(self, name: str | None = None):
        self.name = name or _snake(type(self).__name__)
        self.reset_state()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError

    def reset_state(self) -> None:
        raise NotImplementedError

    def reset_states(self) -> None:
        """Keras 2 name of ``reset_state``."""
        self.reset_state()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Update with one batch and return the result over everything seen so far."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


class Mean(Metric):
    """The (weighted) running mean of the values given, e.g. a batch loss.

    ``update_state(values, sample_weight=None)``; ``result()`` = sum(w * v) / sum(w).
    """

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        v = _np(values).astype(np.float64)
        if sample_weight is None:
            self.total += float(v.sum())
            self.count += float(v.size)
        else:
            w = _broadcast_weight(self.name, sample_weight, v)
            self.total += float((v * w).sum())
            self.count += float(w.sum())

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0


class MeanMetricWrapper(Mean):
    """The running mean of per-sample values ``fn(y_true, y_pred)`` (e.g. 0/1 correctness)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None, **fn_kwargs: Any):
        self._fn = fn
        self._fn_kwargs = fn_kwargs
        super().__init__(name or getattr(fn, "__name__", None))

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return _np(self._fn(y_true, y_pred, **self._fn_kwargs))

    def update_state(self, y_true: Any, y_pred: Any,  # type: ignore[override]
                     sample_weight: Any = None) -> None:
        super().update_state(self.values(_np(y_true), _np(y_pred)), sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, **self._fn_kwargs}


# ----- per-sample functions -----------------------------------------------------------------

def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """1.0 where argmax(y_pred, -1) equals the integer label, else 0.0 (shape y_pred[:-1])."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    labels = _sparse_labels("sparse_categorical_accuracy", y_true, y_pred)
    return (np.argmax(y_pred, axis=-1) == labels).astype(np.float64)


def categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """1.0 where argmax(y_pred, -1) equals argmax(y_true, -1)."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    _same_shape("categorical_accuracy", y_true, y_pred)
    return (np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)).astype(np.float64)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    """mean over the last axis of [(y_pred > threshold) == y_true] (per element for 1-D)."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    if y_true.shape != y_pred.shape and y_true.size == y_pred.size:
        y_true = y_true.reshape(y_pred.shape)
    _same_shape("binary_accuracy", y_true, y_pred)
    hits = ((y_pred > threshold) == (y_true > 0.5)).astype(np.float64)
    return hits.mean(axis=-1) if hits.ndim > 1 else hits


def _in_top_k(labels: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """1.0 where the label's score is >= the k-th largest score (ties count as in)."""
    c = y_pred.shape[-1]
    if k >= c:
        return np.ones(labels.shape, dtype=np.float64)
    scores = y_pred.reshape(-1, c)
    kth = -np.partition(-scores, k - 1, axis=-1)[:, k - 1]
    target = np.take_along_axis(scores, labels.reshape(-1, 1), axis=-1)[:, 0]
    return (target >= kth).astype(np.float64).reshape(labels.shape)


def sparse_top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    """1.0 where the integer label is among the k highest scores."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    labels = _sparse_labels("sparse_top_k_categorical_accuracy", y_true, y_pred)
    return _in_top_k(labels, y_pred, k)


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    """1.0 where argmax(y_true) is among the k highest scores."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    _same_shape("top_k_categorical_accuracy", y_true, y_pred)
    return _in_top_k(np.argmax(y_true, axis=-1), y_pred, k)


def accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample correctness, choosing the comparison from the shapes and dtypes.

    * integer ``y_pred`` of the same shape: exact equality (class ids against class ids);
    * ``y_pred`` of shape (N,) or (..., 1): binary accuracy at threshold 0.5;
    * ``y_true`` with one axis less (or a trailing 1) than class scores: sparse categorical;
    * ``y_true`` of the same shape as class scores: categorical (argmax of both).
    """
    y_true, y_pred = _np(y_true), _np(y_pred)
    if y_pred.dtype.kind in "iub":
        if y_true.shape != y_pred.shape and y_true.size == y_pred.size:
            y_true = y_true.reshape(y_pred.shape)
        _same_shape("accuracy", y_true, y_pred)
        return (y_true == y_pred).astype(np.float64)
    if y_pred.ndim <= 1 or y_pred.shape[-1] == 1:
        return binary_accuracy(y_true, y_pred)
    if _is_sparse(y_true, y_pred):
        return sparse_categorical_accuracy(y_true, y_pred)
    return categorical_accuracy(y_true, y_pred)


class Accuracy(MeanMetricWrapper):
    """Fraction of correct predictions; picks sparse / categorical / binary from the inputs
    (see :func:`accuracy`)."""

    def __init__(self, name: str = "accuracy"):
        super().__init__(accuracy, name)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """Integer labels against class scores: argmax(y_pred) == y_true."""

    def __init__(self, name: str = "sparse_categorical_accuracy"):
        super().__init__(sparse_categorical_accuracy, name)


class CategoricalAccuracy(MeanMetricWrapper):
    """One-hot labels against class scores: argmax(y_pred) == argmax(y_true)."""

    def __init__(self, name: str = "categorical_accuracy"):
        super().__init__(categorical_accuracy, name)


class BinaryAccuracy(MeanMetricWrapper):
    """0/1 labels against probabilities: (y_pred > threshold) == y_true."""

    def __init__(self, name: str = "binary_accuracy", threshold: float = 0.5):
        super().__init__(binary_accuracy, name, threshold=threshold)
        self.threshold = threshold


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """One-hot labels: the true class is among the ``k`` highest scores."""

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy"):
        if k < 1:
            raise ValueError(f"TopKCategoricalAccuracy expects k >= 1, got {k}")
        super().__init__(top_k_categorical_accuracy, name, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """Integer labels: the true class is among the ``k`` highest scores."""

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy"):
        if k < 1:
            raise ValueError(f"SparseTopKCategoricalAccuracy expects k >= 1, got {k}")
        super().__init__(sparse_top_k_categorical_accuracy, name, k=k)
        self.k = k


def mean_squared_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """mean((y_pred - y_true)^2) over the last axis."""
    y_true, y_pred = _np(y_true).astype(np.float64), _np(y_pred).astype(np.float64)
    return np.square(y_pred - y_true).mean(axis=-1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """mean(|y_pred - y_true|) over the last axis."""
    y_true, y_pred = _np(y_true).astype(np.float64), _np(y_pred).astype(np.float64)
    return np.abs(y_pred - y_true).mean(axis=-1)


class MeanSquaredError(MeanMetricWrapper):
    """Running mean of the per-sample mean squared error."""

    def __init__(self, name: str = "mean_squared_error"):
        super().__init__(mean_squared_error, name)


class MeanAbsoluteError(MeanMetricWrapper):
    """Running mean of the per-sample mean absolute error."""

    def __init__(self, name: str = "mean_absolute_error"):
        super().__init__(mean_absolute_error, name)


# ----- precision, recall, F1 ----------------------------------------------------------------

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


# ----- lookup -------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[[], Metric]] = {
    "accuracy": Accuracy,
    "acc": lambda: Accuracy(name="acc"),
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "precision": Precision,
    "recall": Recall,
    "f1_score": F1Score,
    "f1": lambda: F1Score(name="f1"),
    "mean_squared_error": MeanSquaredError,
    "mse": lambda: MeanSquaredError(name="mse"),
    "mean_absolute_error": MeanAbsoluteError,
    "mae": lambda: MeanAbsoluteError(name="mae"),
}

_CLASSES: dict[str, type[Metric]] = {c.__name__: c for c in (
    Mean, Accuracy, SparseCategoricalAccuracy, CategoricalAccuracy, BinaryAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, Precision, Recall, F1Score,
    MeanSquaredError, MeanAbsoluteError)}


def serialize(metric: Metric) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for a built-in metric."""
    name = type(metric).__name__
    if name not in _CLASSES:
        raise ValueError(f"cannot serialize metric {metric!r}: only built-in metrics "
                         f"({', '.join(sorted(_CLASSES))}) have a config")
    return {"class_name": name, "config": metric.get_config()}


def deserialize(config: dict[str, Any]) -> Metric:
    """The metric described by ``serialize``'s output."""
    name = config.get("class_name")
    if name not in _CLASSES:
        raise ValueError(f"unknown metric class {name!r}; known: {', '.join(sorted(_CLASSES))}")
    return _CLASSES[name].from_config(dict(config.get("config", {})))


def get(identifier: Any) -> Metric:
    """A metric from a name (``"accuracy"``, ``"acc"``, ``"f1_score"``, ...), a Metric (returned
    as is), a Metric class (instantiated), a ``serialize`` dict, or a function
    ``fn(y_true, y_pred) -> per-sample values`` (wrapped in :class:`MeanMetricWrapper`)."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _REGISTRY:
            raise ValueError(f"unknown metric {identifier!r}; known metrics: "
                             f"{', '.join(sorted(_REGISTRY))}")
        return _REGISTRY[key]()
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise ValueError(f"cannot interpret {identifier!r} as a metric; give a name "
                     f"({', '.join(sorted(_REGISTRY))}), a Metric or a function")
