"""N-d convolution by im2col + GEMM in NumPy, channels-last, block by block over the batch.

With T = prod(K) kernel taps and G groups of Cg = C_in/G input and Og = C_out/G output
channels:

    cols[n, o, g, t, c] = X[n, o*S + t*D - P, g*Cg + c]           (im2col, 0 outside X)
    Z  = cols (M, G, T*Cg) @ K (G, T*Cg, Og) + b                   (forward, one GEMM)
    dK = cols^T @ dZ                                               (one GEMM per block)
    dX = col2im(dZ @ K^T)        or, at stride 1, the "full convolution" of dZ padded by
         E-1-P with the flipped kernel (one im2col copy + one GEMM; E = D*(K-1) + 1)
    db = sum over rows of dZ

The whole ``cols`` (9x the input for a 3x3 kernel) is never built: the batch is cut into
blocks (:func:`.dispatch.batch_blocks`) whose im2col matrix stays in cache between the copy
that writes it and the GEMM that reads it, shared by the kernel threads (:mod:`..parallel`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import parallel
from ..padding import Pads
from . import dispatch
from .geometry import (
    Ints,
    TapBox,
    flip_pads,
    is_pointwise,
    pad_buffer,
    pad_spatial,
    padded_block,
    tap_boxes,
    window_view,
)


def im2col(x: np.ndarray, ksize: Ints, strides: Ints, pads: Pads, dilation: Ints,
           out_sizes: Ints, groups: int = 1) -> np.ndarray:
    """cols[n, *o, g, t, c] = X[n, o*S + t*D - P, g*Cg + c] (0 outside X), shape
    (N, *O, G, T, Cg): pad once, then one contiguous copy of the strided window view."""
    n, cg = x.shape[0], x.shape[-1] // groups
    if is_pointwise(ksize, strides, pads, x.shape[1:-1], out_sizes):
        return x.reshape(n, *out_sizes, groups, 1, cg)
    view = window_view(pad_spatial(x, pads), ksize, strides, dilation, out_sizes, groups)
    cols = np.empty(view.shape, dtype=x.dtype)
    cols[...] = view
    return cols.reshape(n, *out_sizes, groups, int(np.prod(ksize)), cg)


def im2col_block(xb: np.ndarray, ksize: Ints, strides: Ints, pads: Pads, dilation: Ints,
                 out_sizes: Ints, groups: int, pad_buf: np.ndarray | None,
                 scratch: np.ndarray) -> np.ndarray:
    """:func:`im2col` of one batch block, written into the flat ``scratch``: (M_b, G, T*Cg),
    or, tap-major (:func:`.dispatch.tap_major`), the 2-D cols^T (T*C, M_b)."""
    view = window_view(padded_block(xb, pads, pad_buf), ksize, strides, dilation, out_sizes,
                       groups)
    if dispatch.tap_major(xb.shape[-1], groups):
        nd = len(ksize)
        vt = view.transpose((*range(nd + 2, 2 * nd + 3), *range(nd + 2)))
        cols = scratch[:vt.size].reshape(vt.shape)
        np.copyto(cols, vt)
        return cols.reshape(int(np.prod(ksize)) * xb.shape[-1], -1)
    cols = scratch[:view.size].reshape(view.shape)
    np.copyto(cols, view)
    return cols.reshape(xb.shape[0] * int(np.prod(out_sizes)), groups, -1)


def kernel_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """(*K, Cg, C_out) -> (G, T*Cg, C_out/G); output channel g*Og + j belongs to group g."""
    taps = int(np.prod(w.shape[:-2]))
    cg, cout = w.shape[-2], w.shape[-1]
    if groups == 1:
        return w.reshape(1, taps * cg, cout)
    og = cout // groups
    return w.reshape(taps, cg, groups, og).transpose(2, 0, 1, 3).reshape(groups, taps * cg, og)


def kernel_from_matrix(wm: np.ndarray, w_shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`kernel_matrix`."""
    groups = wm.shape[0]
    if groups == 1:
        return wm.reshape(w_shape)
    taps = int(np.prod(w_shape[:-2]))
    cg, og = w_shape[-2], wm.shape[-1]
    return wm.reshape(groups, taps, cg, og).transpose(1, 2, 0, 3).reshape(w_shape)


