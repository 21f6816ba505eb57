"""Convolutions and Dense: Conv, grouped Conv (depthwise), two Convs (separable),
ConvTranspose, Gemm / MatMul (Dense), each with a following batch norm folded in for an
inference export (the runtime's folding: W' = W * s, b' = (b - mu) * s + beta with
s = gamma / sqrt(var + eps), :func:`cnnkit.runtime.compute.folded_params`) and its activation
after it.

Kernel layouts: cnnkit (*K, C_in/g, C_out) -> ONNX (C_out, C_in/g, *K); depthwise
(KH, KW, C, M) -> (C*M, 1, KH, KW) with group C; transposed (*K, C_out, C_in) ->
(C_in, C_out, *K). Pads: "valid" 0, "causal" D*(K-1) before, "same" the Keras pads for the
known input size (SAME_UPPER, which puts the odd cell at the end as Keras does, when the size
is not known), plus the pads of a zero padding folded in.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import layers
from ...kernels.conv import conv_transpose_geometry
from ...kernels.padding import resolve_padding
from ...runtime.compute import bn_scale_shift, folded_params
from .activation import activate
from .graph import Value
from .layout import as_cf
from .registry import Call, exports


def _kernel_to_onnx(k: np.ndarray) -> np.ndarray:
    """(*K, A, B) -> (B, A, *K)."""
    r = k.ndim - 2
    return np.ascontiguousarray(k.transpose(r + 1, r, *range(r)))


def conv_pads(c: Call, in_shape: tuple) -> dict:
    """The ``pads`` (or ``auto_pad``) attribute of a convolution on ``in_shape`` (the
    channels-last shape after any folded zero padding)."""
    la = c.layer
    sizes = in_shape[1:-1]
    extra = c.extra_pads or ((0, 0),) * len(sizes)
    if la.padding == "same" and any(d is None for d in sizes):
        return {"auto_pad": "SAME_UPPER"}  # extra pads are never folded into this case
    known = [1 if d is None else int(d) for d in sizes]
    pads = resolve_padding(la.padding, known, la.kernel_size, la.strides, la.dilation_rate)
    pads = [(p0 + e0, p1 + e1) for (p0, p1), (e0, e1) in zip(pads, extra, strict=True)]
    return {"pads": [p[0] for p in pads] + [p[1] for p in pads]}


def _geometry(c: Call, in_shape: tuple) -> dict:
    la = c.layer
    return {"kernel_shape": list(la.kernel_size), "strides": list(la.strides),
            "dilations": list(la.dilation_rate), **conv_pads(c, in_shape)}


def padded_shape(c: Call) -> tuple:
    """The input shape the layer sees, after a folded zero padding."""
    shape = c.x.shape
    if not c.extra_pads:
        return shape
    spatial = [None if d is None else int(d) + b + a
               for d, (b, a) in zip(shape[1:-1], c.extra_pads, strict=True)]
    return (shape[0], *spatial, shape[-1])


def _finish(c: Call, y: str) -> Value:
    out = Value(y, tuple(c.out_shape), True, c.dtype)
    return activate(c, getattr(c.layer, "activation", None), out, c.name)


def _bias(c: Call, b: np.ndarray | None) -> list[str]:
    return [] if b is None else [c.weight("bias", b)]


@exports(layers.Conv1D, layers.Conv2D, layers.Conv3D, absorbs_bn=True, absorbs_pads=True)
def conv(c: Call) -> Value:
    la = c.layer
    w, b = folded_params(la, c.bn)
    x = as_cf(c.g, c.x)
    y = c.g.node("Conv", [x.name, c.weight("kernel", _kernel_to_onnx(w)), *_bias(c, b)],
                 c.name if _no_act(la) else f"{c.name}/conv", group=la.groups,
                 **_geometry(c, padded_shape(c)))
    return _finish(c, y)


def _no_act(la: Any) -> bool:
    from ... import ops

    act = getattr(la, "activation", None)
    return act is None or act is ops.get_activation("linear")


def _depthwise_onnx(k: np.ndarray) -> np.ndarray:
    """(KH, KW, C, M) -> (C*M, 1, KH, KW): output channel c*M + m."""
    kh, kw, ch, m = k.shape
    return np.ascontiguousarray(k.transpose(2, 3, 0, 1).reshape(ch * m, 1, kh, kw))


@exports(layers.DepthwiseConv2D, absorbs_bn=True, absorbs_pads=True)
def depthwise_conv(c: Call) -> Value:
    la = c.layer
    w, b = folded_params(la, c.bn, la.kernel.shape[-2:])
    x = as_cf(c.g, c.x)
    y = c.g.node("Conv", [x.name, c.weight("kernel", _depthwise_onnx(w)), *_bias(c, b)],
                 c.name if _no_act(la) else f"{c.name}/conv", group=int(w.shape[2]),
                 **_geometry(c, padded_shape(c)))
    return _finish(c, y)


@exports(layers.SeparableConv2D, absorbs_bn=True, absorbs_pads=True)
def separable_conv(c: Call) -> Value:
    """Depthwise Conv (group C, no bias), then a 1x1 Conv with the bias (and batch norm)."""
    la = c.layer
    dw = la.depthwise_kernel.data
    pw = la.pointwise_kernel.data
    b = la.bias.data if la.bias is not None else None
    if c.bn is not None:
        s, t = bn_scale_shift(c.bn, pw.dtype)
        pw, b = pw * s, (t if b is None else t + b * s)
    x = as_cf(c.g, c.x)
    mid = c.g.node("Conv", [x.name, c.weight("depthwise_kernel", _depthwise_onnx(dw))],
                   f"{c.name}/depthwise", group=int(dw.shape[2]),
                   **_geometry(c, padded_shape(c)))
    y = c.g.node("Conv", [mid, c.weight("pointwise_kernel", _kernel_to_onnx(pw)),
                          *_bias(c, b)], c.name if _no_act(la) else f"{c.name}/pointwise",
                 kernel_shape=[1, 1])
    return _finish(c, y)


@exports(layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose,
         absorbs_bn=True)
def conv_transpose(c: Call) -> Value:
    """ConvTranspose with the pads of the convolution it inverts; ONNX's output_padding is
    what cnnkit's output length L exceeds (W-1)*S + E - P_before - P_after by."""
    la = c.layer
    w = la.kernel.data
    b = la.bias.data if la.bias is not None else None
    if c.bn is not None:
        s, t = bn_scale_shift(c.bn, w.dtype)
        w, b = w * s[:, None], (t if b is None else t + b * s)
    sizes = [16 if d is None else int(d) for d in c.x.shape[1:-1]]  # pads do not depend on it
    out, pads = conv_transpose_geometry(sizes, la.kernel_size, la.strides, la.padding,
                                        la.output_padding, la.dilation_rate)
    extra = [n - ((size - 1) * s + d * (k - 1) + 1 - p0 - p1) for n, size, k, s, d, (p0, p1)
             in zip(out, sizes, la.kernel_size, la.strides, la.dilation_rate, pads,
                    strict=True)]
    x = as_cf(c.g, c.x)
    y = c.g.node("ConvTranspose", [x.name, c.weight("kernel", _kernel_to_onnx(w)),
                                   *_bias(c, b)],
                 c.name if _no_act(la) else f"{c.name}/conv_transpose",
                 kernel_shape=list(la.kernel_size), strides=list(la.strides),
                 dilations=list(la.dilation_rate), pads=[p[0] for p in pads] + [
                     p[1] for p in pads], output_padding=extra if any(extra) else None)
    return _finish(c, y)


