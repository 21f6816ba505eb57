"""Weight initializers (Keras names). Each is ``init(shape, dtype, rng) -> ndarray``.

fan_in / fan_out for a kernel of shape (K..., C_in, C_out): receptive field size times C_in /
C_out. Glorot uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)); He normal: a normal
truncated at 2 sd with sd = sqrt(2 / fan_in) / 0.8796; LeCun normal likewise with 1 / fan_in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_TRUNC_STD = 0.87962566103423978  # sd of a standard normal truncated to [-2, 2]


def compute_fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """(fan_in, fan_out) of a weight shape, Keras convention."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = float(np.prod(shape[:-2]))
    return receptive * shape[-2], receptive * shape[-1]


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], std: float
                      ) -> np.ndarray:
    out = rng.standard_normal(shape, dtype=np.float32).reshape(-1)
    idx = np.flatnonzero(np.abs(out) > 2)
    while idx.size:  # redraw only the values that fell outside two standard deviations
        out[idx] = rng.standard_normal(idx.size, dtype=np.float32)
        idx = idx[np.abs(out[idx]) > 2]
    return out.reshape(shape) * np.float32(std)


class Initializer:
    """Base: subclasses implement ``__call__(shape, dtype, rng)``."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = np.float32,
                 rng: np.random.Generator | None = None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}


class Zeros(Initializer):
    def __call__(self, shape, dtype=np.float32, rng=None):
        return np.zeros(shape, dtype=dtype)


class Ones(Initializer):
    def __call__(self, shape, dtype=np.float32, rng=None):
        return np.ones(shape, dtype=dtype)


class Constant(Initializer):
    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def __call__(self, shape, dtype=np.float32, rng=None):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=np.float32, rng=None):
        rng = rng or np.random.default_rng()
        return (self.mean + self.stddev * rng.standard_normal(shape)).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class RandomUniform(Initializer):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05):
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype=np.float32, rng=None):
        rng = rng or np.random.default_rng()
        return rng.uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


class TruncatedNormal(Initializer):
    """Normal(mean, stddev) redrawn outside two standard deviations."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=np.float32, rng=None):
        rng = rng or np.random.default_rng()
        return (self.mean + _truncated_normal(rng, shape, self.stddev)).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class VarianceScaling(Initializer):
    """Variance scale / n with n = fan_in, fan_out or their mean; normal or uniform."""

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal"):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"mode must be fan_in, fan_out or fan_avg, got {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"distribution must be truncated_normal, untruncated_normal or "
                             f"uniform, got {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape, dtype=np.float32, rng=None):
        rng = rng or np.random.default_rng()
        fan_in, fan_out = compute_fans(tuple(shape))
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            lim = np.float32(np.sqrt(3 * var))
            out = (rng.random(shape, dtype=np.float32) * 2 - 1) * lim
        elif self.distribution == "truncated_normal":
            out = _truncated_normal(rng, tuple(shape), np.sqrt(var) / _TRUNC_STD)
        else:
            out = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(var))
        return out.astype(dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


def GlorotUniform() -> VarianceScaling:  # noqa: N802
    return VarianceScaling(1.0, "fan_avg", "uniform")


def GlorotNormal() -> VarianceScaling:  # noqa: N802
    return VarianceScaling(1.0, "fan_avg", "truncated_normal")


def HeNormal() -> VarianceScaling:  # noqa: N802
    return VarianceScaling(2.0, "fan_in", "truncated_normal")


def HeUniform() -> VarianceScaling:  # noqa: N802
    return VarianceScaling(2.0, "fan_in", "uniform")


def LecunNormal() -> VarianceScaling:  # noqa: N802
    return VarianceScaling(1.0, "fan_in", "truncated_normal")


def LecunUniform() -> VarianceScaling:  # noqa: N802
    return VarianceScaling(1.0, "fan_in", "uniform")


_NAMES: dict[str, Callable[[], Initializer]] = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "uniform": RandomUniform, "normal": RandomNormal,  # Keras 3 aliases
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
    "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
    "variance_scaling": VarianceScaling,
}
_CLASSES = {"Zeros": Zeros, "Ones": Ones, "Constant": Constant, "RandomNormal": RandomNormal,
            "RandomUniform": RandomUniform, "TruncatedNormal": TruncatedNormal,
            "VarianceScaling": VarianceScaling}


def get(identifier: Any) -> Initializer:
    """An initializer from a name, a config dict ({"class_name", "config"}) or an instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _NAMES:
            raise ValueError(f"unknown initializer {identifier!r}; known: {sorted(_NAMES)}")
        return _NAMES[key]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise ValueError(f"cannot interpret {identifier!r} as an initializer")


def serialize(init: Any) -> Any:
    """A JSON-ready description of an initializer."""
    if isinstance(init, Initializer):
        return {"class_name": type(init).__name__, "config": init.get_config()}
    raise ValueError(f"cannot serialize initializer {init!r}")
