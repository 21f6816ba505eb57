"""Accuracy metrics: per-sample functions (1.0 for a hit, 0.0 for a miss) and the running
means built on them (sparse, categorical, binary, top-k)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .metric_base import MeanMetricWrapper, _is_sparse, _np, _same_shape, _sparse_labels

__all__ = ["accuracy", "sparse_categorical_accuracy", "categorical_accuracy",
           "binary_accuracy", "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
           "Accuracy", "SparseCategoricalAccuracy", "CategoricalAccuracy", "BinaryAccuracy",
           "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy"]


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
