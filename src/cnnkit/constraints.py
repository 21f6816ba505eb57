"""Weight constraints (Keras): projections applied to a weight after each optimizer step.

MaxNorm:  w * min(|w|, m) / (eps + |w|);  UnitNorm: w / (eps + |w|);  NonNeg: w * (w >= 0);
MinMaxNorm: w * (rate * clip(|w|, lo, hi) + (1 - rate) * |w|) / (eps + |w|), norms over ``axis``.
A layer attaches a constraint to its weight with :func:`attach`; optimizers call
:func:`apply_to` on each parameter they update. Constraints act on NumPy arrays in place.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm", "get", "serialize",
           "attach", "apply_to", "max_norm", "non_neg", "unit_norm", "min_max_norm"]

EPSILON = 1e-7  # keras.backend.epsilon()
# keyed by id: Tensors compare elementwise (==), so they cannot be WeakKeyDictionary keys
_attached: dict[int, tuple[weakref.ref, Any]] = {}


class Constraint:
    """constraint(w) -> the projected array of the same shape."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w

    def get_config(self) -> dict:
        return {}


def _check_axis(cls: str, axis: Any) -> Any:
    ok = isinstance(axis, int) and not isinstance(axis, bool) or (
        isinstance(axis, (list, tuple)) and len(axis) > 0
        and all(isinstance(a, int) and not isinstance(a, bool) for a in axis))
    if not ok:
        raise ValueError(f"{cls}: axis must be an int or a non-empty list of ints, got {axis!r}")
    return list(axis) if isinstance(axis, (list, tuple)) else axis


def _norms(w: np.ndarray, axis: Any) -> np.ndarray:
    ax = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return np.sqrt(np.sum(np.square(w), axis=ax, keepdims=True))


class MaxNorm(Constraint):
    """Each slice's L2 norm over ``axis`` capped at ``max_value`` (Keras default axis 0: the
    input axis of a Dense kernel; use [0, 1, 2] for a Conv2D kernel)."""

    def __init__(self, max_value: float = 2.0, axis: Any = 0):
        self.max_value, self.axis = float(max_value), _check_axis("MaxNorm", axis)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        n = _norms(w, self.axis)
        return (w * (np.clip(n, 0, self.max_value) / (EPSILON + n))).astype(w.dtype)

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Negative entries set to zero."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return (w * (w >= 0)).astype(w.dtype)


class UnitNorm(Constraint):
    """Each slice over ``axis`` scaled to unit L2 norm."""

    def __init__(self, axis: Any = 0):
        self.axis = _check_axis("UnitNorm", axis)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return (w / (EPSILON + _norms(w, self.axis))).astype(w.dtype)

    def get_config(self) -> dict:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Each slice's norm moved towards [min_value, max_value] by ``rate`` (1: clipped)."""

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: Any = 0):
        self.min_value, self.max_value = float(min_value), float(max_value)
        self.rate, self.axis = float(rate), _check_axis("MinMaxNorm", axis)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        n = _norms(w, self.axis)
        desired = self.rate * np.clip(n, self.min_value, self.max_value) + (1 - self.rate) * n
        return (w * (desired / (EPSILON + n))).astype(w.dtype)

    def get_config(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm
_CLASSES = {c.__name__: c for c in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}
_NAMES = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm,
          "min_max_norm": MinMaxNorm, **_CLASSES}


def get(identifier: Any) -> Constraint | None:
    """A constraint from None, a name ("max_norm", "NonNeg", ...), a config dict
    ({"class_name": ..., "config": {...}}) or an instance / callable."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _NAMES:
            raise ValueError(f"unknown constraint {identifier!r}; known: {sorted(_NAMES)}")
        return _NAMES[identifier]()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if name not in _CLASSES:
            raise ValueError(f"unknown constraint class {name!r}; known: {sorted(_CLASSES)}")
        cfg = identifier.get("config", {})
        if not isinstance(cfg, dict):
            raise ValueError(f"constraint config must be a dict, got {type(cfg).__name__}")
        try:
            return _CLASSES[name](**cfg)
        except TypeError as e:  # unknown or missing arguments in a stored config
            raise ValueError(f"bad config for constraint {name}: {e}") from None
    if callable(identifier):
        return identifier
    raise ValueError(f"cannot interpret {identifier!r} as a constraint")


def serialize(c: Any) -> Any:
    """JSON-ready form of a constraint (None stays None)."""
    if c is None:
        return None
    if type(c).__name__ in _CLASSES and isinstance(c, Constraint):
        return {"class_name": type(c).__name__, "config": c.get_config()}
    raise ValueError(f"cannot serialize constraint {c!r}: only {sorted(_CLASSES)} are saved")


def attach(weight: Any, constraint: Any) -> None:
    """Remember ``constraint`` for ``weight`` (a Tensor); None detaches."""
    key = id(weight)
    if constraint is None:
        _attached.pop(key, None)
    else:
        _attached[key] = (weakref.ref(weight, lambda _, k=key: _attached.pop(k, None)),
                          constraint)


def apply_to(weight: Any) -> None:
    """Project ``weight.data`` in place with its attached constraint, if any."""
    entry = _attached.get(id(weight))
    if entry is not None and entry[0]() is weight:
        weight.data[...] = entry[1](weight.data)
