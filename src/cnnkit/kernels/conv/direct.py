"""Direct 2-D convolution by the C helper (``native/_conv.c``), float32, groups 1.

    forward  z[n, oy, ox, o] = sum_{i, j, c} x[n, oy*SH + i*DH - PT, ox*SW + j*DW - PL, c]
                               * k[i, j, c, o] + b[o]
    dX       at stride 1 the forward of dZ padded by E-1-P with the flipped kernel; for few
             channels one KW*Cin row run per kernel row; else the scatter kernel
    dK       dk[i, j, c, o] = sum_{n, oy, ox} x[n, iy, ix, c] dz[n, oy, ox, o]

Register-blocked tiles over a zero-padded copy of each image (no im2col matrix); 3x3 stride-1
layers with enough channels go by Winograd (:mod:`.winograd`). Batch blocks are shared by
the kernel threads (dK's partial sums added in block order); small batches run in row pieces
on the C library's own spinning pool (batch-1 latency). Which jobs come here, and how they
are cut: :mod:`.dispatch`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import native, parallel
from ..padding import Pads
from . import dispatch, winograd
from .geometry import Ints, flip_pads
from .im2col import flip_kernel


def _run_blocks(blocks: list[tuple[int, int]], body: Any) -> None:
    """body(i, None) for each block, on the kernel threads when there are several."""
    if len(blocks) == 1:
        body(0, None)
    else:
        parallel.run_blocks(len(blocks), body)


def winograd_u(w: np.ndarray, transforms: dict | None) -> np.ndarray:
    """The Winograd U of w, from ``transforms`` (kept there when computed)."""
    u = None if transforms is None else transforms.get("winograd")
    if u is None:
        u = winograd.transform(w)
        if transforms is not None:
            transforms["winograd"] = u
    return u


def run_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, z: np.ndarray,
                strides: Ints, dilation: Ints, tl: tuple[int, int],
                wino: bool | None = None, transforms: dict | None = None) -> None:
    """z = conv(x, w) + b (direct, or Winograd where :func:`.dispatch.use_winograd` or
    ``wino`` says): small batches in row pieces on the library's pool, else batch blocks.
    ``transforms``: where the Winograd U of this ``w`` is kept between calls (the caller
    empties it when ``w`` changes)."""
    if wino is None:
        wino = dispatch.use_winograd(w.shape, strides, dilation, x.shape[0], z.shape[2])
    u = winograd_u(w, transforms) if wino else None
    st, dl = tuple(strides), tuple(dilation)
    macs = z.size * w.size // w.shape[-1]
    per = dispatch.pool_pieces(x.shape[0], macs)
    if per:
        native.forward_pieces(x, w, u, b, z, st, dl, tl, per, parallel.get_num_threads())
        return
    blocks = dispatch.native_blocks(x.shape[0], macs)

    def body(i: int, _: Any) -> None:
        n0, n1 = blocks[i]
        if u is not None:
            winograd.forward_block(x[n0:n1], u, w.shape[-1], b, z[n0:n1], tl)
        else:
            native.forward(x[n0:n1], w, b, z[n0:n1], st, dl, tl)
    _run_blocks(blocks, body)


def forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints, pads: Pads,
            dilation: Ints, out_sizes: Ints, wino: bool | None = None,
            transforms: dict | None = None) -> np.ndarray:
    """Z of the convolution by the C kernels (:func:`run_forward`; ``transforms`` there)."""
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    b = None if b is None else np.ascontiguousarray(b, dtype=np.float32)
    z = np.empty((x.shape[0], *out_sizes, w.shape[-1]), dtype=np.float32)
    run_forward(x, w, b, z, strides, dilation, (pads[0][0], pads[1][0]), wino, transforms)
    return z


def input_grad(g: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], strides: Ints,
               pads: Pads, dilation: Ints) -> np.ndarray:
    """dX by the C kernels: row runs (few channels), the flipped-kernel forward (stride 1) or
    the scatter kernel (each output pixel's dZ . K[t] added into dX, tap by tap)."""
    g = np.ascontiguousarray(g)
    wc = np.ascontiguousarray(w)
    dx = np.empty(x_shape, dtype=np.float32)
    tl = (pads[0][0], pads[1][0])
    rowrun = dispatch.use_rowrun(w.shape, strides, dilation)
    if all(s == 1 for s in strides) and not rowrun:
        fp = flip_pads(w.shape[:2], pads, dilation, x_shape[1:-1], g.shape[1:-1])
        run_forward(g, flip_kernel(wc), None, dx, (1, 1), dilation, (fp[0][0], fp[1][0]))
        return dx
    blocks = dispatch.native_blocks(g.shape[0], g.size * w.size // w.shape[-1])

    def body(i: int, _: Any) -> None:
        n0, n1 = blocks[i]
        if rowrun:
            native.input_grad_rowrun(g[n0:n1], wc, dx[n0:n1], tuple(strides), dilation[0],
                                     tl)
        else:
            native.input_grad(g[n0:n1], wc, dx[n0:n1], tuple(strides), tuple(dilation), tl)
    _run_blocks(blocks, body)
    return dx


def kernel_grad(g: np.ndarray, x: np.ndarray, w_shape: tuple[int, ...], strides: Ints,
                pads: Pads, dilation: Ints) -> np.ndarray:
    """dK by the C kernel (direct, or Winograd F(3x3, 2x2) where
    :func:`.dispatch.winograd_dk`): one partial sum per batch block, added in block order."""
    g = np.ascontiguousarray(g)
    x = np.ascontiguousarray(x)
    blocks = dispatch.native_blocks(x.shape[0], g.size * int(np.prod(w_shape[:-1])))
    parts = [np.empty(w_shape, dtype=np.float32) for _ in blocks]
    tl = (pads[0][0], pads[1][0])
    wino = dispatch.winograd_dk(w_shape, strides, dilation, g.shape[1] * g.shape[2])

    def body(i: int, _: Any) -> None:
        n0, n1 = blocks[i]
        if wino:
            winograd.kernel_grad_block(x[n0:n1], g[n0:n1], parts[i], tl)
        else:
            native.kernel_grad(x[n0:n1], g[n0:n1], parts[i], tuple(strides), tuple(dilation),
                               tl)
    _run_blocks(blocks, body)
    dw = parts[0]
    for part in parts[1:]:
        dw += part
    return dw
