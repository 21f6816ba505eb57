"""SpatialDropout1D/2D/3D (Keras): dropout of whole feature maps.

In training, each (sample, channel) pair is kept with probability 1 - rate and scaled by
1/(1 - rate), the same decision for every spatial position (mask shape (N, 1, ..., 1, C));
adjacent pixels of a feature map are strongly correlated, so dropping single pixels would
regularise little. Outside training the input passes through unchanged.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .. import ops
from .. import random as crandom
from ..autograd import Tensor
from ._utils import check_data_format, check_rank, single_shape
from .base import Layer

__all__ = ["SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"]


class _SpatialDropout(Layer):
    rank = 2

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        cls = type(self).__name__
        check_data_format(cls, data_format)
        if (not isinstance(rate, numbers.Real) or isinstance(rate, bool)
                or not 0.0 <= float(rate) < 1.0):
            raise ValueError(f"{cls}: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        check_rank(self, shape, self.rank)
        return shape

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return steps.Identity()  # no dropout at inference

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.rate == 0.0:
            return inputs
        return ops.spatial_dropout(inputs, self.rate, training=True,
                                   rng=crandom.get_rng(self._rng))

    def get_config(self) -> dict:
        cfg = {**super().get_config(), "rate": self.rate, "seed": self.seed}
        if self.rank > 1:
            cfg["data_format"] = "channels_last"
        return cfg


class SpatialDropout1D(_SpatialDropout):
    """Drop whole channels of (batch, steps, channels)."""

    rank = 1

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any):
        super().__init__(rate, None, seed, **kwargs)


class SpatialDropout2D(_SpatialDropout):
    """Drop whole feature maps of (batch, height, width, channels)."""

    rank = 2


class SpatialDropout3D(_SpatialDropout):
    """Drop whole feature volumes of (batch, depth, height, width, channels)."""

    rank = 3
