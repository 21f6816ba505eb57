"""Window geometry and path choices shared by the pooling kernels (:mod:`.pool`): output
sizes and padding per axis, the clipped tap views of a window, whether windows tile the input,
and when the C tournament or the rows-first reduction takes a call.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from itertools import product
from typing import Any

import numpy as np

from . import parallel
from .native import norm as native_norm
from .padding import Pads, output_size, resolve_padding

Geometry = tuple[tuple[int, ...], Pads, Pads]

def pool_geometry(sizes: Sequence[int], pool: Sequence[int], strides: Sequence[int],
                  padding: Any = "valid", dilation: Sequence[int] | None = None,
                  ceil_mode: bool = False) -> Geometry:
    """(output sizes, explicit (before, after) pads, pads including the ceil-mode overhang).

    ``padding`` is anything :func:`~cnnkit.kernels.padding.resolve_padding` accepts.
    """
    n = len(sizes)
    dilation = tuple(dilation) if dilation is not None else (1,) * n
    pads = resolve_padding(padding, sizes, pool, strides, dilation)
    outs, full = [], []
    for w, k, s, d, (pb, pa) in zip(sizes, pool, strides, dilation, pads, strict=True):
        o = output_size(w, k, s, d, (pb, pa))
        if ceil_mode:
            eff = d * (k - 1) + 1
            o = -(-(w + pb + pa - eff) // s) + 1
            if (o - 1) * s >= w + pb:  # last window would start in the trailing padding
                o -= 1
        extra = max(0, (o - 1) * s + d * (k - 1) + 1 - (w + pb + pa))
        outs.append(o)
        full.append((pb, pa + extra))
    return tuple(outs), pads, tuple(full)


def _axis_range(w: int, k: int, s: int, d: int, o: int, pb: int) -> tuple[slice, slice] | None:
    """For tap k on one axis: the outputs whose tap lands inside the input, and those inputs.

    Output o reads input p = o*s + k*d - pb; only 0 <= p < w is real (the rest is padding).
    """
    off = k * d - pb
    lo = max(0, -(off // s) if off < 0 else 0)  # ceil(-off / s) for off < 0
    hi = min(o, (w - 1 - off) // s + 1) if w - 1 - off >= 0 else 0
    if hi <= lo:
        return None
    start = lo * s + off
    return slice(lo, hi), slice(start, start + (hi - lo - 1) * s + 1, s)


def _taps(x_shape: Sequence[int], pool: Sequence[int], strides: Sequence[int],
          dilation: Sequence[int], outs: Sequence[int], pads: Pads
          ) -> Iterator[tuple[tuple[slice, ...], tuple[slice, ...]]]:
    """For each window tap (row-major): (output slice, strided input slice) it connects.

    Padding is never materialised: a tap only touches the outputs whose cell is inside the
    input, so max pooling sees padding as -inf and average pooling as 0.
    """
    sizes = x_shape[1:-1]
    per_axis = []
    for w, k, s, d, o, (pb, _) in zip(sizes, pool, strides, dilation, outs, pads, strict=True):
        per_axis.append([_axis_range(w, i, s, d, o, pb) for i in range(k)])
    every = (slice(None),)
    for combo in product(*per_axis):
        if any(r is None for r in combo):
            continue
        yield (every + tuple(r[0] for r in combo) + every,
               every + tuple(r[1] for r in combo) + every)


def _covers_all(osl: tuple[slice, ...], outs: Sequence[int]) -> bool:
    """True when a tap's output slice (from :func:`_taps`) is every output position."""
    return all(sl.start in (0, None) and sl.stop in (o, None) and sl.step in (1, None)
               for sl, o in zip(osl[1:-1], outs, strict=True))


def _disjoint(pool: Sequence[int], strides: Sequence[int], dilation: Sequence[int]) -> bool:
    """True when every input cell is read by at most one window."""
    return all(d == 1 for d in dilation) and all(
        s >= k for s, k in zip(strides, pool, strict=True))


def _blocks(pool: Sequence[int], strides: Sequence[int], dilation: Sequence[int],
            full: Pads) -> bool:
    """True when windows tile the input without overlap, gaps or padding (reshape path)."""
    return (tuple(pool) == tuple(strides) and all(d == 1 for d in dilation)
            and not any(p for pair in full for p in pair))


def _block_view(x: np.ndarray, pool: Sequence[int], outs: Sequence[int]) -> np.ndarray:
    """x cropped to whole windows and reshaped to (N, O_1, K_1, ..., O_n, K_n, C) (a view)."""
    crop = (slice(None),) + tuple(slice(0, o * k) for o, k in zip(outs, pool, strict=True))
    shape = (x.shape[0],) + tuple(v for o, k in zip(outs, pool, strict=True) for v in (o, k))
    return x[crop].reshape(shape + x.shape[-1:])


def _geometry(x_shape: tuple[int, ...], pool: Sequence[int], strides: Sequence[int] | None,
              padding: Any, dilation: Sequence[int] | None, ceil_mode: bool
              ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], Geometry]:
    n = len(x_shape) - 2
    pool = tuple(pool)
    strides = tuple(strides) if strides is not None else pool
    dilation = tuple(dilation) if dilation is not None else (1,) * n
    geo = pool_geometry(x_shape[1:-1], pool, strides, padding, dilation, ceil_mode)
    return pool, strides, dilation, geo


def _out_shape(x_shape: tuple[int, ...], outs: Sequence[int]) -> tuple[int, ...]:
    return (x_shape[0], *outs, x_shape[-1])


