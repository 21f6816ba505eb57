"""Affine quantization: the maths of int8 / uint8 values standing for real numbers.

    q = clamp(rint(x * (1 / s)) + z, qmin, qmax)        x ~ (q - z) * s

``s`` is the scale, ``z`` the zero point, chosen so that the real 0 is exactly a code (the
zero padding of a convolution is then exact). Weights are symmetric (z = 0, codes
-127 .. 127), per output channel or per tensor. Fake quantization (quantization-aware
training) is y = (q - z) * s in float with the straight-through gradient

    dL/dx = dL/dy * [qmin <= rint(x / s) + z <= qmax]

(the rounding's zero gradient replaced by 1 inside the range, 0 where the value clips), as
``torch.fake_quantize_per_tensor_affine`` / ``..._per_channel_affine`` define it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .native import qarith as native

__all__ = ["qrange", "choose_qparams", "weight_qmax", "symmetric_scales", "quantize", "dequantize",
           "quantize_weights", "fake_quantize_forward", "fake_quantize_backward"]

_RANGES = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127)}


def qrange(dtype: Any) -> tuple[int, int]:
    """(qmin, qmax) of uint8 or int8."""
    dt = np.dtype(dtype)
    if dt not in _RANGES:
        raise TypeError(f"quantized values are uint8 or int8, got {dt}")
    return _RANGES[dt]


def choose_qparams(lo: float, hi: float, dtype: Any = np.uint8) -> tuple[float, int]:
    """(scale, zero point) mapping [min(lo, 0), max(hi, 0)] onto dtype's codes, with the
    real 0 exactly representable: s = (hi - lo) / (qmax - qmin), z = qmin - rint(lo / s)."""
    qmin, qmax = qrange(dtype)
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / (qmax - qmin)
    if not np.isfinite(scale) or scale <= 0:
        return 1.0, int(np.clip(0, qmin, qmax))
    zero = int(np.clip(qmin - np.rint(lo / scale), qmin, qmax))
    return float(scale), zero


def weight_qmax(bits: int) -> int:
    """The largest symmetric weight code of ``bits`` bits: 2**(bits - 1) - 1 (8: 127,
    7: 63, the range the AVX2 u8 x s8 kernel multiplies exactly)."""
    if bits not in (7, 8):
        raise ValueError(f"weight_bits must be 7 or 8, got {bits!r}")
    return (1 << (bits - 1)) - 1


def symmetric_scales(w: np.ndarray, axis: int | None = -1, qmax: int = 127) -> np.ndarray:
    """Per-channel (along ``axis``) or per-tensor (axis None) symmetric scales
    max|w| / qmax (1 for an all-zero channel), float32."""
    if axis is None:
        m = np.abs(w).max(initial=0.0)
    else:
        axes = tuple(a for a in range(w.ndim) if a != axis % w.ndim)
        m = np.abs(w).max(axis=axes, initial=0.0)
    m = np.asarray(m, np.float64) / float(qmax)
    return np.where(m > 0, m, 1.0).astype(np.float32)


def _bcast(v: Any, x: np.ndarray, axis: int | None) -> np.ndarray:
    v = np.asarray(v)
    if axis is None or v.ndim == 0:
        return v
    shape = [1] * x.ndim
    shape[axis % x.ndim] = -1
    return v.reshape(shape)


def quantize(x: np.ndarray, scale: Any, zero: Any, dtype: Any = np.uint8,
             axis: int | None = None) -> np.ndarray:
    """clamp(rint(x * (1 / s)) + z, qmin, qmax) as ``dtype`` (s, z per ``axis`` when
    arrays)."""
    qmin, qmax = qrange(dtype)
    if np.ndim(scale) == 0 and np.ndim(zero) == 0 and native.available():
        q = native.quantize(np.asarray(x), np.float32(1.0) / np.float32(scale), int(zero), qmin,
                            qmax, np.dtype(dtype))
        if q is not None:
            return q
    inv = _bcast(np.float32(1.0) / np.asarray(scale, np.float32), x, axis)
    q = np.rint(np.asarray(x, np.float32) * inv) + _bcast(zero, x, axis)
    return np.clip(q, qmin, qmax).astype(dtype)


def dequantize(q: np.ndarray, scale: Any, zero: Any = 0, axis: int | None = None
               ) -> np.ndarray:
    """(q - z) * s as float32."""
    z = _bcast(np.asarray(zero, np.int32), q, axis)
    return (q.astype(np.int32) - z).astype(np.float32) * _bcast(np.asarray(scale, np.float32),
                                                                q, axis)


def quantize_weights(w: np.ndarray, axis: int | None = -1, qmax: int = 127
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(wq int8 in -qmax .. qmax, scales float32): symmetric, per channel along ``axis`` (or
    per tensor with axis None; the scale is then repeated per channel of the last axis)."""
    s = symmetric_scales(w, axis, qmax)
    q = np.clip(np.rint(w / _bcast(s, w, axis)), -qmax, qmax).astype(np.int8)
    if axis is None:
        s = np.full(w.shape[-1], s, np.float32)
    return q, s


def fake_quantize_forward(x: np.ndarray, scale: Any, zero: Any, qmin: int, qmax: int,
                          axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(y, mask): y = (clamp(rint(x / s) + z, qmin, qmax) - z) * s in x's dtype, and the
    straight-through mask [qmin <= rint(x / s) + z <= qmax] for backward."""
    s = _bcast(np.asarray(scale, np.float32), x, axis)
    z = _bcast(np.asarray(zero, np.float32), x, axis)
    q = np.rint(x * (np.float32(1.0) / s)) + z
    mask = (q >= qmin) & (q <= qmax)
    y = (np.clip(q, qmin, qmax) - z) * s
    return y.astype(x.dtype, copy=False), mask


def fake_quantize_backward(g: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """dL/dx = dL/dy where the value did not clip, else 0 (straight-through estimator)."""
    return np.where(mask, g, np.zeros((), g.dtype))
