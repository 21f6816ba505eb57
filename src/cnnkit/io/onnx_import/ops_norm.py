"""BatchNormalization, InstanceNormalization and LRN as cnnkit normalisation layers over the
channel axis (channels-last)."""

from __future__ import annotations

from typing import Any

from ... import layers as L
from .context import Context, OnnxNode


def _outputs_used(ctx: Context, node: OnnxNode) -> None:
    extra = [o for o in node.outputs[1:] if ctx.used(o)]
    if extra:
        raise ctx.unsupported(f"outputs {extra} (training statistics); cnnkit returns only Y "
                              f"(export the model in inference mode)")


def batch_norm(ctx: Context, node: OnnxNode) -> list[Any]:
    _outputs_used(ctx, node)
    if int(node.attr("training_mode", 0)):
        raise ctx.unsupported("training_mode=1 (export the model in inference mode)")
    if node.opset < 9 and int(node.attr("spatial", 1)) != 1:
        raise ctx.unsupported("spatial=0 (per-position statistics)")
    x = ctx.channels_last(ctx.sym(node.inputs[0]))
    names = ("scale", "B", "input_mean", "input_var")
    gamma, beta, mean, var = (ctx.const(n, f"BatchNormalization {w}")
                              for n, w in zip(node.inputs[1:5], names, strict=True))
    eps = float(node.attr("epsilon", 1e-5))
    return [ctx.apply(L.BatchNormalization, x, x.perm, [gamma, beta, mean, var], axis=-1,
                      epsilon=eps, momentum=float(node.attr("momentum", 0.9)))]


def instance_norm(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.channels_last(ctx.sym(node.inputs[0]))
    gamma = ctx.const(node.inputs[1], "InstanceNormalization scale")
    beta = ctx.const(node.inputs[2], "InstanceNormalization B")
    if x.rank < 3:
        raise ctx.unsupported(f"an input of rank {x.rank} (needs N, C and spatial axes)")
    return [ctx.apply(L.GroupNormalization, x, x.perm, [gamma, beta], groups=int(gamma.size),
                      epsilon=float(node.attr("epsilon", 1e-5)))]


def lrn(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.channels_last(ctx.sym(node.inputs[0]))
    size = node.attr("size")
    if size is None:
        raise ctx.unsupported("LRN without its required 'size' attribute")
    return [ctx.apply(L.LocalResponseNormalization, x, x.perm, size=int(size),
                      alpha=float(node.attr("alpha", 1e-4)), beta=float(node.attr("beta", 0.75)),
                      bias=float(node.attr("bias", 1.0)))]


CONVERTERS = {"BatchNormalization": batch_norm, "InstanceNormalization": instance_norm,
              "LRN": lrn}