def _per_batch(x_shape: tuple[int, ...], itemsize: int, body: Any) -> None:
    """Run ``body(n0, n1)`` over slices of the batch, in parallel for large inputs (every
    sample's windows are independent)."""
    per = int(np.prod(x_shape[1:])) * itemsize
    parallel.for_rows(x_shape[0], 2 * per, body)


# The C pooling kernels run in one call (no hand-over to the kernel threads) for inputs up to
# this many bytes: they stream at memory speed, and a hand-over (waking a sleeping thread)
# cost more than the second thread saved. Measured (batch 128, two threads, min us, one call
# vs batch pieces): avg 28x28x6 fwd 80 vs 121, bwd 59 vs 101; 32x32x16 fwd 193 vs 377, bwd
# 241 vs 374; max 16x16x32 fwd 175 vs 311, bwd 409 vs 519; 28x28x32 fwd 1391 vs 1516, bwd
# 1407 vs 1769; 32x32x16 bwd 930 vs 892 (about equal).
NATIVE_POOL_MIN_PARALLEL_BYTES = 32 << 20


def _native_per_batch(x_shape: tuple[int, ...], body: Any) -> None:
    """``body(0, N)`` in one call for inputs under NATIVE_POOL_MIN_PARALLEL_BYTES (float32),
    else :func:`_per_batch`."""
    if math.prod(x_shape) * 4 < NATIVE_POOL_MIN_PARALLEL_BYTES:
        body(0, x_shape[0])
    else:
        _per_batch(x_shape, 4, body)


def _native_2x2(a: np.ndarray, b: np.ndarray) -> bool:
    """The C tournament (:mod:`.native.norm`) takes these: float32, C-contiguous, 2-D images,
    not empty, channels a multiple of 16 (its vectors; fewer channels measured slower than
    NumPy), and the helper built and switched on (``CNNKIT_NATIVE=0`` turns it off)."""
    return (a.ndim == 4 and a.dtype == b.dtype == np.float32 and a.flags.c_contiguous
            and b.flags.c_contiguous and a.size > 0 and b.size > 0 and a.shape[-1] % 16 == 0
            and native_norm.available())


def _native_avg_2x2(a: np.ndarray, b: np.ndarray) -> bool:
    """The C 2x2 average pooling (:mod:`.native.norm`, any channel count) takes these: float32,
    C-contiguous, 2-D images, not empty, helper built and switched on. Measured against the
    NumPy path (batch 128, one thread, min us): 28x28x6 forward 445 -> 117, backward 280 -> 91;
    10x10x16 forward 128 -> 54, backward 79 -> 47."""
    return (a.ndim == 4 and a.dtype == b.dtype == np.float32 and a.flags.c_contiguous
            and b.flags.c_contiguous and a.size > 0 and b.size > 0
            and native_norm.available())


def _pairs_2x2(pool: Sequence[int], strides: Sequence[int], dilation: Sequence[int],
               full: Pads) -> bool:
    """2x2 windows at stride 2 over two spatial axes, no padding: the tournament path."""
    return len(pool) == 2 and tuple(pool) == (2, 2) and _blocks(pool, strides, dilation, full)


# Forward reductions take the rows-first path up to this many channels (max / average);
# with more, NumPy's loops over one tap's C values are long enough and the tap loop measured
# 10-20% faster (for the average already at 32 channels).
ROWS_FIRST_MAX_CHANNELS = {"max": 32, "avg": 16}


def _rows_first(pool: Sequence[int], strides: Sequence[int], dilation: Sequence[int],
                full: Pads, channels: int | None = None, kind: str = "max") -> bool:
    """2-D windows that tile the input (stride = window, no dilation or padding): reduced
    row pairs first, as whole contiguous image rows, then the columns of the smaller result
    (NumPy's loops over the interleaved taps run only C elements long: for few channels
    measured up to ~2x slower). ``channels``: the forward's limit for ``kind`` applies."""
    if channels is not None and channels > ROWS_FIRST_MAX_CHANNELS[kind]:
        return False
    return len(pool) == 2 and _blocks(pool, strides, dilation, full)


def _reduce_rows_first(xs: np.ndarray, ys: np.ndarray, pool: Sequence[int],
                       outs: Sequence[int], ufunc: np.ufunc) -> None:
    """ys = ufunc-reduction of xs (n, H, W, C) over each kh x kw window (windows tiling the
    top-left Ho*kh x Wo*kw of the image): first over the kh rows of a window (contiguous
    rows of W*C values), then over the kw columns."""
    (kh, kw), (ho, wo) = pool, outs
    n, w, c = xs.shape[0], xs.shape[2], xs.shape[3]
    x4 = xs[:, :ho * kh].reshape(n, ho, kh, w * c)
    if kh == 1:
        r = x4[:, :, 0]
    else:
        r = ufunc(x4[:, :, 0], x4[:, :, 1])
        for i in range(2, kh):
            ufunc(r, x4[:, :, i], out=r)
    r5 = r[:, :, :wo * kw * c].reshape(n, ho, wo, kw, c)
    if kw == 1:
        np.copyto(ys, r5[:, :, :, 0])
        return
    if ufunc is np.add and ys.flags.c_contiguous:  # einsum's sum over k: 15-30% faster
        np.einsum("pkc->pc", r5.reshape(n * ho * wo, kw, c), out=ys.reshape(-1, c))
        return
    ufunc(r5[:, :, :, 0], r5[:, :, :, 1], out=ys)
    for j in range(2, kw):
        ufunc(ys, r5[:, :, :, j], out=ys)
