"""Convolution layers (Keras names and arguments), channels-last.

Kernel layouts follow Keras:

- Conv1D/2D/3D: kernel (*K, C_in/groups, filters), bias (filters,).
- DepthwiseConv2D: kernel (KH, KW, C_in, depth_multiplier), bias (C_in*depth_multiplier,).
- SeparableConv2D: depthwise_kernel (KH, KW, C_in, M), pointwise_kernel (1, 1, C_in*M, filters).
- Conv1DTranspose/2D/3D (:mod:`.conv_transpose`): kernel (*K, filters, C_in).

Parameter counts (seeds): a convolution has ``(prod(K) * C_in/groups + 1) * C_out`` parameters
(without the +1 when ``use_bias=False``). ``compute_macs`` counts multiply-adds per sample:
``prod(output spatial) * prod(K) * C_in/groups * C_out`` for a convolution, and
``prod(input spatial) * prod(K) * C_in * C_out`` for a transposed one (every input cell is
scattered through the whole kernel).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import constraints, initializers, ops, regularizers
from ..autograd import Tensor
from ._utils import (
    activation_arg,
    channels_error,
    check_data_format,
    check_padding_mode,
    check_rank,
    known_prod,
    single_shape,
    tuple_arg,
    window_length,
)
from .base import Layer

__all__ = ["Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D"]


# ----- convolution base --------------------------------------------------------------------
class _WindowConv(Layer):
    """Shared by every convolution layer: geometry arguments, input checks and output shape."""

    rank = 2
    paddings: tuple[str, ...] = ("valid", "same")

    def __init__(self, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1, activation: Any = None,
                 use_bias: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        cls = type(self).__name__
        check_data_format(cls, data_format)
        self.kernel_size = tuple_arg(cls, kernel_size, self.rank, "kernel_size")
        self.strides = tuple_arg(cls, strides, self.rank, "strides")
        self.dilation_rate = tuple_arg(cls, dilation_rate, self.rank, "dilation_rate")
        self.padding = check_padding_mode(cls, padding, self.paddings)
        self.activation, self.activation_name = activation_arg(activation)
        self.use_bias = bool(use_bias)
        self._in_channels: int | None = None

    # the channel count this layer was built for, checked on every later call
    def check_input_shape(self, input_shape: Any) -> None:
        shape = single_shape(self, input_shape)
        check_rank(self, shape, self.rank)
        c = shape[-1]
        if c is None:
            raise ValueError(f"{type(self).__name__} '{self.name}' needs a known channel axis, "
                             f"got input shape {shape}")
        if self.built and self._in_channels is not None and c != self._in_channels:
            raise channels_error(self, self._in_channels, c, shape)
        self._check_channels(int(c), shape)
        self.compute_output_shape(shape)

    def _check_channels(self, c: int, shape: tuple) -> None:
        """Extra channel constraints (groups)."""

    def _spatial_out(self, shape: tuple) -> list[int | None]:
        check_rank(self, shape, self.rank)
        return [window_length(self, shape, a, k, s, d, self.padding)
                for a, (k, s, d) in enumerate(zip(self.kernel_size, self.strides,
                                                  self.dilation_rate, strict=True))]

    def _act(self, y: Tensor) -> Tensor:
        return self.activation(y) if self.activation is not None else y

    def _conv_step(self, steps: Any, depthwise: bool) -> Any:
        """The runtime's convolution step (kernel, bias, pads, in-place activation), or None
        for an activation the runtime has no form for."""
        act = steps.activation(self.activation)
        return None if act is steps.UNSUPPORTED else steps.Conv(self, act, depthwise)

    def _geometry_config(self) -> dict:
        return {"kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": "channels_last",
                "dilation_rate": list(self.dilation_rate),
                "activation": self.activation_name or "linear", "use_bias": self.use_bias}


class _Conv(_WindowConv):
    """N-d convolution: y = activation(conv(x, kernel) + bias), kernel (*K, C_in/groups,
    filters)."""

    _op = staticmethod(ops.conv2d)

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1, groups: int = 1,
                 activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias, **kwargs)
        cls = type(self).__name__
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"{cls}: filters must be a positive integer, got {filters!r}")
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
            raise ValueError(f"{cls}: groups must be a positive integer, got {groups!r}")
        self.filters, self.groups = int(filters), int(groups)
        if self.filters % self.groups:
            raise ValueError(f"{cls}: filters ({self.filters}) must be divisible by groups "
                             f"({self.groups})")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def _check_channels(self, c: int, shape: tuple) -> None:
        if c % self.groups:
            raise ValueError(f"{type(self).__name__} '{self.name}' with groups={self.groups} "
                             f"needs input channels divisible by {self.groups}, got {c} (input "
                             f"shape {shape})")

    def build(self, input_shape: Any) -> None:
        c = int(input_shape[-1])
        self._in_channels = c
        self.kernel = self.add_weight("kernel", (*self.kernel_size, c // self.groups,
                                                 self.filters),
                                      self.kernel_initializer, self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                    self.bias_regularizer, constraint=self.bias_constraint
                                    ) if self.use_bias else None

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return self._conv_step(steps, depthwise=False)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        y = type(self)._op(inputs, self.kernel, self.bias, strides=self.strides,
                           padding=self.padding, dilation_rate=self.dilation_rate,
                           groups=self.groups)
        return self._act(y)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        return (shape[0], *self._spatial_out(shape), self.filters)

    def compute_macs(self, input_shape: Any, output_shape: Any) -> int:
        per_out = int(np.prod(self.kernel_size)) * (int(input_shape[-1]) // self.groups)
        return known_prod(output_shape[1:-1]) * per_out * self.filters

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, **self._geometry_config(),
                "groups": self.groups,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


class Conv1D(_Conv):
    """1-D convolution over (batch, steps, channels); ``padding`` may also be "causal" (all
    padding before the sequence, so output t sees only inputs <= t)."""

    rank = 1
    paddings = ("valid", "same", "causal")
    _op = staticmethod(ops.conv1d)


class Conv2D(_Conv):
    """2-D convolution over (batch, height, width, channels); kernel (KH, KW, C_in/groups,
    filters)."""

    rank = 2
    _op = staticmethod(ops.conv2d)


class Conv3D(_Conv):
    """3-D convolution over (batch, depth, height, width, channels)."""

    rank = 3
    _op = staticmethod(ops.conv3d)


# ----- depthwise and separable --------------------------------------------------------------
class DepthwiseConv2D(_WindowConv):
    """Each input channel c convolved with its own ``depth_multiplier`` filters; output
    channel c*depth_multiplier + m. Kernel (KH, KW, C_in, depth_multiplier)."""

    rank = 2

    def __init__(self, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 depth_multiplier: int = 1, data_format: str | None = None,
                 dilation_rate: Any = 1, activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, bias_regularizer: Any = None,
                 depthwise_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias, **kwargs)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        if (isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier,
                                                                 (int, np.integer))
                or depth_multiplier < 1):
            raise ValueError(f"{type(self).__name__}: depth_multiplier must be a positive "
                             f"integer, got {depth_multiplier!r}")
        self.depth_multiplier = int(depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape: Any) -> None:
        c = int(input_shape[-1])
        self._in_channels = c
        self.kernel = self.add_weight("kernel", (*self.kernel_size, c, self.depth_multiplier),
                                      self.depthwise_initializer, self.depthwise_regularizer,
                                      constraint=self.depthwise_constraint)
        self.bias = self.add_weight("bias", (c * self.depth_multiplier,),
                                    self.bias_initializer, self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None

    @property
    def depthwise_kernel(self) -> Tensor:
        return self.kernel

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return self._conv_step(steps, depthwise=True)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        y = ops.depthwise_conv2d(inputs, self.kernel, self.bias, strides=self.strides,
                                 padding=self.padding, dilation_rate=self.dilation_rate)
        return self._act(y)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        spatial = self._spatial_out(shape)
        c = shape[-1]
        return (shape[0], *spatial, None if c is None else int(c) * self.depth_multiplier)

    def compute_macs(self, input_shape: Any, output_shape: Any) -> int:
        return (known_prod(output_shape[1:-1]) * int(np.prod(self.kernel_size))
                * int(input_shape[-1]) * self.depth_multiplier)

    def get_config(self) -> dict:
        return {**super().get_config(), **self._geometry_config(),
                "depth_multiplier": self.depth_multiplier,
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


class SeparableConv2D(_WindowConv):
    """Depthwise convolution (kernel (KH, KW, C_in, M), no bias) then a pointwise 1x1
    convolution (kernel (1, 1, C_in*M, filters)) plus bias."""

    rank = 2

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1,
                 depth_multiplier: int = 1, activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform",
                 pointwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, pointwise_regularizer: Any = None,
                 bias_regularizer: Any = None, depthwise_constraint: Any = None,
                 pointwise_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias, **kwargs)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        cls = type(self).__name__
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"{cls}: filters must be a positive integer, got {filters!r}")
        if (isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier,
                                                                 (int, np.integer))
                or depth_multiplier < 1):
            raise ValueError(f"{cls}: depth_multiplier must be a positive integer, got "
                             f"{depth_multiplier!r}")
        self.filters, self.depth_multiplier = int(filters), int(depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape: Any) -> None:
        c = int(input_shape[-1])
        self._in_channels = c
        m = self.depth_multiplier
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", (*self.kernel_size, c, m), self.depthwise_initializer,
            self.depthwise_regularizer, constraint=self.depthwise_constraint)
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", (1, 1, c * m, self.filters), self.pointwise_initializer,
            self.pointwise_regularizer, constraint=self.pointwise_constraint)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                    self.bias_regularizer, constraint=self.bias_constraint
                                    ) if self.use_bias else None

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        y = ops.separable_conv2d(inputs, self.depthwise_kernel, self.pointwise_kernel,
                                 self.bias, strides=self.strides, padding=self.padding,
                                 dilation_rate=self.dilation_rate)
        return self._act(y)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        return (shape[0], *self._spatial_out(shape), self.filters)

    def compute_macs(self, input_shape: Any, output_shape: Any) -> int:
        mid = int(input_shape[-1]) * self.depth_multiplier
        per_pixel = int(np.prod(self.kernel_size)) * mid + mid * self.filters
        return known_prod(output_shape[1:-1]) * per_pixel

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, **self._geometry_config(),
                "depth_multiplier": self.depth_multiplier,
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
                "pointwise_constraint": constraints.serialize(self.pointwise_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}
