"""Regression metrics: running means of the per-sample squared and absolute errors."""

from __future__ import annotations

from typing import Any

import numpy as np

from .metric_base import MeanMetricWrapper, _np

__all__ = ["mean_squared_error", "mean_absolute_error", "MeanSquaredError", "MeanAbsoluteError"]


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
