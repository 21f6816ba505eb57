"""Elementwise layers with arguments Keras has no layer for (the forms ONNX and PyTorch models
use): a tensor combined with a stored constant, unary maths, Clip, HardSigmoid, LogSoftmax and
Cast. None has trainable weights unless asked (``ConstantOperand(trainable_value=True)``);
``compute_macs`` is 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import ops
from ..autograd import Tensor
from .base import Layer

__all__ = ["ConstantOperand", "UnaryMath", "Clip", "HardSigmoid", "LogSoftmax", "Cast"]


def _maximum(x: Any, c: Any) -> Tensor:
    """max(x, c) = relu(x - c) + c (the gradient reaches x where x > c)."""
    return ops.add(ops.relu(ops.subtract(x, c)), c)


def _minimum(x: Any, c: Any) -> Tensor:
    """min(x, c) = c - relu(c - x)."""
    return ops.subtract(c, ops.relu(ops.subtract(c, x)))


_BINARY: dict[str, Callable[[Any, Any], Tensor]] = {
    "add": ops.add, "subtract": ops.subtract, "multiply": ops.multiply, "divide": ops.divide,
    "power": ops.power, "maximum": _maximum, "minimum": _minimum}


def broadcast_shapes(a: tuple, b: tuple) -> tuple:
    """NumPy broadcasting of two shapes whose sizes may be None (unknown)."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out: list[int | None] = []
    for x, y in zip(a, b, strict=True):
        if x == 1 or y == 1:
            out.append(y if x == 1 else x)
        elif x is None or y is None:
            out.append(x if y is None else y)
        elif x != y:
            raise ValueError(f"shapes {a} and {b} do not broadcast (sizes {x} and {y})")
        else:
            out.append(x)
    return tuple(out)


class ConstantOperand(Layer):
    """y = x (op) c, or c (op) x with ``constant_first``: op is add, subtract, multiply, divide,
    power, maximum or minimum; c is a stored weight ``value`` of ``value_shape`` that
    broadcasts against the input with NumPy's rule (batch axis included)."""

    def __init__(self, operation: str, value_shape: Sequence[int] = (),
                 constant_first: bool = False,
                 trainable_value: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if operation not in _BINARY:
            raise ValueError(f"ConstantOperand: operation must be one of {sorted(_BINARY)}, "
                             f"got {operation!r}")
        self.operation = operation
        self.value_shape = tuple(int(d) for d in value_shape)
        if any(d < 0 for d in self.value_shape) or len(self.value_shape) > 16:
            raise ValueError(f"ConstantOperand: value_shape must be at most 16 sizes >= 0, got "
                             f"{value_shape!r}")
        self.constant_first = bool(constant_first)
        self.trainable_value = bool(trainable_value)

    def build(self, input_shape: Any) -> None:
        self.value = self.add_weight("value", self.value_shape, "zeros",
                                     trainable=self.trainable_value)

    def compute_output_shape(self, input_shape: Any) -> Any:
        try:
            return broadcast_shapes(tuple(input_shape), self.value_shape)
        except ValueError as e:
            raise ValueError(f"ConstantOperand '{self.name}': input shape "
                             f"{tuple(input_shape)}: {e}") from None

    def check_input_shape(self, input_shape: Any) -> None:
        if isinstance(input_shape, list):
            raise ValueError(f"ConstantOperand '{self.name}' takes one input")
        self.compute_output_shape(input_shape)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        fn = _BINARY[self.operation]
        if self.constant_first:
            return fn(self.value, inputs)
        return fn(inputs, self.value)

    def get_config(self) -> dict:
        return {**super().get_config(), "operation": self.operation,
                "value_shape": list(self.value_shape), "constant_first": self.constant_first,
                "trainable_value": self.trainable_value}


def _reciprocal(x: Any) -> Tensor:
    return ops.divide(np.ones((), dtype=x.dtype), x)


_UNARY: dict[str, Callable[[Any], Tensor]] = {
    "exp": ops.exp, "log": ops.log, "sqrt": ops.sqrt, "abs": ops.abs,
    "negative": ops.negative, "reciprocal": _reciprocal, "square": ops.square,
    "softplus": ops.softplus}


class UnaryMath(Layer):
    """y = f(x) elementwise for ``function`` in exp, log, sqrt, abs, negative, reciprocal,
    square, softplus."""

    def __init__(self, function: str, **kwargs: Any):
        super().__init__(**kwargs)
        if function not in _UNARY:
            raise ValueError(f"UnaryMath: function must be one of {sorted(_UNARY)}, got "
                             f"{function!r}")
        self.function = function

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return _UNARY[self.function](inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "function": self.function}


def _bound(name: str, v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"Clip: {name} must be a number or None, got {v!r}") from None
    if np.isnan(f):
        raise ValueError(f"Clip: {name} must not be NaN")
    return f


class Clip(Layer):
    """y = min(max(x, min_value), max_value); either bound may be None (no bound)."""

    def __init__(self, min_value: float | None = None, max_value: float | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.min_value, self.max_value = _bound("min_value", min_value), _bound("max_value",
                                                                               max_value)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if self.min_value is None and self.max_value is None:
            return inputs
        return ops.clip(inputs, self.min_value, self.max_value)

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        if self.min_value == 0.0:  # ReLU, ReLU6: the runtime's in-place clipped ReLU
            return steps.Activate(steps.clipped_relu(self.max_value))
        return None

    def get_config(self) -> dict:
        return {**super().get_config(), "min_value": self.min_value,
                "max_value": self.max_value}


class HardSigmoid(Layer):
    """y = max(0, min(1, alpha * x + beta)); ONNX's defaults alpha 0.2, beta 0.5."""

    def __init__(self, alpha: float = 0.2, beta: float = 0.5, **kwargs: Any):
        super().__init__(**kwargs)
        self.alpha, self.beta = float(alpha), float(beta)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.hard_sigmoid(inputs, self.alpha, self.beta)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}


class LogSoftmax(Layer):
    """y_i = x_i - log sum_j exp(x_j) along ``axis``."""

    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.log_softmax(inputs, axis=self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


_CASTS = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")


class Cast(Layer):
    """y = x converted to ``to`` (float to float keeps the gradient; other casts have none)."""

    def __init__(self, to: str, **kwargs: Any):
        super().__init__(**kwargs)
        if str(to) not in _CASTS:
            raise ValueError(f"Cast: to must be one of {_CASTS}, got {to!r}")
        self.to = str(to)

    def _cast_input(self, x: Any) -> Tensor:  # keeps the input's dtype (no cast on entry)
        return x if isinstance(x, Tensor) else Tensor(np.asarray(x))

    def output_dtype(self, input_dtype: Any) -> Any:
        return np.dtype(self.to)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        to = np.dtype(self.to)
        return inputs if inputs.dtype == to else ops.cast(inputs, to)

    def get_config(self) -> dict:
        return {**super().get_config(), "to": self.to}
