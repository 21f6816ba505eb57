"""Layers that cut, split, pad or re-axis each sample (ONNX Slice, Split, Squeeze, Unsqueeze,
Gather, Pad forms Keras has no layer for).

Axes count from the batch axis (0), which these layers never touch. No weights;
``compute_macs`` is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import ops
from ..autograd import Tensor
from ._utils import single_shape
from .base import Layer

__all__ = ["Slice", "Split", "Squeeze", "ExpandDims", "Gather", "Pad"]


def _ints(owner: str, name: str, value: Any, allow_none: bool = False) -> tuple:
    vals = list(value) if isinstance(value, (list, tuple)) else [value]
    ok = all((allow_none and v is None) or (isinstance(v, (int, np.integer))
                                            and not isinstance(v, bool)) for v in vals)
    if not ok or len(vals) > 64:
        raise ValueError(f"{owner}: {name} must be a list of at most 64 ints, got {value!r}")
    return tuple(None if v is None else int(v) for v in vals)


def _axis(layer: Layer, axis: int, rank: int, extra: int = 0) -> int:
    p = axis + rank + extra if axis < 0 else axis
    if not 1 <= p < rank + extra:
        raise ValueError(f"{type(layer).__name__} '{layer.name}': axis {axis} is out of range "
                         f"for inputs of rank {rank} (axis 0, the batch, cannot be used)")
    return p


class Slice(Layer):
    """x[..., start:stop:step, ...] on each of ``axes`` (Python slice rules; None = open)."""

    def __init__(self, axes: Sequence[int], starts: Sequence[int | None],
                 stops: Sequence[int | None], steps: Sequence[int] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.axes = _ints("Slice", "axes", axes)
        self.starts = _ints("Slice", "starts", starts, True)
        self.stops = _ints("Slice", "stops", stops, True)
        self.steps = _ints("Slice", "steps", steps if steps is not None else [1] * len(axes))
        if not len(self.axes) == len(self.starts) == len(self.stops) == len(self.steps):
            raise ValueError("Slice: axes, starts, stops and steps must have one entry each")
        if 0 in self.steps:
            raise ValueError("Slice: steps must not be 0")

    def _index(self, rank: int) -> tuple:
        index: list[Any] = [slice(None)] * rank
        for a, b, e, s in zip(self.axes, self.starts, self.stops, self.steps, strict=True):
            index[_axis(self, a, rank)] = slice(b, e, s)
        return tuple(index)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        index = self._index(len(shape))
        return tuple(d if (d is None or i == 0) else len(range(*index[i].indices(d)))
                     for i, d in enumerate(shape))

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.getitem(inputs, self._index(inputs.ndim))

    def get_config(self) -> dict:
        return {**super().get_config(), "axes": list(self.axes), "starts": list(self.starts),
                "stops": list(self.stops), "steps": list(self.steps)}


class Split(Layer):
    """Cut x along ``axis`` into pieces of ``sizes`` (a list of outputs)."""

    def __init__(self, sizes: Sequence[int], axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self.sizes, self.axis = _ints("Split", "sizes", sizes), int(axis)
        if not self.sizes or min(self.sizes) < 0:
            raise ValueError(f"Split: sizes must be sizes >= 0, got {sizes!r}")

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        a = _axis(self, self.axis, len(shape))
        if shape[a] is not None and shape[a] != sum(self.sizes):
            raise ValueError(f"Split '{self.name}': sizes {self.sizes} do not add up to axis "
                             f"{a} of input shape {shape}")
        return [tuple(n if i == a else d for i, d in enumerate(shape)) for n in self.sizes]

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def call(self, inputs: Tensor, training: bool = False) -> list[Tensor]:
        a = _axis(self, self.axis, inputs.ndim)
        outs, start = [], 0
        for n in self.sizes:
            index = [slice(None)] * inputs.ndim
            index[a] = slice(start, start + n)
            outs.append(ops.getitem(inputs, tuple(index)))
            start += n
        return outs

    def get_config(self) -> dict:
        return {**super().get_config(), "sizes": list(self.sizes), "axis": self.axis}


class Squeeze(Layer):
    """Remove the length-1 ``axes``."""

    def __init__(self, axes: Sequence[int], **kwargs: Any):
        super().__init__(**kwargs)
        self.axes = _ints("Squeeze", "axes", axes)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        ax = {_axis(self, a, len(shape)) for a in self.axes}
        for a in ax:
            if shape[a] not in (1, None):
                raise ValueError(f"Squeeze '{self.name}': axis {a} of input shape {shape} has "
                                 f"length {shape[a]}, not 1")
        return tuple(d for i, d in enumerate(shape) if i not in ax)

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        ax = tuple(sorted({_axis(self, a, inputs.ndim) for a in self.axes}))
        return ops.squeeze(inputs, ax)

    def get_config(self) -> dict:
        return {**super().get_config(), "axes": list(self.axes)}


class ExpandDims(Layer):
    """Insert length-1 axes so that they sit at ``axes`` of the output."""

    def __init__(self, axes: Sequence[int], **kwargs: Any):
        super().__init__(**kwargs)
        self.axes = _ints("ExpandDims", "axes", axes)

    def _out_axes(self, rank: int) -> set[int]:
        n = len(self.axes)
        ax = {_axis(self, a, rank, n) for a in self.axes}
        if len(ax) != n:
            raise ValueError(f"ExpandDims '{self.name}': axes {self.axes} repeat an axis")
        return ax

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        ax, it = self._out_axes(len(shape)), iter(shape)
        return tuple(1 if i in ax else next(it) for i in range(len(shape) + len(ax)))

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        shape = self.compute_output_shape(tuple(inputs.shape))
        return ops.reshape(inputs, shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "axes": list(self.axes)}


class Gather(Layer):
    """x.take(indices, axis): the entries ``indices`` (a list, or one int that drops the axis)
    along ``axis``."""

    def __init__(self, indices: Any, axis: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.scalar = isinstance(indices, (int, np.integer))
        self.indices = _ints("Gather", "indices", indices)
        self.axis = int(axis)

    def _index(self, rank: int) -> tuple:
        index: list[Any] = [slice(None)] * rank
        a = _axis(self, self.axis, rank)
        index[a] = self.indices[0] if self.scalar else np.asarray(self.indices, np.int64)
        return tuple(index)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        a = _axis(self, self.axis, len(shape))
        n = shape[a]
        if n is not None and any(not -n <= i < n for i in self.indices):
            raise ValueError(f"Gather '{self.name}': indices {self.indices} out of range for "
                             f"axis {a} of input shape {shape}")
        if self.scalar:
            return shape[:a] + shape[a + 1:]
        return (*shape[:a], len(self.indices), *shape[a + 1:])

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.getitem(inputs, self._index(inputs.ndim))

    def get_config(self) -> dict:
        return {**super().get_config(),
                "indices": self.indices[0] if self.scalar else list(self.indices),
                "axis": self.axis}


class Pad(Layer):
    """Pad each non-batch axis by (before, after): ``mode`` "constant" (with ``value``),
    "reflect" or "edge" (numpy.pad's modes)."""

    def __init__(self, padding: Sequence[Sequence[int]], mode: str = "constant",
                 value: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        pairs = [tuple(_ints("Pad", "padding", p)) for p in padding]
        if any(len(p) != 2 or min(p) < 0 for p in pairs):
            raise ValueError(f"Pad: padding must be (before, after) pairs >= 0, one per "
                             f"non-batch axis, got {padding!r}")
        if mode not in ("constant", "reflect", "edge"):
            raise ValueError(f"Pad: mode must be 'constant', 'reflect' or 'edge', got {mode!r}")
        self.padding, self.mode, self.value = tuple(pairs), mode, float(value)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        if len(shape) != len(self.padding) + 1:
            raise ValueError(f"Pad '{self.name}' has {len(self.padding)} (before, after) pairs, "
                             f"for inputs of rank {len(self.padding) + 1}, got shape {shape}")
        return (shape[0], *(None if d is None else d + a + b
                            for d, (a, b) in zip(shape[1:], self.padding, strict=True)))

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.pad(inputs, [(0, 0), *self.padding], self.mode,
                       self.value if self.mode == "constant" else None)

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": [list(p) for p in self.padding],
                "mode": self.mode, "value": self.value}
