"""Transposed convolution layers (Keras names and arguments), channels-last: kernel
(*K, filters, C_in). ``compute_macs`` counts ``prod(input spatial) * prod(K) * C_in * C_out``
per sample (every input cell is scattered through the whole kernel).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..autograd import Tensor
from ..kernels.conv import conv_transpose_geometry
from ._utils import (
    check_rank,
    known_prod,
    tuple_arg,
)
from .conv import _Conv

__all__ = ["Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"]


# ----- transposed convolutions ---------------------------------------------------------------
class _ConvTranspose(_Conv):
    """Transposed convolution (the input gradient of a convolution); kernel (*K, filters, C_in).

    Output length per axis (Keras): "valid" W*S + max(E - S, 0), "same" W*S, with E = D*(K-1)+1;
    with ``output_padding`` p: (W-1)*S + E + p ("valid") or (W-1)*S + E - 2*(E//2) + p ("same").
    """

    _op = staticmethod(ops.conv2d_transpose)

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 output_padding: Any = None, data_format: str | None = None,
                 dilation_rate: Any = 1, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, 1,
                         activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, kernel_constraint,
                         bias_constraint, **kwargs)
        cls = type(self).__name__
        if output_padding is None:
            self.output_padding = None
        else:
            self.output_padding = tuple_arg(cls, output_padding, self.rank, "output_padding",
                                            minimum=0)
            for p, s, d in zip(self.output_padding, self.strides, self.dilation_rate,
                               strict=True):
                if p >= max(s, d):
                    raise ValueError(f"{cls}: output_padding {self.output_padding} must be "
                                     f"smaller than the strides {self.strides} (or the "
                                     f"dilation_rate {self.dilation_rate}) on every axis")

    def build(self, input_shape: Any) -> None:
        c = int(input_shape[-1])
        self._in_channels = c
        self.kernel = self.add_weight("kernel", (*self.kernel_size, self.filters, c),
                                      self.kernel_initializer, self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                    self.bias_regularizer, constraint=self.bias_constraint
                                    ) if self.use_bias else None

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return None  # no fused form: the layer's own call

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        y = type(self)._op(inputs, self.kernel, self.bias, strides=self.strides,
                           padding=self.padding, output_padding=self.output_padding,
                           dilation_rate=self.dilation_rate)
        return self._act(y)

    def _spatial_out(self, shape: tuple) -> list[int | None]:
        check_rank(self, shape, self.rank)
        out: list[int | None] = []
        for a, (k, s, d) in enumerate(zip(self.kernel_size, self.strides, self.dilation_rate,
                                          strict=True)):
            w = shape[1 + a]
            if w is None:
                out.append(None)
                continue
            p = None if self.output_padding is None else (self.output_padding[a],)
            try:
                sizes, _ = conv_transpose_geometry((int(w),), (k,), (s,), self.padding, p, (d,))
            except ValueError as e:
                raise ValueError(f"{type(self).__name__} '{self.name}': spatial axis {a} of "
                                 f"input shape {shape}: {e}") from None
            out.append(int(sizes[0]))
        return out

    def compute_macs(self, input_shape: Any, output_shape: Any) -> int:
        return (known_prod(input_shape[1:-1]) * int(np.prod(self.kernel_size))
                * int(input_shape[-1]) * self.filters)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("groups", None)
        cfg["output_padding"] = None if self.output_padding is None else list(
            self.output_padding)
        return cfg


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution: (batch, steps, C_in) -> (batch, steps', filters)."""

    rank = 1
    _op = staticmethod(ops.conv1d_transpose)


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution (upsampling "deconvolution"); kernel (KH, KW, filters, C_in)."""

    rank = 2
    _op = staticmethod(ops.conv2d_transpose)


class Conv3DTranspose(_ConvTranspose):
    """Transposed 3-D convolution; kernel (KD, KH, KW, filters, C_in)."""

    rank = 3
    _op = staticmethod(ops.conv3d_transpose)
