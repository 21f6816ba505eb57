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
from .loss_args import class_ids as _class_ids
from .loss_args import prediction as _prediction
from .loss_args import same_shape as _same_shape
from .loss_args import target as _target
from .torch_losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss

__all__ = ["Loss", "LossFunctionWrapper", "SparseCategoricalCrossentropy",
           "CategoricalCrossentropy", "BinaryCrossentropy", "MeanSquaredError",
           "MeanAbsoluteError", "Huber", "KLDivergence", "sparse_categorical_crossentropy",
           "categorical_crossentropy", "binary_crossentropy", "mean_squared_error",
           "mean_absolute_error", "huber", "kl_divergence", "CrossEntropyLoss", "MSELoss",
           "BCEWithLogitsLoss", "DistillationLoss", "get", "serialize", "deserialize", "EPSILON"]

EPSILON = 1e-7
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


def _last_axis_mean(values: Tensor) -> Tensor:
    return values if values.ndim <= 1 else ops.mean(values, axis=-1)


def _per_row(op: Callable[..., Tensor], pred: Tensor, target: np.ndarray, **kw: Any) -> Tensor:
    """A cnnkit loss op (mean over non-batch axes) applied per last-axis row (Keras)."""
    if pred.ndim <= 2:
        return op(pred, target, reduction="none", **kw)
    rows = ops.reshape(pred, (-1, pred.shape[-1]))
    out = op(rows, target.reshape(-1, pred.shape[-1]), reduction="none", **kw)
    return ops.reshape(out, pred.shape[:-1])


# ----- per-sample loss functions (Keras names, Keras argument order) -------------------------

def _categorical_from_probs(t: np.ndarray, p: Tensor, axis: int) -> Tensor:
    p = ops.divide(p, ops.sum(p, axis=axis, keepdims=True))
    p = ops.clip(p, EPSILON, 1.0 - EPSILON)
    return ops.negative(ops.sum(ops.multiply(t, ops.log(p)), axis=axis))


def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> Tensor:
    """-sum_c t_c log p_c along ``axis``; ``y_true`` one-hot (or a distribution).

    Label smoothing e uses t = (1 - e) t + e / C.
    """
    owner = "categorical_crossentropy"
    p = _prediction(owner, y_pred)
    t = _same_shape(owner, _target(owner, y_true, p.dtype), p.shape)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{owner}: label_smoothing must lie in [0, 1], got {label_smoothing}")
    if from_logits:
        return ops.softmax_cross_entropy(p, t, label_smoothing=label_smoothing,
                                         reduction="none", axis=axis)
    if label_smoothing:
        t = t * (1 - label_smoothing) + label_smoothing / p.shape[axis]
    return _categorical_from_probs(t, p, axis)


def _sparse_ce(y_true: Any, y_pred: Any, from_logits: bool, ignore_class: int | None,
               label_smoothing: float = 0.0) -> tuple[Tensor, np.ndarray | None]:
    owner = "sparse_categorical_crossentropy"
    p = _prediction(owner, y_pred)
    labels, mask = _class_ids(owner, y_true, p, ignore_class)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{owner}: label_smoothing must lie in [0, 1], got {label_smoothing}")
    e = float(label_smoothing)
    if from_logits and mask is not None:  # ignored positions get t = 0, not 0 * inf later
        onehot = (labels[..., None] == np.arange(p.shape[-1])) & mask[..., None]
        t = onehot.astype(p.dtype)
        if e:
            t = (t * (1 - e) + e / p.shape[-1]) * mask[..., None]
        values = ops.softmax_cross_entropy(p, t.astype(p.dtype), reduction="none")
    elif from_logits:
        values = ops.softmax_cross_entropy(p, labels, label_smoothing=e, reduction="none")
    else:
        onehot = (labels[..., None] == np.arange(p.shape[-1])).astype(p.dtype)
        if e:
            onehot = (onehot * (1 - e) + e / p.shape[-1]).astype(p.dtype)
        values = _categorical_from_probs(onehot, p, -1)
    if mask is not None:
        values = ops.multiply(values, mask.astype(p.dtype))
    return values, mask


def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                                    ignore_class: int | None = None,
                                    label_smoothing: float = 0.0) -> Tensor:
    """-sum_c t_c log p_c per position with t the one-hot of the integer label; ``y_true``
    integer ids of shape y_pred.shape[:-1] (or with a trailing 1). Label smoothing e uses
    t = (1 - e) t + e / C (PyTorch's ``cross_entropy(label_smoothing=e)``). Positions
    labelled ``ignore_class`` give 0."""
    return _sparse_ce(y_true, y_pred, from_logits, ignore_class, label_smoothing)[0]


def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                        label_smoothing: float = 0.0) -> Tensor:
    """mean over the last axis of -(y log p + (1 - y) log(1 - p)); smoothing e uses
    y = (1 - e) y + e / 2."""
    owner = "binary_crossentropy"
    p = _prediction(owner, y_pred)
    y = _same_shape(owner, _target(owner, y_true, p.dtype), p.shape)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{owner}: label_smoothing must lie in [0, 1], got {label_smoothing}")
    if label_smoothing:
        y = y * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        return _per_row(ops.binary_cross_entropy, p, y)
    p = ops.clip(p, EPSILON, 1.0 - EPSILON)
    elementwise = ops.negative(ops.add(ops.multiply(y, ops.log(p)),
                                       ops.multiply(1 - y, ops.log(ops.subtract(1.0, p)))))
    return _last_axis_mean(elementwise)


def mean_squared_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean((y_pred - y_true)^2) over the last axis."""
    p = _prediction("mean_squared_error", y_pred)
    t = _same_shape("mean_squared_error", _target("mean_squared_error", y_true, p.dtype),
                    p.shape)
    return _per_row(ops.mean_squared_error, p, t)


def mean_absolute_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean(|y_pred - y_true|) over the last axis."""
    p = _prediction("mean_absolute_error", y_pred)
    t = _same_shape("mean_absolute_error", _target("mean_absolute_error", y_true, p.dtype),
                    p.shape)
    return _per_row(ops.mean_absolute_error, p, t)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Tensor:
    """mean over the last axis of d^2/2 (|d| <= delta) or delta (|d| - delta/2), d = y_pred -
    y_true."""
    p = _prediction("huber", y_pred)
    t = _same_shape("huber", _target("huber", y_true, p.dtype), p.shape)
    return _per_row(ops.huber, p, t, delta=delta)


def kl_divergence(y_true: Any, y_pred: Any) -> Tensor:
    """sum over the last axis of t log(t / p), with t and p clipped to [1e-7, 1] (Keras)."""
    owner = "kl_divergence"
    p = _prediction(owner, y_pred)
    t = np.clip(_same_shape(owner, _target(owner, y_true, p.dtype), p.shape), EPSILON, 1.0)
    log_ratio = ops.subtract(np.log(t), ops.log(ops.clip(p, EPSILON, 1.0)))
    return ops.sum(ops.multiply(t, log_ratio), axis=-1)


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
        return _sparse_ce(y_true, y_pred, self.from_logits, self.ignore_class,
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
