"""Reductions over chosen axes of each sample (ONNX ReduceMean/ReduceSum/ReduceMax, ArgMax).

Axes count from the batch axis (0), which is never reduced; ``keepdims`` keeps each reduced
axis with length 1. No weights; ``compute_macs`` is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import ops
from ..autograd import Tensor
from ._utils import single_shape
from .base import Layer

__all__ = ["Reduce", "ArgMax"]

_OPS = {"mean": ops.mean, "sum": ops.sum, "max": ops.max}


def _axes(owner: str, axis: Any) -> tuple[int, ...]:
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    if not axes or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                           for a in axes):
        raise ValueError(f"{owner}: axis must be an int or a non-empty list of ints, got "
                         f"{axis!r}")
    return tuple(int(a) for a in axes)


def _resolve(layer: Layer, axes: Sequence[int], rank: int) -> tuple[int, ...]:
    """Axes as positive numbers in 1..rank-1 (the batch axis 0 cannot be reduced)."""
    out = []
    for a in axes:
        p = a + rank if a < 0 else a
        if not 1 <= p < rank:
            raise ValueError(f"{type(layer).__name__} '{layer.name}': axis {a} is out of range "
                             f"for inputs of rank {rank} (the batch axis 0 is never reduced)")
        out.append(p)
    if len(set(out)) != len(out):
        raise ValueError(f"{type(layer).__name__} '{layer.name}': axis {tuple(axes)} repeats an "
                         f"axis")
    return tuple(sorted(out))


def _reduced_shape(layer: Layer, shape: tuple, axes: Sequence[int], keepdims: bool) -> tuple:
    ax = _resolve(layer, axes, len(shape))
    if keepdims:
        return tuple(1 if i in ax else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in ax)


class Reduce(Layer):
    """y = mean, sum or max of x over ``axis`` (an int or a list of ints, never 0)."""

    def __init__(self, operation: str, axis: Any, keepdims: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if operation not in _OPS:
            raise ValueError(f"Reduce: operation must be one of {sorted(_OPS)}, got "
                             f"{operation!r}")
        self.operation, self.axis = operation, _axes("Reduce", axis)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return _reduced_shape(self, single_shape(self, input_shape), self.axis, self.keepdims)

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        axes = _resolve(self, self.axis, inputs.ndim)
        return _OPS[self.operation](inputs, axis=axes, keepdims=self.keepdims)

    def get_config(self) -> dict:
        return {**super().get_config(), "operation": self.operation, "axis": list(self.axis),
                "keepdims": self.keepdims}


class ArgMax(Layer):
    """int64 index of the largest value along ``axis`` (the first one, or the last with
    ``select_last_index``); no gradient."""

    def __init__(self, axis: int = -1, keepdims: bool = False, select_last_index: bool = False,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = _axes("ArgMax", axis)[0]
        self.keepdims, self.select_last_index = bool(keepdims), bool(select_last_index)

    def output_dtype(self, input_dtype: Any) -> Any:
        return np.dtype(np.int64)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return _reduced_shape(self, single_shape(self, input_shape), (self.axis,),
                              self.keepdims)

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        (axis,) = _resolve(self, (self.axis,), inputs.ndim)
        x = inputs.data
        if self.select_last_index:
            idx = x.shape[axis] - 1 - np.argmax(np.flip(x, axis), axis=axis)
        else:
            idx = np.argmax(x, axis=axis)
        idx = idx.astype(np.int64)
        return Tensor(np.expand_dims(idx, axis) if self.keepdims else idx)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "keepdims": self.keepdims,
                "select_last_index": self.select_last_index}
