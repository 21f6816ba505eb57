"""Convolution kernels, channels-last: N-d convolution (groups, dilation), depthwise, separable
and transposed convolution, each with its backward pass.

Notation (seeds, extended to N spatial axes, stride S, dilation D, padding P_before):

    forward  Z[n, o, k] = sum_{t, c} X[n, o*S + t*D - P, c] * K[t, c, k] + b[k]
    dX       dX[n, i, c] = sum_{o, t: o*S + t*D - P = i} sum_k dZ[n, o, k] * K[t, c, k]
             (the seeds' "full convolution of the output error, dilated by the stride and
             padded, with the spatially flipped kernel")
    dK       dK[t, c, k] = sum_{n, o} dZ[n, o, k] * X[n, o*S + t*D - P, c]
    db       db[k] = sum_{n, o} dZ[n, o, k]

Implementation (im2col + GEMM, channels-last, block by block over the batch):

- ``im2col`` gathers, for every output position, the T = prod(K) input pixels its window
  covers into ``cols`` of shape (N, *O, G, T, C_in/G): the input is zero-padded once and a
  strided window view of it is copied in one pass (sequential writes; measured ~2x faster
  than one strided copy per tap). With 1-4 input channels (images) the copy is tap-major,
  cols^T of shape (T*C, M): whole rows of pixels per copy instead of runs of K_W*C values.
- The kernels never build the whole ``cols`` (9x the input for a 3x3 kernel): the batch is
  cut into blocks (:data:`BLOCK_BYTES`) whose im2col matrix stays in cache between the copy
  that writes it and the GEMM that reads it, and the blocks are shared by the kernel threads
  (:mod:`.parallel`; each GEMM on one BLAS thread).
- forward: per block one GEMM ``cols (M_b, T*C) @ K (T*C, C_out)`` written straight into Z's
  rows; for groups a batched GEMM over the group axis. groups == C_in (depthwise as groups)
  goes to the direct depthwise kernel instead.
- dK: per block ``cols^T @ dZ`` with the block's im2col rebuilt (cheaper than keeping a 9x
  copy of x from the forward pass), the blocks' partial sums added in block order; db: a GEMV
  with a ones vector.
- dX, two algorithms (``conv_input_grad``), also per block: at stride 1, the seeds' full
  convolution: dZ padded by E-1-P (E = D*(K-1)+1) and convolved with the flipped,
  channel-swapped kernel (an im2col copy + one GEMM); otherwise (or when dZ has more channels
  than X, where the im2col of dZ would be the larger matrix) ``dcols = dZ @ K^T`` followed by
  ``col2im``, T strided in-place adds into dX (no ``np.add.at``; tap-major dcols for up to 16
  channels). Timings and what was tried: bench/RESULTS.md.

Optional native helper (:mod:`.native`, ``_native.c``, built by ``pip install`` when a C
compiler is there; ``CNNKIT_NATIVE=0`` switches it off): float32 2-D convolutions with
groups 1 (not 1x1) run forward, dK and dX as direct convolutions in C, register-blocked tiles
over a zero-padded copy of each image (no im2col matrix), or for 3x3 stride-1 layers with 16+
channels forward, dX (and dK from 32 channels) by Winograd F(2x2, 3x3) / F(3x3, 2x2) (4
instead of 9 multiply-adds per output);
batch blocks shared by the kernel threads, dK's partial sums added in block order; batches
of fewer than NATIVE_BLOCKS images in row pieces on the C library's own spinning thread pool
(batch-1 latency, :func:`_pool_pieces`); only where they measured faster
(:func:`_native_wins`, :func:`_native_dx_ok`, :func:`_use_winograd`). The checks are cached
per call signature (:func:`_native_plan`). float32 2-D depthwise convolutions with
multiplier 1 run forward, dX and dK as direct C kernels too (:func:`_native_depthwise`).
float64 and everything else stay on the NumPy path above, which gives the same results within
float32 rounding.

Transposed convolution is exactly the input gradient of a convolution, so its forward is
``conv_input_grad`` and its backward is a convolution forward (for dX) and the convolution
weight gradient with the roles of input and output error swapped (for dK).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import native, parallel
from .padding import Pads, output_size, resolve_padding, same_padding

Ints = Sequence[int]
# Per spatial axis and per tap index along it: (first output position, end output position,
# first input position) of the output box whose window tap lands inside the input.
_AxisRanges = list[tuple[int, int, int]]


# ----------------------------------------------------------------------------------------
# geometry helpers
# ----------------------------------------------------------------------------------------
def conv_output_sizes(sizes: Ints, ksize: Ints, strides: Ints, pads: Pads, dilation: Ints,
                      what: str = "input") -> tuple[int, ...]:
    """Output size per axis: floor((W + P_b + P_a - D*(K-1) - 1) / S) + 1 (must be >= 1)."""
    return tuple(output_size(w, k, s, d, p, what)
                 for w, k, s, d, p in zip(sizes, ksize, strides, dilation, pads, strict=True))


def _axis_ranges(size_in: int, size_out: int, k: int, s: int, d: int, pb: int) -> _AxisRanges:
    """For each tap t: output positions o in [lo, hi) read input o*s + t*d - pb in range."""
    out = []
    for t in range(k):
        off = t * d - pb  # input index read by output position 0
        lo = 0 if off >= 0 else (-off + s - 1) // s  # smallest o with o*s + off >= 0
        last = size_in - 1 - off  # largest o has o*s <= last
        hi = last // s + 1 if last >= 0 else 0
        lo = min(lo, size_out)
        hi = max(min(hi, size_out), lo)
        out.append((lo, hi, lo * s + off))
    return out


def _tap_boxes(in_sizes: Ints, out_sizes: Ints, ksize: Ints, strides: Ints, pads: Pads,
               dilation: Ints) -> list[tuple[int, tuple, tuple, list]]:
    """Per kernel tap (row-major over the kernel axes): its flat index, the output-box
    slices, the matching strided input slices (or None when the box is empty) and the
    border (axis, lo, hi) the box leaves uncovered."""
    ranges = [_axis_ranges(w, o, k, s, d, p[0])
              for w, o, k, s, d, p in zip(in_sizes, out_sizes, ksize, strides, dilation, pads,
                                          strict=True)]
    boxes = []
    for ti, tap in enumerate(itertools.product(*(range(k) for k in ksize))):
        dst, src, border, empty = [], [], [], False
        for a, t in enumerate(tap):
            lo, hi, start = ranges[a][t]
            if hi <= lo:
                empty = True
                break
            dst.append(slice(lo, hi))
            src.append(slice(start, start + (hi - lo - 1) * strides[a] + 1, strides[a]))
            border.append((lo, hi))
        if empty:
            boxes.append((ti, None, None, None))
        else:
            boxes.append((ti, tuple(dst), tuple(src), border))
    return boxes


def _is_depthwise(x_shape: tuple[int, ...], groups: int) -> bool:
    """groups == C_in > 1: every group holds one input channel (depthwise as groups), which
    the direct depthwise kernel does faster than a batched GEMM of C_in tiny matrices."""
    return groups > 1 and groups == x_shape[-1]


def _is_pointwise(ksize: Ints, strides: Ints, pads: Pads, in_sizes: Ints,
                  out_sizes: Ints) -> bool:
    return (all(k == 1 for k in ksize) and all(s == 1 for s in strides)
            and all(p == (0, 0) for p in pads) and tuple(in_sizes) == tuple(out_sizes))


# ----------------------------------------------------------------------------------------
# im2col / col2im
# ----------------------------------------------------------------------------------------
def pad_spatial(x: np.ndarray, pads: Pads) -> np.ndarray:
    """Zero-pad (or, for negative amounts, crop) the spatial axes of a channels-last array."""
    if all(p == (0, 0) for p in pads):
        return x
    crop = tuple(slice(max(-b, 0), x.shape[1 + a] - max(-e, 0))
                 for a, (b, e) in enumerate(pads))
    x = x[(slice(None), *crop)]
    grow = [(max(b, 0), max(e, 0)) for b, e in pads]
    if all(p == (0, 0) for p in grow):
        return x
    xp = np.zeros((x.shape[0], *(w + b + e for w, (b, e) in zip(x.shape[1:-1], grow,
                                                                  strict=True)), x.shape[-1]),
                  dtype=x.dtype)
    xp[(slice(None), *(slice(b, b + w) for w, (b, _) in zip(x.shape[1:-1], grow, strict=True)))
       ] = x
    return xp


def window_view(xp: np.ndarray, ksize: Ints, strides: Ints, dilation: Ints, out_sizes: Ints,
                groups: int = 1) -> np.ndarray:
    """Read-only strided view V[n, *o, g, *t, c] = XP[n, o*S + t*D, g*Cg + c] of an already
    padded array (no copy)."""
    nd = len(ksize)
    st = xp.strides
    cg = xp.shape[-1] // groups
    shape = (xp.shape[0], *out_sizes, groups, *ksize, cg)
    strides = (st[0], *(st[1 + a] * strides[a] for a in range(nd)), cg * st[-1],
               *(st[1 + a] * dilation[a] for a in range(nd)), st[-1])
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def im2col(x: np.ndarray, ksize: Ints, strides: Ints, pads: Pads, dilation: Ints,
           out_sizes: Ints, groups: int = 1) -> np.ndarray:
    """cols[n, *o, g, t, c] = X[n, o*S + t*D - P, g*Cg + c] (0 outside X), shape
    (N, *O, G, T, Cg): pad once, then one contiguous copy of the strided window view (the
    copy writes ``cols`` sequentially, which measured ~2x faster than one copy per tap)."""
    n, cg = x.shape[0], x.shape[-1] // groups
    if _is_pointwise(ksize, strides, pads, x.shape[1:-1], out_sizes):
        return x.reshape(n, *out_sizes, groups, 1, cg)
    view = window_view(pad_spatial(x, pads), ksize, strides, dilation, out_sizes, groups)
    cols = np.empty(view.shape, dtype=x.dtype)
    cols[...] = view
    return cols.reshape(n, *out_sizes, groups, int(np.prod(ksize)), cg)


def col2im(dcols: np.ndarray, x_shape: tuple[int, ...], ksize: Ints, strides: Ints,
           pads: Pads, dilation: Ints, groups: int = 1) -> np.ndarray:
    """Adjoint of :func:`im2col`: dX[n, o*S + t*D - P, g*Cg + c] += dcols[n, *o, g, t, c],
    as one strided in-place add per tap."""
    nd = len(x_shape) - 2
    out_sizes = dcols.shape[1:1 + nd]
    in_sizes = x_shape[1:-1]
    cg = x_shape[-1] // groups
    if _is_pointwise(ksize, strides, pads, in_sizes, out_sizes):
        return dcols.reshape(x_shape)
    dx = np.zeros(x_shape, dtype=dcols.dtype)
    dxg = dx.reshape(*x_shape[:-1], groups, cg)
    lead = (slice(None),)
    for ti, dst, src, _ in _tap_boxes(in_sizes, out_sizes, ksize, strides, pads, dilation):
        if dst is not None:
            dxg[lead + src] += dcols[..., ti, :][lead + dst]
    return dx


# ----------------------------------------------------------------------------------------
# GEMM on cols (groups as a batch axis)
# ----------------------------------------------------------------------------------------
def _kernel_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """(*K, Cg, C_out) -> (G, T*Cg, C_out/G); output channel g*Og + j belongs to group g."""
    nd = w.ndim - 2
    taps = int(np.prod(w.shape[:nd]))
    cg, cout = w.shape[-2], w.shape[-1]
    if groups == 1:
        return w.reshape(1, taps * cg, cout)
    og = cout // groups
    return w.reshape(taps, cg, groups, og).transpose(2, 0, 1, 3).reshape(groups, taps * cg, og)


def _kernel_from_matrix(wm: np.ndarray, w_shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`_kernel_matrix`."""
    groups = wm.shape[0]
    if groups == 1:
        return wm.reshape(w_shape)
    taps = int(np.prod(w_shape[:-2]))
    cg, og = w_shape[-2], wm.shape[-1]
    return wm.reshape(groups, taps, cg, og).transpose(1, 2, 0, 3).reshape(w_shape)


