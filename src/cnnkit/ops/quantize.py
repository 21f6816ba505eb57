"""Fake quantization on Tensors (quantization-aware training); the maths lives in
:mod:`cnnkit.kernels.quantize`.

    y = (clamp(rint(x / s) + z, qmin, qmax) - z) * s
    dL/dx = dL/dy * [qmin <= rint(x / s) + z <= qmax]      (straight-through estimator)

The scale and zero point are constants (no gradient), as in
``torch.fake_quantize_per_tensor_affine`` / ``torch.fake_quantize_per_channel_affine``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels import quantize as K
from ._core import Tensor, floating, record

__all__ = ["fake_quantize", "fake_quantize_weights"]


def fake_quantize(x: Any, scale: Any, zero_point: Any, quant_min: int, quant_max: int,
                  axis: int | None = None) -> Tensor:
    """Per-tensor (``axis`` None) or per-channel fake quantization with the straight-through
    gradient (module docstring)."""
    x = floating(x, "x")
    if quant_min >= quant_max:
        raise ValueError(f"fake_quantize needs quant_min < quant_max, got {quant_min} and "
                         f"{quant_max}")
    s = np.asarray(scale, np.float32)
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("fake_quantize needs finite positive scales")
    y, mask = K.fake_quantize_forward(x.data, s, zero_point, quant_min, quant_max, axis)
    return record(y, (x,), lambda g: (K.fake_quantize_backward(g, mask),), "fake_quantize")


def fake_quantize_weights(w: Any, axis: int | None = -1, qmax: int = 127) -> Tensor:
    """Symmetric fake quantization of weights to codes -qmax .. qmax, scale max|w| / qmax
    per channel along ``axis`` (per tensor when None), the scale held constant."""
    w = floating(w, "w")
    s = K.symmetric_scales(w.data, axis, qmax)
    zero = np.zeros(s.shape, np.int32)
    return fake_quantize(w, s, zero, -qmax, qmax, None if axis is None else axis % w.ndim)
