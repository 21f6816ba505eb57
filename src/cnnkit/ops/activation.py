"""Activation functions on Tensors (elementwise, except softmax / log_softmax along an axis).

The maths lives in :mod:`cnnkit.kernels.activation`. ``get_activation`` maps the Keras
activation strings to these functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..kernels import activation as K
from ._core import Tensor, floating, record

__all__ = ["relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "hard_sigmoid",
           "tanh", "silu", "swish", "hard_swish", "softplus", "softmax", "log_softmax",
           "get_activation", "guided_relu_active"]


def _elementwise(name: str, x: Any, forward: Callable, backward: Callable,
                 **params: Any) -> Tensor:
    x = floating(x, "x")
    y = forward(x.data, **params)
    return record(y, (x,), lambda g: (backward(g, x.data, y, **params),), name)


_GUIDED = [False]  # inside ``guided_relu()``: ReLU records guided backpropagation's rule


class guided_relu:  # noqa: N801 - a context manager, named as no_grad
    """``with guided_relu():`` every ReLU recorded inside passes back only positive
    gradients where its input was positive (guided backpropagation,
    :func:`cnnkit.kernels.activation.guided_relu_backward`). Not thread-safe."""

    def __enter__(self) -> guided_relu:
        self._prev = _GUIDED[0]
        _GUIDED[0] = True
        return self

    def __exit__(self, *exc: object) -> None:
        _GUIDED[0] = self._prev


def guided_relu_active() -> bool:
    """Inside ``guided_relu()``: ReLU must keep its own op (its backward is guided)."""
    return _GUIDED[0]


def relu(x: Any) -> Tensor:
    """max(0, x); derivative 1 for x > 0, else 0."""
    backward = K.guided_relu_backward if _GUIDED[0] else K.relu_backward
    return _elementwise("relu", x, K.relu_forward, backward)


def relu6(x: Any) -> Tensor:
    """min(max(0, x), 6); derivative 1 for 0 < x < 6, else 0."""
    return _elementwise("relu6", x, K.relu6_forward, K.relu6_backward)


def leaky_relu(x: Any, negative_slope: float = 0.2, *, alpha: float | None = None) -> Tensor:
    """x if x > 0 else negative_slope * x (default 0.2, as keras.ops.leaky_relu).

    ``alpha`` is accepted as the Keras 2 name of ``negative_slope``.
    """
    slope = float(negative_slope if alpha is None else alpha)
    return _elementwise("leaky_relu", x, K.leaky_relu_forward, K.leaky_relu_backward,
                        negative_slope=slope)


def keras_relu(x: Any, negative_slope: float = 0.0, max_value: float | None = None,
               threshold: float = 0.0) -> Tensor:
    """keras.activations.relu / the ReLU layer: min(x, max_value) for x > threshold, else
    negative_slope * (x - threshold)."""
    from .arith import clip, multiply, subtract

    x = floating(x, "x")
    if threshold:
        pos = multiply(x, Tensor((x.data > threshold).astype(x.dtype)))
    else:
        pos = relu(x)
    if max_value is not None:
        pos = clip(pos, 0.0, max_value)
    if negative_slope:
        pos = subtract(pos, multiply(relu(subtract(threshold, x)), negative_slope))
    return pos


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return _elementwise("elu", x, K.elu_forward, K.elu_backward, alpha=float(alpha))


def selu(x: Any) -> Tensor:
    """scale * elu(x, alpha) with scale = 1.0507009873554805, alpha = 1.6732632423543772."""
    return _elementwise("selu", x, K.selu_forward, K.selu_backward)


def _gelu_mode(approximate: bool | str) -> bool:
    if isinstance(approximate, str):
        mode = approximate.lower()
        if mode not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be False/'none' (exact, erf) or "
                             f"True/'tanh', got {approximate!r}")
        return mode == "tanh"
    return bool(approximate)


def gelu(x: Any, approximate: bool | str = True) -> Tensor:
    """x * Phi(x); approximate=True or "tanh" (the default, as keras.ops.gelu) uses
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); False or "none" the exact erf form."""
    return _elementwise("gelu", x, K.gelu_forward, K.gelu_backward,
                        approximate=_gelu_mode(approximate))


def sigmoid(x: Any) -> Tensor:
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    return _elementwise("sigmoid", x, K.sigmoid_forward, K.sigmoid_backward)


def hard_sigmoid(x: Any, alpha: float = 1 / 6, beta: float = 0.5) -> Tensor:
    """max(0, min(1, alpha x + beta)); the defaults are Keras 3's relu6(x + 3) / 6
    (= torch hardsigmoid). ONNX HardSigmoid and Keras 2 use alpha = 0.2."""
    return _elementwise("hard_sigmoid", x, K.hard_sigmoid_forward, K.hard_sigmoid_backward,
                        alpha=float(alpha), beta=float(beta))


def tanh(x: Any) -> Tensor:
    """tanh(x); derivative 1 - tanh(x)^2."""
    return _elementwise("tanh", x, K.tanh_forward, K.tanh_backward)


def silu(x: Any) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return _elementwise("silu", x, K.silu_forward, K.silu_backward)


def swish(x: Any) -> Tensor:
    """Alias of :func:`silu`: x * sigmoid(x)."""
    return silu(x)


def hard_swish(x: Any) -> Tensor:
    """x * relu6(x + 3) / 6 (MobileNetV3's hard swish, ONNX HardSwish)."""
    return _elementwise("hard_swish", x, K.hard_swish_forward, K.hard_swish_backward)


def softplus(x: Any) -> Tensor:
    """log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|))."""
    return _elementwise("softplus", x, K.softplus_forward, K.softplus_backward)


def _axis(op: str, axis: int, ndim: int) -> int:
    if not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis!r} is out of range for an input of rank {ndim}")
    return axis % ndim


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x_i) / sum_j exp(x_j) along ``axis`` (max subtracted first)."""
    x = floating(x, "x")
    ax = _axis("softmax", axis, x.ndim)
    return _elementwise("softmax", x, K.softmax_forward, K.softmax_backward, axis=ax)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """x_i - log sum_j exp(x_j) along ``axis`` (log-sum-exp with the max subtracted)."""
    x = floating(x, "x")
    ax = _axis("log_softmax", axis, x.ndim)
    return _elementwise("log_softmax", x, K.log_softmax_forward, K.log_softmax_backward,
                        axis=ax)


def _linear(x: Any) -> Tensor:
    """The identity activation ("linear" / None)."""
    return floating(x, "x")


_linear.__name__ = "linear"


def _keras_leaky_relu(x: Any) -> Tensor:
    """The "leaky_relu" activation string: keras.activations.leaky_relu's slope 0.2."""
    return leaky_relu(x, negative_slope=0.2)


