"""Pooling layers (Keras names and arguments), channels-last.

MaxPooling*/AveragePooling* slide a ``pool_size`` window with ``strides`` (default: the pool
size) over every spatial axis; "same" padding gives ceil(W/S) outputs with any odd extra cell of
padding at the end, and average pooling leaves padded cells out of the count (Keras).
Global*Pooling* reduce all spatial axes: (batch, *spatial, C) -> (batch, C), or
(batch, 1, ..., 1, C) with ``keepdims``. Pooling has no weights; ``compute_macs`` is 0 (no
multiply-adds with weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import ops
from ..autograd import Tensor
from ..kernels.padding import side_pairs
from ..kernels.pool import pool_geometry
from ._utils import (
    check_data_format,
    check_padding_mode,
    check_rank,
    single_shape,
    tuple_arg,
    window_length,
)
from .base import Layer

__all__ = ["MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
           "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D",
           "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D",
           "GlobalMaxPooling2D", "GlobalMaxPooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D",
           "AvgPool1D", "AvgPool2D", "AvgPool3D", "GlobalAvgPool1D", "GlobalAvgPool2D",
           "GlobalAvgPool3D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D"]


class _Pooling(Layer):
    rank = 2
    takes_max = True  # max over each window (else the mean)
    _op = staticmethod(ops.max_pool2d)

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: Any = "valid",
                 data_format: str | None = None, ceil_mode: bool = False,
                 count_include_pad: bool = False, dilation_rate: Any = 1, **kwargs: Any):
        super().__init__(**kwargs)
        cls = type(self).__name__
        check_data_format(cls, data_format)
        self.pool_size = tuple_arg(cls, pool_size, self.rank, "pool_size")
        self.strides = self.pool_size if strides is None else tuple_arg(
            cls, strides, self.rank, "strides")
        self.dilation_rate = tuple_arg(cls, dilation_rate, self.rank, "dilation_rate")
        self.padding = pool_padding(cls, padding, self.rank)
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)

    @property
    def _keras_form(self) -> bool:
        """Keras's arguments only (the runtime's pooling step takes these)."""
        return (isinstance(self.padding, str) and not self.ceil_mode
                and self.dilation_rate == (1,) * self.rank)

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        check_rank(self, shape, self.rank)
        if self._keras_form:
            spatial = [window_length(self, shape, a, p, s, 1, self.padding, "pool window")
                       for a, (p, s) in enumerate(zip(self.pool_size, self.strides,
                                                      strict=True))]
            return (shape[0], *spatial, shape[-1])
        return (shape[0], *pooled_lengths(self, shape), shape[-1])

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if self._keras_form and not self.count_include_pad:
            return type(self)._op(inputs, self.pool_size, self.strides, self.padding)
        extra = {} if self.takes_max else {"count_include_pad": self.count_include_pad}
        return type(self)._op(inputs, self.pool_size, self.strides, self.padding,
                              dilation_rate=self.dilation_rate, ceil_mode=self.ceil_mode,
                              **extra)

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        if not self._keras_form or self.count_include_pad:
            return None  # PyTorch/ONNX windows: the layer's own call
        return steps.Pool(self.takes_max, tuple(self.pool_size), tuple(self.strides),
                          self.padding)

    def get_config(self) -> dict:
        padding = self.padding if isinstance(self.padding, str) else [
            list(p) for p in self.padding]
        cfg = {**super().get_config(), "pool_size": list(self.pool_size),
               "strides": list(self.strides), "padding": padding,
               "data_format": "channels_last"}
        if not self._keras_form or self.count_include_pad:  # Keras's config otherwise
            cfg.update(ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                       dilation_rate=list(self.dilation_rate))
        return cfg


def pool_padding(cls: str, padding: Any, rank: int) -> Any:
    """Keras's "valid" or "same", or one (before, after) pair per spatial axis (ONNX)."""
    if isinstance(padding, str):
        return check_padding_mode(cls, padding, ("valid", "same"))
    try:
        return side_pairs(cls, "padding", padding, rank)
    except ValueError:
        raise ValueError(f"{cls}: padding must be 'valid', 'same' or {rank} (before, after) "
                         f"pairs of ints >= 0, got {padding!r}") from None


def pooled_lengths(layer: Any, shape: tuple) -> list[int | None]:
    """Output length per spatial axis with explicit pads, dilation and ceil_mode (unknown
    input lengths stay None)."""
    out: list[int | None] = []
    for a in range(layer.rank):
        w = shape[1 + a]
        if w is None:
            out.append(None)
            continue
        pad = layer.padding if isinstance(layer.padding, str) else (layer.padding[a],)
        try:
            outs, _, _ = pool_geometry((int(w),), (layer.pool_size[a],), (layer.strides[a],),
                                       pad, (layer.dilation_rate[a],), layer.ceil_mode)
        except ValueError as e:
            raise ValueError(f"{type(layer).__name__} '{layer.name}': the pool window does "
                             f"not fit spatial axis {a} of input shape {shape}: {e}") from None
        out.append(int(outs[0]))
    return out


class MaxPooling1D(_Pooling):
    """Max over windows of ``pool_size`` steps of (batch, steps, channels)."""

    rank = 1
    _op = staticmethod(ops.max_pool1d)


