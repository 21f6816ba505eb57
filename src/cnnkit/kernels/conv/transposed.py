"""Transposed convolution: exactly the input gradient of a convolution.

    forward   Y[n, o*S + t*D - P, c] += sum_k X[n, o, k] K[t, c, k], then + b[c]
              (dX of a convolution with kernel K (*K, C_out, C_in) on a (N, *L, C_out) input)
    dX        conv(dY, K), a convolution forward
    dK[t, c, k] = sum_{n, o} dY[n, o*S + t*D - P, c] X[n, o, k]   (the convolution's dK with
              the roles of input and output error swapped)
    db        sum dY
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import parallel
from ..padding import Pads, resolve_padding, same_padding
from .convolution import conv_input_grad
from .geometry import Ints
from .im2col import bias_grad, im2col


def _string_geometry(mode: str, in_sizes: Ints, ksize: Ints, strides: Ints,
                     op: tuple[int, ...] | None, dilation: Ints
                     ) -> tuple[list[int], list[tuple[int, int]]]:
    """Sizes and pads for padding "valid" or "same" (Keras / TF rules)."""
    sizes, pads = [], []
    for a, (w, k, s, d) in enumerate(zip(in_sizes, ksize, strides, dilation, strict=True)):
        e = d * (k - 1) + 1
        if mode == "valid":
            size = w * s + max(e - s, 0) if op is None else (w - 1) * s + e + op[a]
            pad = (0, 0)
        else:
            size = w * s if op is None else (w - 1) * s + e - 2 * (e // 2) + op[a]
            pad = same_padding(size, k, s, d)
        sizes.append(size)
        pads.append(pad)
    return sizes, pads


def _check_sizes(sizes: Ints, pads: Pads, in_sizes: Ints, ksize: Ints, strides: Ints,
                 dilation: Ints, padding: Any) -> None:
    """ValueError when an output size is < 1 or its convolution would not give back W."""
    for a in range(len(in_sizes)):
        if sizes[a] < 1:
            raise ValueError(f"output size along spatial axis {a} would be {sizes[a]} (input "
                             f"size {in_sizes[a]}, kernel {ksize[a]}, stride {strides[a]}, "
                             f"dilation {dilation[a]}, padding {pads[a]}); it must be >= 1")
        back = (sizes[a] + pads[a][0] + pads[a][1] - dilation[a] * (ksize[a] - 1) - 1)
        if back < 0 or back // strides[a] + 1 < in_sizes[a]:
            raise ValueError(f"output size {sizes[a]} along spatial axis {a} is too small for "
                             f"input size {in_sizes[a]} with padding {padding!r}")

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
    op = tuple(output_padding) if output_padding is not None else None
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid', 'same', an int or per-axis ints/pairs "
                             f"for a transposed convolution, got {padding!r}")
        sizes, pads = _string_geometry(mode, in_sizes, ksize, strides, op, dilation)
    else:
        pads = list(resolve_padding(padding, in_sizes, ksize, strides, dilation))
        sizes = [(w - 1) * s - p[0] - p[1] + d * (k - 1) + 1 + (op[a] if op else 0)
                 for a, (w, k, s, d, p) in enumerate(zip(in_sizes, ksize, strides, dilation,
                                                         pads, strict=True))]
    _check_sizes(sizes, tuple(pads), in_sizes, ksize, strides, dilation, padding)
    return tuple(sizes), tuple(pads)


def tiles(x_shape: tuple[int, ...], w_shape: tuple[int, ...], strides: Ints, pads: Pads,
          dilation: Ints, out_sizes: Ints) -> bool:
    """2-D, kernel == stride, dilation 1, no padding, output = input * stride (U-Net's 2x2
    stride-2 up-sampling): every output pixel lies in exactly one input pixel's K_H x K_W tile,
    so each kernel row a is one GEMM over whole tile rows (no im2col, no scatter)."""
    return (len(x_shape) == 4 and tuple(w_shape[:2]) == tuple(strides)
            and all(d == 1 for d in dilation) and all(p == (0, 0) for p in pads)
            and tuple(out_sizes) == (x_shape[1] * strides[0], x_shape[2] * strides[1]))


def _tile_rows(y: np.ndarray, n_rows: int, kh: int, width: int) -> np.ndarray:
    """Y (N, H*KH, W*KW, C) as (N*H, KH, W, KW*C): [r, a] holds tile row a of every tile."""
    return y.reshape(n_rows, kh, width, -1)


def _tile_forward(x: np.ndarray, w: np.ndarray, out_sizes: Ints) -> np.ndarray:
    """Y[n, h*KH + a, w*KW + b, c] = sum_k X[n, h, w, k] K[a, b, c, k], one GEMM per a."""
    n, h, wd, ci = x.shape
    kh, kw, co = w.shape[:3]
    y = np.empty((n, *out_sizes, co), dtype=np.result_type(x, w))
    rows = _tile_rows(y, n * h, kh, wd)
    x2 = x.reshape(-1, ci)
    for a in range(kh):
        rows[:, a] = parallel.matmul(x2, w[a].reshape(kw * co, ci).T).reshape(n * h, wd, -1)
    return y


def _tile_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, need_dx: bool, need_dw: bool
                   ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """dX[n, h, w, k] = sum_{a, (b, c)} dY_a[(n, h, w), (b, c)] K[a, b, c, k] and
    dK[a] = dY_a^T X, with dY_a the tile rows a of dY (one copy and two GEMMs per a)."""
    n, h, wd, ci = x.shape
    kh, kw, co = w.shape[:3]
    rows = _tile_rows(g, n * h, kh, wd)
    x2 = x.reshape(-1, ci)
    dx = None
    dw = np.empty(w.shape, dtype=np.result_type(g, x)) if need_dw else None
    for a in range(kh):
        ga = np.ascontiguousarray(rows[:, a]).reshape(-1, kw * co)
        if need_dx:
            part = parallel.matmul(ga, w[a].reshape(kw * co, ci))
            dx = part if dx is None else np.add(dx, part, out=dx)
        if dw is not None:
            dw[a] = parallel.matmul(ga.T, x2).reshape(kw, co, ci)
    return (None if dx is None else dx.reshape(x.shape)), dw


def conv_transpose_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints,
                           pads: Pads, dilation: Ints, out_sizes: Ints) -> np.ndarray:
    """Y[n, o*S + t*D - P, c] += sum_k X[n, o, k] K[t, c, k], then + b[c]: the input gradient of
    a convolution with kernel K (*K, C_out, C_in) on a (N, *out_sizes, C_out) input."""
    if tiles(x.shape, w.shape, strides, pads, dilation, out_sizes):
        y = _tile_forward(x, w, out_sizes)
    else:
        y = conv_input_grad(x, w, (x.shape[0], *out_sizes, w.shape[-2]), strides, pads,
                            dilation)
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
    if (need_dx or need_dw) and tiles(x.shape, w.shape, strides, pads, dilation,
                                      g.shape[1:-1]):
        dx, dw = _tile_backward(g, x, w, need_dx, need_dw)
    elif need_dx or need_dw:
        cols = im2col(g, w.shape[:nd], strides, pads, dilation, x.shape[1:-1])
        c2 = cols.reshape(-1, cols.shape[-2] * cols.shape[-1])
        x2 = x.reshape(-1, x.shape[-1])
        if need_dx:
            dx = parallel.matmul(c2, w.reshape(-1, w.shape[-1])).reshape(x.shape)
        if need_dw:
            dw = parallel.matmul(c2.T, x2).reshape(w.shape)
    if need_db:
        db = bias_grad(g)
    return dx, dw, db
