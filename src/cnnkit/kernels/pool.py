"""Max and average pooling (any number of spatial axes) and global pooling, channels-last.

x has shape (N, *S, C) with n = len(S) spatial axes. A window of size K per axis, taken every
S_a positions with dilation D, over x padded by (P_before, P_after) per axis:

    max:  y[n, o, c] = max_{k}  x[n, o*S + k*D - P_before, c]
    avg:  y[n, o, c] = (1 / count[o]) * sum_{k valid} x[n, o*S + k*D - P_before, c]

Output size per axis: floor((W + P_b + P_a - D*(K-1) - 1) / S) + 1 (``ceil_mode``: ceil, but the
last window must start inside the input or the leading padding, as in PyTorch/ONNX; the windows
that then run past the padded input see extra cells that are never counted).

Max pooling pads with -inf; its gradient goes only to the arg-max of each window (the first in
row-major window order on ties, as in PyTorch). Average pooling's ``count`` is the number of
window cells inside the input (Keras 'same', PyTorch ``count_include_pad=False``) or, with
``count_include_pad``, inside the input plus its explicit padding.

Every kernel loops over the K_1*...*K_n window taps only; each tap is one strided view of the
input (clipped where it would read padding, so the padded input is never built) and no window
copies are made. Non-overlapping windows without padding (e.g. 2x2 stride 2) start from the
first tap's view instead of a filled array, and their average-pool gradient is written in one
broadcast through a (N, O_1, K_1, ..., C) reshaped view of dL/dx. (Measured: reducing that
reshaped view with .max/.mean over the K axes was about 2.5x slower than the tap loop.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .native import norm as native_norm
from .pool_windows import (
    Pads,
    _block_view,
    _blocks,
    _covers_all,
    _disjoint,
    _geometry,
    _native_2x2,
    _native_avg_2x2,
    _native_per_batch,
    _out_shape,
    _pairs_2x2,
    _per_batch,
    _reduce_rows_first,
    _rows_first,
    _taps,
    pool_geometry,  # noqa: F401  (layers and ops import it from here)
)

Winners = tuple[np.ndarray, np.ndarray, np.ndarray]
Taps = list[tuple[tuple[slice, ...], tuple[slice, ...]]]  # (output slice, input slice)


def max_pool_forward(x: np.ndarray, pool: Sequence[int], strides: Sequence[int] | None = None,
                     padding: Any = "valid", dilation: Sequence[int] | None = None,
                     ceil_mode: bool = False, return_winners: bool = False) -> Any:
    """y[n, o, c] = max over the window taps k of x_pad[n, o*S + k*D, c] (padding = -inf).

    ``return_winners``: also return what :func:`max_pool_backward` needs to route the
    gradient without reading x again: for 2x2 windows at stride 2, a tournament
    a = max(x00, x01), b = max(x10, x11), y = max(a, b) keeps the three comparisons
    (x01 > x00, x11 > x10, b > a) as boolean arrays (strict, so ties go to the first tap in
    row-major order, as in PyTorch); None for other windows. Returns (y, winners) then.
    """
    pool, strides, dilation, (outs, _, full) = _geometry(x.shape, pool, strides, padding,
                                                         dilation, ceil_mode)
    out = np.empty(_out_shape(x.shape, outs), dtype=x.dtype)
    if return_winners and _pairs_2x2(pool, strides, dilation, full):
        return out, _max_pool_2x2_winners(x, out, outs)
    if _rows_first(pool, strides, dilation, full, x.shape[-1]):
        def body_rows(n0: int, n1: int) -> None:
            _reduce_rows_first(x[n0:n1], out[n0:n1], pool, outs, np.maximum)

        _per_batch(x.shape, x.itemsize, body_rows)
    else:
        _max_pool_taps(x, out, pool, strides, dilation, outs, full)
    return (out, None) if return_winners else out


def _max_pool_2x2_winners(x: np.ndarray, out: np.ndarray, outs: Sequence[int]) -> Winners:
    """out = max over 2x2 windows at stride 2, as the tournament y = max(a, b) with
    a = max(x00, x01), b = max(x10, x11); returns its masks (x01 > x00, x11 > x10, b > a)."""
    m01, m23, mab = (np.empty(out.shape, dtype=bool) for _ in range(3))
    ho, wo = outs
    if _native_2x2(x, out):
        _native_per_batch(x.shape, lambda n0, n1: native_norm.max_pool_2x2_forward(
            x, out, m01, m23, mab, n0, n1))
        return m01, m23, mab

    def body_pairs(n0: int, n1: int) -> None:
        # the four taps de-interleaved by one copy into contiguous arrays first: the six
        # comparisons then run over contiguous operands (measured ~25% faster in all)
        ys, b, n = out[n0:n1], slice(n0, n1), n1 - n0
        x6 = x[n0:n1, :2 * ho, :2 * wo].reshape(n, ho, 2, wo, 2, x.shape[-1])
        q = np.empty((2, 2) + ys.shape, dtype=x.dtype)
        np.copyto(q, x6.transpose(2, 4, 0, 1, 3, 5))
        (x00, x01), (x10, x11) = q
        np.greater(x01, x00, out=m01[b])
        np.greater(x11, x10, out=m23[b])
        a = np.maximum(x00, x01)
        np.maximum(x10, x11, out=ys)
        np.greater(ys, a, out=mab[b])
        np.maximum(ys, a, out=ys)

    _per_batch(x.shape, x.itemsize, body_pairs)
    return m01, m23, mab


def _max_pool_taps(x: np.ndarray, out: np.ndarray, pool: Sequence[int],
                   strides: Sequence[int], dilation: Sequence[int], outs: Sequence[int],
                   full: Pads) -> None:
    """out = max over the window taps, one np.maximum over strided views per tap."""
    taps = list(_taps(x.shape, pool, strides, dilation, outs, full))
    blocks = _blocks(pool, strides, dilation, full)  # every tap covers every output
    first_covers = blocks or (bool(taps) and _covers_all(taps[0][0], outs))

    def body(n0: int, n1: int) -> None:
        xs, ys = x[n0:n1], out[n0:n1]
        rest = taps
        if blocks and len(taps) > 1:
            np.maximum(xs[taps[0][1]], xs[taps[1][1]], out=ys)
            rest = taps[2:]
        elif first_covers:  # e.g. 1x1 windows at stride 2 (subsampling): one copy
            np.copyto(ys, xs[taps[0][1]])
            rest = taps[1:]
        else:
            ys.fill(-np.inf)
        for osl, isl in rest:
            np.maximum(ys[osl], xs[isl], out=ys[osl])

    _per_batch(x.shape, x.itemsize, body)


def max_pool_backward(g: np.ndarray, x: np.ndarray, out: np.ndarray, pool: Sequence[int],
                      strides: Sequence[int] | None = None, padding: Any = "valid",
                      dilation: Sequence[int] | None = None, ceil_mode: bool = False,
                      winners: Winners | None = None) -> np.ndarray:
    """dL/dx: each window's dL/dy goes to its arg-max only (the first tap on ties).

    With ``winners`` from :func:`max_pool_forward` (2x2 windows at stride 2) the taps' masks
    are combinations of the tournament's comparisons: x00 wins where not (b > a) and not
    (x01 > x00), and so on. Otherwise the arg-max is found again from ``out``: visiting taps
    in order, the first tap whose value equals the window's maximum takes the gradient and
    claims that window. Done per slice of the batch, so the masks stay in cache.
    """
    pool, strides, dilation, (outs, _, full) = _geometry(x.shape, pool, strides, padding,
                                                         dilation, ceil_mode)
    taps = list(_taps(x.shape, pool, strides, dilation, outs, full))
    # windows that tile x exactly write every cell of dL/dx once: no zero fill needed
    tiled = _blocks(pool, strides, dilation, full) and all(
        o * k == w for o, k, w in zip(outs, pool, x.shape[1:-1], strict=True))
    gx = (np.empty if tiled else np.zeros)(x.shape, dtype=g.dtype)
    if winners is not None:
        _max_pool_backward_2x2(g, x.shape, x.itemsize, gx, winners, taps)
    else:
        _max_pool_backward_taps(g, x, out, gx, taps, _disjoint(pool, strides, dilation))
    return gx


def _max_pool_backward_2x2(g: np.ndarray, shape: tuple[int, ...], itemsize: int,
                           gx: np.ndarray, winners: Winners, taps: Taps) -> None:
    """gx's four taps = g times the tournament's masks (native kernel when it applies)."""
    if _native_2x2(gx, g) and all(
            m.dtype == bool and m.flags.c_contiguous and m.shape == g.shape for m in winners):
        _native_per_batch(shape, lambda n0, n1: native_norm.max_pool_2x2_backward(
            g, *winners, gx, n0, n1))
        return
    m01, m23, mab = winners
    (_, i00), (_, i01), (_, i10), (_, i11) = taps

    def body_pairs(n0: int, n1: int) -> None:
        gs, gxs, b = g[n0:n1], gx[n0:n1], slice(n0, n1)
        first = np.logical_not(mab[b])  # the window's max is in its first row
        m = np.greater(first, m01[b])
        np.multiply(gs, m, out=gxs[i00])
        np.logical_and(first, m01[b], out=m)
        np.multiply(gs, m, out=gxs[i01])
        np.greater(mab[b], m23[b], out=m)
        np.multiply(gs, m, out=gxs[i10])
        np.logical_and(mab[b], m23[b], out=m)
        np.multiply(gs, m, out=gxs[i11])

    _per_batch(shape, itemsize, body_pairs)


def _max_pool_backward_taps(g: np.ndarray, x: np.ndarray, out: np.ndarray, gx: np.ndarray,
                            taps: Taps, disjoint: bool) -> None:
    """gx += g at each window's first tap equal to its maximum ``out``."""
    def body(n0: int, n1: int) -> None:
        xs, os_, gs, gxs = x[n0:n1], out[n0:n1], g[n0:n1], gx[n0:n1]
        claimed = np.zeros(os_.shape, dtype=bool)  # windows whose maximum has been routed
        hit = np.empty(os_.shape, dtype=bool)
        for t, (osl, isl) in enumerate(taps):
            h = hit[osl]
            np.equal(xs[isl], os_[osl], out=h)
            if t:
                np.greater(h, claimed[osl], out=h)  # hit and not yet claimed
            if t + 1 < len(taps):
                claimed[osl] |= h
            if disjoint:
                np.multiply(gs[osl], h, out=gxs[isl])
            else:
                gxs[isl] += gs[osl] * h

    _per_batch(x.shape, x.itemsize, body)