class MaxPooling2D(_Pooling):
    """Max over ``pool_size`` windows of (batch, height, width, channels)."""

    rank = 2
    _op = staticmethod(ops.max_pool2d)


class MaxPooling3D(_Pooling):
    """Max over ``pool_size`` windows of (batch, depth, height, width, channels)."""

    rank = 3
    _op = staticmethod(ops.max_pool3d)


class AveragePooling1D(_Pooling):
    """Mean over windows of ``pool_size`` steps (padded cells not counted)."""

    rank = 1
    _op = staticmethod(ops.avg_pool1d)
    takes_max = False


class AveragePooling2D(_Pooling):
    """Mean over ``pool_size`` windows of images (padded cells not counted)."""

    rank = 2
    _op = staticmethod(ops.avg_pool2d)
    takes_max = False


class AveragePooling3D(_Pooling):
    """Mean over ``pool_size`` windows of volumes (padded cells not counted)."""

    rank = 3
    _op = staticmethod(ops.avg_pool3d)
    takes_max = False


class _GlobalPooling(Layer):
    rank = 2
    _reduce = staticmethod(np.mean)  # the array reduction over the spatial axes
    _op = staticmethod(ops.global_average_pool)

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        check_data_format(type(self).__name__, data_format)
        self.keepdims = bool(keepdims)

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        check_rank(self, shape, self.rank)
        if self.keepdims:
            return (shape[0], *(1,) * self.rank, shape[-1])
        return (shape[0], shape[-1])

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return type(self)._op(inputs, keepdims=self.keepdims)

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        reduce, keepdims = self._reduce, self.keepdims
        return steps.ArrayFn(lambda x: reduce(x, axis=tuple(range(1, x.ndim - 1)),
                                              keepdims=keepdims))

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": "channels_last",
                "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over the steps: (batch, steps, C) -> (batch, C)."""

    rank = 1
    _op = staticmethod(ops.global_average_pool)


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over height and width: (batch, H, W, C) -> (batch, C)."""

    rank = 2
    _op = staticmethod(ops.global_average_pool)


class GlobalAveragePooling3D(_GlobalPooling):
    """Mean over depth, height and width: (batch, D, H, W, C) -> (batch, C)."""

    rank = 3
    _op = staticmethod(ops.global_average_pool)


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over the steps: (batch, steps, C) -> (batch, C)."""

    rank = 1
    _op = staticmethod(ops.global_max_pool)
    _reduce = staticmethod(np.max)


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over height and width: (batch, H, W, C) -> (batch, C)."""

    rank = 2
    _op = staticmethod(ops.global_max_pool)
    _reduce = staticmethod(np.max)


class GlobalMaxPooling3D(_GlobalPooling):
    """Max over depth, height and width: (batch, D, H, W, C) -> (batch, C)."""

    rank = 3
    _op = staticmethod(ops.global_max_pool)
    _reduce = staticmethod(np.max)


# Keras aliases
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (GlobalAveragePooling1D,
                                                     GlobalAveragePooling2D,
                                                     GlobalAveragePooling3D)
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = (GlobalMaxPooling1D, GlobalMaxPooling2D,
                                                     GlobalMaxPooling3D)


def _adaptive_matrix(n: int, out: int, dtype: Any) -> np.ndarray:
    """Row i averages input cells [floor(i*n/out), ceil((i+1)*n/out)) (PyTorch's bins)."""
    m = np.zeros((out, n), dtype=dtype)
    for i in range(out):
        lo, hi = (i * n) // out, -(-((i + 1) * n) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


class AdaptiveAveragePooling2D(Layer):
    """PyTorch's ``AdaptiveAvgPool2d(output_size)``: output cell (i, j) is the mean of input
    rows [floor(i*H/oh), ceil((i+1)*H/oh)) and columns likewise. The identity when the input
    already has the output size; an ordinary average pool when the sizes divide."""

    def __init__(self, output_size: int | Sequence[int], data_format: str | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        check_data_format(type(self).__name__, data_format)
        self.output_size = tuple_arg("AdaptiveAveragePooling2D", output_size, 2, "output_size")

    def check_input_shape(self, input_shape: Any) -> None:
        if isinstance(input_shape, list) or len(input_shape) != 4:
            raise ValueError(f"AdaptiveAveragePooling2D '{self.name}' expects inputs of rank 4 "
                             f"(batch, height, width, channels), got {input_shape}")

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], *self.output_size, input_shape[-1])

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        _, h, w, _ = inputs.shape
        oh, ow = self.output_size
        if (h, w) == (oh, ow):
            return inputs
        if h % oh == 0 and w % ow == 0:
            return ops.avg_pool2d(inputs, (h // oh, w // ow), (h // oh, w // ow), "valid")
        mh = _adaptive_matrix(h, oh, inputs.dtype)
        mw = _adaptive_matrix(w, ow, inputs.dtype)
        t = ops.transpose(inputs, (0, 3, 1, 2))            # (N, C, H, W)
        t = ops.matmul(ops.matmul(mh, t), mw.T)            # (N, C, oh, ow)
        return ops.transpose(t, (0, 2, 3, 1))

    def compute_macs(self, input_shape: Any, output_shape: Any) -> int:
        return 0

    def get_config(self) -> dict:
        return {**super().get_config(), "output_size": list(self.output_size)}
