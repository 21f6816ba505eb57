"""Small building blocks shared by the zoo's functional builders (timm style: the normalisation
and the activation are arguments, so one block serves several architectures).

Every helper takes a symbolic tensor and returns one, creating named layers on the way. Layer
names follow the module paths of the matching torchvision model ("layer1.0.conv1",
"features.1.conv.0.0"), so a torchvision state dict loads by name
(:func:`cnnkit.io.torchvision_names.load_torchvision_weights`).

Padding follows PyTorch: an integer ``padding`` p pads p cells on both sides of every spatial
axis. Keras' "same" equals that only at stride 1 with an odd kernel (where it is used); at
stride 2 Keras puts the extra cell at the end, so an explicit ``ZeroPadding2D`` runs first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import layers
from ..layers import AdaptiveAveragePooling2D
from ..layers.base import KerasTensor, Layer

Norm = Callable[[str], Layer]

__all__ = ["batch_norm", "TORCH_BN", "activation", "conv2d", "conv_norm_act", "max_pool",
           "avg_pool", "squeeze_excite", "make_divisible", "scale_channels", "join",
           "AdaptiveAveragePooling2D", "global_pool", "pair"]


def join(prefix: str, leaf: str) -> str:
    """``prefix.leaf`` (just ``leaf`` when there is no prefix)."""
    return f"{prefix}.{leaf}" if prefix else leaf


def pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def batch_norm(epsilon: float = 1e-5, momentum: float = 0.9) -> Norm:
    """A BatchNormalization factory ``norm(name) -> layer``. ``momentum`` is Keras' (PyTorch's
    momentum m is Keras' 1 - m): the default is PyTorch's BatchNorm2d (eps 1e-5, momentum 0.1)."""

    def make(name: str) -> Layer:
        return layers.BatchNormalization(epsilon=epsilon, momentum=momentum, name=name)

    return make


TORCH_BN = batch_norm(1e-5, 0.9)


def activation(act: Any, name: str) -> Layer | None:
    """A layer for ``act``: None (no layer), a Keras activation name ("relu", "relu6",
    "hard_swish", "silu", ...) or a factory ``act(name) -> Layer``."""
    if act is None:
        return None
    if isinstance(act, str):
        if act == "relu":
            return layers.ReLU(name=name)
        return layers.Activation(act, name=name)
    return act(name)


def scale_channels(channels: int, width_mult: float) -> int:
    """``channels * width_mult`` rounded, at least 1 (1.0 leaves the published width)."""
    if width_mult == 1.0:
        return int(channels)
    return max(1, int(round(channels * width_mult)))


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``v`` to the nearest multiple of ``divisor`` (at least ``min_value``), never
    going more than 10% below ``v`` (the MobileNet/EfficientNet channel rule)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return int(new_v)


def _spatial(x: KerasTensor) -> tuple[Any, Any]:
    return x.shape[1], x.shape[2]


def conv2d(x: KerasTensor, filters: int, kernel_size: int | Sequence[int], strides: Any = 1,
           padding: Any = 0, *, groups: int = 1, dilation: int = 1, use_bias: bool = True,
           name: str, kernel_initializer: Any = "glorot_uniform",
           activation_fn: Any = None) -> KerasTensor:
    """PyTorch's ``Conv2d(in, filters, kernel_size, strides, padding, dilation, groups)`` as
    cnnkit layers: integer ``padding`` pads symmetrically (an explicit ZeroPadding2D named
    ``<name>_pad`` unless Keras "same" gives the same result); "same"/"valid" are Keras'.
    ``groups`` equal to the input and output channels makes a DepthwiseConv2D."""
    k, s, d = pair(kernel_size), pair(strides), pair(dilation)
    cin = int(x.shape[-1])
    if isinstance(padding, str):
        mode = padding
    else:
        p = pair(padding)
        if p == (0, 0):
            mode = "valid"
        elif s == (1, 1) and all(kk % 2 == 1 and pp == dd * (kk - 1) // 2
                                 for kk, pp, dd in zip(k, p, d, strict=True)):
            mode = "same"
        else:
            x = layers.ZeroPadding2D(p, name=f"{name}_pad")(x)
            mode = "valid"
    if groups > 1 and groups == cin and filters == cin:
        layer: Layer = layers.DepthwiseConv2D(k, strides=s, padding=mode, dilation_rate=d,
                                              use_bias=use_bias,
                                              depthwise_initializer=kernel_initializer,
                                              activation=activation_fn, name=name)
    else:
        layer = layers.Conv2D(filters, k, strides=s, padding=mode, dilation_rate=d,
                              groups=groups, use_bias=use_bias,
                              kernel_initializer=kernel_initializer, activation=activation_fn,
                              name=name)
    return layer(x)


def conv_norm_act(x: KerasTensor, filters: int, kernel_size: int | Sequence[int],
                  strides: Any = 1, padding: Any = None, *, groups: int = 1, dilation: int = 1,
                  norm: Norm | None = TORCH_BN, act: Any = "relu", name: str,
                  names: Sequence[str] = ("0", "1", "2"), use_bias: bool | None = None,
                  kernel_initializer: Any = "glorot_uniform") -> KerasTensor:
    """Convolution -> normalisation -> activation (torchvision's ``Conv2dNormActivation``;
    ``names=("conv", "bn", "relu")`` gives Inception's ``BasicConv2d``). ``padding`` defaults
    to ``dilation * (k - 1) // 2`` per axis; the convolution has a bias only without a norm."""
    k = pair(kernel_size)
    if padding is None:
        padding = tuple(dilation * (kk - 1) // 2 for kk in k)
    if use_bias is None:
        use_bias = norm is None
    x = conv2d(x, filters, k, strides, padding, groups=groups, dilation=dilation,
               use_bias=use_bias, name=join(name, names[0]),
               kernel_initializer=kernel_initializer)
    if norm is not None:
        x = norm(join(name, names[1]))(x)
    act_layer = activation(act, join(name, names[2]))
    return act_layer(x) if act_layer is not None else x


def _ceil_extra(size: Any, k: int, s: int, p: int, what: str) -> int:
    """Extra cells at the end so a floor-mode window count equals PyTorch's ceil_mode count
    (a last window must start inside the input or the left padding)."""
    if size is None:
        raise ValueError(f"{what}: ceil_mode pooling needs a known spatial size, got None")
    n = int(size) + 2 * p
    out = -(-(n - k) // s) + 1
    if (out - 1) * s >= int(size) + p:
        out -= 1
    return max(0, (out - 1) * s + k - n)


def _pool_padding(x: KerasTensor, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int],
                  ceil_mode: bool, name: str) -> KerasTensor:
    h, w = _spatial(x)
    eh = _ceil_extra(h, k[0], s[0], p[0], name) if ceil_mode else 0
    ew = _ceil_extra(w, k[1], s[1], p[1], name) if ceil_mode else 0
    pads = ((p[0], p[0] + eh), (p[1], p[1] + ew))
    if any(v for pp in pads for v in pp):
        x = layers.ZeroPadding2D(pads, name=f"{name}_pad")(x)
    return x


def max_pool(x: KerasTensor, pool_size: Any, strides: Any = None, padding: Any = 0, *,
             ceil_mode: bool = False, name: str) -> KerasTensor:
    """PyTorch's ``MaxPool2d(pool_size, strides, padding, ceil_mode=...)``.

    Padding (and ceil_mode's extra cells) are zeros, which equals PyTorch's -inf padding
    because every use in the zoo follows a ReLU (inputs >= 0). At stride 1 with "same"-sized
    padding, Keras "same" pooling is used instead."""
    k = pair(pool_size)
    s = k if strides is None else pair(strides)
    p = pair(padding)
    if s == (1, 1) and all(kk % 2 == 1 and pp == (kk - 1) // 2 for kk, pp in zip(k, p,
                                                                               strict=True)):
        return layers.MaxPooling2D(k, strides=1, padding="same", name=name)(x)
    x = _pool_padding(x, k, s, p, ceil_mode, name)
    return layers.MaxPooling2D(k, strides=s, padding="valid", name=name)(x)


def avg_pool(x: KerasTensor, pool_size: Any, strides: Any = None, padding: Any = 0, *,
             name: str) -> KerasTensor:
    """PyTorch's ``AvgPool2d(pool_size, strides, padding)`` with its default
    ``count_include_pad=True``: padded zeros count in the mean (zero padding, then a valid
    average pool)."""
    k = pair(pool_size)
    s = k if strides is None else pair(strides)
    x = _pool_padding(x, k, s, pair(padding), False, name)
    return layers.AveragePooling2D(k, strides=s, padding="valid", name=name)(x)


def squeeze_excite(x: KerasTensor, squeeze_channels: int, *, act: Any = "relu",
                   gate: Any = "sigmoid", name: str) -> KerasTensor:
    """Squeeze-and-excitation (Hu et al.; torchvision ``SqueezeExcitation``): x * gate(fc2(
    act(fc1(mean_hw(x))))) with 1x1 convolutions ``<name>.fc1`` and ``<name>.fc2``."""
    c = int(x.shape[-1])
    s = layers.GlobalAveragePooling2D(keepdims=True, name=join(name, "avgpool"))(x)
    s = layers.Conv2D(squeeze_channels, 1, name=join(name, "fc1"))(s)
    s = activation(act, join(name, "activation"))(s)
    s = layers.Conv2D(c, 1, name=join(name, "fc2"))(s)
    s = activation(gate, join(name, "scale_activation"))(s)
    return layers.Multiply(name=join(name, "scale"))([x, s])


def global_pool(x: KerasTensor, pooling: str | None, name: str) -> KerasTensor:
    """Keras applications' ``pooling`` for ``include_top=False``: None keeps the feature map,
    "avg"/"max" reduce it to (batch, channels)."""
    if pooling is None:
        return x
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=name)(x)
    raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")