def _cols_times_kernel(cols: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """(N, *O, G, T, Cg) x (G, T*Cg, Og) -> (M, G*Og) with M = N*prod(O)."""
    groups, tc, og = wm.shape
    c2 = cols.reshape(-1, groups, tc)
    if groups == 1:
        return c2[:, 0, :] @ wm[0]
    out = np.empty((c2.shape[0], groups, og), dtype=cols.dtype)
    np.matmul(c2.transpose(1, 0, 2), wm, out=out.transpose(1, 0, 2))
    return out.reshape(c2.shape[0], groups * og)


def _error_times_kernel_t(g2: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """dcols = dZ @ K^T per group: (M, G*Og) x (G, T*Cg, Og) -> (M, G, T*Cg)."""
    groups, tc, og = wm.shape
    if groups == 1:
        return (g2 @ wm[0].T)[:, None, :]
    out = np.empty((g2.shape[0], groups, tc), dtype=g2.dtype)
    g3 = g2.reshape(-1, groups, og)
    np.matmul(g3.transpose(1, 0, 2), wm.transpose(0, 2, 1), out=out.transpose(1, 0, 2))
    return out


def _cols_t_times_error(cols: np.ndarray, g2: np.ndarray, groups: int) -> np.ndarray:
    """dK matrix = cols^T @ dZ per group: -> (G, T*Cg, Og) (a 2-D ``cols`` is the tap-major
    cols^T of one group)."""
    m = g2.shape[0]
    if cols.ndim == 2:
        return (cols @ g2)[None]
    c2 = cols.reshape(m, groups, -1)
    if groups == 1:
        return (c2[:, 0, :].T @ g2)[None]
    g3 = g2.reshape(m, groups, -1)
    return np.matmul(c2.transpose(1, 2, 0), g3.transpose(1, 0, 2))


# ----------------------------------------------------------------------------------------
# batch blocks: im2col matrices that stay in cache
# ----------------------------------------------------------------------------------------
# Target size (bytes) of one block's im2col matrix. Measured on the project's machine: a copy
# or a GEMM over arrays that fit the caches runs 2-3x faster than over arrays that do not (the
# whole im2col matrix of a 32x32x16 layer at batch 128 is 75 MB), so the batch is cut into
# blocks whose im2col matrix is about this size, each copied and multiplied while it is hot.
# Tests lower it to run several blocks on small inputs.
BLOCK_BYTES = 4 << 20


# Work of at least this many bytes is cut into at least MIN_BLOCKS blocks, so that every
# kernel thread gets some (the cut depends on sizes only, never on the thread count).
MIN_BLOCKS, MIN_BLOCKS_BYTES = 4, 1 << 20


def batch_blocks(n: int, item_bytes: int, target: int | None = None) -> list[tuple[int, int]]:
    """Split range(n) into about equal contiguous blocks of at most ``target // item_bytes``
    items (at least one), and into at least MIN_BLOCKS blocks when there are
    MIN_BLOCKS_BYTES or more: [(start, stop), ...]; ``target`` defaults to BLOCK_BYTES. An
    empty batch is one empty block [(0, 0)] (the kernels then return empty arrays)."""
    per = max(1, (BLOCK_BYTES if target is None else target) // max(int(item_bytes), 1))
    k = max(1, -(-n // per))
    if n * int(item_bytes) >= MIN_BLOCKS_BYTES:
        k = max(k, min(n, MIN_BLOCKS))
    bounds = [n * i // k for i in range(k + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(k)]


def _crop_grow(sizes: Ints, pads: Pads) -> tuple[tuple[slice, ...], list[tuple[int, int]]]:
    """Negative pads crop: (crop slices of the spatial axes, the zero padding left to add)."""
    crop = tuple(slice(max(-b, 0), w - max(-e, 0)) for w, (b, e) in zip(sizes, pads,
                                                                          strict=True))
    return crop, [(max(b, 0), max(e, 0)) for b, e in pads]


def _zero_border(buf: np.ndarray, grow: Sequence[tuple[int, int]], first_axis: int = 1
                 ) -> None:
    """Zero the (before, after) border slabs of ``buf``'s spatial axes (from ``first_axis``)."""
    for a, (b, e) in enumerate(grow):
        axis = first_axis + a
        idx = [slice(None)] * buf.ndim
        if b:
            idx[axis] = slice(0, b)
            buf[tuple(idx)] = 0
        if e:
            idx[axis] = slice(buf.shape[axis] - e, buf.shape[axis])
            buf[tuple(idx)] = 0


def _pad_buffer(block_shape: tuple[int, ...], pads: Pads, dtype: Any) -> np.ndarray | None:
    """A buffer for one padded block with a zero border (None when the pads only crop).
    Blocks write only its interior, so the border stays zero from block to block."""
    crop, grow = _crop_grow(block_shape[1:-1], pads)
    if not any(b or e for b, e in grow):
        return None
    sizes = [s.stop - s.start + b + e for s, (b, e) in zip(crop, grow, strict=True)]
    buf = np.empty((block_shape[0], *sizes, block_shape[-1]), dtype=dtype)
    _zero_border(buf, grow)
    return buf


def _padded_block(xb: np.ndarray, pads: Pads, buf: np.ndarray | None) -> np.ndarray:
    """xb zero-padded (negative pads crop) inside ``buf`` (from :func:`_pad_buffer`)."""
    crop, grow = _crop_grow(xb.shape[1:-1], pads)
    xb = xb[(slice(None), *crop)]
    if buf is None:
        return xb
    dst = buf[:xb.shape[0]]
    dst[(slice(None), *(slice(b, b + w) for w, (b, _) in zip(xb.shape[1:-1], grow,
                                                             strict=True)))] = xb
    return dst


def _tap_major(channels: int, groups: int) -> bool:
    """Few input channels (an image's 1 or 3): im2col runs faster tap-major, cols^T of shape
    (T*C, M), whose copy moves whole rows of pixels instead of runs of K_W*C values
    (measured 2-5x faster for C <= 3; the GEMM then reads cols^T transposed)."""
    return groups == 1 and channels <= 4


def _im2col_block(xb: np.ndarray, ksize: Ints, strides: Ints, pads: Pads, dilation: Ints,
                  out_sizes: Ints, groups: int, pad_buf: np.ndarray | None,
                  scratch: np.ndarray) -> np.ndarray:
    """:func:`im2col` of one batch block, written into the flat ``scratch``: (M_b, G, T*Cg),
    or, tap-major (:func:`_tap_major`), the 2-D cols^T (T*C, M_b)."""
    view = window_view(_padded_block(xb, pads, pad_buf), ksize, strides, dilation, out_sizes,
                       groups)
    if _tap_major(xb.shape[-1], groups):
        nd = len(ksize)
        perm = (*range(nd + 2, 2 * nd + 3), *range(nd + 2))
        vt = view.transpose(perm)
        cols = scratch[:vt.size].reshape(vt.shape)
        np.copyto(cols, vt)
        return cols.reshape(int(np.prod(ksize)) * xb.shape[-1], -1)
    cols = scratch[:view.size].reshape(view.shape)
    np.copyto(cols, view)
    return cols.reshape(xb.shape[0] * int(np.prod(out_sizes)), groups, -1)


def _gemm_into(c3: np.ndarray, wm: np.ndarray, out: np.ndarray) -> None:
    """out (M, G*Og) = per group c3 (M, G, T*Cg) @ wm (G, T*Cg, Og); a 2-D c3 is the
    tap-major cols^T (T*C, M) of one group."""
    groups, _, og = wm.shape
    if c3.ndim == 2:
        np.matmul(c3.T, wm[0], out=out)
    elif groups == 1:
        np.matmul(c3[:, 0, :], wm[0], out=out)
    else:
        np.matmul(c3.transpose(1, 0, 2), wm,
                  out=out.reshape(out.shape[0], groups, og).transpose(1, 0, 2))


def _error_times_kernel_t_into(g2: np.ndarray, wm: np.ndarray, out: np.ndarray) -> None:
    """dcols (M, G, T*Cg) = per group dZ (M, G*Og) @ K^T."""
    groups, _, og = wm.shape
    if groups == 1:
        np.matmul(g2, wm[0].T, out=out[:, 0, :])
    else:
        np.matmul(g2.reshape(-1, groups, og).transpose(1, 0, 2), wm.transpose(0, 2, 1),
                  out=out.transpose(1, 0, 2))


def _col2im_into(dcols: np.ndarray, dxg: np.ndarray, boxes: list) -> None:
    """dX[n, o*S + t*D - P, g, c] += dcols[n, *o, g, t, c], one strided add per tap, into
    the zeroed dxg of shape (N, *S, G, Cg)."""
    lead = (slice(None),)
    for ti, dst, src, _ in boxes:
        if dst is not None:
            dxg[lead + src] += dcols[..., ti, :][lead + dst]


def _flip_pads(ksize: Ints, pads: Pads, dilation: Ints, x_sizes: Ints, o_sizes: Ints) -> Pads:
    """Pads of dZ for the full convolution (stride 1): E-1-P_before before, the rest after."""
    out = []
    for a, k in enumerate(ksize):
        eff = dilation[a] * (k - 1) + 1
        before = eff - 1 - pads[a][0]
        out.append((before, x_sizes[a] - o_sizes[a] - before + eff - 1))
    return tuple(out)


def _dx_method(method: str, strides: Ints, x_shape: tuple[int, ...],
               g_shape: tuple[int, ...]) -> str:
    """'flip' or 'col2im' (see :func:`conv_input_grad`)."""
    stride1 = all(s == 1 for s in strides)
    if method == "auto":
        flip_size = int(np.prod(x_shape[1:-1])) * g_shape[-1]
        col_size = int(np.prod(g_shape[1:-1])) * x_shape[-1]
        return "flip" if stride1 and flip_size <= col_size else "col2im"
    if method == "flip" and not stride1:
        raise ValueError("method 'flip' needs stride 1")
    return method


# ----------------------------------------------------------------------------------------
# the optional native helper (direct 2-D convolution in C, :mod:`.native`)
# ----------------------------------------------------------------------------------------
# Batches with fewer multiply-adds than this run the native kernel in one call (no hand-over);
# larger ones are cut into NATIVE_BLOCKS batch blocks shared by the kernel threads (a fixed
# cut, so dK's partial sums do not depend on the thread count). Measured on LeNet-5's training
# step (batch 128, 15-31M multiply-adds per conv pass; whole steps alternated, medians of 20):
# 2M 8.06-8.11 ms, 16M 7.93, 32M 7.64, 64M 7.32 ms; in a whole step the worker's wake-up and
# the weak scaling of these kernels over the VM's two cores outweighed the second thread.
# SimpleCNN (W1, two 29M passes) about equal (medians 26.1-27.1 vs 26.8 ms, noisy).
NATIVE_MIN_PARALLEL_MACS = 1 << 25
NATIVE_BLOCKS = 8


def _use_native(x_shape: tuple[int, ...], dtypes: Sequence[Any], w: np.ndarray, groups: int,
                strides: Ints, pads: Pads, out_sizes: Ints) -> bool:
    """The C kernels take float32 2-D convolutions with groups == 1 (1x1 convolutions stay a
    plain GEMM); ``dtypes``: those of all the arrays involved."""
    return (len(x_shape) == 4 and groups == 1 and all(d == np.float32 for d in dtypes)
            and w.dtype == np.float32
            and not _is_pointwise(w.shape[:2], strides, pads, x_shape[1:-1], out_sizes)
            and native.available())


def _native_wins(w_shape: tuple[int, ...]) -> bool:
    """Forward and dK by the C kernels: measured faster than im2col + GEMM for every layer of
    LeNet-5, the SimpleCNN, ResNet-20 and MobileNet v2's first convolution (6 to 64 output
    channels; 1.2-3.3x, bench/RESULTS.md), and with fewer output channels when the kernel is
    deep (K_H*K_W*C_in >= 64: e.g. 3x3x16 -> 3 2.1x); slower for a 3x3x1 -> 1 or 3 kernel (most
    lanes of the 8-wide tiles are padding there, and the GEMM is tiny)."""
    return w_shape[-1] >= 6 or int(np.prod(w_shape[:-1])) >= 64


def _native_dx_ok(strides: Ints, c_in: int, c_out: int) -> bool:
    """dX by the C kernels: at stride 1 a direct convolution of the padded dZ with the
    flipped kernel, whose output channels are X's (measured slower than col2im only for an
    image input (1 channel) with many or one output channels: 28x28x1 -> 32 9.2 vs 4.8 ms,
    -> 1 1.1 vs 0.5 ms; faster for -> 3 and -> 6); at larger strides
    the scatter kernel, measured faster from 16 input channels on (8.7 -> 5.5 ms for ResNet-20's
    32x32x16 -> 32 stride 2) and much slower for 1."""
    if all(s == 1 for s in strides):
        return c_in >= 4 or 3 <= c_out <= 8
    return c_in >= 8


# Winograd F(2x2, 3x3) (``native.forward_winograd``) for 3x3 stride-1 convolutions, forward
# and dX (the flipped-kernel forward), with at least this many input and output channels.
# Measured against the direct C kernel (batch 128, 2 threads, min ms): 32x32x16 -> 16 3.3 ->
# 3.2, 16x16x32 -> 32 3.2 -> 2.3, 8x8x64 -> 64 3.3 -> 2.5, 14x14x32 -> 64 4.8 -> 3.2.
WINOGRAD_MIN_CHANNELS = 16
# dK by Winograd F(3x3, 2x2) (``native.kernel_grad_winograd``) from this many channels on:
# measured (one thread, batch 64) 16x16x32 -> 32 3.0 -> 2.2 ms, 8x8x64 -> 64 3.7 -> 2.4 ms,
# 14x14x32 -> 64 5.0 -> 2.9 ms, but 32x32x16 -> 16 3.0 -> 3.2 ms.
WINOGRAD_DK_MIN_CHANNELS = 32
# ... and images of at most this many output pixels (it transforms a whole image at a time:
# larger ones were not measured).
WINOGRAD_DK_MAX_PIXELS = 32 * 32
# Winograd forward for batches below WINOGRAD_NARROW_MIN_BATCH only for outputs at least
# WINOGRAD_MIN_WIDTH wide: measured against the direct kernel (one thread, min us per call of
# 1 / 4 images, kernel transform included): 8x8x64 -> 64 54 / 180 direct vs 78 / 206
# Winograd, 14x14x32 -> 32 42 / 140 vs 39 / 103, 16x16x32 -> 32 52 / 181 vs 45 / 130,
# 32x32x16 -> 16 53 / 187 vs 53 / 176; through the dispatch, 8x8x64 -> 64 at batch 2 / 4 /
# 8 / 32 / 128 (ms): 0.118 / 0.200 / 0.476 / 1.50 / 5.75 direct vs 0.126 / 0.206 / 0.436 /
# 1.18 / 4.34 Winograd.
WINOGRAD_MIN_WIDTH = 12
WINOGRAD_NARROW_MIN_BATCH = 8


def _winograd(ksize: Ints, strides: Ints, dilation: Ints, c_in: int, c_out: int) -> bool:
    """Whether the native forward of this convolution goes by Winograd F(2x2, 3x3)."""
    return (tuple(ksize) == (3, 3) and all(s == 1 for s in strides)
            and all(d == 1 for d in dilation) and min(c_in, c_out) >= WINOGRAD_MIN_CHANNELS)


def _native_blocks(n: int, macs: int) -> list[tuple[int, int]]:
    """Batch blocks for the native kernels: one for small jobs, else NATIVE_BLOCKS."""
    if macs < NATIVE_MIN_PARALLEL_MACS:
        return [(0, n)]
    return parallel.split(n, NATIVE_BLOCKS)


# Forward jobs (and stride-1 dX) of a small batch (fewer images than NATIVE_BLOCKS) with at
# least NATIVE_MIN_POOL_MACS multiply-adds cut each image's output rows into pieces run by the
# C library's own spinning thread pool (``native.forward_pieces``): a hand-over to the kernel
# threads of :mod:`.parallel` costs ~40-70 us on the project's machine (a sleeping thread is
# woken), as much as a whole batch-1 convolution, the spinning pool's well under 1 us while
# its threads are awake. Measured at batch 1 (one call vs two pieces on two threads, min us):
# 28x28x1 -> 6 5x5 15.4 vs 12.6, 32x32x3 -> 16 19.4 vs 15.0, 32x32x16 -> 16 54 vs 32,
# 8x8x64 -> 64 56 vs 36. Below ~1M multiply-adds the few microseconds saved were lost in the
# noise of whole-model timings (LeNet-5 at batch 1), so those jobs stay on one thread.
NATIVE_MIN_POOL_MACS = 1 << 20


def _pool_pieces(n: int, macs: int) -> int:
    """Row pieces per image for the library's pool (0: use batch blocks instead)."""
    if n >= NATIVE_BLOCKS or macs < NATIVE_MIN_POOL_MACS:
        return 0
    threads = parallel.pieces_for(parallel.MIN_PARALLEL_BYTES, 1)  # 1 inside a kernel thread
    if threads <= 1:
        return 0
    return threads if n == 1 else max(1, -(-2 * threads // n))


def _use_winograd(w_shape: tuple[int, ...], strides: Ints, dilation: Ints, n: int,
                  out_w: int) -> bool:
    """Whether the native forward of n images goes by Winograd F(2x2, 3x3)
    (:func:`_winograd`; small batches only for outputs at least WINOGRAD_MIN_WIDTH wide)."""
    return (_winograd(w_shape[:2], strides, dilation, w_shape[-2], w_shape[-1])
            and (out_w >= WINOGRAD_MIN_WIDTH or n >= WINOGRAD_NARROW_MIN_BATCH))


def _run_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, z: np.ndarray,
                 strides: Ints, dilation: Ints, tl: tuple[int, int],
                 wino: bool | None = None) -> None:
    """z = conv(x, w) + b by the C kernels (direct or, where :func:`_use_winograd` (or
    ``wino``), Winograd F(2x2, 3x3)): small batches in row pieces on the library's pool
    (:func:`_pool_pieces`), else batch blocks (:func:`_native_blocks`) shared by the kernel
    threads."""
    if wino is None:
        wino = _use_winograd(w.shape, strides, dilation, x.shape[0], z.shape[2])
    u = native.winograd_kernel(w) if wino else None
    st, dl = tuple(strides), tuple(dilation)
    macs = z.size * w.size // w.shape[-1]
    per = _pool_pieces(x.shape[0], macs)
    if per:
        native.forward_pieces(x, w, u, b, z, st, dl, tl, per, parallel.get_num_threads())
        return
    blocks = _native_blocks(x.shape[0], macs)

    def body(i: int, _: Any) -> None:
        n0, n1 = blocks[i]
        if u is not None:
            native.forward_winograd(x[n0:n1], u, w.shape[-1], b, z[n0:n1], tl)
        else:
            native.forward(x[n0:n1], w, b, z[n0:n1], st, dl, tl)

    if len(blocks) == 1:
        body(0, None)
    else:
        parallel.run_blocks(len(blocks), body)


_Plan = tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int], bool]
_PLANS: dict[tuple, _Plan | None] = {}
_NO_PLAN = object()


def _native_plan(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints,
                 pads: Pads, dilation: Ints, groups: int) -> _Plan | None:
    """(output sizes, strides, dilation, top-left pads, Winograd?) when :func:`conv_forward`
    takes the native kernels for these shapes, dtypes and geometry, else None; cached per
    call signature (the checks cost ~10 us per call, as much as a small batch-1 kernel)."""
    key = (x.shape, w.shape, x.dtype, w.dtype, None if b is None else b.dtype, strides, pads,
           dilation, groups, WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_WIDTH,
           WINOGRAD_NARROW_MIN_BATCH)  # the tunables too (tests change them)
    try:
        plan = _PLANS.get(key, _NO_PLAN)
    except TypeError:  # lists among the arguments: no caching
        return None
    if plan is not _NO_PLAN:
        return plan  # type: ignore[return-value]
    plan = None
    if x.ndim == 4 and x.shape[0] > 0 and not _is_depthwise(x.shape, groups):
        out = conv_output_sizes(x.shape[1:-1], w.shape[:2], strides, pads, dilation)
        dtypes = (x.dtype,) if b is None else (x.dtype, b.dtype)
        if _native_wins(w.shape) and _use_native(x.shape, dtypes, w, groups, strides, pads,
                                                 out):
            plan = ((out[0], out[1]), (int(strides[0]), int(strides[1])),
                    (int(dilation[0]), int(dilation[1])), (pads[0][0], pads[1][0]),
                    _use_winograd(w.shape, strides, dilation, x.shape[0], out[1]))
    if len(_PLANS) >= 512:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _native_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints,
                    pads: Pads, dilation: Ints, out_sizes: Ints) -> np.ndarray:
    """:func:`conv_forward` by the C kernels (:func:`_run_forward`)."""
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    b = None if b is None else np.ascontiguousarray(b, dtype=np.float32)
    z = np.empty((x.shape[0], *out_sizes, w.shape[-1]), dtype=np.float32)
    _run_forward(x, w, b, z, strides, dilation, (pads[0][0], pads[1][0]))
    return z


def _use_rowrun(w_shape: tuple[int, ...], strides: Ints, dilation: Ints) -> bool:
    """dX by ``native.input_grad_rowrun`` (one vector of KW*Cin lanes per output pixel and
    kernel row) at stride 1 for few input channels (Cin <= 6, KW*Cin <= 32) and at most 16
    output channels. Measured against the flipped-kernel forward (one thread, min ms):
    LeNet-5's 10x10x16 -> 14x14x6 5x5 at batch 128 2.10 -> 1.23 (1.9 -> 0.87 alone), 'same'
    padded 14x14x6 -> 16 5x5 0.59 -> 0.58, 32x32x3 -> 16 3x3 1.12 -> 1.14, x4 1.09 -> 0.90;
    slower for 32x32x8 -> 16 3x3 (1.17 -> 2.0) and 32x32x6 -> 32 5x5 (5.2 -> 6.2)."""
    kw, cin, cout = w_shape[1], w_shape[2], w_shape[3]
    return (all(s == 1 for s in strides) and dilation[1] == 1 and cin <= 6 and cout <= 16
            and kw * cin <= native.ROWRUN_MAX)


def _native_input_grad(g: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...],
                       strides: Ints, pads: Pads, dilation: Ints) -> np.ndarray:
    """dX by the C kernels: stride 1 as the forward kernel on dZ padded by
    (E-1-P_before, ...) with :func:`flip_kernel` (Kf, (KH, KW, C_out, C_in)); else the
    scatter kernel (each output pixel's dZ . K[t] added into dX, tap by tap)."""
    g = np.ascontiguousarray(g)
    dx = np.empty(x_shape, dtype=np.float32)
    ksize = w.shape[:2]
    if _use_rowrun(w.shape, strides, dilation):
        blocks = _native_blocks(g.shape[0], g.size * w.size // w.shape[-1])
        wc = np.ascontiguousarray(w)

        def body_rows(i: int, _: Any) -> None:
            n0, n1 = blocks[i]
            native.input_grad_rowrun(g[n0:n1], wc, dx[n0:n1], tuple(strides), dilation[0],
                                     (pads[0][0], pads[1][0]))

        if len(blocks) == 1:
            body_rows(0, None)
        else:
            parallel.run_blocks(len(blocks), body_rows)
        return dx
    if all(s == 1 for s in strides):
        fp = _flip_pads(ksize, pads, dilation, x_shape[1:-1], g.shape[1:-1])
        _run_forward(g, flip_kernel(np.ascontiguousarray(w)), None, dx, (1, 1), dilation,
                     (fp[0][0], fp[1][0]))
        return dx
    blocks = _native_blocks(g.shape[0], g.size * w.size // w.shape[-1])
    wc = np.ascontiguousarray(w)
    tl = (pads[0][0], pads[1][0])

    def body(i: int, _: Any) -> None:
        n0, n1 = blocks[i]
        native.input_grad(g[n0:n1], wc, dx[n0:n1], tuple(strides), tuple(dilation), tl)

    parallel.run_blocks(len(blocks), body)
    return dx


def _native_kernel_grad(g: np.ndarray, x: np.ndarray, w_shape: tuple[int, ...],
                        strides: Ints, pads: Pads, dilation: Ints) -> np.ndarray:
    """dK by the C kernel (direct, or Winograd F(3x3, 2x2) for 3x3 stride-1 layers with
    WINOGRAD_DK_MIN_CHANNELS+ channels): one partial sum per batch block, added in block
    order."""
    g = np.ascontiguousarray(g)
    x = np.ascontiguousarray(x)
    blocks = _native_blocks(x.shape[0], g.size * int(np.prod(w_shape[:-1])))
    parts = [np.empty(w_shape, dtype=np.float32) for _ in blocks]
    tl = (pads[0][0], pads[1][0])
    wino = (_winograd(w_shape[:2], strides, dilation, w_shape[-2], w_shape[-1])
            and min(w_shape[-2:]) >= WINOGRAD_DK_MIN_CHANNELS
            and g.shape[1] * g.shape[2] <= WINOGRAD_DK_MAX_PIXELS)

    def body(i: int, _: Any) -> None:
        n0, n1 = blocks[i]
        if wino:
            native.kernel_grad_winograd(x[n0:n1], g[n0:n1], parts[i], tl)
        else:
            native.kernel_grad(x[n0:n1], g[n0:n1], parts[i], tuple(strides), tuple(dilation),
                               tl)

    parallel.run_blocks(len(blocks), body)
    dw = parts[0]
    for part in parts[1:]:
        dw += part
    return dw


# ----------------------------------------------------------------------------------------
# N-d convolution
# ----------------------------------------------------------------------------------------
def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints,
                 pads: Pads, dilation: Ints, groups: int = 1, keep_cols: bool = True
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Z[n, o, g*Og + k] = sum_{t, c} X[n, o*S + t*D - P, g*Cg + c] K[t, c, g*Og + k] + b.

    x (N, *spatial, C_in), w (*K, C_in/groups, C_out), b (C_out,) or None. The batch is cut
    into blocks (:data:`BLOCK_BYTES`), spread over the kernel threads (:mod:`.parallel`): per
    block one im2col copy and one GEMM written straight into Z's rows, plus the bias. Returns
    Z and, for a 1x1 convolution with ``keep_cols``, its im2col matrix (x itself) as the
    backward's cache for dK; otherwise None: the backward rebuilds the im2col blocks (cheaper
    than keeping a copy of x T times larger).
    """
    plan = _native_plan(x, w, b, strides, pads, dilation, groups) if native.available() \
        else None
    if plan is not None:  # the C kernels, with the checks below cached
        out, st, dl, tl, wino = plan
        z = np.empty((x.shape[0], *out, w.shape[-1]), dtype=np.float32)
        _run_forward(np.ascontiguousarray(x), np.ascontiguousarray(w),
                     None if b is None else np.ascontiguousarray(b), z, st, dl, tl, wino)
        return z, None
    nd = x.ndim - 2
    ksize = w.shape[:nd]
    if _is_depthwise(x.shape, groups):
        wd = w.reshape(*ksize, groups, w.shape[-1] // groups)
        return depthwise_conv_forward(x, wd, b, strides, pads, dilation), None
    out_sizes = conv_output_sizes(x.shape[1:-1], ksize, strides, pads, dilation)
    n, cout = x.shape[0], w.shape[-1]
    if n == 0:
        return np.empty((0, *out_sizes, cout), dtype=np.result_type(x, w)), None
    rows = int(np.prod(out_sizes))
    dtypes = (x.dtype,) if b is None else (x.dtype, b.dtype)
    if _native_wins(w.shape) and _use_native(x.shape, dtypes, w, groups, strides, pads,
                                          out_sizes):
        return _native_forward(x, w, b, strides, pads, dilation, out_sizes), None
    wm = _kernel_matrix(w, groups)
    z = np.empty((n, *out_sizes, cout), dtype=np.result_type(x, w))
    z2 = z.reshape(n * rows, cout)
    if _is_pointwise(ksize, strides, pads, x.shape[1:-1], out_sizes):
        cols = x.reshape(n, *out_sizes, groups, 1, x.shape[-1] // groups)
        x3 = x.reshape(n * rows, groups, -1)
        row_blocks = parallel.split(n * rows, parallel.pieces_for(x.nbytes + z.nbytes))

        def body_1x1(i: int, _: Any) -> None:
            r0, r1 = row_blocks[i]
            _gemm_into(x3[r0:r1], wm, z2[r0:r1])
            if b is not None:
                z2[r0:r1] += b
        parallel.run_blocks(len(row_blocks), body_1x1, blas=True)
        return z, (cols if keep_cols else None)
    taps = int(np.prod(ksize))
    blocks = batch_blocks(n, rows * taps * x.shape[-1] * x.itemsize)
    nb = max(e - s for s, e in blocks)

    def workspace() -> tuple[np.ndarray, np.ndarray | None]:
        return (np.empty(nb * rows * taps * x.shape[-1], dtype=x.dtype),
                _pad_buffer((nb, *x.shape[1:]), pads, x.dtype))

    def body(i: int, ws: tuple[np.ndarray, np.ndarray | None]) -> None:
        n0, n1 = blocks[i]
        c3 = _im2col_block(x[n0:n1], ksize, strides, pads, dilation, out_sizes, groups,
                           ws[1], ws[0])
        zb = z2[n0 * rows:n1 * rows]
        _gemm_into(c3, wm, zb)
        if b is not None:
            zb += b

    parallel.run_blocks(len(blocks), body, workspace, blas=True)
    return z, None


def flip_kernel(w: np.ndarray, groups: int = 1) -> np.ndarray:
    """The kernel of the seeds' full convolution for dX: spatially flipped, input and output
    channels swapped within each group. (*K, Cg, G*Og) -> (*K, Og, G*Cg) with
    Kf[t', j, g*Cg + c] = K[K-1-t', c, g*Og + j]."""
    nd = w.ndim - 2
    ksize, cg, cout = w.shape[:nd], w.shape[-2], w.shape[-1]
    og = cout // groups
    wr = w[(slice(None, None, -1),) * nd].reshape(*ksize, cg, groups, og)
    return np.ascontiguousarray(np.moveaxis(wr, (nd, nd + 2), (nd + 2, nd))
                                ).reshape(*ksize, og, groups * cg)


_Fill = Callable[[Any, int, int], None]


def _input_grad_blocks(g: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...],
                       strides: Ints, pads: Pads, dilation: Ints, groups: int, method: str,
                       nb: int) -> tuple[np.ndarray, Callable[[], Any], _Fill]:
    """(dX allocated, a workspace maker, fill(ws, n0, n1)) where ``fill`` computes dX's batch
    rows [n0, n1) by ``method`` with one thread's workspace for blocks of up to ``nb``."""
    nd = g.ndim - 2
    ksize = w.shape[:nd]
    x_sizes, o_sizes = tuple(x_shape[1:-1]), g.shape[1:-1]
    taps = int(np.prod(ksize))
    dtype = np.result_type(g, w)
    if method == "flip":
        fpads = _flip_pads(ksize, pads, dilation, x_sizes, o_sizes)
        wfm = _kernel_matrix(flip_kernel(w, groups), groups).astype(dtype, copy=False)
        dx = np.empty(x_shape, dtype=dtype)
        dx2 = dx.reshape(-1, x_shape[-1])
        xrows = int(np.prod(x_sizes))

        def ws_flip() -> tuple[np.ndarray, np.ndarray | None]:
            return (np.empty(nb * xrows * taps * g.shape[-1], dtype=g.dtype),
                    _pad_buffer((nb, *g.shape[1:]), fpads, g.dtype))

        def fill_flip(ws: tuple[np.ndarray, np.ndarray | None], n0: int, n1: int) -> None:
            c3 = _im2col_block(g[n0:n1], ksize, (1,) * nd, fpads, dilation, x_sizes, groups,
                               ws[1], ws[0])
            _gemm_into(c3, wfm, dx2[n0 * xrows:n1 * xrows])
        return dx, ws_flip, fill_flip
    wm = _kernel_matrix(w, groups).astype(dtype, copy=False)
    cg = x_shape[-1] // groups
    dx = np.empty(x_shape, dtype=dtype)
    dxg = dx.reshape(*x_shape[:-1], groups, cg)
    g2 = g.reshape(-1, g.shape[-1])
    orows = int(np.prod(o_sizes))
    boxes = _tap_boxes(x_sizes, o_sizes, ksize, strides, pads, dilation)

    def ws_col2im() -> np.ndarray:
        return np.empty(nb * orows * taps * x_shape[-1], dtype=dtype)

    if groups == 1 and cg <= 16:
        # few input channels: dcols tap-major (T, M, C), one GEMM per tap, so that every
        # col2im add moves whole output rows (W_o*C values) instead of runs of C values
        # (dX measured 5.6 -> 2.8 ms for LeNet's 14x14x6 -> 16 at batch 128, 12.7 -> 11.1 ms
        # for a stride-2 34x34x16 -> 32; slower from 32 channels on)
        wt = np.ascontiguousarray(wm[0].reshape(taps, cg, -1).transpose(0, 2, 1))

        def fill_taps(ws: np.ndarray, n0: int, n1: int) -> None:
            m = (n1 - n0) * orows
            dct = ws[:taps * m * cg].reshape(taps, m, cg)
            np.matmul(g2[n0 * orows:n1 * orows], wt, out=dct)
            dxb = dx[n0:n1]
            dxb[...] = 0
            lead = (slice(None),)
            for ti, dst, src, _ in boxes:
                if dst is not None:
                    dxb[lead + src] += dct[ti].reshape(n1 - n0, *o_sizes, cg)[lead + dst]
        return dx, ws_col2im, fill_taps

    def fill_col2im(ws: np.ndarray, n0: int, n1: int) -> None:
        dcols = ws[:(n1 - n0) * orows * taps * x_shape[-1]].reshape(
            (n1 - n0) * orows, groups, taps * cg)
        _error_times_kernel_t_into(g2[n0 * orows:n1 * orows], wm, dcols)
        dxg[n0:n1] = 0
        _col2im_into(dcols.reshape(n1 - n0, *o_sizes, groups, taps, cg), dxg[n0:n1], boxes)
    return dx, ws_col2im, fill_col2im


def _dx_item_bytes(method: str, w: np.ndarray, x_shape: tuple[int, ...],
                   g_shape: tuple[int, ...], itemsize: int) -> int:
    """Bytes of one batch item's im2col matrix for the dX method (dZ's or dcols)."""
    taps = int(np.prod(w.shape[:len(x_shape) - 2]))
    if method == "flip":
        return int(np.prod(x_shape[1:-1])) * taps * g_shape[-1] * itemsize
    return int(np.prod(g_shape[1:-1])) * taps * x_shape[-1] * itemsize


def conv_input_grad(g: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], strides: Ints,
                    pads: Pads, dilation: Ints, groups: int = 1, method: str = "auto"
                    ) -> np.ndarray:
    """dX[n, i, c] = sum_{o, t: o*S + t*D - P = i} sum_k dZ[n, o, k] K[t, c, k].

    ``method="col2im"``: dcols = dZ @ K^T (one GEMM), then col2im (one strided add per tap).
    ``method="flip"`` (stride 1 only): the seeds' full convolution, i.e. a stride-1 convolution
    of dZ padded by (E-1-P_before, ...) with the flipped kernel (:func:`flip_kernel`): one
    contiguous im2col copy and one GEMM. ``"auto"`` takes "flip" at stride 1 when its im2col
    matrix is no larger than col2im's dcols (measured faster there: a single copy beats T
    read-modify-write passes), else "col2im". Both run block by block over the batch.
    With the native helper built, "auto" runs float32 2-D convolutions (groups 1) by the C
    kernels where they measured faster (:func:`_native_dx_ok`).
    """
    nd = g.ndim - 2
    ksize = w.shape[:nd]
    x_shape = tuple(x_shape)
    if method == "auto" and _is_depthwise(x_shape, groups):
        wd = w.reshape(*ksize, groups, w.shape[-1] // groups)
        x0 = np.empty(x_shape, dtype=g.dtype)  # only its shape is read
        return depthwise_conv_backward(g, x0, wd, strides, pads, dilation, True, False,
                                       False)[0]
    if x_shape[0] == 0:
        return np.zeros(x_shape, dtype=np.result_type(g, w))
    if _is_pointwise(ksize, strides, pads, x_shape[1:-1], g.shape[1:-1]):
        m = int(np.prod(g.shape[:-1]))
        dcols = np.empty((m, groups, w.shape[-2]), dtype=np.result_type(g, w))
        g2, wm = g.reshape(m, g.shape[-1]), _kernel_matrix(w, groups)
        row_blocks = parallel.split(m, parallel.pieces_for(g.nbytes + dcols.nbytes))

        def body_1x1(i: int, _: Any) -> None:
            r0, r1 = row_blocks[i]
            _error_times_kernel_t_into(g2[r0:r1], wm, dcols[r0:r1])
        parallel.run_blocks(len(row_blocks), body_1x1, blas=True)
        return dcols.reshape(x_shape)
    if (method == "auto" and _native_dx_ok(strides, x_shape[-1], w.shape[-1])
            and _use_native(x_shape, (g.dtype,), w, groups, strides, pads, g.shape[1:-1])):
        return _native_input_grad(g, w, x_shape, strides, pads, dilation)
    method = _dx_method(method, strides, x_shape, g.shape)
    blocks = batch_blocks(g.shape[0], _dx_item_bytes(method, w, x_shape, g.shape,
                                                     g.itemsize))
    dx, workspace, fill = _input_grad_blocks(g, w, x_shape, strides, pads, dilation, groups,
                                             method, max(e - s for s, e in blocks))
    parallel.run_blocks(len(blocks), lambda i, ws: fill(ws, *blocks[i]), workspace, blas=True)
    return dx


def _bias_grad(g: np.ndarray) -> np.ndarray:
    """db[k] = sum over all rows of dZ[..., k] (a GEMV with a ones vector: faster than a
    column reduction)."""
    g2 = g.reshape(-1, g.shape[-1])
    return parallel.column_sum(g2)


def conv_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, cols: np.ndarray | None,
                  strides: Ints, pads: Pads, dilation: Ints, groups: int = 1,
                  need_dx: bool = True, need_dw: bool = True, need_db: bool = True
                  ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(dX, dK, db) of :func:`conv_forward` for output error dZ = ``g``.

    dK[t, c, k] = sum_{n, o} dZ[n, o, k] X[n, o*S + t*D - P, c] = cols^T @ dZ;
    dX by :func:`conv_input_grad`; db[k] = sum_{n, o} dZ[n, o, k]. Gradients whose ``need_*``
    flag is False are skipped (None), e.g. dX for a network's input. dK and dX run block by
    block over the batch, spread over the kernel threads: per block, the im2col matrix of x
    (rebuilt unless ``cols`` holds it) times dZ's rows is one partial dK, and dX's rows are
    filled, while dZ's rows are hot; the partial dKs are summed in block order.
    """
    nd = x.ndim - 2
    ksize = w.shape[:nd]
    if _is_depthwise(x.shape, groups):
        wd = w.reshape(*ksize, groups, w.shape[-1] // groups)
        dx, dw, db = depthwise_conv_backward(g, x, wd, strides, pads, dilation, need_dx,
                                             need_dw, need_db)
        return dx, (None if dw is None else dw.reshape(w.shape)), db
    n, o_sizes = x.shape[0], g.shape[1:-1]
    if n == 0:
        dtype = np.result_type(g, x, w)
        return (np.zeros(x.shape, dtype) if need_dx else None,
                np.zeros(w.shape, dtype) if need_dw else None,
                np.zeros(g.shape[-1], g.dtype) if need_db else None)
    g2 = g.reshape(-1, g.shape[-1])
    db = _bias_grad(g) if need_db else None
    if (_native_wins(w.shape) or not need_dw) and _use_native(
            x.shape, (x.dtype, g.dtype), w, groups, strides, pads, o_sizes):
        dw = (_native_kernel_grad(g, x, w.shape, strides, pads, dilation)
              if need_dw else None)
        dx = conv_input_grad(g, w, x.shape, strides, pads, dilation, groups) if need_dx \
            else None
        return dx, dw, db
    if _is_pointwise(ksize, strides, pads, x.shape[1:-1], o_sizes):
        dw = (_kernel_from_matrix(_cols_t_times_error(x, g2, groups), w.shape)
              if need_dw else None)
        dx = conv_input_grad(g, w, x.shape, strides, pads, dilation, groups) if need_dx \
            else None
        return dx, dw, db
    if not (need_dx or need_dw):
        return None, None, db
    rows, taps = int(np.prod(o_sizes)), int(np.prod(ksize))
    have_cols = cols is not None and cols.size == n * rows * taps * x.shape[-1]
    item = rows * taps * x.shape[-1] * x.itemsize if need_dw and not have_cols else 0
    method = _dx_method("auto", strides, x.shape, g.shape) if need_dx else ""
    if need_dx:
        item = max(item, _dx_item_bytes(method, w, x.shape, g.shape, g.itemsize))
    blocks = batch_blocks(n, item)
    nb = max(e - s for s, e in blocks)
    dx, dx_ws, fill = None, None, None
    if need_dx:
        dx, dx_ws, fill = _input_grad_blocks(g, w, x.shape, strides, pads, dilation, groups,
                                             method, nb)
    partials: list[np.ndarray | None] = [None] * len(blocks)

    def workspace() -> tuple[Any, ...]:
        own = None
        if need_dw and not have_cols:
            own = (np.empty(nb * rows * taps * x.shape[-1], dtype=x.dtype),
                   _pad_buffer((nb, *x.shape[1:]), pads, x.dtype))
        return own, (dx_ws() if dx_ws is not None else None)

    def body(i: int, ws: tuple[Any, ...]) -> None:
        n0, n1 = blocks[i]
        if need_dw:
            if have_cols:
                c3 = cols.reshape(n * rows, groups, -1)[n0 * rows:n1 * rows]
            else:
                c3 = _im2col_block(x[n0:n1], ksize, strides, pads, dilation, o_sizes, groups,
                                   ws[0][1], ws[0][0])
            partials[i] = _cols_t_times_error(c3, g2[n0 * rows:n1 * rows], groups)
        if fill is not None:
            fill(ws[1], n0, n1)

    parallel.run_blocks(len(blocks), body, workspace, blas=True)
    dw = None
    if need_dw:
        dwm = partials[0]
        for part in partials[1:]:
            dwm += part
        dw = _kernel_from_matrix(dwm, w.shape)
    return dx, dw, db


# ----------------------------------------------------------------------------------------
# depthwise and separable 2-D convolution
# ----------------------------------------------------------------------------------------
# Target size (bytes) of one block's padded input in the direct depthwise kernel.
DEPTHWISE_BLOCK_BYTES = 1 << 19


def _depthwise_blocks(n: int, out_rows: int, row_bytes: int, stride: int
                      ) -> list[tuple[int, int, int, int]]:
    """(n0, n1, r0, r1) blocks of the batch and of the first spatial axis's output rows, each
    reading about DEPTHWISE_BLOCK_BYTES of input (``row_bytes``: one padded input row)."""
    image = out_rows * stride * row_bytes
    if image <= DEPTHWISE_BLOCK_BYTES:
        return [(n0, n1, 0, out_rows) for n0, n1 in batch_blocks(n, image,
                                                                 DEPTHWISE_BLOCK_BYTES)]
    per = max(1, DEPTHWISE_BLOCK_BYTES // max(stride * row_bytes, 1))
    rows = parallel.split(out_rows, -(-out_rows // per))
    return [(i, i + 1, r0, r1) for i in range(n) for r0, r1 in rows]


# Depthwise forward jobs of at least this many multiply-adds are cut into pieces (images, and
# row ranges of each image for batches smaller than 2 per thread) shared by the kernel threads;
# measured (batch 8, min ms, one call vs pieces on 2 threads): 14x14x576 stride 2 (2M MACs)
# 0.13 vs 0.28, 14x14x384 (5.4M) 0.22 vs 0.26, 56x56x144 stride 2 (8.1M) 0.71 vs 0.45,
# 28x28x192 (10.8M) 0.47 vs 0.40.
NATIVE_DEPTHWISE_PARALLEL_MACS = 1 << 23


def _native_depthwise(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints,
                      pads: Pads, dilation: Ints) -> np.ndarray | None:
    """:func:`depthwise_conv_forward` by the C kernel (float32, 2-D, multiplier 1, no
    cropping pads, up to 7x7 taps), or None where it does not apply. Measured against the
    einsum path (MobileNet v2's layers at batch 8, min ms, C on one thread vs NumPy on two):
    112x112x32 11.9 vs 2.1, 112x112x96 stride 2 7.4 vs 3.6, 56x56x144 5.9 vs 2.4, 28x28x192
    1.7 vs 0.5, 14x14x576 1.1 vs 0.4, 7x7x960 0.55 vs 0.19."""
    if (x.ndim != 4 or w.shape[-1] != 1 or w.shape[0] * w.shape[1] > 49 or w.shape[0] > 16
            or x.shape[0] == 0 or any(p < 0 for pair in pads for p in pair)
            or not all(a.dtype == np.float32 for a in (x, w) + ((b,) if b is not None else ()))
            or not native.available()):
        return None
    out = conv_output_sizes(x.shape[1:-1], w.shape[:2], strides, pads, dilation)
    x = np.ascontiguousarray(x)
    k = np.ascontiguousarray(w.reshape(w.shape[:3]))
    b = None if b is None else np.ascontiguousarray(b)
    n, c = x.shape[0], x.shape[-1]
    z = np.empty((n, *out, c), dtype=np.float32)
    st, dl, tl = tuple(strides), tuple(dilation), (pads[0][0], pads[1][0])
    threads = parallel.get_num_threads()
    if z.size * w.shape[0] * w.shape[1] < NATIVE_DEPTHWISE_PARALLEL_MACS or threads <= 1:
        native.depthwise_forward(x, k, b, z, st, dl, tl)
        return z
    per = max(1, -(-2 * threads // n))
    pieces = [(i, r0, r1) for i in range(n) for r0, r1 in parallel.split(out[0], per)]

    def body(j: int, _: Any) -> None:
        i, r0, r1 = pieces[j]
        native.depthwise_forward(x[i:i + 1], k, b, z[i:i + 1], st, dl, tl, (r0, r1))

    parallel.run_blocks(len(pieces), body)
    return z


def depthwise_conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                           strides: Ints, pads: Pads, dilation: Ints) -> np.ndarray:
    """Z[n, o, c*M + m] = sum_t X[n, o*S + t*D - P, c] K[t, c, m] + b[c*M + m].

    x (N, *spatial, C), w (*K, C, M). A direct kernel, block by block (batch slices, or slices
    of the output rows of large images; :data:`DEPTHWISE_BLOCK_BYTES`), spread over the kernel
    threads: the block's input is copied zero-padded into a small buffer, and one ``einsum``
    over its strided window view V[n, o, t, c] sums V * K over the taps t (channel c*M + m
    from the (C, M) result), so the taps' products never go through memory. float32 2-D
    depthwise convolutions with multiplier 1 run the C kernel instead where the native helper
    is built (:func:`_native_depthwise`).
    """
    z = _native_depthwise(x, w, b, strides, pads, dilation)
    if z is not None:
        return z
    nd = x.ndim - 2
    ksize, (c, mult) = w.shape[:nd], w.shape[nd:]
    out_sizes = conv_output_sizes(x.shape[1:-1], ksize, strides, pads, dilation)
    dtype = np.result_type(x, w)
    z = np.empty((x.shape[0], *out_sizes, c * mult), dtype=dtype)
    if any(p < 0 for pair in pads for p in pair):  # cropping pads: the plain tap loop
        z[...] = 0
        xr = x if mult == 1 else np.repeat(x, mult, axis=-1)
        wt = w.reshape(-1, c * mult)
        lead = (slice(None),)
        for ti, dst, src, _ in _tap_boxes(x.shape[1:-1], out_sizes, ksize, strides, pads,
                                          dilation):
            if dst is not None:
                z[lead + dst] += xr[lead + src] * wt[ti]
        if b is not None:
            z += b
        return z
    sizes = x.shape[1:-1]
    eff = [d * (k - 1) + 1 for k, d in zip(ksize, dilation, strict=True)]
    padded = [s_ + p0 + p1 for s_, (p0, p1) in zip(sizes, pads, strict=True)]
    row_bytes = int(np.prod(padded[1:])) * c * x.itemsize
    blocks = _depthwise_blocks(x.shape[0], out_sizes[0], row_bytes, strides[0])
    nb = max(n1 - n0 for n0, n1, _, _ in blocks)
    rmax = max((r1 - r0 - 1) * strides[0] + eff[0] for _, _, r0, r1 in blocks)
    letters = "defghijk"[:nd]
    outs = "uvwxyz"[:nd]
    spec = f"a{outs}{letters}c,{letters}cm->a{outs}cm"
    w_c = w.astype(dtype, copy=False)
    inner = tuple(slice(p0, p0 + s_) for s_, (p0, _) in zip(sizes[1:], pads[1:], strict=True))

    def workspace() -> np.ndarray:
        buf = np.empty((nb, rmax, *padded[1:], c), dtype=x.dtype)
        _zero_border(buf, pads[1:], first_axis=2)  # rows are zeroed per block as needed
        return buf

    def body(i: int, buf: np.ndarray) -> None:
        n0, n1, r0, r1 = blocks[i]
        lo = r0 * strides[0] - pads[0][0]  # first input row read, in unpadded coordinates
        rows = (r1 - r0 - 1) * strides[0] + eff[0]
        ra, rb = max(lo, 0), min(lo + rows, sizes[0])
        xb = buf[:n1 - n0, :rows]
        if ra > lo:
            xb[:, :ra - lo] = 0
        if rb < lo + rows:
            xb[:, rb - lo:] = 0
        xb[(slice(None), slice(ra - lo, rb - lo), *inner)] = x[n0:n1, ra:rb]
        st = xb.strides
        view = as_strided(xb, shape=(n1 - n0, r1 - r0, *out_sizes[1:], *ksize, c),
                          strides=(st[0], *(st[1 + a] * strides[a] for a in range(nd)),
                                   *(st[1 + a] * dilation[a] for a in range(nd)), st[-1]),
                          writeable=False)
        zb = z[n0:n1, r0:r1].reshape(n1 - n0, r1 - r0, *out_sizes[1:], c, mult)
        np.einsum(spec, view, w_c, out=zb)
        if b is not None:
            zb += b.reshape(c, mult)

    parallel.run_blocks(len(blocks), body, workspace)
    return z


def _native_depthwise_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, strides: Ints,
                               pads: Pads, dilation: Ints, need_dx: bool, need_dw: bool
                               ) -> tuple[np.ndarray | None, np.ndarray | None] | None:
    """(dX, dK) of :func:`depthwise_conv_backward` by the C kernel where
    :func:`_native_depthwise` applies (else None): batch blocks (:func:`_native_blocks`, a
    cut that does not depend on the thread count) on the kernel threads, dK's partial sums
    added in block order."""
    if (x.ndim != 4 or w.shape[-1] != 1 or w.shape[0] * w.shape[1] > 49 or w.shape[0] > 16
            or x.shape[0] == 0 or any(p < 0 for pair in pads for p in pair)
            or not all(a.dtype == np.float32 for a in (x, w, g)) or not native.available()):
        return None
    x = np.ascontiguousarray(x)
    g = np.ascontiguousarray(g)
    k = np.ascontiguousarray(w.reshape(w.shape[:3]))
    st, dl, tl = tuple(strides), tuple(dilation), (pads[0][0], pads[1][0])
    blocks = _native_blocks(x.shape[0], g.size * k.shape[0] * k.shape[1])
    dx = np.empty(x.shape, dtype=np.float32) if need_dx else None
    parts = [np.empty(k.shape, dtype=np.float32) if need_dw else None for _ in blocks]

    def body(i: int, _: Any) -> None:
        n0, n1 = blocks[i]
        native.depthwise_backward(x[n0:n1], g[n0:n1], k, None if dx is None else dx[n0:n1],
                                  parts[i], st, dl, tl)

    parallel.run_blocks(len(blocks), body)
    dk = None
    if need_dw:
        dk = parts[0]
        for part in parts[1:]:
            dk += part
        dk = dk.reshape(w.shape)
    return dx, dk


def depthwise_conv_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, strides: Ints,
                            pads: Pads, dilation: Ints, need_dx: bool = True,
                            need_dw: bool = True, need_db: bool = True
                            ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """dX[n, i, c] = sum_{o, t: o*S + t*D - P = i} sum_m dZ[n, o, c*M + m] K[t, c, m];
    dK[t, c, m] = sum_{n, o} dZ[n, o, c*M + m] X[n, o*S + t*D - P, c]; db = sum_{n, o} dZ.
    float32 2-D with multiplier 1: the C kernel (:func:`_native_depthwise_backward`)."""
    if need_dx or need_dw:
        grads = _native_depthwise_backward(g, x, w, strides, pads, dilation, need_dx, need_dw)
        if grads is not None:
            return (*grads, _bias_grad(g) if need_db else None)
    nd = x.ndim - 2
    ksize, (c, mult) = w.shape[:nd], w.shape[nd:]
    wt = w.reshape(-1, c * mult)
    xr = x if (mult == 1 or not need_dw) else np.repeat(x, mult, axis=-1)
    dxr = np.zeros((*x.shape[:-1], c * mult), dtype=g.dtype) if need_dx else None
    dwt = np.zeros_like(wt) if need_dw else None
    axes = "".join("abcdefgh"[:nd + 1])
    lead = (slice(None),)
    for ti, dst, src, _ in _tap_boxes(x.shape[1:-1], g.shape[1:-1], ksize, strides, pads,
                                      dilation):
        if dst is None:
            continue
        gs = g[lead + dst]
        if need_dx:
            dxr[lead + src] += gs * wt[ti]
        if need_dw:
            dwt[ti] = np.einsum(f"{axes}z,{axes}z->z", xr[lead + src], gs)
    dx = None
    if need_dx:
        dx = dxr if mult == 1 else dxr.reshape(*x.shape, mult).sum(axis=-1)
    dw = dwt.reshape(w.shape) if need_dw else None
    db = _bias_grad(g) if need_db else None
    return dx, dw, db


def separable_conv_forward(x: np.ndarray, dw_kernel: np.ndarray, pw_kernel: np.ndarray,
                           b: np.ndarray | None, strides: Ints, pads: Pads, dilation: Ints
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Z = pointwise(depthwise(X, K_d), K_p) + b: a depthwise conv (no bias) then a 1x1 conv
    with kernel (1, ..., 1, C*M, C_out) and the bias. Returns Z and the depthwise output."""
    d = depthwise_conv_forward(x, dw_kernel, None, strides, pads, dilation)
    z = d.reshape(-1, d.shape[-1]) @ pw_kernel.reshape(pw_kernel.shape[-2:])
    if b is not None:
        z += b
    return z.reshape(*d.shape[:-1], pw_kernel.shape[-1]), d


def separable_conv_backward(g: np.ndarray, x: np.ndarray, dw_kernel: np.ndarray,
                            pw_kernel: np.ndarray, d: np.ndarray, strides: Ints, pads: Pads,
                            dilation: Ints, need_dx: bool = True, need_dwk: bool = True,
                            need_pwk: bool = True, need_db: bool = True
                            ) -> tuple[np.ndarray | None, ...]:
    """(dX, dK_d, dK_p, db): pointwise backward (dD = dZ @ K_p^T, dK_p = D^T @ dZ), then the
    depthwise backward of dD."""
    g2 = g.reshape(-1, g.shape[-1])
    pw2 = pw_kernel.reshape(pw_kernel.shape[-2:])
    dpw = (d.reshape(-1, d.shape[-1]).T @ g2).reshape(pw_kernel.shape) if need_pwk else None
    db = _bias_grad(g) if need_db else None
    dx = ddw = None
    if need_dx or need_dwk:
        dd = (g2 @ pw2.T).reshape(d.shape)
        dx, ddw, _ = depthwise_conv_backward(dd, x, dw_kernel, strides, pads, dilation,
                                             need_dx, need_dwk, False)
    return dx, ddw, dpw, db


# ----------------------------------------------------------------------------------------
# transposed convolution
# ----------------------------------------------------------------------------------------
def conv_transpose_geometry(in_sizes: Ints, ksize: Ints, strides: Ints, padding: Any,
                            output_padding: Ints | None, dilation: Ints
                            ) -> tuple[tuple[int, ...], Pads]:
    """Output sizes and the pads of the convolution this transposed convolution inverts.

    With E = D*(K-1) + 1 and W the input size along an axis:
    - "valid" (Keras): P = (0, 0); L = W*S + max(E - S, 0) without output_padding, else
      (W-1)*S + E + output_padding.
    - "same" (Keras/TF): L = W*S without output_padding, else (W-1)*S + E - 2*(E//2) +
      output_padding; P = the Keras "same" pads of a convolution on L.
    - int p or per-axis p / (p_b, p_a) (PyTorch): the output is cropped by the padding,
      L = (W-1)*S - p_b - p_a + E + output_padding.
    Raises ValueError when L < 1 or when the convolution on L would not give back W.
    """
    nd = len(in_sizes)
    op = tuple(output_padding) if output_padding is not None else None
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid', 'same', an int or per-axis ints/pairs "
                             f"for a transposed convolution, got {padding!r}")
        sizes, pads = [], []
        for a in range(nd):
            w, k, s, d = in_sizes[a], ksize[a], strides[a], dilation[a]
            e = d * (k - 1) + 1
            if mode == "valid":
                size = w * s + max(e - s, 0) if op is None else (w - 1) * s + e + op[a]
                pad = (0, 0)
            else:
                size = w * s if op is None else (w - 1) * s + e - 2 * (e // 2) + op[a]
                pad = same_padding(size, k, s, d)
            sizes.append(size)
            pads.append(pad)
    else:
        pads = list(resolve_padding(padding, in_sizes, ksize, strides, dilation))
        sizes = [(w - 1) * s - p[0] - p[1] + d * (k - 1) + 1 + (op[a] if op else 0)
                 for a, (w, k, s, d, p) in enumerate(zip(in_sizes, ksize, strides, dilation,
                                                         pads, strict=True))]
    for a in range(nd):
        if sizes[a] < 1:
            raise ValueError(f"output size along spatial axis {a} would be {sizes[a]} (input "
                             f"size {in_sizes[a]}, kernel {ksize[a]}, stride {strides[a]}, "
                             f"dilation {dilation[a]}, padding {pads[a]}); it must be >= 1")
        back = (sizes[a] + pads[a][0] + pads[a][1] - dilation[a] * (ksize[a] - 1) - 1)
        if back < 0 or back // strides[a] + 1 < in_sizes[a]:
            raise ValueError(f"output size {sizes[a]} along spatial axis {a} is too small for "
                             f"input size {in_sizes[a]} with padding {padding!r}")
    return tuple(sizes), tuple(pads)


def conv_transpose_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints,
                           pads: Pads, dilation: Ints, out_sizes: Ints) -> np.ndarray:
    """Y[n, o*S + t*D - P, c] += sum_k X[n, o, k] K[t, c, k], then + b[c]: the input gradient of
    a convolution with kernel K (*K, C_out, C_in) on a (N, *out_sizes, C_out) input."""
    y = conv_input_grad(x, w, (x.shape[0], *out_sizes, w.shape[-2]), strides, pads, dilation)
    if b is not None:
        y += b
    return y


def conv_transpose_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, strides: Ints,
                            pads: Pads, dilation: Ints, need_dx: bool = True,
                            need_dw: bool = True, need_db: bool = True
                            ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """dX = conv(dY, K) (a convolution forward); dK[t, c, k] = sum_{n,o} dY[n, o*S + t*D - P, c]
    X[n, o, k] (the convolution weight gradient with the roles swapped); db = sum dY."""
    nd = x.ndim - 2
    dx = dw = db = None
    if need_dx or need_dw:
        cols = im2col(g, w.shape[:nd], strides, pads, dilation, x.shape[1:-1])
        c2 = cols.reshape(-1, cols.shape[-2] * cols.shape[-1])
        x2 = x.reshape(-1, x.shape[-1])
        if need_dx:
            dx = (c2 @ w.reshape(-1, w.shape[-1])).reshape(x.shape)
        if need_dw:
            dw = (c2.T @ x2).reshape(w.shape)
    if need_db:
        db = _bias_grad(g)
    return dx, dw, db
