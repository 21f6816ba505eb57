"""``cnnkit.activations``: Keras's ``keras.activations`` names and defaults over cnnkit.ops.

Where keras.activations and keras.ops differ (relu's extra arguments, gelu exact by default)
the functions here follow keras.activations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import ops
from .autograd import Tensor
from .ops.activation import (
    elu,
    hard_sigmoid,
    hard_swish,
    keras_relu,
    log_softmax,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from .ops.activation import relu6 as relu6

__all__ = ["relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "hard_sigmoid",
           "tanh", "silu", "swish", "hard_swish", "hard_silu", "softplus", "softmax",
           "log_softmax", "linear", "get", "serialize", "deserialize"]

swish = silu
hard_silu = hard_swish
_ = (elu, selu, sigmoid, hard_sigmoid, tanh, softplus, softmax, log_softmax)


def relu(x: Any, negative_slope: float = 0.0, max_value: float | None = None,
         threshold: float = 0.0) -> Tensor:
    """min(x, max_value) for x > threshold, else negative_slope * (x - threshold) (Keras)."""
    return keras_relu(x, negative_slope, max_value, threshold)


def leaky_relu(x: Any, negative_slope: float = 0.2) -> Tensor:
    """x if x > 0 else negative_slope * x."""
    return ops.leaky_relu(x, negative_slope)


def gelu(x: Any, approximate: bool = False) -> Tensor:
    """x * Phi(x), exact (erf) unless approximate (keras.activations' default)."""
    return ops.gelu(x, approximate=approximate)


def linear(x: Any) -> Any:
    """The identity."""
    return x


def get(identifier: str | Callable[..., Any] | None) -> Callable[..., Any]:
    """The activation for a Keras name ("relu", "gelu", ...), a callable, or None (linear)."""
    return ops.get_activation(identifier)


def serialize(activation: Callable[..., Any]) -> str:
    """The Keras name of an activation function."""
    return getattr(activation, "__name__", "custom")


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None
                ) -> Callable[..., Any]:
    """The activation for a Keras name (or a ``custom_objects`` entry of that name)."""
    if isinstance(config, str) and custom_objects and config in custom_objects:
        return custom_objects[config]
    return ops.get_activation(config)