def avg_pool_count(sizes: Sequence[int], pool: Sequence[int], strides: Sequence[int],
                   dilation: Sequence[int], outs: Sequence[int], pads: Pads,
                   count_include_pad: bool = False) -> np.ndarray | int:
    """Number of counted cells in each window, shaped (1, O_1, ..., O_n, 1) (separable).

    A tap at position p = o*S + k*D - P_before counts if 0 <= p < W, or, with
    ``count_include_pad``, if -P_before <= p < W + P_after (never in the ceil-mode overhang).
    Returns a plain int when every window has all K_1*...*K_n cells counted.
    """
    n = len(sizes)
    total: np.ndarray | int = 1
    full = int(np.prod(pool))
    for a, (w, k, s, d, o, (pb, pa)) in enumerate(zip(sizes, pool, strides, dilation, outs, pads,
                                                       strict=True)):
        p = np.arange(o)[:, None] * s + np.arange(k)[None, :] * d - pb
        lo, hi = (-pb, w + pa) if count_include_pad else (0, w)
        c = ((p >= lo) & (p < hi)).sum(axis=1)
        shape = [1] * (n + 2)
        shape[a + 1] = o
        total = total * c.reshape(shape)
    if isinstance(total, np.ndarray) and np.all(total == full):
        return full
    return total