_keras_leaky_relu.__name__ = "leaky_relu"


def _keras_gelu(x: Any) -> Tensor:
    """The "gelu" activation string: keras.activations.gelu's exact (erf) form."""
    return gelu(x, approximate=False)


_keras_gelu.__name__ = "gelu"

_ACTIVATIONS: dict[str, Callable[..., Tensor]] = {
    "relu": relu, "relu6": relu6, "leaky_relu": _keras_leaky_relu, "elu": elu, "selu": selu,
    "gelu": _keras_gelu, "sigmoid": sigmoid, "hard_sigmoid": hard_sigmoid, "tanh": tanh,
    "swish": silu, "silu": silu, "hard_swish": hard_swish, "hard_silu": hard_swish,
    "softplus": softplus, "softmax": softmax, "log_softmax": log_softmax, "linear": _linear,
}


def get_activation(activation: str | Callable[..., Any] | None) -> Callable[..., Any]:
    """The function for a Keras activation name ("relu", "gelu", ..., "linear"), or
    ``activation`` itself if it is callable; None means "linear" (the identity).

    As in Keras, the string "leaky_relu" has slope 0.2 (the LeakyReLU layer defaults to 0.3)
    and "gelu" is the exact erf form (keras.ops.gelu defaults to the tanh approximation).
    """
    if activation is None:
        return _linear
    if callable(activation):
        return activation
    if isinstance(activation, str):
        fn = _ACTIVATIONS.get(activation.lower())
        if fn is not None:
            return fn
    known = ", ".join(sorted(_ACTIVATIONS))
    raise ValueError(f"unknown activation {activation!r}; known activations: {known} "
                     f"(or None, or a callable)")
