"""Conv and ConvTranspose as cnnkit convolution layers (channels-last).

ONNX weights (M, C/groups, *K) become cnnkit kernels (*K, C/groups, M); a depthwise Conv
(groups = C) becomes DepthwiseConv2D with kernel (KH, KW, C, M/C). Explicit pads become a
ZeroPadding layer before a "valid" convolution (the runtime folds it into the convolution);
SAME_UPPER is Keras's "same". ConvTranspose is a "valid" transposed convolution followed by a
Cropping layer for its pads.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import layers as L
from .context import Context, OnnxNode
from .values import Sym

_CONV = {1: L.Conv1D, 2: L.Conv2D, 3: L.Conv3D}
_TCONV = {1: L.Conv1DTranspose, 2: L.Conv2DTranspose, 3: L.Conv3DTranspose}
_PAD = {1: L.ZeroPadding1D, 2: L.ZeroPadding2D, 3: L.ZeroPadding3D}
_CROP = {1: L.Cropping1D, 2: L.Cropping2D, 3: L.Cropping3D}


def _geometry(ctx: Context, node: OnnxNode, k: int, ksize: tuple) -> tuple:
    strides = tuple(node.attr("strides", [1] * k))
    dil = tuple(node.attr("dilations", [1] * k))
    if len(strides) != k or len(dil) != k:
        raise ctx.unsupported(f"strides {strides} / dilations {dil} for {k} spatial axes")
    kshape = node.attr("kernel_shape")
    if kshape is not None and tuple(kshape) != tuple(ksize):
        raise ctx.unsupported(f"kernel_shape {kshape} differs from the weight's {ksize}")
    return strides, dil


def conv_pads(ctx: Context, node: OnnxNode, spatial: tuple, ksize: tuple, strides: tuple,
              dil: tuple) -> Any:
    """Keras's "same" for SAME_UPPER, else (before, after) pairs per spatial axis."""
    k = len(ksize)
    auto = node.attr("auto_pad", "NOTSET")
    if auto == "SAME_UPPER":
        return "same"
    if auto == "VALID":
        return [(0, 0)] * k
    if auto == "SAME_LOWER":
        if any(d is None for d in spatial):
            raise ctx.unsupported("auto_pad SAME_LOWER needs known spatial sizes")
        pairs = []
        for w, kk, s, d in zip(spatial, ksize, strides, dil, strict=True):
            total = max((math.ceil(w / s) - 1) * s + (kk - 1) * d + 1 - w, 0)
            pairs.append((total - total // 2, total // 2))
        return pairs
    if auto != "NOTSET":
        raise ctx.unsupported(f"auto_pad {auto!r} (supported: NOTSET, SAME_UPPER, SAME_LOWER, "
                              f"VALID)")
    pads = list(node.attr("pads", [0] * (2 * k)))
    if len(pads) != 2 * k or min(pads) < 0:
        raise ctx.unsupported(f"pads {pads} (expected {2 * k} values >= 0)")
    return [(pads[i], pads[i + k]) for i in range(k)]


def _padded(ctx: Context, x: Sym, pads: Any, k: int, ksize: tuple = (), strides: tuple = (),
            dil: tuple = ()) -> tuple[Sym, str]:
    """(input, padding) for a "valid" or "same" convolution: explicit pads become a
    ZeroPadding layer unless they are Keras's "same" at stride 1 (symmetric (K-1)*D/2)."""
    if pads == "same":
        return x, "same"
    if ksize and all(s == 1 and a == b == (kk - 1) * d // 2 and (kk - 1) * d % 2 == 0
                     for (a, b), kk, s, d in zip(pads, ksize, strides, dil, strict=True)) and any(
            a for a, _ in pads):
        return x, "same"
    if any(a or b for a, b in pads):
        x = ctx.apply(_PAD[k], x, x.perm, suffix="_pad", padding=tuple(pads))
    return x, "valid"


def conv(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.channels_last(ctx.sym(node.inputs[0]))
    w = ctx.const(node.inputs[1], "Conv weight W")
    b = ctx.optional_const(node, 2, "Conv bias B")
    k = w.ndim - 2
    if k not in _CONV or x.rank != k + 2:
        raise ctx.unsupported(f"a {k}-D convolution of a rank-{x.rank} input (cnnkit has 1-D, "
                              f"2-D and 3-D)")
    groups = int(node.attr("group", 1))
    m, cg, ksize = w.shape[0], w.shape[1], w.shape[2:]
    c = x.tensor.shape[-1]
    strides, dil = _geometry(ctx, node, k, ksize)
    pads = conv_pads(ctx, node, x.tensor.shape[1:-1], ksize, strides, dil)
    x, padding = _padded(ctx, x, pads, k, tuple(ksize), strides, dil)
    common = dict(kernel_size=tuple(ksize), strides=strides, padding=padding,
                  dilation_rate=dil, use_bias=b is not None)
    bias = [] if b is None else [b]
    if groups > 1 and groups == c and cg == 1 and k == 2 and m % c == 0:
        kernel = w.reshape(c, m // c, *ksize).transpose(2, 3, 0, 1)
        return [ctx.apply(L.DepthwiseConv2D, x, x.perm, [kernel, *bias],
                          depth_multiplier=m // c, **common)]
    kernel = np.transpose(w, (*range(2, 2 + k), 1, 0))
    return [ctx.apply(_CONV[k], x, x.perm, [kernel, *bias], filters=m, groups=groups,
                      **common)]


def _transpose_pads(ctx: Context, node: OnnxNode, spatial: tuple, ksize: tuple,
                    strides: tuple, dil: tuple, out_pad: list) -> list[tuple[int, int]]:
    """(begin, end) cropping per axis from pads, auto_pad or output_shape (an output_shape
    past the full output grows ``out_pad`` in place)."""
    k = len(ksize)
    auto = node.attr("auto_pad", "NOTSET")
    target = node.attr("output_shape")
    if target is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        target = [None if w is None else w * s for w, s in zip(spatial, strides, strict=True)]
    if target is None:
        pads = list(node.attr("pads", [0] * (2 * k))) if auto != "VALID" else [0] * (2 * k)
        if len(pads) != 2 * k or min(pads) < 0:
            raise ctx.unsupported(f"pads {pads} (expected {2 * k} values >= 0)")
        return [(pads[i], pads[i + k]) for i in range(k)]
    target = list(target)[-k:]
    if any(w is None for w in spatial):
        raise ctx.unsupported("output_shape / SAME auto_pad needs known spatial sizes")
    pairs = []
    for i, (w, kk, s, d, o) in enumerate(zip(spatial, ksize, strides, dil, target,
                                              strict=True)):
        total = s * (w - 1) + out_pad[i] + (kk - 1) * d + 1 - int(o)
        if total < 0:  # the output extends past the last window: more output padding
            out_pad[i] -= total
            total = 0
        first = total - total // 2 if auto == "SAME_LOWER" else total // 2
        pairs.append((first, total - first))
    return pairs


def conv_transpose(ctx: Context, node: OnnxNode) -> list[Any]:
    """A transposed convolution; with groups, one per group on a Split of the channels,
    joined by a Concatenate."""
    x = ctx.channels_last(ctx.sym(node.inputs[0]))
    w = ctx.const(node.inputs[1], "ConvTranspose weight W")
    b = ctx.optional_const(node, 2, "ConvTranspose bias B")
    k = w.ndim - 2
    if k not in _TCONV or x.rank != k + 2:
        raise ctx.unsupported(f"a {k}-D transposed convolution of a rank-{x.rank} input")
    groups, c = int(node.attr("group", 1)), x.tensor.shape[-1]
    if groups < 1 or c is None or c % groups or w.shape[0] != c:
        raise ctx.unsupported(f"group {groups} for {c} input channels and a weight of shape "
                              f"{w.shape}")
    ksize = w.shape[2:]
    strides, dil = _geometry(ctx, node, k, ksize)
    out_pad = list(node.attr("output_padding", [0] * k))
    pads = _transpose_pads(ctx, node, x.tensor.shape[1:-1], ksize, strides, dil, out_pad)
    parts = [x] if groups == 1 else ctx.apply(L.Split, x, x.perm, suffix="_groups",
                                              sizes=[c // groups] * groups, axis=-1)
    m, cg = w.shape[1], c // groups
    cropped = any(a or c for a, c in pads)
    ys = []
    for g, part in enumerate(parts):
        kernel = np.transpose(w[g * cg:(g + 1) * cg], (*range(2, 2 + k), 1, 0))
        bias = [] if b is None else [b[g * m:(g + 1) * m]]
        ys.append(ctx.apply(_TCONV[k], part, x.perm, [kernel, *bias], filters=m,
                            kernel_size=tuple(ksize), strides=strides, padding="valid",
                            output_padding=tuple(out_pad), dilation_rate=dil,
                            use_bias=b is not None, suffix=(f"_group{g}" if groups > 1 else
                                                            "_full" if cropped else "")))
    y = ys[0] if groups == 1 else ctx.apply(L.Concatenate, ys, x.perm, suffix="_join",
                                            axis=-1)
    if cropped:
        y = ctx.apply(_CROP[k], y, y.perm, cropping=tuple(pads))
    return [y]


CONVERTERS = {"Conv": conv, "ConvTranspose": conv_transpose}
