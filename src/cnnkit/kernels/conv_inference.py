"""Inference-only convolution paths for the runtime: small 2-D convolutions as one im2col
copy and one GEMM, and 1x1 convolutions as GEMMs over row blocks with the bias and an
in-place activation applied while each block is still in cache.

Both compute Z = conv(X, K) + b (channels-last, K of shape (KH, KW, C_in, C_out)); neither
keeps anything for a backward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import native, parallel
from .conv import conv_output_sizes

Piece = Callable[[np.ndarray, np.ndarray], None]  # piece(out, x): writes f(x) into out

# 2-D convolutions with at most SMALL_CONV_PIXELS output pixels (batch x height x width) and
# at least SMALL_CONV_CHANNELS input channels run as one im2col copy and one GEMM: at batch 1
# on small feature maps this measured up to 3.5x faster than the conv kernel's dispatch
# (ResNet-20's 8x8x64 3x3 layers: 72 vs 253 us; 16x16x32: 81 vs 103 us; ResNet-20 whole:
# 2.96 -> 1.93 ms), slower from ~800 pixels on, and no faster for LeNet-5's 6-channel layer.
# With the C helper built (float32) the conv kernel is faster (ResNet-20 batch 1: 1.56 vs 1.92 ms).
SMALL_CONV_PIXELS, SMALL_CONV_CHANNELS = 256, 16

# A 1x1 convolution runs as GEMMs over blocks of rows of about this many output bytes, each
# followed by its bias and activation while the block is still in cache.
POINTWISE_BLOCK_BYTES = 1 << 20

# GEMMs below this many multiply-adds call NumPy's matmul directly: OpenBLAS runs them on one
# thread anyway (its own threshold is 4 x 65536), and the kernel's hand-over bookkeeping
# (holding BLAS's thread count) costs more than the product at batch 1.
SMALL_GEMM_MACS = 1 << 18


def small_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Any,
                 pads: Any, dilation: Any) -> np.ndarray | None:
    """Z[n, o] = sum_{i, j, c} Xpad[n, o*S + (i, j)*D, c] K[i, j, c, :] + b as
    cols (N*Ho*Wo, KH*KW*C) @ K (KH*KW*C, C_out), for small jobs (None otherwise)."""
    if x.dtype == np.float32 and native.available():
        return None  # the C helper's direct/Winograd kernels are faster at every size
    n, h, wd, c = x.shape
    kh, kw, _, cout = w.shape
    ho, wo = conv_output_sizes((h, wd), (kh, kw), strides, pads, dilation)
    if n * ho * wo > SMALL_CONV_PIXELS or c < SMALL_CONV_CHANNELS or \
            any(p < 0 for pair in pads for p in pair):
        return None
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
    (C_in, C_out)), block by block over the kernel threads; ``piece`` (optional) is an
    elementwise activation written in place."""
    cin, cout = w.shape
    rows = x.size // cin
    x2 = x.reshape(rows, cin)
    z = np.empty((*x.shape[:-1], cout), dtype=np.result_type(x, w))
    z2 = z.reshape(rows, cout)
    if rows * cin * cout < SMALL_GEMM_MACS:
        np.matmul(x2, w, out=z2)
        if b is not None:
            z2 += b
        if piece is not None:
            piece(z2, z2)
        return z
    per = max(1, POINTWISE_BLOCK_BYTES // (cout * z.itemsize))
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