def flip_kernel(w: np.ndarray, groups: int = 1) -> np.ndarray:
    """The kernel of the full convolution for dX: spatially flipped, input and output channels
    swapped within each group. (*K, Cg, G*Og) -> (*K, Og, G*Cg) with
    Kf[t', j, g*Cg + c] = K[K-1-t', c, g*Og + j]."""
    nd = w.ndim - 2
    ksize, cg, cout = w.shape[:nd], w.shape[-2], w.shape[-1]
    og = cout // groups
    wr = w[(slice(None, None, -1),) * nd].reshape(*ksize, cg, groups, og)
    return np.ascontiguousarray(np.moveaxis(wr, (nd, nd + 2), (nd + 2, nd))
                                ).reshape(*ksize, og, groups * cg)


def gemm_into(c3: np.ndarray, wm: np.ndarray, out: np.ndarray) -> None:
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


def cols_t_times_error(cols: np.ndarray, g2: np.ndarray, groups: int) -> np.ndarray:
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


def error_times_kernel_t_into(g2: np.ndarray, wm: np.ndarray, out: np.ndarray) -> None:
    """dcols (M, G, T*Cg) = per group dZ (M, G*Og) @ K^T."""
    groups, _, og = wm.shape
    if groups == 1:
        np.matmul(g2, wm[0].T, out=out[:, 0, :])
    else:
        np.matmul(g2.reshape(-1, groups, og).transpose(1, 0, 2), wm.transpose(0, 2, 1),
                  out=out.transpose(1, 0, 2))


def col2im_into(dcols: np.ndarray, dxg: np.ndarray, boxes: list[TapBox]) -> None:
    """dX[n, o*S + t*D - P, g, c] += dcols[n, *o, g, t, c], one strided add per tap, into
    the zeroed dxg of shape (N, *S, G, Cg)."""
    lead = (slice(None),)
    for ti, dst, src, _ in boxes:
        if dst is not None:
            dxg[lead + src] += dcols[..., ti, :][lead + dst]


def bias_grad(g: np.ndarray) -> np.ndarray:
    """db[k] = sum over all rows of dZ[..., k] (a GEMV with a ones vector)."""
    return parallel.column_sum(g.reshape(-1, g.shape[-1]))


# ----------------------------------------------------------------------------------------
# forward
# ----------------------------------------------------------------------------------------
def _forward_1x1(x: np.ndarray, wm: np.ndarray, b: np.ndarray | None, z: np.ndarray) -> None:
    """A 1x1 stride-1 convolution: row blocks of the pixels times the kernel matrix."""
    z2 = z.reshape(-1, z.shape[-1])
    x3 = x.reshape(z2.shape[0], wm.shape[0], -1)
    row_blocks = parallel.split(z2.shape[0], parallel.pieces_for(x.nbytes + z.nbytes))

    def body(i: int, _: Any) -> None:
        r0, r1 = row_blocks[i]
        gemm_into(x3[r0:r1], wm, z2[r0:r1])
        if b is not None:
            z2[r0:r1] += b
    parallel.run_blocks(len(row_blocks), body, blas=True)


def forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints, pads: Pads,
            dilation: Ints, groups: int, out_sizes: Ints, keep_cols: bool
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """Z = im2col(X) @ K + b per batch block; for a 1x1 convolution with ``keep_cols`` also
    its im2col matrix (x itself) for dK, else None (rebuilt in the backward)."""
    nd = x.ndim - 2
    ksize, n, cout = w.shape[:nd], x.shape[0], w.shape[-1]
    wm = kernel_matrix(w, groups)
    z = np.empty((n, *out_sizes, cout), dtype=np.result_type(x, w))
    if is_pointwise(ksize, strides, pads, x.shape[1:-1], out_sizes):
        _forward_1x1(x, wm, b, z)
        cols = x.reshape(n, *out_sizes, groups, 1, x.shape[-1] // groups)
        return z, (cols if keep_cols else None)
    rows, taps = int(np.prod(out_sizes)), int(np.prod(ksize))
    z2 = z.reshape(n * rows, cout)
    blocks = dispatch.batch_blocks(n, rows * taps * x.shape[-1] * x.itemsize)
    nb = max(e - s for s, e in blocks)

    def workspace() -> tuple[np.ndarray, np.ndarray | None]:
        return (np.empty(nb * rows * taps * x.shape[-1], dtype=x.dtype),
                pad_buffer((nb, *x.shape[1:]), pads, x.dtype))

    def body(i: int, ws: tuple[np.ndarray, np.ndarray | None]) -> None:
        n0, n1 = blocks[i]
        c3 = im2col_block(x[n0:n1], ksize, strides, pads, dilation, out_sizes, groups,
                          ws[1], ws[0])
        zb = z2[n0 * rows:n1 * rows]
        gemm_into(c3, wm, zb)
        if b is not None:
            zb += b

    parallel.run_blocks(len(blocks), body, workspace, blas=True)
    return z, None


# ----------------------------------------------------------------------------------------
# dX, block by block: fill(workspace, n0, n1) writes dX's batch rows [n0, n1)
# ----------------------------------------------------------------------------------------
_Fill = Callable[[Any, int, int], None]
_DxBlocks = tuple[np.ndarray, Callable[[], Any], _Fill]


def _flip_blocks(g: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], pads: Pads,
                 dilation: Ints, groups: int, nb: int) -> _DxBlocks:
    """dX as the stride-1 full convolution of dZ (padded by E-1-P) with the flipped kernel."""
    nd = g.ndim - 2
    ksize, x_sizes = w.shape[:nd], tuple(x_shape[1:-1])
    taps = int(np.prod(ksize))
    fpads = flip_pads(ksize, pads, dilation, x_sizes, g.shape[1:-1])
    dtype = np.result_type(g, w)
    wfm = kernel_matrix(flip_kernel(w, groups), groups).astype(dtype, copy=False)
    dx = np.empty(x_shape, dtype=dtype)
    dx2 = dx.reshape(-1, x_shape[-1])
    xrows = int(np.prod(x_sizes))

    def workspace() -> tuple[np.ndarray, np.ndarray | None]:
        return (np.empty(nb * xrows * taps * g.shape[-1], dtype=g.dtype),
                pad_buffer((nb, *g.shape[1:]), fpads, g.dtype))

    def fill(ws: tuple[np.ndarray, np.ndarray | None], n0: int, n1: int) -> None:
        c3 = im2col_block(g[n0:n1], ksize, (1,) * nd, fpads, dilation, x_sizes, groups,
                          ws[1], ws[0])
        gemm_into(c3, wfm, dx2[n0 * xrows:n1 * xrows])
    return dx, workspace, fill


