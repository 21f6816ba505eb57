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

The metrics live in ``metric_base`` (Metric, Mean, MeanMetricWrapper), ``metric_accuracy``,
``metric_classification`` (precision, recall, F1, confusion matrix) and ``metric_regression``;
this module re-exports them and looks metrics up by name (``get``, ``serialize``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .metric_accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from .metric_base import Mean, MeanMetricWrapper, Metric
from .metric_classification import F1Score, Precision, Recall, confusion_matrix
from .metric_regression import (
    MeanAbsoluteError,
    MeanSquaredError,
    mean_absolute_error,
    mean_squared_error,
)

__all__ = ["Metric", "Mean", "MeanMetricWrapper", "Accuracy", "SparseCategoricalAccuracy",
           "CategoricalAccuracy", "BinaryAccuracy", "TopKCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "Precision", "Recall", "F1Score",
           "MeanSquaredError", "MeanAbsoluteError", "confusion_matrix", "get", "serialize",
           "deserialize",
           # per-sample functions (one value per sample, averaged by MeanMetricWrapper)
           "accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
           "mean_squared_error", "mean_absolute_error"]

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
