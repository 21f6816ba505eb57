"""Activation layers (Keras names and arguments): Activation, ReLU, LeakyReLU, ELU, Softmax."""

from __future__ import annotations

from typing import Any

from .. import ops
from ..autograd import Tensor
from ..ops.activation import keras_relu
from .base import Layer


class Activation(Layer):
    """Apply a named activation ("relu", "softmax", ...) or a callable."""

    def __init__(self, activation: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.fn = ops.get_activation(activation)
        self.activation_name = activation if isinstance(activation, str) else getattr(
            activation, "__name__", "custom")

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return self.fn(inputs) if self.fn is not None else inputs

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        act = steps.activation(self.fn)
        if act is None:
            return steps.Identity()
        return None if act is steps.UNSUPPORTED else steps.Activate(act)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation_name or "linear"}


def plain_activation(layer: Layer) -> str | None:
    """"relu" / "relu6" when ``layer`` computes just that (a ReLU or Activation layer, no
    activity regularizer), which a batch norm before it may then compute instead."""
    if layer.activity_regularizer is not None:
        return None
    if type(layer) is ReLU and layer.negative_slope == 0 and layer.threshold == 0:
        return {None: "relu", 6: "relu6"}.get(layer.max_value)
    if type(layer) is Activation and layer.activation_name in ("relu", "relu6"):
        return str(layer.activation_name)
    return None


class ReLU(Layer):
    """max(x, 0), optionally capped at ``max_value``; ``negative_slope`` below ``threshold``."""

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0,
                 threshold: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if self.negative_slope == 0 and self.threshold == 0:
            if self.max_value is None:
                return ops.relu(inputs)
            if self.max_value == 6:
                return ops.relu6(inputs)
            return ops.clip(ops.relu(inputs), None, self.max_value)
        # Keras: min(x, max_value) for x > threshold, else negative_slope * (x - threshold)
        return keras_relu(inputs, self.negative_slope, self.max_value, self.threshold)

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        if self.negative_slope != 0 or self.threshold != 0:
            return None
        return steps.Activate(steps.clipped_relu(self.max_value))

    def get_config(self) -> dict:
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(Layer):
    """x if x > 0 else negative_slope * x (Keras default 0.3)."""

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = float(negative_slope)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.leaky_relu(inputs, self.negative_slope)

    def get_config(self) -> dict:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.elu(inputs, self.alpha)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(Layer):
    """exp(x_i) / sum_j exp(x_j) along ``axis``."""

    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.softmax(inputs, axis=self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}