def _col2im_blocks(g: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], strides: Ints,
                   pads: Pads, dilation: Ints, groups: int, nb: int) -> _DxBlocks:
    """dX = col2im(dZ @ K^T); with few input channels the dcols are tap-major (T, M, C), one
    GEMM per tap, so that every add moves whole output rows instead of runs of C values."""
    nd = g.ndim - 2
    ksize, o_sizes = w.shape[:nd], g.shape[1:-1]
    taps, orows, cg = int(np.prod(ksize)), int(np.prod(o_sizes)), x_shape[-1] // groups
    dtype = np.result_type(g, w)
    wm = kernel_matrix(w, groups).astype(dtype, copy=False)
    dx = np.empty(x_shape, dtype=dtype)
    dxg = dx.reshape(*x_shape[:-1], groups, cg)
    g2 = g.reshape(-1, g.shape[-1])
    boxes = tap_boxes(x_shape[1:-1], o_sizes, ksize, strides, pads, dilation)
    tap_major = groups == 1 and cg <= dispatch.THRESHOLDS.col2im_taps_max_channels
    wt = np.ascontiguousarray(wm[0].reshape(taps, cg, -1).transpose(0, 2, 1)) \
        if tap_major else None

    def workspace() -> np.ndarray:
        return np.empty(nb * orows * taps * x_shape[-1], dtype=dtype)

    def fill(ws: np.ndarray, n0: int, n1: int) -> None:
        m = (n1 - n0) * orows
        dxg[n0:n1] = 0
        if wt is not None:
            dct = ws[:taps * m * cg].reshape(taps, m, cg)
            np.matmul(g2[n0 * orows:n1 * orows], wt, out=dct)
            dcols = dct.reshape(taps, n1 - n0, *o_sizes, 1, cg)
            dcols = np.moveaxis(dcols, 0, -2)  # (n, *o, 1, T, C): a view, adds per tap
        else:
            dcols = ws[:m * taps * x_shape[-1]].reshape(m, groups, taps * cg)
            error_times_kernel_t_into(g2[n0 * orows:n1 * orows], wm, dcols)
            dcols = dcols.reshape(n1 - n0, *o_sizes, groups, taps, cg)
        col2im_into(dcols, dxg[n0:n1], boxes)
    return dx, workspace, fill


def dx_item_bytes(method: str, w: np.ndarray, x_shape: tuple[int, ...],
                  g_shape: tuple[int, ...], itemsize: int) -> int:
    """Bytes of one batch item's im2col matrix for the dX method (dZ's or dcols)."""
    taps = int(np.prod(w.shape[:len(x_shape) - 2]))
    if method == "flip":
        return int(np.prod(x_shape[1:-1])) * taps * g_shape[-1] * itemsize
    return int(np.prod(g_shape[1:-1])) * taps * x_shape[-1] * itemsize


def input_grad_blocks(g: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], strides: Ints,
                      pads: Pads, dilation: Ints, groups: int, method: str, nb: int
                      ) -> _DxBlocks:
    """(dX allocated, a workspace maker, fill(ws, n0, n1)) for blocks of up to ``nb`` items."""
    if method == "flip":
        return _flip_blocks(g, w, x_shape, pads, dilation, groups, nb)
    return _col2im_blocks(g, w, x_shape, strides, pads, dilation, groups, nb)


def _input_grad_1x1(g: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...],
                    groups: int) -> np.ndarray:
    """dX of a 1x1 stride-1 convolution: row blocks of dZ @ K^T."""
    m = int(np.prod(g.shape[:-1]))
    dcols = np.empty((m, groups, w.shape[-2]), dtype=np.result_type(g, w))
    g2, wm = g.reshape(m, g.shape[-1]), kernel_matrix(w, groups)
    row_blocks = parallel.split(m, parallel.pieces_for(g.nbytes + dcols.nbytes))

    def body(i: int, _: Any) -> None:
        r0, r1 = row_blocks[i]
        error_times_kernel_t_into(g2[r0:r1], wm, dcols[r0:r1])
    parallel.run_blocks(len(row_blocks), body, blas=True)
    return dcols.reshape(x_shape)


def _kernel_grad_1x1(x: np.ndarray, g2: np.ndarray, w_shape: tuple[int, ...], groups: int
                     ) -> np.ndarray:
    """dK of a 1x1 stride-1 convolution, X^T (C_in, M) @ dZ (M, C_out): with one group, one
    piece of the output columns per kernel thread, each a one-thread GEMM over all M rows
    (no partial sums; OpenBLAS's own two threads took 1.3 s instead of 44 ms for ResNet-50's
    (64, 50176) @ (50176, 256) with another process on the second core)."""
    if groups == 1:
        x2 = x.reshape(g2.shape[0], x.shape[-1])
        return parallel.matmul(x2.T, g2).reshape(w_shape)
    return kernel_from_matrix(cols_t_times_error(x, g2, groups), w_shape)


