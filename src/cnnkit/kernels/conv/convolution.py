"""N-d convolution (groups, dilation) and its backward pass, channels-last: the entry points,
which send each call to one algorithm.

    forward  Z[n, o, k] = sum_{t, c} X[n, o*S + t*D - P, c] * K[t, c, k] + b[k]
    dX       dX[n, i, c] = sum_{o, t: o*S + t*D - P = i} sum_k dZ[n, o, k] * K[t, c, k]
    dK       dK[t, c, k] = sum_{n, o} dZ[n, o, k] * X[n, o*S + t*D - P, c]
    db       db[k] = sum_{n, o} dZ[n, o, k]

Algorithms: groups == C_in goes to :mod:`.depthwise`; float32 2-D convolutions with groups 1
(not 1x1) to the C kernels (:mod:`.direct`, :mod:`.winograd`) where :mod:`.dispatch` says they
measured faster; everything else (float64 too) to im2col + GEMM (:mod:`.im2col`), which gives
the same results within float32 rounding.
"""

from __future__ import annotations

import numpy as np

from .. import native
from ..padding import Pads
from . import depthwise, direct, dispatch, im2col
from .geometry import Ints, conv_output_sizes, is_depthwise


def _as_depthwise(w: np.ndarray, groups: int) -> np.ndarray:
    """A groups == C_in kernel (*K, 1, C_out) as a depthwise one (*K, C, M)."""
    return w.reshape(*w.shape[:-2], groups, w.shape[-1] // groups)


def _subset(x: np.ndarray, picks: tuple[slice, ...]) -> np.ndarray:
    return np.ascontiguousarray(x[picks])


_ONES = (1, 1)
_NO_PADS = ((0, 0), (0, 0))


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints,
                 pads: Pads, dilation: Ints, groups: int = 1, keep_cols: bool = True,
                 transforms: dict | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Z[n, o, g*Og + k] = sum_{t, c} X[n, o*S + t*D - P, g*Cg + c] K[t, c, g*Og + k] + b.

    x (N, *spatial, C_in), w (*K, C_in/groups, C_out), b (C_out,) or None. Returns Z and, for
    a 1x1 convolution with ``keep_cols``, its im2col matrix (x itself) as the backward's cache
    for dK; otherwise None (the backward rebuilds the im2col blocks). ``transforms``: the
    caller's store of forms derived from this very ``w`` (the Winograd U), kept there for
    later calls with the same, unchanged ``w``.
    """
    picks = dispatch.strided_pointwise(x.shape, w.shape, strides, pads, dilation, groups) \
        if w.shape[0] == 1 and w.ndim == 4 else None
    if picks is not None:
        return conv_forward(_subset(x, picks), w, b, _ONES, _NO_PADS, _ONES, 1, False)[0], None
    plan = dispatch.native_plan(x, w, b, strides, pads, dilation, groups) \
        if native.available() else None
    if plan is not None:  # the C kernels, with the checks cached
        out, st, dl, _, wino = plan
        return direct.forward(x, w, b, st, pads, dl, out, wino, transforms), None
    if is_depthwise(x.shape, groups):
        return depthwise.depthwise_conv_forward(x, _as_depthwise(w, groups), b, strides, pads,
                                                dilation), None
    out_sizes = conv_output_sizes(x.shape[1:-1], w.shape[:x.ndim - 2], strides, pads,
                                  dilation)
    if x.shape[0] == 0:
        return np.empty((0, *out_sizes, w.shape[-1]), dtype=np.result_type(x, w)), None
    dtypes = (x.dtype,) if b is None else (x.dtype, b.dtype)
    if dispatch.native_wins(w.shape) and dispatch.use_native(x.shape, dtypes, w, groups,
                                                             strides, pads, out_sizes):
        return direct.forward(x, w, b, strides, pads, dilation, out_sizes), None
    return im2col.forward(x, w, b, strides, pads, dilation, groups, out_sizes, keep_cols)


def conv_input_grad(g: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], strides: Ints,
                    pads: Pads, dilation: Ints, groups: int = 1, method: str = "auto"
                    ) -> np.ndarray:
    """dX[n, i, c] = sum_{o, t: o*S + t*D - P = i} sum_k dZ[n, o, k] K[t, c, k].

    ``method="col2im"``: dcols = dZ @ K^T (one GEMM), then col2im (one strided add per tap).
    ``method="flip"`` (stride 1 only): the full convolution, a stride-1 convolution of dZ
    padded by (E-1-P_before, ...) with the flipped kernel (:func:`.im2col.flip_kernel`).
    ``"auto"``: :func:`.dispatch.dx_method`, or the C kernels (float32 2-D, groups 1) where
    :func:`.dispatch.native_dx_ok`.
    """
    x_shape = tuple(x_shape)
    picks = dispatch.strided_pointwise(x_shape, w.shape, strides, pads, dilation, groups)
    if picks is not None and method == "auto":
        dx = np.zeros(x_shape, dtype=np.result_type(g, w))
        sub = dx[picks]
        dx[picks] = conv_input_grad(g, w, sub.shape, _ONES, _NO_PADS, _ONES)
        return dx
    if method == "auto" and is_depthwise(x_shape, groups):
        x0 = np.empty(x_shape, dtype=g.dtype)  # only its shape is read
        return depthwise.depthwise_conv_backward(g, x0, _as_depthwise(w, groups), strides,
                                                 pads, dilation, True, False, False)[0]
    if x_shape[0] == 0:
        return np.zeros(x_shape, dtype=np.result_type(g, w))
    if (method == "auto" and dispatch.native_dx_ok(strides, x_shape[-1], w.shape[-1])
            and dispatch.use_native(x_shape, (g.dtype,), w, groups, strides, pads,
                                    g.shape[1:-1])):
        return direct.input_grad(g, w, x_shape, strides, pads, dilation)
    return im2col.input_grad(g, w, x_shape, strides, pads, dilation, groups, method)


def conv_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, cols: np.ndarray | None,
                  strides: Ints, pads: Pads, dilation: Ints, groups: int = 1,
                  need_dx: bool = True, need_dw: bool = True, need_db: bool = True
                  ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(dX, dK, db) of :func:`conv_forward` for output error dZ = ``g``; gradients whose
    ``need_*`` flag is False are skipped (None), e.g. dX for a network's input. ``cols``:
    the forward's im2col matrix, when it kept one."""
    if is_depthwise(x.shape, groups):
        dx, dw, db = depthwise.depthwise_conv_backward(g, x, _as_depthwise(w, groups), strides,
                                                       pads, dilation, need_dx, need_dw,
                                                       need_db)
        return dx, (None if dw is None else dw.reshape(w.shape)), db
    if x.shape[0] == 0:
        dtype = np.result_type(g, x, w)
        return (np.zeros(x.shape, dtype) if need_dx else None,
                np.zeros(w.shape, dtype) if need_dw else None,
                np.zeros(g.shape[-1], g.dtype) if need_db else None)
    db = im2col.bias_grad(g) if need_db else None
    picks = dispatch.strided_pointwise(x.shape, w.shape, strides, pads, dilation, groups)
    if picks is not None:
        dx = conv_input_grad(g, w, x.shape, strides, pads, dilation) if need_dx else None
        dw = im2col.backward(g, _subset(x, picks), w, None, _ONES, _NO_PADS, _ONES, 1, False,
                             True)[1] if need_dw else None
        return dx, dw, db
    if (dispatch.native_wins(w.shape) or not need_dw) and dispatch.use_native(
            x.shape, (x.dtype, g.dtype), w, groups, strides, pads, g.shape[1:-1]):
        if need_dw and dispatch.im2col_dk(strides):
            dw = im2col.backward(g, x, w, cols, strides, pads, dilation, groups, False, True)[1]
        else:
            dw = direct.kernel_grad(g, x, w.shape, strides, pads, dilation) if need_dw \
                else None
        dx = conv_input_grad(g, w, x.shape, strides, pads, dilation, groups) if need_dx \
            else None
        return dx, dw, db
    if not (need_dx or need_dw):
        return None, None, db
    dx, dw = im2col.backward(g, x, w, cols, strides, pads, dilation, groups, need_dx, need_dw)
    return dx, dw, db
