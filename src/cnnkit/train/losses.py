"""Loss classes: Keras style ``loss(y_true, y_pred, sample_weight=None)`` and PyTorch style
``criterion(outputs, targets)`` (defined in torch_losses.py, re-exported here).

Every loss is built from :mod:`cnnkit.ops`, so the returned Tensor carries the gradient to
``y_pred``. Targets (``y_true``) are constants, cast to ``y_pred``'s dtype.

Keras semantics:

* A loss function gives one value per sample (per position for dense predictions): the
  cross-entropies sum over the class axis, the regression losses and binary cross-entropy
  average over the last axis (a rank-1 ``y_pred`` holds one value per sample).
* ``sample_weight`` multiplies those values (shape (N,), or broadcastable to them; a
  trailing axis of 1 is dropped and missing trailing axes are added).
* ``reduction``: ``"sum_over_batch_size"`` (default, alias ``"mean"``) = sum(w * l) / count(l);
  ``"sum"`` = sum(w * l); ``"none"`` (or None) = w * l; ``"mean_with_sample_weight"`` =
  sum(w * l) / sum(w).
* ``from_logits=False``: ``y_pred`` holds probabilities; they are clipped to
  [1e-7, 1 - 1e-7] before the log (categorical ones are first normalised to sum to 1), as
  Keras does. ``from_logits=True`` uses the fused, numerically stable ops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops
from ..autograd import Tensor
from ..kernels.loss import align_sample_weight
from .distillation_loss import DistillationLoss
from .loss_functions import (
    EPSILON,
    binary_crossentropy,
    categorical_crossentropy,
    huber,
    kl_divergence,
    mean_absolute_error,
    mean_squared_error,
    sparse_categorical_crossentropy,
    sparse_ce_values,
)
from .torch_losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss

__all__ = ["Loss", "LossFunctionWrapper", "SparseCategoricalCrossentropy",
           "CategoricalCrossentropy", "BinaryCrossentropy", "MeanSquaredError",
           "MeanAbsoluteError", "Huber", "KLDivergence", "sparse_categorical_crossentropy",
           "categorical_crossentropy", "binary_crossentropy", "mean_squared_error",
           "mean_absolute_error", "huber", "kl_divergence", "CrossEntropyLoss", "MSELoss",
           "BCEWithLogitsLoss", "DistillationLoss", "get", "serialize", "deserialize", "EPSILON"]

_REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "none", "mean_with_sample_weight")


# ----- argument handling ------------------------------------------------------------------

def _check_reduction(owner: str, reduction: str | None) -> str:
    if reduction is None:
        return "none"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{owner}: reduction must be one of {', '.join(map(repr, _REDUCTIONS))}"
                         f" or None, got {reduction!r}")
    return "sum_over_batch_size" if reduction == "mean" else reduction


def _array(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _reduce(owner: str, values: Tensor, sample_weight: Any, reduction: str,
            mask: np.ndarray | None = None) -> Tensor:
    """Weight the per-sample ``values`` and reduce them (Keras ``reduce_weighted_values``)."""
    w = None
    if sample_weight is not None:
        w = align_sample_weight(owner, _array(sample_weight), values.shape, values.dtype)
    if mask is not None:
        m = mask.astype(values.dtype)
        w = m if w is None else w * m
    weighted = values if w is None else ops.multiply(values, w)
    if reduction == "none":
        return weighted
    total = ops.sum(weighted)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and w is not None:
        divisor = float(np.broadcast_to(w, values.shape).sum())
    elif mask is not None:
        divisor = float(mask.sum())
    else:
        divisor = float(weighted.size)
    if divisor == 0:  # Keras divide_no_nan
        return ops.multiply(total, 0.0)
    return ops.divide(total, np.asarray(divisor, dtype=values.dtype))


# ----- Keras classes -------------------------------------------------------------------------

class Loss:
    """Base class: ``loss(y_true, y_pred, sample_weight=None)`` -> Tensor.

    Subclasses implement ``call(y_true, y_pred)`` returning the per-sample values.
    """

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size"):
        self.name = name or type(self).__name__
        self.reduction = _check_reduction(type(self).__name__, reduction)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        raise NotImplementedError

    def _values(self, y_true: Any, y_pred: Any) -> tuple[Tensor, np.ndarray | None]:
        return self.call(y_true, y_pred), None

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Tensor:
        values, mask = self._values(y_true, y_pred)
        return _reduce(type(self).__name__, values, sample_weight, self.reduction, mask)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class LossFunctionWrapper(Loss):
    """A loss class around ``fn(y_true, y_pred, **kwargs) -> per-sample values``."""

    def __init__(self, fn: Callable[..., Tensor], name: str | None = None,
                 reduction: str | None = "sum_over_batch_size", **kwargs: Any):
        super().__init__(name or getattr(fn, "__name__", None), reduction)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._fn_kwargs}


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer labels; ``y_pred`` probabilities, or logits with
    ``from_logits=True``. ``label_smoothing`` e trains against (1 - e) one-hot + e / C (as
    PyTorch's ``CrossEntropyLoss(label_smoothing=e)``). Labels equal to ``ignore_class`` are
    left out (the mean is over the remaining positions)."""

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "sparse_categorical_crossentropy", label_smoothing: float = 0.0):
        super().__init__(name, reduction)
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"SparseCategoricalCrossentropy: label_smoothing must lie in "
                             f"[0, 1], got {label_smoothing}")
        self.from_logits = bool(from_logits)
        self.ignore_class = ignore_class
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        return sparse_categorical_crossentropy(y_true, y_pred, self.from_logits,
                                               self.ignore_class, self.label_smoothing)

    def _values(self, y_true: Any, y_pred: Any) -> tuple[Tensor, np.ndarray | None]:
        return sparse_ce_values(y_true, y_pred, self.from_logits, self.ignore_class,
                          self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "from_logits": self.from_logits,
                  "ignore_class": self.ignore_class}
        if self.label_smoothing:  # absent at 0, so configs written before it stay equal
            config["label_smoothing"] = self.label_smoothing
        return config


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot (or distribution) labels."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "categorical_crossentropy"):
        super().__init__(name, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CategoricalCrossentropy: label_smoothing must lie in [0, 1], "
                             f"got {label_smoothing}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.axis = axis

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        return categorical_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing,
                                        self.axis)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class BinaryCrossentropy(Loss):
    """Binary cross-entropy with 0/1 (or soft) labels, averaged over the last axis."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "binary_crossentropy"):
        super().__init__(name, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"BinaryCrossentropy: label_smoothing must lie in [0, 1], "
                             f"got {label_smoothing}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        return binary_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


class MeanSquaredError(Loss):
    """mean((y_pred - y_true)^2) over the last axis, then reduced."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "mean_squared_error"):
        super().__init__(name, reduction)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        return mean_squared_error(y_true, y_pred)


