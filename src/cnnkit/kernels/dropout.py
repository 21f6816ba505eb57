"""Dropout (inverted): y = x * m / (1 - rate), m ~ Bernoulli(1 - rate) drawn with the shape
``noise_shape`` (broadcast over the axes where it is 1); dL/dx = dL/dy * m / (1 - rate)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def dropout_mask(shape: Sequence[int], rate: float, rng: np.random.Generator,
                 noise_shape: Sequence[int] | None = None, dtype: Any = np.float32
                 ) -> np.ndarray:
    """m / (1 - rate) with m ~ Bernoulli(1 - rate) (kept where u >= rate, u ~ U[0, 1)).

    The mask has shape ``noise_shape`` (default ``shape``), which must broadcast to ``shape``.
    """
    dtype = np.dtype(dtype)
    mshape = tuple(shape) if noise_shape is None else tuple(noise_shape)
    draw = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)
    u = rng.random(mshape, dtype=draw)
    keep = u >= draw.type(rate)
    return keep * dtype.type(1.0 / (1.0 - rate))


def dropout_forward(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """y = x * mask (the mask already carries the 1/(1 - rate) scale)."""
    return x * mask


def dropout_backward(g: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """dL/dx = dL/dy * mask."""
    return g * mask