def input_grad(g: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], strides: Ints,
               pads: Pads, dilation: Ints, groups: int, method: str) -> np.ndarray:
    """dX by ``method`` ("flip", "col2im" or "auto": :func:`.dispatch.dx_method`), per
    batch block on the kernel threads."""
    if is_pointwise(w.shape[:g.ndim - 2], strides, pads, x_shape[1:-1], g.shape[1:-1]):
        return _input_grad_1x1(g, w, x_shape, groups)
    method = dispatch.dx_method(method, strides, x_shape, g.shape)
    blocks = dispatch.batch_blocks(g.shape[0], dx_item_bytes(method, w, x_shape, g.shape,
                                                             g.itemsize))
    dx, workspace, fill = input_grad_blocks(g, w, x_shape, strides, pads, dilation, groups,
                                            method, max(e - s for s, e in blocks))
    parallel.run_blocks(len(blocks), lambda i, ws: fill(ws, *blocks[i]), workspace, blas=True)
    return dx


# ----------------------------------------------------------------------------------------
# dK (and dX) in one pass over the batch blocks
# ----------------------------------------------------------------------------------------
def backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, cols: np.ndarray | None,
             strides: Ints, pads: Pads, dilation: Ints, groups: int, need_dx: bool,
             need_dw: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(dX, dK): per batch block, the block's im2col matrix (rebuilt unless ``cols`` holds
    it) times dZ's rows is one partial dK, and dX's rows are filled while dZ's rows are hot;
    the partial dKs are summed in block order."""
    nd = x.ndim - 2
    ksize, n, o_sizes = w.shape[:nd], x.shape[0], g.shape[1:-1]
    g2 = g.reshape(-1, g.shape[-1])
    if is_pointwise(ksize, strides, pads, x.shape[1:-1], o_sizes):
        dw = _kernel_grad_1x1(x, g2, w.shape, groups) if need_dw else None
        dx = input_grad(g, w, x.shape, strides, pads, dilation, groups, "auto") if need_dx \
            else None
        return dx, dw
    rows, taps = int(np.prod(o_sizes)), int(np.prod(ksize))
    have_cols = cols is not None and cols.size == n * rows * taps * x.shape[-1]
    own_cols = need_dw and not have_cols
    method = dispatch.dx_method("auto", strides, x.shape, g.shape) if need_dx else ""
    item = rows * taps * x.shape[-1] * x.itemsize if own_cols else 0
    if need_dx:
        item = max(item, dx_item_bytes(method, w, x.shape, g.shape, g.itemsize))
    blocks = dispatch.batch_blocks(n, item)
    nb = max(e - s for s, e in blocks)
    dx, dx_ws, fill = (input_grad_blocks(g, w, x.shape, strides, pads, dilation, groups,
                                         method, nb) if need_dx else (None, None, None))
    partials: list[Any] = [None] * len(blocks)

    def workspace() -> tuple[Any, Any]:
        own = (np.empty(nb * rows * taps * x.shape[-1], dtype=x.dtype),
               pad_buffer((nb, *x.shape[1:]), pads, x.dtype)) if own_cols else None
        return own, (dx_ws() if dx_ws is not None else None)

    def body(i: int, ws: tuple[Any, Any]) -> None:
        n0, n1 = blocks[i]
        if need_dw:
            c3 = (cols.reshape(n * rows, groups, -1)[n0 * rows:n1 * rows] if have_cols
                  else im2col_block(x[n0:n1], ksize, strides, pads, dilation, o_sizes,
                                    groups, ws[0][1], ws[0][0]))
            partials[i] = cols_t_times_error(c3, g2[n0 * rows:n1 * rows], groups)
        if fill is not None:
            fill(ws[1], n0, n1)

    parallel.run_blocks(len(blocks), body, workspace, blas=True)
    if not need_dw:
        return dx, None
    dwm = partials[0]
    for part in partials[1:]:
        dwm += part
    return dx, kernel_from_matrix(dwm, w.shape)
