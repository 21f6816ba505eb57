"""Optional compiled helper: int8 convolution and depthwise convolution (``_qconv.c``),
loaded with ctypes; without it :mod:`cnnkit.kernels.qconv` keeps its NumPy path, which gives
the same integers.

    acc[m, o] = sum_{i, j, c} xq[n, iy, ix, c] wq[i, j, c, o]   (taps outside read XZ)
    t = float32(acc + bias[o]) * mult[o];  out = t (float32) or clamp(rint(t) + YZ, LO, HI)

``x`` is uint8 or int8 (passed as bytes with a signed flag), channels-last, C-contiguous;
the weights come packed by :func:`cnnkit.kernels.qconv.pack_weights` (int16 pairs, 16 output
channels per block) or, for the u8 x s8 path (every |wq| <= 64: vpmaddubsw cannot saturate),
by :func:`cnnkit.kernels.qconv.pack_weights_u8` (int8 quads). Each call computes output
pixels [m0, m1) of the flattened (N, OH, OW), so the kernel threads
(:mod:`cnnkit.kernels.parallel`) run pieces side by side (ctypes releases the GIL).
"""

from __future__ import annotations

import ctypes

import numpy as np

from .loader import NativeLibrary

__all__ = ["SIGNATURES", "available", "set_enabled", "variant", "conv_rows", "conv_u8_rows",
           "switch_vnni",
           "depthwise_rows", "constants", "OUT_KINDS"]

_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_INT = ctypes.c_int
# x, n, h, w, c, signed, xz, weights, [kh, kw, cout | kh, kw], bias, mult, oh, ow, sh, sw,
# dh, dw, pt, pl, kind, yz, lo, hi, out, m0, m1
_TAIL = [_P, _P, *[_I64] * 12, _P, _I64, _I64]
SIGNATURES = {
    "cnk_qconv2d_rows": (_INT, [_P, *[_I64] * 6, _P, *[_I64] * 3, *_TAIL]),
    "cnk_qdepthwise_rows": (_INT, [_P, *[_I64] * 6, _P, *[_I64] * 2, *_TAIL]),
    "cnk_qconv2d_u8_rows": (_INT, [_P, *[_I64] * 6, _P, *[_I64] * 3, *_TAIL]),
    "cnk_qconv_vnni": (_INT, [_I64]),
}
# output dtype -> the kernels' kind code
OUT_KINDS = {np.dtype(np.uint8): 0, np.dtype(np.int8): 1, np.dtype(np.float32): 2}

# 2: the depthwise kernel takes int32 weights, cnk_qconv2d_u8_rows added
ABI_VERSION = 2
_LIB = NativeLibrary("_qconv", SIGNATURES, abi_version=ABI_VERSION, baseline_fallback=False)
available = _LIB.available
set_enabled = _LIB.set_enabled
variant = _LIB.variant


def switch_vnni(want: bool) -> int:
    """Switch the byte path's VNNI micro-kernel on (when the CPU has AVX512-VNNI or
    AVX-VNNI) or off; returns the mode now in force: 0 off, 1 AVX512-VNNI, 2 AVX-VNNI."""
    lib = _LIB.load()
    return 0 if lib is None else int(lib.cnk_qconv_vnni(int(bool(want))))


def _ptr(a: np.ndarray, dtype: object) -> int:
    if a.dtype != dtype or not a.flags.c_contiguous:
        raise ValueError(f"native int8 kernels take C-contiguous {np.dtype(dtype)} arrays, "
                         f"got {a.dtype}")
    return int(a.ctypes.data)


def _xptr(x: np.ndarray) -> int:
    if x.dtype not in (np.uint8, np.int8) or not x.flags.c_contiguous:
        raise ValueError(f"native int8 kernels take C-contiguous uint8 / int8 input, got "
                         f"{x.dtype}")
    return int(x.ctypes.data)


def constants(packed: np.ndarray | None, bias: np.ndarray, mult: np.ndarray) -> tuple:
    """The checked addresses of a layer's constant arrays (packed weights (int16 pairs or
    int8 quads) or None, bias, mult), computed once per layer by the caller."""
    wptr = None if packed is None else _ptr(packed, np.int8 if packed.dtype == np.int8
                                            else np.int16)
    return wptr, _ptr(bias, np.int32), _ptr(mult, np.float32)


def _out(out: np.ndarray) -> tuple[int, int]:
    if not out.flags.c_contiguous:
        raise ValueError("native int8 kernels write C-contiguous outputs")
    return OUT_KINDS[out.dtype], int(out.ctypes.data)


def conv_rows(x: np.ndarray, consts: tuple, kernel_hw: tuple[int, int], cout: int, xz: int,
              out: np.ndarray, geometry: tuple, requant: tuple[int, int, int],
              rows: tuple[int, int]) -> None:
    """Output pixels rows[0] <= m < rows[1] of the int8 convolution into ``out`` (N, OH, OW,
    COUT); ``consts`` = :func:`constants` (packed weights, bias, mult); ``geometry`` =
    (sh, sw, dh, dw, pt, pl); ``requant`` = (yz, lo, hi)."""
    lib = _LIB.load()
    assert lib is not None
    n, h, w, c = x.shape
    kind, optr = _out(out)
    if lib.cnk_qconv2d_rows(_xptr(x), n, h, w, c, int(x.dtype == np.int8), xz, consts[0],
                            *kernel_hw, cout, consts[1], consts[2], out.shape[1], out.shape[2],
                            *geometry, kind, *requant, optr, *rows) != 0:
        raise MemoryError("native int8 convolution could not allocate its patch buffer")


def conv_u8_rows(x: np.ndarray, consts: tuple, kernel_hw: tuple[int, int], cout: int,
                 xz: int, out: np.ndarray, geometry: tuple, requant: tuple[int, int, int],
                 rows: tuple[int, int]) -> None:
    """As :func:`conv_rows` by the u8 x s8 path: ``consts`` from int8-quad packed weights
    (every |wq| <= 64) and, for int8 input, a bias holding - 128 sum wq more."""
    lib = _LIB.load()
    assert lib is not None
    n, h, w, c = x.shape
    kind, optr = _out(out)
    if lib.cnk_qconv2d_u8_rows(_xptr(x), n, h, w, c, int(x.dtype == np.int8), xz, consts[0],
                               *kernel_hw, cout, consts[1], consts[2], out.shape[1],
                               out.shape[2], *geometry, kind, *requant, optr, *rows) != 0:
        raise MemoryError("native int8 convolution could not allocate its patch buffer")


def depthwise_rows(x: np.ndarray, wq: np.ndarray, xz: int, bias: np.ndarray,
                   mult: np.ndarray, out: np.ndarray, geometry: tuple,
                   requant: tuple[int, int, int], rows: tuple[int, int]) -> None:
    """Output pixels rows[0] <= m < rows[1] of the int8 depthwise convolution (``wq`` int32
    (KH, KW, C)) into ``out`` (N, OH, OW, C)."""
    lib = _LIB.load()
    assert lib is not None
    n, h, w, c = x.shape
    kind, optr = _out(out)
    if lib.cnk_qdepthwise_rows(_xptr(x), n, h, w, c, int(x.dtype == np.int8), xz,
                               _ptr(wq, np.int32), wq.shape[0], wq.shape[1],
                               _ptr(bias, np.int32), _ptr(mult, np.float32), out.shape[1],
                               out.shape[2], *geometry, kind, *requant, optr, *rows) != 0:
        raise MemoryError("native int8 depthwise convolution could not allocate its buffers")
