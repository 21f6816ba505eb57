"""Merge layers (Keras): combine a list of inputs into one.

Elementwise merges (Add, Subtract, Multiply, Average, Maximum, Minimum) follow Keras' shape
rule: batch sizes must agree, and the per-sample shapes broadcast NumPy-style (aligned at the
right; an input of lower rank gains length-1 axes just after the batch axis). Concatenate joins
along ``axis``; every other axis must agree. No weights; ``compute_macs`` is 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..autograd import Tensor
from .base import Layer
from .elementwise import broadcast_shapes

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
           "Divide", "Power", "MatMul"]


def _fmt(shapes: list) -> str:
    return ", ".join(str(tuple(s)) for s in shapes)


class _Merge(Layer):
    """Base of the elementwise merges: ``call`` reduces the list with ``_merge``."""

    min_inputs = 1
    max_inputs: int | None = None

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)

    def _shapes(self, input_shape: Any) -> list[tuple]:
        cls = type(self).__name__
        if not isinstance(input_shape, list) or not all(
                isinstance(s, (tuple, list)) for s in input_shape):
            raise ValueError(f"{cls} '{self.name}' must be called on a list of inputs, got a "
                             f"single input of shape {tuple(input_shape)}")
        n = len(input_shape)
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            if self.max_inputs == self.min_inputs:
                want = f"exactly {self.min_inputs}"
            else:
                want = f"at least {self.min_inputs}"
            raise ValueError(f"{cls} '{self.name}' expects {want} inputs, got {n}")
        return [tuple(s) for s in input_shape]

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shapes = self._shapes(input_shape)
        cls = type(self).__name__
        for s in shapes:
            if len(s) < 1:
                raise ValueError(f"{cls} '{self.name}' expects inputs with a batch axis, got "
                                 f"shapes {_fmt(shapes)}")
        batches = {s[0] for s in shapes if s[0] is not None}
        if len(batches) > 1:
            raise ValueError(f"{cls} '{self.name}' expects inputs with the same batch size, got "
                             f"shapes {_fmt(shapes)}")
        rank = max(len(s) for s in shapes) - 1
        out: list[int | None] = []
        for i in range(rank):
            dims = [s[1:][len(s) - 1 - rank + i] for s in shapes if len(s) - 1 - rank + i >= 0]
            known = {d for d in dims if d is not None and d != 1}
            if len(known) > 1:
                raise ValueError(
                    f"{cls} '{self.name}' cannot broadcast inputs of shapes {_fmt(shapes)}: "
                    f"sizes {sorted(known)} on axis {i + 1} of the broadcast shape differ "
                    f"(each size must be equal or 1)")
            if any(d is None for d in dims):
                out.append(None)
            else:
                out.append(known.pop() if known else 1)
        return (batches.pop() if batches else None, *out)

    def call(self, inputs: Any, training: bool = False) -> Tensor:
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        rank = max(x.ndim for x in xs)
        xs = [x if x.ndim == rank else ops.reshape(
            x, (x.shape[0], *(1,) * (rank - x.ndim), *x.shape[1:])) for x in xs]
        return self._merge(xs)

    def _merge(self, xs: list[Tensor]) -> Tensor:
        raise NotImplementedError

    # the NumPy ufunc folding the inputs left to right at inference (None: no fused form)
    _ufunc: Any = None

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return None if self._ufunc is None else steps.Merge(self, self._ufunc)


class Add(_Merge):
    """Elementwise sum of the inputs."""

    _ufunc = np.add

    def call(self, inputs: Any, training: bool = False,
             activation: str | None = None) -> Tensor:
        """``activation`` "relu" / "relu6": that activation of the sum (a model passes it for
        the ReLU layer that alone reads this layer's output; one fused op for two inputs of
        one shape)."""
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if activation is not None and len(xs) == 2 and xs[0].shape == xs[1].shape:
            return ops.add(xs[0], xs[1], activation=activation)
        out = super().call(inputs, training)
        if activation is None:
            return out
        return ops.relu6(out) if activation == "relu6" else ops.relu(out)

    def _merge(self, xs: list[Tensor]) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = ops.add(out, x)
        return out


class Subtract(_Merge):
    """inputs[0] - inputs[1] (exactly two inputs)."""

    min_inputs = max_inputs = 2

    _ufunc = np.subtract

    def _merge(self, xs: list[Tensor]) -> Tensor:
        return ops.subtract(xs[0], xs[1])


class Multiply(_Merge):
    """Elementwise product of the inputs."""

    _ufunc = np.multiply

    def _merge(self, xs: list[Tensor]) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = ops.multiply(out, x)
        return out


class Average(_Merge):
    """Elementwise mean of the inputs: (x_1 + ... + x_n) / n."""

    def _merge(self, xs: list[Tensor]) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = ops.add(out, x)
        return ops.multiply(out, 1.0 / len(xs)) if len(xs) > 1 else out


def _broadcast_all(xs: list[Tensor]) -> list[Tensor]:
    """Every input broadcast to the common shape (adding zeros keeps the gradient right)."""
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    return [x if x.shape == shape else ops.add(x, np.zeros(shape, dtype=x.dtype)) for x in xs]


class Maximum(_Merge):
    """Elementwise maximum of the inputs (the gradient is shared among tied inputs)."""

    def _merge(self, xs: list[Tensor]) -> Tensor:
        if len(xs) == 1:
            return xs[0]
        return ops.max(ops.stack(_broadcast_all(xs), axis=0), axis=0)


class Minimum(_Merge):
    """Elementwise minimum of the inputs: -max(-x_1, ..., -x_n)."""

    def _merge(self, xs: list[Tensor]) -> Tensor:
        if len(xs) == 1:
            return xs[0]
        neg = [ops.negative(x) for x in _broadcast_all(xs)]
        return ops.negative(ops.max(ops.stack(neg, axis=0), axis=0))


class Concatenate(Layer):
    """Join the inputs along ``axis`` (channels by default); all other axes must agree."""

    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"Concatenate: axis must be an int, got {axis!r}")
        self.axis = int(axis)

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        name = f"Concatenate '{self.name}'"
        if not isinstance(input_shape, list) or not all(
                isinstance(s, (tuple, list)) for s in input_shape):
            raise ValueError(f"{name} must be called on a list of inputs, got a single input "
                             f"of shape {tuple(input_shape)}")
        shapes = [tuple(s) for s in input_shape]
        if not shapes:
            raise ValueError(f"{name} expects at least 1 input, got 0")
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise ValueError(f"{name} expects inputs of the same rank, got shapes "
                             f"{_fmt(shapes)}")
        if not -rank <= self.axis < rank:
            raise ValueError(f"{name}: axis {self.axis} is out of range for inputs of rank "
                             f"{rank} (shapes {_fmt(shapes)})")
        ax = self.axis % rank
        out: list[int | None] = []
        for i in range(rank):
            dims = [s[i] for s in shapes]
            if i == ax:
                out.append(None if any(d is None for d in dims) else int(sum(dims)))
                continue
            known = {d for d in dims if d is not None}
            if len(known) > 1:
                raise ValueError(f"{name} expects inputs that match on every axis except the "
                                 f"concatenation axis {self.axis}, got shapes {_fmt(shapes)} "
                                 f"(axis {i} differs)")
            out.append(known.pop() if known else None)
        return tuple(out)

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return steps.Concat(self.axis)

    def call(self, inputs: Any, training: bool = False) -> Tensor:
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        return ops.concatenate(xs, axis=self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


class Divide(_Merge):
    """inputs[0] / inputs[1] (exactly two inputs)."""

    min_inputs = max_inputs = 2
    _ufunc = np.divide

    def _merge(self, xs: list[Tensor]) -> Tensor:
        return ops.divide(xs[0], xs[1])


class Power(_Merge):
    """inputs[0] ** inputs[1] (exactly two inputs)."""

    min_inputs = max_inputs = 2

    def _merge(self, xs: list[Tensor]) -> Tensor:
        return ops.power(xs[0], xs[1])


class MatMul(Layer):
    """inputs[0] @ inputs[1], NumPy's matmul rule: the last two axes multiply as matrices,
    the axes before them (batch included) broadcast."""

    def compute_output_shape(self, input_shape: Any) -> Any:
        if not isinstance(input_shape, list) or len(input_shape) != 2:
            raise ValueError(f"MatMul '{self.name}' must be called on a list of two inputs")
        a, b = (tuple(s) for s in input_shape)
        if len(a) < 2 or len(b) < 2:
            raise ValueError(f"MatMul '{self.name}' needs inputs of rank >= 2, got shapes "
                             f"{_fmt([a, b])}")
        if a[-1] is not None and b[-2] is not None and a[-1] != b[-2]:
            raise ValueError(f"MatMul '{self.name}': inner sizes differ in shapes "
                             f"{_fmt([a, b])}")
        try:
            lead = broadcast_shapes(a[:-2], b[:-2])
        except ValueError as e:
            raise ValueError(f"MatMul '{self.name}': {e}") from None
        return (*lead, a[-2], b[-1])

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def call(self, inputs: Any, training: bool = False) -> Tensor:
        return ops.matmul(inputs[0], inputs[1])
