"""MobileNet v1 (Howard et al. 2017, Keras applications' form), v2 (Sandler et al. 2018) and
v3 (Howard et al. 2019) in torchvision's form.

- v1: conv3x3/2 -> 13 depthwise-separable blocks (depthwise 3x3 -> BN -> ReLU6 -> pointwise
  1x1 -> BN -> ReLU6) -> global average pool -> dropout -> 1x1 conv classifier. ``alpha``
  multiplies every width. Keras' layer names and BN defaults (eps 1e-3, momentum 0.99),
  Keras "same" padding. 4,253,864 parameters at alpha 1.0 (Keras convention, BN moving
  statistics included; 4,231,976 trainable).
- v2: inverted residual blocks (1x1 expansion -> depthwise 3x3 -> linear 1x1 projection, with
  a residual when the shape is kept), ReLU6, BN eps 1e-5 (PyTorch). 3,504,872 parameters.
- v3: inverted residuals with optional squeeze-and-excitation (hard-sigmoid gate) and
  hard-swish, BN eps 1e-3 / momentum 0.01 (torchvision). Large 5,483,032 and small 2,542,856
  parameters.

v2/v3 layer names are torchvision's (``features.1.conv.0.0``, ``features.4.block.2.fc1``);
parameter counts are torchvision's convention at 224x224x3 and 1000 classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import layers
from ..layers.base import KerasTensor
from ..models import Model
from .blocks import (
    TORCH_BN,
    Norm,
    batch_norm,
    conv2d,
    conv_norm_act,
    global_pool,
    join,
    make_divisible,
    squeeze_excite,
)
from .registry import register

__all__ = ["mobilenet", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
           "mobilenet_v3", "inverted_residual"]


# ----- v1 --------------------------------------------------------------------------------------
@register("mobilenet")
def mobilenet(input_shape: Sequence[int] = (224, 224, 3), alpha: float = 1.0,
              depth_multiplier: int = 1, dropout: float = 1e-3, classes: int = 1000,
              include_top: bool = True, pooling: str | None = None,
              classifier_activation: Any = None, name: str | None = None) -> Model:
    """MobileNet v1 (Keras applications' form and names). ``alpha`` is the width multiplier
    (0.25, 0.5, 0.75, 1.0 in the paper), ``depth_multiplier`` the depthwise channel
    multiplier (the paper's resolution multiplier is the input size)."""
    bn = batch_norm(epsilon=1e-3, momentum=0.99)

    def relu6(n: str) -> layers.Layer:
        return layers.ReLU(max_value=6.0, name=n)

    inputs = layers.Input(tuple(input_shape), name="input")
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False,
                      name="conv1")(inputs)
    x = relu6("conv1_relu")(bn("conv1_bn")(x))
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
            (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
    for i, (filters, strides) in enumerate(plan, start=1):
        x = layers.DepthwiseConv2D(3, strides=strides, padding="same",
                                   depth_multiplier=depth_multiplier, use_bias=False,
                                   name=f"conv_dw_{i}")(x)
        x = relu6(f"conv_dw_{i}_relu")(bn(f"conv_dw_{i}_bn")(x))
        x = layers.Conv2D(int(filters * alpha), 1, use_bias=False, name=f"conv_pw_{i}")(x)
        x = relu6(f"conv_pw_{i}_relu")(bn(f"conv_pw_{i}_bn")(x))
    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True, name="global_average_pooling2d")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(classes, 1, name="conv_preds")(x)
        x = layers.Reshape((classes,), name="reshape")(x)
        if classifier_activation is not None:
            x = layers.Activation(classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling, "global_pool")
    return Model(inputs, x, name=name or f"mobilenet_{alpha:.2f}_{int(input_shape[0] or 0)}")


# ----- v2 --------------------------------------------------------------------------------------
def inverted_residual(x: KerasTensor, filters: int, strides: int, expand_ratio: float, *,
                      norm: Norm = TORCH_BN, act: Any = "relu6", name: str) -> KerasTensor:
    """MobileNet v2's block (torchvision names ``<name>.conv.*``): [1x1 expand -> BN -> act]
    -> depthwise 3x3 -> BN -> act -> 1x1 project -> BN, plus x when strides == 1 and the
    channels match."""
    cin = int(x.shape[-1])
    hidden = int(round(cin * expand_ratio))
    y, i = x, 0
    if expand_ratio != 1:
        y = conv_norm_act(y, hidden, 1, norm=norm, act=act, name=join(name, "conv.0"))
        i = 1
    y = conv_norm_act(y, hidden, 3, strides, groups=hidden, norm=norm, act=act,
                      name=join(name, f"conv.{i}"))
    y = conv2d(y, filters, 1, 1, 0, use_bias=False, name=join(name, f"conv.{i + 1}"))
    y = norm(join(name, f"conv.{i + 2}"))(y)
    if strides == 1 and cin == filters:
        y = layers.Add(name=join(name, "add"))([x, y])
    return y


@register("mobilenet_v2")
def mobilenet_v2(input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
                 width_mult: float = 1.0, include_top: bool = True, pooling: str | None = None,
                 classifier_activation: Any = None, dropout: float = 0.2,
                 round_nearest: int = 8, name: str = "mobilenet_v2") -> Model:
    """MobileNet v2 (torchvision form and names). ``width_mult`` scales the channels (each
    rounded to a multiple of ``round_nearest``)."""
    setting = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1)]
    cin = make_divisible(32 * width_mult, round_nearest)
    last = make_divisible(1280 * max(1.0, width_mult), round_nearest)
    inputs = layers.Input(tuple(input_shape), name="input")
    x = conv_norm_act(inputs, cin, 3, 2, act="relu6", name="features.0")
    idx = 1
    for t, c, n, s in setting:
        out = make_divisible(c * width_mult, round_nearest)
        for i in range(n):
            x = inverted_residual(x, out, s if i == 0 else 1, t, name=f"features.{idx}")
            idx += 1
    x = conv_norm_act(x, last, 1, act="relu6", name=f"features.{idx}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
        x = layers.Dropout(dropout, name="classifier.0")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="classifier.1")(x)
    else:
        x = global_pool(x, pooling, "avgpool")
    return Model(inputs, x, name=name)


