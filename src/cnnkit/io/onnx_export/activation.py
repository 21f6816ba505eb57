"""Activations: the functions layers take by name (``activation="relu"``) and the
activation layers (Activation, ReLU, LeakyReLU, ELU, Softmax, PReLU).

ONNX forms: relu Relu; relu6 Clip(0, 6); leaky_relu LeakyRelu(0.2); elu Elu; selu Selu (the
same constants); sigmoid, tanh, softplus by name; hard_sigmoid HardSigmoid(1/6, 1/2);
silu x * Sigmoid(x); hard_swish HardSwish (opset 14; x * HardSigmoid(x) before); gelu Gelu
(opset 20; before: x/2 (1 + erf(x/sqrt 2)), or the tanh form 0.5 x (1 + tanh(sqrt(2/pi)
(x + 0.044715 x^3)))); softmax / log_softmax over cnnkit's last axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ... import layers, ops
from .errors import OnnxExportError
from .graph import Graph, Value, onnx_axis
from .layout import as_last
from .registry import Call, exports

Act = Callable[[Graph, Value, str], Value]


def _unary(op: str, **attrs: Any) -> Act:
    return lambda g, x, base: x.named(g.node(op, [x.name], base, **attrs))


def _relu6(g: Graph, x: Value, base: str) -> Value:
    return x.named(g.clip(x.name, 0.0, 6.0, x.dtype, base))


def _silu(g: Graph, x: Value, base: str) -> Value:
    s = g.node("Sigmoid", [x.name], f"{base}/sigmoid")
    return x.named(g.node("Mul", [x.name, s], base))


def _hard_sigmoid(g: Graph, x: Value, base: str) -> Value:
    return x.named(g.hard_sigmoid(x.name, 1 / 6, 0.5, base))


def _hard_swish(g: Graph, x: Value, base: str) -> Value:
    if g.opset >= 14:
        return x.named(g.node("HardSwish", [x.name], base))
    s = g.hard_sigmoid(x.name, 1 / 6, 0.5, f"{base}/hard_sigmoid")
    return x.named(g.node("Mul", [x.name, s], base))


def _gelu(approximate: bool) -> Act:
    def write(g: Graph, x: Value, base: str) -> Value:
        if g.opset >= 20:
            return x.named(g.node("Gelu", [x.name], base,
                                  approximate="tanh" if approximate else "none"))

        def c(v: float, n: str) -> str:
            return g.const(v, n, x.dtype)

        if approximate:  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            x3 = g.node("Mul", [x.name, g.node("Mul", [x.name, x.name], f"{base}/x2")],
                        f"{base}/x3")
            inner = g.node("Add", [x.name, g.node("Mul", [x3, c(0.044715, "gelu_c")],
                                                  f"{base}/cx3")], f"{base}/inner")
            t = g.node("Tanh", [g.node("Mul", [inner, c(math.sqrt(2 / math.pi), "gelu_k")],
                                       f"{base}/scaled")], f"{base}/tanh")
        else:  # x/2 (1 + erf(x / sqrt 2))
            t = g.node("Erf", [g.node("Mul", [x.name, c(1 / math.sqrt(2), "gelu_k")],
                                      f"{base}/scaled")], f"{base}/erf")
        one = g.node("Add", [t, c(1.0, "one")], f"{base}/one_plus")
        half = g.node("Mul", [x.name, c(0.5, "half")], f"{base}/half_x")
        return x.named(g.node("Mul", [half, one], base))

    return write


def softmax(g: Graph, x: Value, axis: int, base: str, op: str = "Softmax") -> Value:
    """Softmax / LogSoftmax over cnnkit axis ``axis``. Before opset 13 the operator
    normalises over all axes from ``axis`` on, so the axis must be the last ONNX axis."""
    a = onnx_axis(axis, x)
    if g.opset < 13 and a != x.rank - 1:
        x = as_last(g, x)
        a = axis % x.rank
        if a != x.rank - 1:
            raise OnnxExportError(f"{op} over axis {axis} of a rank-{x.rank} tensor needs "
                                  f"opset >= 13, got opset {g.opset}")
    return x.named(g.node(op, [x.name], base, axis=a))


_BY_NAME: dict[str, Act] = {
    "relu": _unary("Relu"), "relu6": _relu6, "leaky_relu": _unary("LeakyRelu", alpha=0.2),
    "elu": _unary("Elu", alpha=1.0), "selu": _unary("Selu"), "sigmoid": _unary("Sigmoid"),
    "tanh": _unary("Tanh"), "softplus": _unary("Softplus"), "hard_sigmoid": _hard_sigmoid,
    "silu": _silu, "swish": _silu, "hard_swish": _hard_swish, "hard_silu": _hard_swish,
    "gelu": _gelu(False),
    "softmax": lambda g, x, base: softmax(g, x, -1, base),
    "log_softmax": lambda g, x, base: softmax(g, x, -1, base, "LogSoftmax"),
}


def _writer_for(fn: Any) -> Act | None:
    """The ONNX form of activation function ``fn`` (None: the identity)."""
    if fn is None or fn is ops.get_activation("linear"):
        return None
    for name, write in _BY_NAME.items():
        if fn is ops.get_activation(name):
            return write
    if fn is ops.leaky_relu:  # the function itself: its default slope 0.2
        return _BY_NAME["leaky_relu"]
    if fn is ops.gelu:  # the function itself: the tanh form by default
        return _gelu(True)
    return False  # type: ignore[return-value]


def activate(c: Call, fn: Any, x: Value, base: str) -> Value:
    """``fn`` applied to ``x`` (a layer's activation); an error naming the layer when the
    function has no ONNX form (a Python callable)."""
    write = _writer_for(fn)
    if write is None:
        return x
    if write is False:
        name = getattr(fn, "__name__", type(fn).__name__)
        raise OnnxExportError(f"{type(c.layer).__name__} '{c.layer.name}': activation "
                              f"{name!r} has no ONNX form; known: {', '.join(sorted(_BY_NAME))}")
    return write(c.g, x, base)


@exports(layers.Activation, keeps_order=True)
def activation_layer(c: Call) -> Value:
    y = activate(c, c.layer.fn, c.x, c.name)
    if y is c.x:
        return c.x.named(c.g.node("Identity", [c.x.name], c.name))
    return y


@exports(layers.ReLU, keeps_order=True)
def relu_layer(c: Call) -> Value:
    """Keras ReLU as cnnkit computes it: p = relu(x) (x * [x > threshold] with a threshold),
    clipped to [0, max_value], minus negative_slope * relu(threshold - x)."""
    g, x, la = c.g, c.x, c.layer
    slope, cap, thr = float(la.negative_slope), la.max_value, float(la.threshold)
    if not slope and not thr:
        if cap is None:
            return x.named(g.node("Relu", [x.name], c.name))
        return x.named(g.clip(x.name, 0.0, float(cap), x.dtype, c.name))
    if thr:
        mask = g.node("Cast", [g.node("Greater", [x.name, g.const(thr, "threshold", x.dtype)],
                                      f"{c.name}/above")], f"{c.name}/mask",
                      to=g.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(x.dtype)))
        pos = g.node("Mul", [x.name, mask], f"{c.name}/pos")
    else:
        pos = g.node("Relu", [x.name], f"{c.name}/pos")
    if cap is not None:
        pos = g.clip(pos, 0.0, float(cap), x.dtype, f"{c.name}/capped")
    if slope:
        below = g.node("Relu", [g.node("Sub", [g.const(thr, "threshold", x.dtype), x.name],
                                       f"{c.name}/diff")], f"{c.name}/below")
        neg = g.node("Mul", [below, g.const(slope, "slope", x.dtype)], f"{c.name}/neg")
        pos = g.node("Sub", [pos, neg], c.name)
    return x.named(pos)


@exports(layers.LeakyReLU, keeps_order=True)
def leaky_relu_layer(c: Call) -> Value:
    return c.x.named(c.g.node("LeakyRelu", [c.x.name], c.name,
                              alpha=float(c.layer.negative_slope)))


@exports(layers.ELU, keeps_order=True)
def elu_layer(c: Call) -> Value:
    return c.x.named(c.g.node("Elu", [c.x.name], c.name, alpha=float(c.layer.alpha)))


@exports(layers.Softmax, keeps_order=True)
def softmax_layer(c: Call) -> Value:
    return softmax(c.g, c.x, c.layer.axis, c.name)


@exports(layers.PReLU)
def prelu_layer(c: Call) -> Value:
    """PRelu(x, alpha) with alpha (shape of x without the batch axis) in the value's layout."""
    alpha = np.asarray(c.layer.alpha.data)
    x = c.x
    if x.cf and alpha.ndim >= 2:
        alpha = np.moveaxis(alpha, -1, 0)
    return x.named(c.g.node("PRelu", [x.name, c.weight("alpha", alpha)], c.name))
