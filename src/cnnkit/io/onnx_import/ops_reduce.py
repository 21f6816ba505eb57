"""ReduceMean, ReduceSum, ReduceMax (axes as attribute or input) and ArgMax, over the axes of
the input's layout (never the batch)."""

from __future__ import annotations

from typing import Any

from ... import layers as L
from .context import Context, OnnxNode
from .ops_shape import ints_from
from .values import Sym

_REDUCE = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "max"}


def _reduced(ctx: Context, x: Sym, axes: list[int], keepdims: bool) -> tuple[list, tuple]:
    """(cnnkit's axes, the output's layout)."""
    axes = sorted({a % x.rank for a in axes})
    if 0 in axes:
        raise ctx.unsupported("a reduction over the batch axis")
    phys = [x.perm.index(a) for a in axes]
    if keepdims:
        return phys, x.perm
    return phys, tuple(p - sum(a < p for a in axes) for p in x.perm if p not in axes)


def reduce(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    if x.flat_order is not None:
        x = ctx.onnx_layout(x)
    axes = ints_from(ctx, node, "axes", 1, "axes")
    if not axes:
        if int(node.attr("noop_with_empty_axes", 0)):
            return [x]
        raise ctx.unsupported("a reduction over every axis, the batch included")
    keepdims = bool(node.attr("keepdims", 1))
    phys, perm = _reduced(ctx, x, axes, keepdims)
    return [ctx.apply(L.Reduce, x, perm, operation=_REDUCE[node.op_type], axis=phys,
                      keepdims=keepdims)]


def argmax(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    if x.flat_order is not None:
        x = ctx.onnx_layout(x)
    keepdims = bool(node.attr("keepdims", 1))
    phys, perm = _reduced(ctx, x, [int(node.attr("axis", 0))], keepdims)
    return [ctx.apply(L.ArgMax, x, perm, axis=phys[0], keepdims=keepdims,
                      select_last_index=bool(node.attr("select_last_index", 0)))]


CONVERTERS = {**{op: reduce for op in _REDUCE}, "ArgMax": argmax}