# ----- v3 --------------------------------------------------------------------------------------
# (input channels, kernel, expanded channels, output channels, SE, activation, stride)
_V3_LARGE = [
    (16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1), (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
]
_V3_SMALL = [
    (16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2),
    (24, 3, 88, 24, False, "RE", 1), (24, 5, 96, 40, True, "HS", 2),
    (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1),
    (48, 5, 288, 96, True, "HS", 2), (96, 5, 576, 96, True, "HS", 1),
    (96, 5, 576, 96, True, "HS", 1),
]


def _v3_block(x: KerasTensor, kernel: int, expanded: int, out: int, use_se: bool, act: str,
              strides: int, norm: Norm, name: str) -> KerasTensor:
    cin = int(x.shape[-1])
    y, j = x, 0
    if expanded != cin:
        y = conv_norm_act(y, expanded, 1, norm=norm, act=act, name=join(name, "block.0"))
        j = 1
    y = conv_norm_act(y, expanded, kernel, strides, groups=expanded, norm=norm, act=act,
                      name=join(name, f"block.{j}"))
    j += 1
    if use_se:
        y = squeeze_excite(y, make_divisible(expanded // 4, 8), act="relu",
                           gate="hard_sigmoid", name=join(name, f"block.{j}"))
        j += 1
    y = conv_norm_act(y, out, 1, norm=norm, act=None, name=join(name, f"block.{j}"))
    if strides == 1 and cin == out:
        y = layers.Add(name=join(name, "add"))([x, y])
    return y


def mobilenet_v3(arch: str = "large", input_shape: Sequence[int] = (224, 224, 3),
                 classes: int = 1000, width_mult: float = 1.0, include_top: bool = True,
                 pooling: str | None = None, classifier_activation: Any = None,
                 dropout: float = 0.2, name: str | None = None) -> Model:
    """MobileNet v3 "large" or "small" (torchvision form and names)."""
    if arch not in ("large", "small"):
        raise ValueError(f"mobilenet_v3 arch must be 'large' or 'small', got {arch!r}")
    setting = _V3_LARGE if arch == "large" else _V3_SMALL
    norm = batch_norm(epsilon=1e-3, momentum=0.99)
    acts = {"RE": "relu", "HS": "hard_swish"}

    def adjust(c: float) -> int:
        return make_divisible(c * width_mult, 8)

    inputs = layers.Input(tuple(input_shape), name="input")
    x = conv_norm_act(inputs, adjust(16), 3, 2, norm=norm, act="hard_swish", name="features.0")
    for i, (_, k, exp, out, se, act, s) in enumerate(setting, start=1):
        x = _v3_block(x, k, adjust(exp), adjust(out), se, acts[act], s, norm, f"features.{i}")
    last_in = int(x.shape[-1])
    x = conv_norm_act(x, 6 * last_in, 1, norm=norm, act="hard_swish",
                      name=f"features.{len(setting) + 1}")
    if include_top:
        last = adjust(1280 if arch == "large" else 1024)
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
        x = layers.Dense(last, name="classifier.0")(x)
        x = layers.Activation("hard_swish", name="classifier.1")(x)
        x = layers.Dropout(dropout, name="classifier.2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="classifier.3")(x)
    else:
        x = global_pool(x, pooling, "avgpool")
    return Model(inputs, x, name=name or f"mobilenet_v3_{arch}")


@register("mobilenet_v3_large")
def mobilenet_v3_large(input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
                       width_mult: float = 1.0, include_top: bool = True,
                       pooling: str | None = None, classifier_activation: Any = None,
                       dropout: float = 0.2, name: str = "mobilenet_v3_large") -> Model:
    """MobileNet v3 large (torchvision): 5,483,032 parameters."""
    return mobilenet_v3("large", input_shape, classes, width_mult, include_top, pooling,
                        classifier_activation, dropout, name)


@register("mobilenet_v3_small")
def mobilenet_v3_small(input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
                       width_mult: float = 1.0, include_top: bool = True,
                       pooling: str | None = None, classifier_activation: Any = None,
                       dropout: float = 0.2, name: str = "mobilenet_v3_small") -> Model:
    """MobileNet v3 small (torchvision): 2,542,856 parameters."""
    return mobilenet_v3("small", input_shape, classes, width_mult, include_top, pooling,
                        classifier_activation, dropout, name)
