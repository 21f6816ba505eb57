"""Layer, group and PReLU kernels (forward and backward), NumPy.

Normalisation over the reduction axes R:  xhat = (x - mean_R(x)) / sqrt(var_R(x) + eps),
y = gamma * xhat + beta (gamma, beta broadcast).  With gh = g * gamma the input gradient is
dx = (gh - mean_R(gh) - xhat * mean_R(gh * xhat)) / sqrt(var_R(x) + eps).
Group normalisation is this with x viewed as (N, *spatial, G, C/G) and R = spatial + C/G.
PReLU: y = max(x, 0) + alpha * min(x, 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["normalize_forward", "normalize_backward", "group_view", "prelu_forward",
           "prelu_backward", "NormCache"]


class NormCache(NamedTuple):
    xhat: np.ndarray
    inv: np.ndarray
    red: tuple[int, ...]


def normalize_forward(x: np.ndarray, red: Sequence[int], epsilon: float
                      ) -> tuple[np.ndarray, NormCache]:
    """xhat = (x - mean) / sqrt(var + eps) over ``red`` (biased variance, computed as the
    mean of squared deviations, in float64 for float32 inputs' stability)."""
    red = tuple(sorted(a % x.ndim for a in red))
    acc = np.float64 if x.dtype == np.float32 else x.dtype
    mean = x.mean(axis=red, keepdims=True, dtype=acc)
    d = x - mean
    var = np.mean(np.square(d), axis=red, keepdims=True, dtype=acc)
    inv = (1.0 / np.sqrt(var + epsilon)).astype(x.dtype)
    xhat = (d * inv).astype(x.dtype)
    return xhat, NormCache(xhat, inv, red)


def normalize_backward(gh: np.ndarray, cache: NormCache) -> np.ndarray:
    """dL/dx from gh = dL/dxhat (the gradient already multiplied by gamma)."""
    xhat, inv, red = cache
    m1 = gh.mean(axis=red, keepdims=True)
    m2 = (gh * xhat).mean(axis=red, keepdims=True)
    return ((gh - m1 - xhat * m2) * inv).astype(gh.dtype)


def group_view(shape: Sequence[int], groups: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(grouped shape (N, *spatial, G, C/G), reduction axes: spatial and C/G)."""
    shape = tuple(shape)
    c = shape[-1]
    grouped = shape[:-1] + (groups, c // groups)
    red = tuple(range(1, len(shape) - 1)) + (len(shape),)
    return grouped, red


def prelu_forward(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """y = max(x, 0) + alpha * min(x, 0) (alpha broadcast against x)."""
    return np.where(x >= 0, x, alpha * x).astype(x.dtype)


def prelu_backward(g: np.ndarray, x: np.ndarray, alpha: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dalpha): dx = g where x >= 0 else alpha * g; dalpha = sum of g * min(x, 0) over
    the axes alpha broadcasts along."""
    dx = np.where(x >= 0, g, alpha * g).astype(g.dtype)
    da = g * np.minimum(x, 0)
    lead = da.ndim - alpha.ndim
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(alpha.shape)
                                      if s == 1 and da.shape[lead + i] != 1)
    return dx, da.sum(axis=axes).reshape(alpha.shape).astype(alpha.dtype)
