"""MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool as cnnkit pooling layers
(channels-last). Explicit pads, ceil_mode, count_include_pad and dilations are kept (the
pooling layers take PyTorch's/ONNX's window forms); SAME_UPPER is Keras's "same"."""

from __future__ import annotations

from typing import Any

from ... import layers as L
from .context import Context, OnnxNode
from .ops_conv import conv_pads

_MAX = {1: L.MaxPooling1D, 2: L.MaxPooling2D, 3: L.MaxPooling3D}
_AVG = {1: L.AveragePooling1D, 2: L.AveragePooling2D, 3: L.AveragePooling3D}
_GAVG = {1: L.GlobalAveragePooling1D, 2: L.GlobalAveragePooling2D, 3: L.GlobalAveragePooling3D}
_GMAX = {1: L.GlobalMaxPooling1D, 2: L.GlobalMaxPooling2D, 3: L.GlobalMaxPooling3D}


def _pool(ctx: Context, node: OnnxNode, table: dict) -> list[Any]:
    if any(ctx.used(o) for o in node.outputs[1:]):
        raise ctx.unsupported("the Indices output (cnnkit's max pooling returns values only)")
    if int(node.attr("storage_order", 0)):
        raise ctx.unsupported("storage_order=1")
    x = ctx.channels_last(ctx.sym(node.inputs[0]))
    k = x.rank - 2
    if k not in table:
        raise ctx.unsupported(f"pooling over {k} spatial axes (cnnkit has 1, 2 and 3)")
    ksize = tuple(node.attr("kernel_shape", []))
    if len(ksize) != k:
        raise ctx.unsupported(f"kernel_shape {ksize} for {k} spatial axes")
    strides = tuple(node.attr("strides", [1] * k))
    dil = tuple(node.attr("dilations", [1] * k))
    pads = conv_pads(ctx, node, x.tensor.shape[1:-1], ksize, strides, dil)
    extra = {}
    if table is _AVG:
        extra["count_include_pad"] = bool(node.attr("count_include_pad", 0))
    if pads == "same" and (dil != (1,) * k or extra.get("count_include_pad")):
        raise ctx.unsupported("auto_pad SAME_UPPER with dilations or count_include_pad")
    padding = pads if pads == "same" else tuple(tuple(p) for p in pads)
    if padding != "same" and not any(a or b for a, b in padding):
        padding = "valid"
    return [ctx.apply(table[k], x, x.perm, pool_size=ksize, strides=strides, padding=padding,
                      ceil_mode=bool(node.attr("ceil_mode", 0)), dilation_rate=dil, **extra)]


def max_pool(ctx: Context, node: OnnxNode) -> list[Any]:
    return _pool(ctx, node, _MAX)


def average_pool(ctx: Context, node: OnnxNode) -> list[Any]:
    return _pool(ctx, node, _AVG)


def _global(ctx: Context, node: OnnxNode, table: dict) -> list[Any]:
    x = ctx.channels_last(ctx.sym(node.inputs[0]))
    k = x.rank - 2
    if k not in table:
        raise ctx.unsupported(f"global pooling over {k} spatial axes")
    return [ctx.apply(table[k], x, x.perm, keepdims=True)]


def global_average_pool(ctx: Context, node: OnnxNode) -> list[Any]:
    return _global(ctx, node, _GAVG)


def global_max_pool(ctx: Context, node: OnnxNode) -> list[Any]:
    return _global(ctx, node, _GMAX)


CONVERTERS = {"MaxPool": max_pool, "AveragePool": average_pool,
              "GlobalAveragePool": global_average_pool, "GlobalMaxPool": global_max_pool}
