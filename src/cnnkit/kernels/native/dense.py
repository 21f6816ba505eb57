"""Optional compiled helper: a batch-invariant dense product (``_dense.c``), loaded with
ctypes.

    y[n, j] = sum_{k = 0 .. K-1} x[n, k] w[k, j]    (in that order, whatever N is)

Every element of ``y`` comes from the same instructions whatever the number of rows, so row
n of a batch equals the product of that row alone, bit for bit (a BLAS GEMM does not promise
that). ctypes releases the GIL, so several threads may run it on disjoint rows.
"""

from __future__ import annotations

import ctypes

import numpy as np

from .loader import NativeLibrary

__all__ = ["SIGNATURES", "available", "set_enabled", "variant", "rows_matmul"]

_P = ctypes.c_void_p
_I64 = ctypes.c_int64
SIGNATURES = {"cnk_dense_rows": (ctypes.c_int, [_P, _I64, _I64, _P, _I64, _P])}

_LIB = NativeLibrary("_dense", SIGNATURES, baseline_fallback=False)  # SSE2 build: slow
available = _LIB.available
set_enabled = _LIB.set_enabled
variant = _LIB.variant


def rows_matmul(x: np.ndarray, w: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """x @ w for float32 x (N, K) and w (K, M), each row summed over k in order (see the
    module docstring); ``out``: a C-contiguous float32 (N, M) array to write into."""
    lib = _LIB.load()
    if lib is None:
        raise RuntimeError("the native dense helper (_dense) is not built")
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"rows_matmul takes x (N, K) and w (K, M), got {x.shape} and "
                         f"{w.shape}")
    if x.dtype != np.float32 or w.dtype != np.float32:
        raise TypeError(f"rows_matmul takes float32 arrays, got {x.dtype} and {w.dtype}")
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    n, k = x.shape
    m = w.shape[1]
    if out is None:
        out = np.empty((n, m), np.float32)
    elif out.shape != (n, m) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(n, m)}")
    if lib.cnk_dense_rows(x.ctypes.data, n, k, w.ctypes.data, m, out.ctypes.data) != 0:
        raise MemoryError("the native dense kernel could not allocate its buffers")
    return out