@exports(layers.Dense, absorbs_bn=True, keeps_order=True)  # takes the order into W
def dense(c: Call) -> Value:
    """Gemm on (N, features) (a permuted feature order taken into the kernel's rows); a 1x1
    Conv on a channels-first image; MatMul + Add on other ranks."""
    la, g, x = c.layer, c.g, c.x
    w, b = folded_params(la, c.bn)
    if x.order is not None:
        w = w[x.order]
    base = c.name if _no_act(la) else f"{c.name}/dense"
    if x.rank == 2:
        y = g.node("Gemm", [x.name, c.weight("kernel", w), *_bias(c, b)], base)
        out = Value(y, tuple(c.out_shape), False, c.dtype)
    elif x.cf:
        kernel = w.T.reshape(w.shape[1], w.shape[0], *(1,) * (x.rank - 2))
        y = g.node("Conv", [x.name, c.weight("kernel_conv", kernel), *_bias(c, b)], base,
                   kernel_shape=[1] * (x.rank - 2))
        out = Value(y, tuple(c.out_shape), True, c.dtype)
    else:
        y = g.node("MatMul", [x.name, c.weight("kernel", w)], base if b is None
                   else f"{c.name}/matmul")
        if b is not None:
            y = g.node("Add", [y, c.weight("bias", b)], base)
        out = Value(y, tuple(c.out_shape), False, c.dtype)
    return activate(c, la.activation, out, c.name)
