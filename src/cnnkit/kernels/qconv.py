"""Integer convolution, depthwise convolution and dense layers: 8-bit inputs and weights,
int32 accumulation, then a requantize step.

For output pixel m (n, oy, ox) and output channel o, with xq the 8-bit input (its zero point
XZ read outside the image, so padding is the real value 0), wq the symmetric int8 weights and
``bias`` an int32 vector that already holds round(b / (sx sw[o])) - XZ sum wq[., o]:

    acc[m, o] = sum_{i, j, c} xq[n, oy*SH + i*DH - PT, ox*SW + j*DW - PL, c] wq[i, j, c, o]
    t         = float32(acc + bias[o]) * mult[o]       (mult = sx sw[o] / sy, float32)
    y         = clamp(rint(t) + YZ, LO, HI)  (uint8 / int8),  or t itself (float32 output,
                mult = sx sw[o]: the dequantized value)

The requantization is a float32 scale (one rounding for the conversion, one for the product,
rint half to even), not a fixed-point multiplier and shift: the C helper (``_qconv.c``) and
the NumPy path below do the same float32 operations, so they give the same integers. The C
helper multiplies bytes with AVX2 ``vpmaddubsw`` when every |wq| <= 64 (``weight_bits=7``
models: no pair sum can saturate int16), else int16 pairs with ``vpmaddwd`` (exact for any
8-bit operands). The NumPy path multiplies in float32 when every partial sum is below
2**24 (K * 255 * 128 <= 2**24: exact), else in float64 (exact below 2**53).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import parallel
from .native import qconv as native

__all__ = ["QuantConvParams", "pack_weights", "pack_weights_u8", "conv2d", "depthwise2d",
           "dense", "requantize", "im2col_int", "native_available", "vnni_mode", "set_vnni"]

NR = 16  # output channels per packed block (the C micro-kernel's width)
MR = 4  # output pixels per micro-kernel call: pieces start at multiples of it
# below this many multiply-adds a layer runs on the calling thread: waking a kernel thread
# costs ~50 us on a quiet machine and milliseconds on a loaded one
PARALLEL_MIN_MACS = 8 << 20
SMALL_DENSE_MACS = 1 << 16  # dense layers below this run the NumPy matmul (see dense)
_DENSE_GEOMETRY = (1, 1, 1, 1, 0, 0)  # a dense layer as a 1x1 convolution: strides, ...
# weights within +-64 take the u8 x s8 kernel: a vpmaddubsw pair sum 2 * 255 * 64 < 2**15
WQ_U8_MAX = 64


@dataclass(frozen=True)
class QuantConvParams:
    """An integer layer's constants: ``wq`` int8 (KH, KW, C, COUT), or (KH, KW, C) depthwise;
    ``bias`` int32 (COUT,) (zero-point term included), ``mult`` float32 (COUT,), the input
    zero point ``xz`` and the output's (``yz``, ``lo``, ``hi``) (unused for float output)."""

    wq: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    xz: int
    yz: int = 0
    lo: int = 0
    hi: int = 255
    packed: np.ndarray | None = None

    def native_constants(self) -> tuple:
        """The C helper's addresses of packed / bias / mult, computed once (the arrays are
        this object's and are never changed)."""
        cached = self.__dict__.get("_native")
        if cached is None:
            packed = self.packed if self.packed is not None else pack_weights(self.wq)
            object.__setattr__(self, "_keep", packed)  # owns the packed array
            cached = native.constants(packed, self.bias, self.mult)
            object.__setattr__(self, "_native", cached)
        return cached

    def fits_u8_path(self) -> bool:
        """Whether every |wq| <= WQ_U8_MAX (the u8 x s8 kernel's exact range)."""
        cached = self.__dict__.get("_fits_u8")
        if cached is None:
            cached = bool(np.abs(self.wq.astype(np.int16)).max(initial=0) <= WQ_U8_MAX)
            object.__setattr__(self, "_fits_u8", cached)
        return cached

    def native_u8_constants(self, signed: bool) -> tuple:
        """The u8 x s8 kernel's addresses (int8-quad packed weights, bias, mult), computed
        once per input signedness: int8 input enters as x + 128, so its bias holds
        - 128 sum wq[., o] more."""
        key = f"_native_u8_{int(signed)}"
        cached = self.__dict__.get(key)
        if cached is None:
            packed = self.__dict__.get("_packed_u8")
            if packed is None:
                packed = pack_weights_u8(self.wq)
                object.__setattr__(self, "_packed_u8", packed)
            bias = self.bias
            if signed:
                colsum = self.wq.astype(np.int64).reshape(-1, self.wq.shape[-1]).sum(axis=0)
                bias = (bias.astype(np.int64) - 128 * colsum).astype(np.int32)
            object.__setattr__(self, key + "_bias", bias)  # owns the adjusted bias
            cached = native.constants(packed, bias, self.mult)
            object.__setattr__(self, key, cached)
        return cached