def _divide_by_count(a: np.ndarray, count: np.ndarray | int) -> np.ndarray:
    """a / count in place; a window made only of padding averages to 0."""
    if isinstance(count, int):
        a *= a.dtype.type(1.0 / count)
        return a
    a *= np.where(count > 0, 1.0 / np.maximum(count, 1), 0.0).astype(a.dtype)
    return a


def avg_pool_forward(x: np.ndarray, pool: Sequence[int], strides: Sequence[int] | None = None,
                     padding: Any = "valid", dilation: Sequence[int] | None = None,
                     ceil_mode: bool = False, count_include_pad: bool = False) -> np.ndarray:
    """y[n, o, c] = sum over the window taps of x_pad[n, o*S + k*D, c] / count[o] (pad = 0)."""
    pool, strides, dilation, (outs, pads, full) = _geometry(x.shape, pool, strides, padding,
                                                            dilation, ceil_mode)
    out = np.empty(_out_shape(x.shape, outs), dtype=x.dtype)
    if _pairs_2x2(pool, strides, dilation, full) and _native_avg_2x2(x, out):
        _native_per_batch(x.shape, lambda n0, n1: native_norm.avg_pool_2x2_forward(
            x, out, n0, n1))
        return out
    blocks = _blocks(pool, strides, dilation, full)
    # windows tiling the input without padding count all their cells
    count = int(np.prod(pool)) if blocks else avg_pool_count(
        x.shape[1:-1], pool, strides, dilation, outs, pads, count_include_pad)
    taps = list(_taps(x.shape, pool, strides, dilation, outs, full))
    if _rows_first(pool, strides, dilation, full, x.shape[-1], "avg"):
        def body_rows(n0: int, n1: int) -> None:
            ys = out[n0:n1]
            _reduce_rows_first(x[n0:n1], ys, pool, outs, np.add)
            _divide_by_count(ys, count)

        _per_batch(x.shape, x.itemsize, body_rows)
        return out

    def body(n0: int, n1: int) -> None:
        xs, ys = x[n0:n1], out[n0:n1]
        rest = taps
        if blocks and len(taps) > 1:
            np.add(xs[taps[0][1]], xs[taps[1][1]], out=ys)
            rest = taps[2:]
        elif blocks:
            np.copyto(ys, xs[taps[0][1]])
            rest = taps[1:]
        else:
            ys.fill(0)
        for osl, isl in rest:
            ys[osl] += xs[isl]
        _divide_by_count(ys, count)

    _per_batch(x.shape, x.itemsize, body)
    return out


