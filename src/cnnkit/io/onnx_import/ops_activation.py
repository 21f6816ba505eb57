"""Activations, Softmax/LogSoftmax (both axis semantics), Clip (attribute and input forms),
Dropout and Identity. Elementwise activations keep their input's layout."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import layers as L
from .context import Context, OnnxNode
from .values import identity, physical_axis, physical_constant

_SIMPLE = {"Relu": (L.ReLU, {}), "Sigmoid": (L.Activation, {"activation": "sigmoid"}),
           "Tanh": (L.Activation, {"activation": "tanh"}),
           "HardSwish": (L.Activation, {"activation": "hard_swish"}),
           "Softplus": (L.UnaryMath, {"function": "softplus"})}
SELU_ALPHA, SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875


def simple(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    cls, kwargs = _SIMPLE[node.op_type]
    return [ctx.apply(cls, x, x.perm, **kwargs)]


def leaky_relu(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    return [ctx.apply(L.LeakyReLU, x, x.perm, negative_slope=float(node.attr("alpha", 0.01)))]


def elu(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    return [ctx.apply(L.ELU, x, x.perm, alpha=float(node.attr("alpha", 1.0)))]


def selu(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    alpha, gamma = float(node.attr("alpha", SELU_ALPHA)), float(node.attr("gamma", SELU_GAMMA))
    if not (math.isclose(alpha, SELU_ALPHA, rel_tol=1e-6)
            and math.isclose(gamma, SELU_GAMMA, rel_tol=1e-6)):
        y = ctx.apply(L.ELU, x, x.perm, alpha=alpha, suffix="_elu")
        return [ctx.apply(L.ConstantOperand, y, y.perm, [np.float32(gamma)],
                          operation="multiply")]
    return [ctx.apply(L.Activation, x, x.perm, activation="selu")]


def hard_sigmoid(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    return [ctx.apply(L.HardSigmoid, x, x.perm, alpha=float(node.attr("alpha", 0.2)),
                      beta=float(node.attr("beta", 0.5)))]


def prelu(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    slope = physical_constant(ctx.const(node.inputs[1], "PRelu slope"), x)
    shape = x.tensor.shape
    if slope.shape[0] != 1:
        raise ctx.unsupported(f"a slope of shape {slope.shape} varying over the batch")
    shared = [i for i in range(1, x.rank) if slope.shape[i] == 1 and shape[i] != 1]
    want = tuple(1 if (i in shared or shape[i] == 1) else shape[i] for i in range(1, x.rank))
    alpha = np.broadcast_to(slope[0], want)
    return [ctx.apply(L.PReLU, x, x.perm, [alpha], shared_axes=shared or None)]


def _clip_bounds(ctx: Context, node: OnnxNode) -> tuple[float | None, float | None]:
    if node.opset < 11:
        lo, hi = node.attr("min"), node.attr("max")
        return (None if lo is None else float(lo)), (None if hi is None else float(hi))
    lo = ctx.optional_const(node, 1, "Clip min")
    hi = ctx.optional_const(node, 2, "Clip max")
    return (None if lo is None else float(lo)), (None if hi is None else float(hi))


def clip(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    lo, hi = _clip_bounds(ctx, node)
    if lo == 0.0 and hi is None:
        return [ctx.apply(L.ReLU, x, x.perm)]
    if lo == 0.0 and hi == 6.0:
        return [ctx.apply(L.ReLU, x, x.perm, max_value=6.0)]
    return [ctx.apply(L.Clip, x, x.perm, min_value=lo, max_value=hi)]


def _softmax(ctx: Context, node: OnnxNode, cls: type) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    axis = int(node.attr("axis", -1 if node.opset >= 13 else 1))
    axis = axis + x.rank if axis < 0 else axis
    if node.opset >= 13 or axis == x.rank - 1:
        return [ctx.apply(cls, x, x.perm, axis=physical_axis(x, axis))]
    # opset < 13: softmax over the axes from ``axis`` on, taken together (a 2-D coercion)
    if axis == 0:
        raise ctx.unsupported("axis 0 with opset < 13 (a softmax across the batch)")
    x = ctx.onnx_layout(x)
    shape = x.tensor.shape
    if any(d is None for d in shape[axis:]):
        raise ctx.unsupported(f"opset < 13 softmax over axes {axis}.. of shape {shape} needs "
                              f"their sizes known")
    flat = ctx.apply(L.Reshape, x, identity(axis + 1), suffix="_2d",
                     target_shape=(*shape[1:axis], -1) if None not in shape[1:axis] else (-1,))
    y = ctx.apply(cls, flat, flat.perm, axis=-1, suffix="_flat")
    return [ctx.apply(L.Reshape, y, identity(x.rank), target_shape=shape[1:])]


def softmax(ctx: Context, node: OnnxNode) -> list[Any]:
    return _softmax(ctx, node, L.Softmax)


def log_softmax(ctx: Context, node: OnnxNode) -> list[Any]:
    return _softmax(ctx, node, L.LogSoftmax)


def dropout(ctx: Context, node: OnnxNode) -> list[Any]:
    if len(node.outputs) > 1 and ctx.used(node.outputs[1]):
        raise ctx.unsupported("the mask output")
    x = ctx.sym(node.inputs[0])
    if node.opset >= 12:
        training = ctx.optional_const(node, 2, "Dropout training_mode")
        if training is not None and bool(training):
            raise ctx.unsupported("training_mode=True (export the model in inference mode)")
        ratio = ctx.optional_const(node, 1, "Dropout ratio")
        rate = 0.5 if ratio is None else float(ratio)
    else:
        rate = float(node.attr("ratio", 0.5))
    if rate <= 0.0 or not x.dtype.kind == "f":
        return [x]
    return [ctx.apply(L.Dropout, x, x.perm, rate=rate)]


def same(ctx: Context, node: OnnxNode) -> list[Any]:
    v = ctx.get(node.inputs[0])
    return [v]


CONVERTERS = {**{op: simple for op in _SIMPLE}, "LeakyRelu": leaky_relu, "Elu": elu,
              "Selu": selu, "HardSigmoid": hard_sigmoid, "PRelu": prelu, "Clip": clip,
              "Softmax": softmax, "LogSoftmax": log_softmax, "Dropout": dropout,
              "Identity": same}