def native_available() -> bool:
    """Whether the C helper runs the integer kernels."""
    return native.available()


_VNNI = {"checked": False, "mode": 0}


def vnni_mode() -> int:
    """0, or the VNNI kernel in force (1 AVX512-VNNI, 2 AVX-VNNI). Opt-in: only with
    ``CNNKIT_INT8_VNNI=1`` (or :func:`set_vnni`), on a CPU that has it, and after a
    self-check against the NumPy path passed (this kernel could not be run where it was
    written; a mismatch switches it off with a warning)."""
    if not _VNNI["checked"]:
        _VNNI["checked"] = True
        flag = os.environ.get("CNNKIT_INT8_VNNI", "").strip().lower()
        if flag in ("1", "true", "yes", "on") and native.available():
            set_vnni(True)
    return _VNNI["mode"]


def set_vnni(flag: bool) -> int:
    """Switch the VNNI kernel on (where the CPU has it and the self-check passes) or off;
    returns the mode in force (0: off)."""
    _VNNI["checked"] = True
    mode = native.switch_vnni(flag) if native.available() else 0
    _VNNI["mode"] = mode
    if mode and not _vnni_self_check():
        _VNNI["mode"] = native.switch_vnni(False)
        warnings.warn("cnnkit: the int8 VNNI kernel disagreed with the NumPy path on this CPU "
                      "and was switched off", RuntimeWarning, stacklevel=2)
    return _VNNI["mode"]


def _vnni_self_check() -> bool:
    """One convolution with full 8-bit weights and odd sizes (every loop's tail) through the
    byte path, against the NumPy path: the same integers (float32 output, |acc| < 2**24)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 7, 6, 37)).astype(np.uint8)
    wq = rng.integers(-127, 128, (3, 3, 37, 21)).astype(np.int8)
    wq[0, 0, :2] = 127  # same-sign pairs that vpmaddubsw would saturate
    p = QuantConvParams(wq, rng.integers(-999, 999, 21).astype(np.int32),
                        np.ones(21, np.float32), 5)
    pads = ((1, 1), (1, 1))
    got = conv2d(x, p, (1, 1), pads, out_dtype=np.float32, use_native=True)
    return bool(np.array_equal(got, conv2d(x, p, (1, 1), pads, out_dtype=np.float32,
                                           use_native=False)))


def pack_weights(wq: np.ndarray) -> np.ndarray:
    """wq (KH, KW, C, COUT) int8 -> int16 blocks [COUT/16][K/2][16][2] (K = KH*KW*C, both
    zero padded), the C micro-kernel's layout."""
    k = int(np.prod(wq.shape[:-1]))
    cout = wq.shape[-1]
    kp, nb = (k + 1) // 2, -(-cout // NR)
    w = np.zeros((2 * kp, nb * NR), np.int16)
    w[:k, :cout] = wq.reshape(k, cout)
    return np.ascontiguousarray(w.reshape(kp, 2, nb, NR).transpose(2, 0, 3, 1))