def avg_pool_backward(g: np.ndarray, x_shape: tuple[int, ...], pool: Sequence[int],
                      strides: Sequence[int] | None = None, padding: Any = "valid",
                      dilation: Sequence[int] | None = None, ceil_mode: bool = False,
                      count_include_pad: bool = False) -> np.ndarray:
    """dL/dx[n, p, c] = sum over the windows o containing p of dL/dy[n, o, c] / count[o]."""
    x_shape = tuple(x_shape)
    pool, strides, dilation, (outs, pads, full) = _geometry(x_shape, pool, strides, padding,
                                                            dilation, ceil_mode)
    tiled = _blocks(pool, strides, dilation, full) and all(
        o * k == w for o, k, w in zip(outs, pool, x_shape[1:-1], strict=True))
    if (_pairs_2x2(pool, strides, dilation, full) and len(x_shape) == 4
            and g.shape == _out_shape(x_shape, outs)):
        gx = np.empty(x_shape, dtype=g.dtype)  # the C kernel writes every cell
        if _native_avg_2x2(gx, g):
            _native_per_batch(x_shape, lambda n0, n1: native_norm.avg_pool_2x2_backward(
                g, gx, n0, n1))
            return gx
    gx = (np.empty if tiled else np.zeros)(x_shape, dtype=g.dtype)
    if _rows_first(pool, strides, dilation, full):
        scale = g.dtype.type(1.0 / int(np.prod(pool)))
        (kh, kw), (ho, wo) = pool, outs
        w, c = x_shape[2], x_shape[3]

        def body_rows(n0: int, n1: int) -> None:
            # one window row of dL/dx, g / (kh*kw) repeated kw times per window (np.repeat
            # copies C-value chunks, faster than a broadcast), then copied into the kh
            # image rows of every window (contiguous rows of Wo*kw*C)
            n = n1 - n0
            row = np.repeat(g[n0:n1] * scale, kw, axis=2) if kw > 1 else g[n0:n1] * scale
            gx4 = gx[n0:n1, :ho * kh].reshape(n, ho, kh, w * c)
            np.copyto(gx4[:, :, :, :wo * kw * c], row.reshape(n, ho, 1, wo * kw * c))

        _per_batch(x_shape, g.itemsize, body_rows)
        return gx
    if _blocks(pool, strides, dilation, full):  # one broadcast write through a reshaped view
        n = len(pool)
        scale = g.dtype.type(1.0 / int(np.prod(pool)))
        axes = tuple(2 + 2 * i for i in range(n))

        def body_blocks(n0: int, n1: int) -> None:
            view = _block_view(gx[n0:n1], pool, outs)
            np.multiply(np.expand_dims(g[n0:n1], axes), scale, out=view)

        _per_batch(x_shape, g.itemsize, body_blocks)
        return gx
    count = avg_pool_count(x_shape[1:-1], pool, strides, dilation, outs, pads, count_include_pad)
    disjoint = _disjoint(pool, strides, dilation)
    taps = list(_taps(x_shape, pool, strides, dilation, outs, full))

    def body(n0: int, n1: int) -> None:
        gs = _divide_by_count(g[n0:n1].copy(), count)
        gxs = gx[n0:n1]
        for osl, isl in taps:
            if disjoint:
                gxs[isl] = gs[osl]
            else:
                gxs[isl] += gs[osl]

    _per_batch(x_shape, g.itemsize, body)
    return gx


