"""``torch.nn`` layer constructors returning cnnkit layers (channels-last).

Each function takes torch's arguments and defaults and returns the Keras-style layer that
computes the same thing on NHWC inputs; weights are created at once when the input size is an
argument, with torch's default initialisation: kernel and bias ~ U(-1/sqrt(fan_in),
1/sqrt(fan_in)) (``kaiming_uniform_(a=sqrt(5))`` gives the kernel that bound).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import initializers
from .. import layers as L
from ..layers.base import Layer
from ..models import Sequential

__all__ = ["Conv1d", "Conv2d", "Linear", "Embedding", "BatchNorm1d", "BatchNorm2d", "MaxPool2d",
           "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Dropout", "Dropout2d", "ReLU", "LeakyReLU",
           "Sigmoid", "Tanh", "Softmax", "Identity"]


def _pair(owner: str, name: str, value: Any) -> tuple[int, int]:
    if isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, Sequence) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{owner}: {name} must be an int or a pair of ints, got {value!r}")


def _torch_init(fan_in: int) -> tuple[Any, Any]:
    """torch's default kernel and bias initialisers: both U(-b, b), b = 1/sqrt(fan_in)."""
    bound = 1.0 / math.sqrt(max(1, fan_in))
    return (initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
            initializers.RandomUniform(-bound, bound))


def _built(layer: Layer, shape: tuple) -> Layer:
    layer._maybe_build(shape)
    return layer


def _conv_padding(owner: str, padding: Any, k: tuple, stride: tuple,
                  dilation: tuple) -> str | tuple[int, int]:
    """"valid", "same" (when torch's symmetric padding equals it) or explicit (ph, pw)."""
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"{owner}: padding must be an int, a pair, 'valid' or 'same', got "
                             f"{padding!r}")
        return padding
    p = _pair(owner, "padding", padding)
    if p == (0, 0):
        return "valid"
    if stride == (1, 1) and all(2 * pi == d * (ki - 1) for pi, ki, d in zip(p, k, dilation,
                                                                              strict=True)):
        return "same"
    return p


