"""Optional compiled helper: element-wise int8 kernels (``_qarith.c``) loaded with ctypes;
without it :mod:`cnnkit.kernels.qarith` and :mod:`cnnkit.kernels.quantize` keep their NumPy
paths, which give the same codes.

    add:      y = clamp(rint(float32(a - za) * ma + float32(b - zb) * mb) + zy, lo, hi)
    quantize: q = clamp(rint(x * float32(1 / s)) + z, qmin, qmax)
    max pool: the max of each 2x2 window at stride 2, clamped to [lo, hi]

Arrays are C-contiguous uint8 / int8 codes (float32 for quantize's input); the callers check
that and fall back to NumPy otherwise.
"""

from __future__ import annotations

import ctypes

import numpy as np

from .loader import NativeLibrary

__all__ = ["SIGNATURES", "available", "set_enabled", "add", "quantize", "max_pool_2x2"]

_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_F = ctypes.c_float
SIGNATURES = {
    "cnk_qadd": (None, [_P, _P, _I64, _I64, _I64, _I64, _F, _F, _I64, _I64, _I64, _P]),
    "cnk_quantize": (None, [_P, _I64, _F, _I64, _I64, _I64, _I64, _P]),
    "cnk_qmaxpool2x2": (None, [_P, *[_I64] * 4, _I64, _I64, _I64, _P]),
}

_LIB = NativeLibrary("_qarith", SIGNATURES)
available = _LIB.available
set_enabled = _LIB.set_enabled


def _codes(a: np.ndarray) -> bool:
    return a.dtype in (np.uint8, np.int8) and a.flags.c_contiguous


def add(a: np.ndarray, b: np.ndarray, za: int, zb: int, ma: np.float32, mb: np.float32,
        zy: int, lo: int, hi: int, out_dtype: np.dtype) -> np.ndarray | None:
    """The requantized sum, or None when the arrays do not suit the kernel (then the
    caller runs NumPy): same shape, same code dtype as ``out_dtype``, C-contiguous."""
    if not (a.shape == b.shape and a.dtype == b.dtype == out_dtype and _codes(a) and
            _codes(b)):
        return None
    lib = _LIB.load()
    assert lib is not None
    y = np.empty(a.shape, out_dtype)
    lib.cnk_qadd(a.ctypes.data, b.ctypes.data, a.size, int(a.dtype == np.int8), za, zb,
                 float(ma), float(mb), zy, lo, hi, y.ctypes.data)
    return y


def quantize(x: np.ndarray, inv: np.float32, zero: int, qmin: int, qmax: int,
             dtype: np.dtype) -> np.ndarray | None:
    """Codes of a C-contiguous float32 ``x`` at one scale (inverse ``inv``) and zero point,
    or None when ``x`` does not suit the kernel."""
    if x.dtype != np.float32 or not x.flags.c_contiguous:
        return None
    lib = _LIB.load()
    assert lib is not None
    q = np.empty(x.shape, dtype)
    lib.cnk_quantize(x.ctypes.data, x.size, float(inv), zero, qmin, qmax,
                     int(q.dtype == np.int8), q.ctypes.data)
    return q


def max_pool_2x2(q: np.ndarray, lo: int, hi: int) -> np.ndarray | None:
    """2x2 stride-2 "valid" max pooling of C-contiguous (N, H, W, C) codes clamped to
    [lo, hi], or None when ``q`` does not suit the kernel."""
    if q.ndim != 4 or not _codes(q):
        return None
    lib = _LIB.load()
    assert lib is not None
    n, h, w, c = q.shape
    y = np.empty((n, h // 2, w // 2, c), q.dtype)
    lib.cnk_qmaxpool2x2(q.ctypes.data, n, h, w, c, int(q.dtype == np.int8), lo, hi,
                        y.ctypes.data)
    return y
