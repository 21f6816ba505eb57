"""The :class:`Metric` base class, :class:`Mean`, :class:`MeanMetricWrapper` and the label
checks shared by every metric module (see :mod:`cnnkit.train.metrics` for the conventions)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Metric", "Mean", "MeanMetricWrapper"]


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
