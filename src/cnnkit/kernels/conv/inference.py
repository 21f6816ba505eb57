"""Inference-only convolution paths for the runtime: small 2-D convolutions as one im2col
copy and one GEMM, 1x1 convolutions as GEMMs over row blocks with the bias and an
in-place activation applied while each block is still in cache, and a convolution with its
following 2x2 max or average pooling (and clamps) in one pass of the C helper.

All compute Z = conv(X, K) + b (channels-last, K of shape (KH, KW, C_in, C_out)); none keeps
anything for a backward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import native, parallel
from ..padding import Pads
from . import direct, dispatch
from .geometry import Ints, conv_output_sizes

Piece = Callable[[np.ndarray, np.ndarray], None]  # piece(out, x): writes f(x) into out
Bounds = tuple[float, float]  # a clamp (lo, hi)
NO_CLAMP: Bounds = (-np.inf, np.inf)



def small_conv_applies(x: np.ndarray, w: np.ndarray, strides: Any, pads: Any,
                       dilation: Any) -> bool:
    """Whether :func:`small_conv2d` takes this convolution (see there)."""
    t = dispatch.THRESHOLDS
    if w.size < t.small_conv_gemm_weights and x.dtype == np.float32 and native.available():
        return False
    ho, wo = conv_output_sizes(x.shape[1:3], w.shape[:2], strides, pads, dilation)
    return x.shape[0] * ho * wo <= t.small_conv_pixels and \
        x.shape[-1] >= t.small_conv_channels and not any(p < 0 for pair in pads for p in pair)


def small_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Any,
                 pads: Any, dilation: Any) -> np.ndarray | None:
    """Z[n, o] = sum_{i, j, c} Xpad[n, o*S + (i, j)*D, c] K[i, j, c, :] + b as
    cols (N*Ho*Wo, KH*KW*C) @ K (KH*KW*C, C_out), for small jobs (None otherwise): few output
    pixels, and where the C kernels are built only kernels of many weights (there the C
    kernels are faster at other sizes; see ``dispatch.THRESHOLDS``)."""
    if not small_conv_applies(x, w, strides, pads, dilation):
        return None
    n, h, wd, c = x.shape
    kh, kw, _, cout = w.shape
    ho, wo = conv_output_sizes((h, wd), (kh, kw), strides, pads, dilation)
    (pt, pb), (pl, pr) = pads
    xp = x
    if pt or pb or pl or pr:
        xp = np.zeros((n, h + pt + pb, wd + pl + pr, c), dtype=x.dtype)
        xp[:, pt:pt + h, pl:pl + wd] = x
    st = xp.strides
    view = as_strided(xp, (n, ho, wo, kh, kw, c),
                      (st[0], st[1] * strides[0], st[2] * strides[1], st[1] * dilation[0],
                       st[2] * dilation[1], st[3]), writeable=False)
    cols = view.reshape(n * ho * wo, kh * kw * c)  # the im2col copy
    z = np.empty((n, ho, wo, cout), dtype=np.result_type(x, w))
    z2 = z.reshape(-1, cout)
    parallel.matmul(cols, w.reshape(-1, cout), out=z2)  # BLAS held to the kernel threads
    if b is not None:
        z2 += b
    return z


def pointwise_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                   piece: Piece | None = None) -> np.ndarray:
    """piece(x W + b) over the rows of x (N, ..., C_in) for a 1x1 convolution (w of shape
    (C_in, C_out)), block by block over the kernel threads (row blocks; column blocks where
    there are fewer rows than output channels: ResNet-50 at batch 1, 7x7 x 512 -> 2048 2.0 vs
    1.85 ms, 14x14 x 256 -> 1024 1.55 vs 1.46); ``piece`` (optional) is an elementwise
    activation written in place."""
    cin, cout = w.shape
    rows = x.size // cin
    x2 = x.reshape(rows, cin)
    z = np.empty((*x.shape[:-1], cout), dtype=np.result_type(x, w))
    z2 = z.reshape(rows, cout)
    if rows * cin * cout < dispatch.THRESHOLDS.small_gemm_macs:
        np.matmul(x2, w, out=z2)
        if b is not None:
            z2 += b
        if piece is not None:
            piece(z2, z2)
        return z
    if rows < cout:  # few pixels (batch 1, late stages): one column block per thread
        cols = parallel.split(cout, parallel.get_num_threads())

        def body(i: int, _: Any) -> None:
            c0, c1 = cols[i]
            zb = z2[:, c0:c1]
            np.matmul(x2, w[:, c0:c1], out=zb)
            if b is not None:
                zb += b[c0:c1]
            if piece is not None:
                piece(zb, zb)

        parallel.run_blocks(len(cols), body, blas=True)
        return z
    per = max(1, dispatch.THRESHOLDS.pointwise_block_bytes // (cout * z.itemsize))
    blocks = parallel.split(rows, max(-(-rows // per), parallel.get_num_threads()))

    def body(i: int, _: Any) -> None:
        r0, r1 = blocks[i]
        zb = z2[r0:r1]
        np.matmul(x2[r0:r1], w, out=zb)
        if b is not None:
            zb += b
        if piece is not None:
            piece(zb, zb)

    parallel.run_blocks(len(blocks), body, blas=True)
    return z


def conv_pool(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints, pads: Pads,
              dilation: Ints, avg: bool, pre: Bounds = NO_CLAMP, post: Bounds = NO_CLAMP,
              transforms: dict | None = None) -> np.ndarray | None:
    """P = clip(pool(clip(conv(x, w) + b, *pre)), *post) over "valid" 2x2 windows at stride 2
    (max, or with ``avg`` the mean) by the C helper's fused kernel, two output rows at a time
    (the full-size convolution output is never stored); None where :func:`.direct.forward`
    would not run this convolution in batch blocks of the C kernels (the caller then
    convolves and pools apart). Each value is what pooling :func:`.direct.forward`'s output
    gives: the same tiles compute the same sums. ``transforms``: as in
    :func:`.direct.run_forward`."""
    if x.ndim != 4 or not native.available():
        return None
    plan = dispatch.native_plan(x, w, b, strides, pads, dilation, 1)
    if plan is None or small_conv_applies(x, w, strides, pads, dilation):
        return None
    out, st, dl, tl, wino = plan
    n, cout = x.shape[0], w.shape[-1]
    macs = n * out[0] * out[1] * w.size
    if out[0] < 2 or out[1] < 2 or dispatch.pool_pieces(n, macs):
        return None
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    b = None if b is None else np.ascontiguousarray(b, dtype=np.float32)
    u = direct.winograd_u(w, transforms) if wino else None
    p = np.empty((n, out[0] // 2, out[1] // 2, cout), dtype=np.float32)
    blocks = dispatch.native_blocks(n, macs, dispatch.THRESHOLDS.native_pool_parallel_macs)

    def body(i: int, _: Any) -> None:
        n0, n1 = blocks[i]
        native.forward_pool(x[n0:n1], w, u, b, p[n0:n1], out, st, dl, tl, avg, pre, post)
    if len(blocks) == 1:
        body(0, None)
    else:
        parallel.run_blocks(len(blocks), body)
    return p
