"""A residual block's merge: the sum of two same-shaped arrays followed by ReLU or ReLU6, as
one operation whose backward needs only its output (the sum is never kept):

    y = act(a + b),   dL/da = dL/db = g * [0 < y]  (ReLU)  or  g * [0 < y < 6]  (ReLU6)

(y > 0 exactly where a + b > 0, and y < 6 exactly where a + b < 6.)
"""

from __future__ import annotations

import numpy as np

from . import activation as KA
from .native import norm as native_norm
from .norm import act_into, act_mask


def add_act_forward(a: np.ndarray, b: np.ndarray, activation: str) -> np.ndarray:
    """act(a + b) for a and b of one shape, the activation applied in place on the sum."""
    y = np.add(a, b)
    if (activation == "relu" and y.dtype == np.float32 and y.flags.c_contiguous and y.size
            and native_norm.available()):
        return native_norm.relu_forward(y, y)
    return act_into(y, activation)


def add_act_backward(g: np.ndarray, y: np.ndarray, activation: str
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(dL/da, dL/db): the same array, g masked by the activation's derivative at y."""
    gm = KA.relu_backward(g, y, y) if activation == "relu" else act_mask(g, y, activation)
    return gm, gm