class MeanAbsoluteError(Loss):
    """mean(|y_pred - y_true|) over the last axis, then reduced."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "mean_absolute_error"):
        super().__init__(name, reduction)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        return mean_absolute_error(y_true, y_pred)


class Huber(Loss):
    """Huber loss: quadratic for |error| <= delta, linear beyond."""

    def __init__(self, delta: float = 1.0, reduction: str | None = "sum_over_batch_size",
                 name: str = "huber_loss"):
        super().__init__(name, reduction)
        if not delta > 0:
            raise ValueError(f"Huber expects delta > 0, got {delta}")
        self.delta = float(delta)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        return huber(y_true, y_pred, self.delta)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}


class KLDivergence(Loss):
    """Kullback-Leibler divergence sum t log(t / p) over the last axis."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "kl_divergence"):
        super().__init__(name, reduction)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        return kl_divergence(y_true, y_pred)


_NAMES: dict[str, Callable[[], Loss]] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "kullback_leibler_divergence": KLDivergence,
}

_CLASSES: dict[str, type] = {c.__name__: c for c in (
    SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy,
    MeanSquaredError, MeanAbsoluteError, Huber, KLDivergence, CrossEntropyLoss, MSELoss,
    BCEWithLogitsLoss)}


def serialize(loss: Any) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for a built-in loss object."""
    name = type(loss).__name__
    if name not in _CLASSES or not isinstance(loss, _CLASSES[name]):
        raise ValueError(f"cannot serialize loss {loss!r}: only built-in losses "
                         f"({', '.join(sorted(_CLASSES))}) have a config")
    return {"class_name": name, "config": loss.get_config()}


def deserialize(config: dict[str, Any]) -> Any:
    """The loss object described by ``serialize``'s output."""
    name = config.get("class_name")
    if name not in _CLASSES:
        raise ValueError(f"unknown loss class {name!r}; known: {', '.join(sorted(_CLASSES))}")
    return _CLASSES[name](**dict(config.get("config", {})))


def get(identifier: Any) -> Any:
    """A loss from a name (see below), a ``serialize`` dict, a loss class (instantiated) or
    any callable (returned as is).

    Names: sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy,
    mean_squared_error / mse, mean_absolute_error / mae, huber / huber_loss,
    kl_divergence / kld.
    """
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _NAMES:
            raise ValueError(f"unknown loss {identifier!r}; known losses: "
                             f"{', '.join(sorted(_NAMES))}")
        return _NAMES[key]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and (issubclass(identifier, Loss)
                                         or identifier in _CLASSES.values()):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"cannot interpret {identifier!r} as a loss; give a name "
                     f"({', '.join(sorted(_NAMES))}), a loss object or a callable")