# ----- global pooling ---------------------------------------------------------------------------
def global_avg_pool_forward(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """y[n, c] = mean over every spatial position p of x[n, p, c]."""
    return x.mean(axis=tuple(range(1, x.ndim - 1)), keepdims=keepdims)


def global_avg_pool_backward(g: np.ndarray, x_shape: tuple[int, ...], keepdims: bool = False
                             ) -> np.ndarray:
    """dL/dx[n, p, c] = dL/dy[n, c] / (number of spatial positions)."""
    x_shape = tuple(x_shape)
    size = int(np.prod(x_shape[1:-1]))
    g = g.reshape(x_shape[0], *([1] * (len(x_shape) - 2)), x_shape[-1])
    return np.broadcast_to(g * g.dtype.type(1.0 / size), x_shape).copy()


def global_max_pool_forward(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """y[n, c] = max over every spatial position p of x[n, p, c]."""
    return x.max(axis=tuple(range(1, x.ndim - 1)), keepdims=keepdims)


def global_max_pool_backward(g: np.ndarray, x: np.ndarray, keepdims: bool = False
                             ) -> np.ndarray:
    """dL/dx[n, p, c] = dL/dy[n, c] at the first arg-max p of x[n, :, c], else 0."""
    n, c = x.shape[0], x.shape[-1]
    flat = x.reshape(n, -1, c)
    first = flat.argmax(axis=1)  # (N, C), first occurrence on ties
    hit = np.arange(flat.shape[1])[None, :, None] == first[:, None, :]
    return (hit * g.reshape(n, 1, c)).reshape(x.shape)