def pack_weights_u8(wq: np.ndarray) -> np.ndarray:
    """wq (KH, KW, C, COUT) int8 -> int8 blocks [COUT/16][K/4][16][4] (K = KH*KW*C, both
    zero padded), the u8 x s8 micro-kernel's layout (4 consecutive K values per column)."""
    k = int(np.prod(wq.shape[:-1]))
    cout = wq.shape[-1]
    kq, nb = -(-k // 4), -(-cout // NR)
    w = np.zeros((4 * kq, nb * NR), np.int8)
    w[:k, :cout] = wq.reshape(k, cout)
    return np.ascontiguousarray(w.reshape(kq, 4, nb, NR).transpose(2, 0, 3, 1))


def requantize(acc: np.ndarray, bias: np.ndarray, mult: np.ndarray, out_dtype: Any,
               yz: int = 0, lo: int = 0, hi: int = 255) -> np.ndarray:
    """float32(acc + bias) * mult, then rint + yz clamped to [lo, hi] (integer output)."""
    t = (acc + bias).astype(np.float32) * mult.astype(np.float32)
    if np.dtype(out_dtype) == np.float32:
        return t
    q = np.rint(t).astype(np.int32) + yz
    return np.clip(q, lo, hi).astype(out_dtype)


def im2col_int(xq: np.ndarray, kernel_hw: tuple[int, int], strides: tuple[int, int],
               pads: tuple[tuple[int, int], ...], dilation: tuple[int, int], xz: int
               ) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(patches (N*OH*OW, KH*KW*C) int16 in (i, j, c) order, (N, OH, OW)); the padding holds
    the zero point xz."""
    n, h, w, c = xq.shape
    (pt, pb), (pl, pr) = pads
    xp = np.full((n, h + pt + pb, w + pl + pr, c), xz, np.int16)
    xp[:, pt:pt + h, pl:pl + w] = xq
    kh, kw = kernel_hw
    (sh, sw), (dh, dw) = strides, dilation
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, oh, ow, kh, kw, c), np.int16)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j] = xp[:, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                                     j * dw:j * dw + sw * (ow - 1) + 1:sw]
    return cols.reshape(n * oh * ow, kh * kw * c), (n, oh, ow)


def _exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b of 8-bit codes (a: uint8 / int8 / their int16 widening, b: int8 weights) as
    int64, through float32 when K * 255 * 128 <= 2**24 (every partial sum exact: K <= 513),
    else float64 (exact far beyond any K here)."""
    ftype = np.float32 if a.shape[1] * 255 * 128 <= 1 << 24 else np.float64
    return np.matmul(a.astype(ftype), b.astype(ftype)).astype(np.int64)


def _use_native(xq: np.ndarray, use_native: bool | None) -> bool:
    if use_native is None:
        return native.available()
    if use_native and not native.available():
        raise RuntimeError("the native int8 helper is not built or is switched off")
    return use_native


def _geometry(pads: Any, strides: Any, dilation: Any) -> tuple:
    return (*strides, *dilation, pads[0][0], pads[1][0])


def _run_pieces(m: int, row_bytes: int, body: Any, macs: int) -> None:
    """body(m0, m1) over output-pixel ranges, starting at multiples of MR, on the threads
    (one call on this thread below PARALLEL_MIN_MACS multiply-adds)."""
    if macs < PARALLEL_MIN_MACS:
        body(0, m)
        return
    blocks = -(-m // MR)
    parallel.for_rows(blocks, row_bytes * MR, lambda b0, b1: body(b0 * MR, min(b1 * MR, m)))


def _out_shape(xq: np.ndarray, kernel_hw: Any, strides: Any, pads: Any, dilation: Any
               ) -> tuple[int, int]:
    h, w = xq.shape[1], xq.shape[2]
    oh = (h + pads[0][0] + pads[0][1] - dilation[0] * (kernel_hw[0] - 1) - 1) // strides[0]
    ow = (w + pads[1][0] + pads[1][1] - dilation[1] * (kernel_hw[1] - 1) - 1) // strides[1]
    return oh + 1, ow + 1


def conv2d(xq: np.ndarray, p: QuantConvParams, strides: tuple[int, int],
           pads: tuple[tuple[int, int], ...], dilation: tuple[int, int] = (1, 1),
           out_dtype: Any = np.uint8, use_native: bool | None = None) -> np.ndarray:
    """The integer convolution of the module docstring: xq (N, H, W, C) uint8 / int8 ->
    (N, OH, OW, COUT) of ``out_dtype`` (uint8, int8 or float32)."""
    kh, kw, c, cout = p.wq.shape
    out_dtype = np.dtype(out_dtype)
    if _use_native(xq, use_native):
        oh, ow = _out_shape(xq, (kh, kw), strides, pads, dilation)
        out = np.empty((xq.shape[0], oh, ow, cout), out_dtype)
        xq = np.ascontiguousarray(xq)
        if p.fits_u8_path() or vnni_mode():
            consts, run = p.native_u8_constants(xq.dtype == np.int8), native.conv_u8_rows
        else:
            consts, run = p.native_constants(), native.conv_rows
        geo = _geometry(pads, strides, dilation)
        m = out.shape[0] * oh * ow
        _run_pieces(m, kh * kw * c * 2 + cout * 4,
                    lambda m0, m1: run(xq, consts, (kh, kw), cout, p.xz, out, geo,
                                       (p.yz, p.lo, p.hi), (m0, m1)),
                    m * kh * kw * c * cout)
        return out
    cols, (n, oh, ow) = im2col_int(xq, (kh, kw), strides, pads, dilation, p.xz)
    acc = _exact_matmul(cols, p.wq.reshape(-1, cout))
    y = requantize(acc, p.bias, p.mult, out_dtype, p.yz, p.lo, p.hi)
    return y.reshape(n, oh, ow, cout)


def depthwise2d(xq: np.ndarray, p: QuantConvParams, strides: tuple[int, int],
                pads: tuple[tuple[int, int], ...], dilation: tuple[int, int] = (1, 1),
                out_dtype: Any = np.uint8, use_native: bool | None = None) -> np.ndarray:
    """Depthwise (multiplier 1) integer convolution: wq (KH, KW, C),
    acc[m, c] = sum_{i, j} xq[n, iy, ix, c] wq[i, j, c], requantized as in :func:`conv2d`."""
    kh, kw, c = p.wq.shape
    out_dtype = np.dtype(out_dtype)
    if _use_native(xq, use_native):
        oh, ow = _out_shape(xq, (kh, kw), strides, pads, dilation)
        out = np.empty((xq.shape[0], oh, ow, c), out_dtype)
        w32 = p.__dict__.get("_w32")
        if w32 is None:  # the kernel's int32 weights, made once per layer
            w32 = np.ascontiguousarray(p.wq, dtype=np.int32)
            object.__setattr__(p, "_w32", w32)
        xq = np.ascontiguousarray(xq)
        geo = _geometry(pads, strides, dilation)
        m = out.shape[0] * oh * ow

        def rows(m0: int, m1: int) -> None:
            native.depthwise_rows(xq, w32, p.xz, p.bias, p.mult, out, geo,
                                  (p.yz, p.lo, p.hi), (m0, m1))

        if m * kh * kw * c < PARALLEL_MIN_MACS:
            rows(0, m)
        else:
            parallel.for_rows(m, kh * kw * c + c * 4, rows)
        return out
    cols, (n, oh, ow) = im2col_int(xq, (kh, kw), strides, pads, dilation, p.xz)
    cols = cols.reshape(-1, kh * kw, c).astype(np.int64)
    acc = np.einsum("mtc,tc->mc", cols, p.wq.reshape(kh * kw, c).astype(np.int64))
    y = requantize(acc, p.bias, p.mult, out_dtype, p.yz, p.lo, p.hi)
    return y.reshape(n, oh, ow, c)


def dense(xq: np.ndarray, p: QuantConvParams, out_dtype: Any = np.uint8,
          use_native: bool | None = None) -> np.ndarray:
    """Integer dense layer: xq (..., C) and wq (1, 1, C, COUT) (a 1x1 convolution over the
    rows), acc[r, o] = sum_c xq[r, c] wq[c, o], requantized as in :func:`conv2d`. Below
    SMALL_DENSE_MACS multiply-adds (batch-1 heads) the exact NumPy matmul runs whatever
    ``use_native`` says unless it is True: a C call's set-up costs more there."""
    lead, c = xq.shape[:-1], xq.shape[-1]
    cout = p.wq.shape[-1]
    rows = math.prod(lead)
    if use_native is False or (use_native is None and rows * c * cout < SMALL_DENSE_MACS) \
            or not _use_native(xq, use_native):
        acc = _exact_matmul(xq.reshape(rows, c), p.wq.reshape(c, cout))
        return requantize(acc, p.bias, p.mult, out_dtype, p.yz, p.lo, p.hi).reshape(*lead, cout)
    x4 = np.ascontiguousarray(xq).reshape(rows, 1, 1, c)
    out = np.empty((rows, 1, 1, cout), out_dtype)
    if p.fits_u8_path() or vnni_mode():
        consts, run = p.native_u8_constants(x4.dtype == np.int8), native.conv_u8_rows
    else:
        consts, run = p.native_constants(), native.conv_rows
    requant = (p.yz, p.lo, p.hi)
    _run_pieces(rows, c * 2 + cout * 4,
                lambda m0, m1: run(x4, consts, (1, 1), cout, p.xz, out, _DENSE_GEOMETRY,
                                   requant, (m0, m1)), rows * c * cout)
    return out.reshape(*lead, cout)