def Conv2d(in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,  # noqa: N802
           padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
           padding_mode: str = "zeros") -> Layer:
    """``torch.nn.Conv2d`` as a built :class:`~cnnkit.layers.Conv2D` on NHWC inputs; an int
    padding that "same" does not express is a ``Sequential(ZeroPadding2D(p), Conv2D)``."""
    owner = "Conv2d"
    if padding_mode != "zeros":
        raise ValueError(f"{owner}: only padding_mode='zeros' is supported, got "
                         f"{padding_mode!r}")
    k, s, d = (_pair(owner, n, v) for n, v in (("kernel_size", kernel_size), ("stride", stride),
                                               ("dilation", dilation)))
    pad = _conv_padding(owner, padding, k, s, d)
    kinit, binit = _torch_init(in_channels // max(1, groups) * k[0] * k[1])
    conv = L.Conv2D(out_channels, k, strides=s, padding="valid" if isinstance(pad, tuple)
                    else pad, dilation_rate=d, groups=groups, use_bias=bias,
                    kernel_initializer=kinit, bias_initializer=binit)
    shape = (None, None, None, in_channels)
    if isinstance(pad, tuple):
        return _built(Sequential([L.ZeroPadding2D(pad), conv]), shape)
    return _built(conv, shape)


def Conv1d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,  # noqa: N802
           padding: Any = 0, dilation: int = 1, groups: int = 1, bias: bool = True) -> Layer:
    """``torch.nn.Conv1d`` as a built :class:`~cnnkit.layers.Conv1D` on (N, L, C) inputs
    (torch: (N, C, L)); other int paddings are a ``Sequential(ZeroPadding1D(p), Conv1D)``."""
    pad = _conv_padding("Conv1d", padding if isinstance(padding, str) else (padding, 0),
                        (kernel_size, 1), (stride, 1), (dilation, 1))
    kinit, binit = _torch_init(in_channels // max(1, groups) * kernel_size)
    conv = L.Conv1D(out_channels, kernel_size, strides=stride,
                    padding="valid" if isinstance(pad, tuple) else pad, dilation_rate=dilation,
                    groups=groups, use_bias=bias, kernel_initializer=kinit,
                    bias_initializer=binit)
    if isinstance(pad, tuple):
        return _built(Sequential([L.ZeroPadding1D(pad[0]), conv]), (None, None, in_channels))
    return _built(conv, (None, None, in_channels))


def Embedding(num_embeddings: int, embedding_dim: int) -> Layer:  # noqa: N802
    """``torch.nn.Embedding`` (rows ~ N(0, 1), as torch) as a built Embedding layer."""
    layer = L.Embedding(num_embeddings, embedding_dim,
                        embeddings_initializer=initializers.RandomNormal(0.0, 1.0))
    return _built(layer, (None, None))


def Linear(in_features: int, out_features: int, bias: bool = True) -> Layer:  # noqa: N802
    """``torch.nn.Linear`` as a built :class:`~cnnkit.layers.Dense`; kernel (in, out) is
    torch's weight transposed."""
    kinit, binit = _torch_init(in_features)
    dense = L.Dense(out_features, use_bias=bias, kernel_initializer=kinit,
                    bias_initializer=binit)
    return _built(dense, (None, in_features))


def _batch_norm(owner: str, num_features: int, eps: float, momentum: float | None,
                affine: bool, track_running_stats: bool, shape: tuple) -> Layer:
    if momentum is None or not track_running_stats:
        raise ValueError(f"{owner}: momentum=None (a cumulative average) and "
                         f"track_running_stats=False are not supported")
    # torch: running = (1 - m) * running + m * batch; Keras' momentum is the kept part, 1 - m
    layer = L.BatchNormalization(momentum=1.0 - float(momentum), epsilon=eps, center=affine,
                                 scale=affine, unbiased_variance=True)
    return _built(layer, shape)


def BatchNorm2d(num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,  # noqa: N802
                affine: bool = True, track_running_stats: bool = True) -> Layer:
    """``torch.nn.BatchNorm2d``: a BatchNormalization over the last (channel) axis with
    Keras momentum 1 - ``momentum`` and torch's unbiased running variance."""
    return _batch_norm("BatchNorm2d", num_features, eps, momentum, affine, track_running_stats,
                       (None, None, None, num_features))


def BatchNorm1d(num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,  # noqa: N802
                affine: bool = True, track_running_stats: bool = True) -> Layer:
    """``torch.nn.BatchNorm1d`` on (N, C) features (channels-last for (N, L, C))."""
    return _batch_norm("BatchNorm1d", num_features, eps, momentum, affine, track_running_stats,
                       (None, num_features))


def _pool_args(owner: str, kernel_size: Any, stride: Any, ceil_mode: bool
               ) -> tuple[tuple[int, int], tuple[int, int]]:
    if ceil_mode:
        raise ValueError(f"{owner}: ceil_mode=True is not supported")
    k = _pair(owner, "kernel_size", kernel_size)
    return k, (k if stride is None else _pair(owner, "stride", stride))


def MaxPool2d(kernel_size: Any, stride: Any = None, padding: Any = 0,  # noqa: N802
              dilation: Any = 1, return_indices: bool = False, ceil_mode: bool = False) -> Layer:
    """``torch.nn.MaxPool2d`` (no padding, dilation or indices) as MaxPooling2D."""
    k, s = _pool_args("MaxPool2d", kernel_size, stride, ceil_mode)
    if _pair("MaxPool2d", "padding", padding) != (0, 0) or _pair(
            "MaxPool2d", "dilation", dilation) != (1, 1) or return_indices:
        raise ValueError("MaxPool2d: padding, dilation and return_indices are not supported "
                         "(torch pads max pooling with -inf; use ZeroPadding2D only after a "
                         "ReLU)")
    return L.MaxPooling2D(k, s)


def AvgPool2d(kernel_size: Any, stride: Any = None, padding: Any = 0,  # noqa: N802
              ceil_mode: bool = False, count_include_pad: bool = True,
              divisor_override: int | None = None) -> Layer:
    """``torch.nn.AvgPool2d`` as AveragePooling2D; padding (zeros counted, torch's default)
    is a ``Sequential(ZeroPadding2D(p), AveragePooling2D)``."""
    k, s = _pool_args("AvgPool2d", kernel_size, stride, ceil_mode)
    p = _pair("AvgPool2d", "padding", padding)
    if divisor_override is not None or (p != (0, 0) and not count_include_pad):
        raise ValueError("AvgPool2d: divisor_override and count_include_pad=False with "
                         "padding are not supported")
    pool = L.AveragePooling2D(k, s)
    return pool if p == (0, 0) else Sequential([L.ZeroPadding2D(p), pool])


def AdaptiveAvgPool2d(output_size: Any) -> Layer:  # noqa: N802
    """``torch.nn.AdaptiveAvgPool2d``."""
    return L.AdaptiveAveragePooling2D(output_size)


def Flatten(start_dim: int = 1, end_dim: int = -1) -> Layer:  # noqa: N802
    """``torch.nn.Flatten()``: (N, H, W, C) -> (N, H*W*C), features in H, W, C order."""
    if (start_dim, end_dim) != (1, -1):
        raise ValueError(f"Flatten: only start_dim=1, end_dim=-1 are supported, got "
                         f"({start_dim}, {end_dim})")
    return L.Flatten()


def Dropout(p: float = 0.5, inplace: bool = False) -> Layer:  # noqa: N802
    """``torch.nn.Dropout(p)``: zero with probability p, scale the rest by 1/(1-p)."""
    return L.Dropout(p)


def Dropout2d(p: float = 0.5, inplace: bool = False) -> Layer:  # noqa: N802
    """``torch.nn.Dropout2d(p)``: whole channels dropped (SpatialDropout2D)."""
    return L.SpatialDropout2D(p)


def ReLU(inplace: bool = False) -> Layer:  # noqa: N802
    """``torch.nn.ReLU`` (``inplace`` is accepted and ignored)."""
    return L.ReLU()


def LeakyReLU(negative_slope: float = 0.01, inplace: bool = False) -> Layer:  # noqa: N802
    """``torch.nn.LeakyReLU`` with torch's slope 0.01 (Keras: 0.3)."""
    return L.LeakyReLU(negative_slope)


def Sigmoid() -> Layer:  # noqa: N802
    return L.Activation("sigmoid")


def Tanh() -> Layer:  # noqa: N802
    return L.Activation("tanh")


def Identity(*args: Any, **kwargs: Any) -> Layer:  # noqa: N802
    return L.Activation("linear")


def Softmax(dim: int | None = None) -> Layer:  # noqa: N802
    """``torch.nn.Softmax(dim=1)`` over the class axis, which is last in cnnkit."""
    if dim not in (None, 1, -1):
        raise ValueError(f"Softmax: dim must be 1 or -1 (the class axis, last in cnnkit), got "
                         f"{dim!r}")
    return L.Softmax(axis=-1)
