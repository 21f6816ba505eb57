"""AlexNet and VGG in torchvision's form (layer names = torchvision module paths).

AlexNet (Krizhevsky et al. 2012, torchvision's single-GPU variant): conv11x11/4 (pad 2) 64 ->
maxpool3/2 -> conv5x5 192 -> maxpool -> conv3x3 384, 256, 256 -> maxpool -> adaptive average
pool to 6x6 (the identity at 224x224) -> dropout -> fc 4096 -> dropout -> fc 4096 -> fc.
61,100,840 parameters at 224x224x3 and 1000 classes.

VGG (Simonyan & Zisserman 2014): stacks of conv3x3 (pad 1) + ReLU separated by maxpool2/2,
configurations A/B/D/E = VGG-11/13/16/19, optional BN after every conv (``*_bn``), adaptive
average pool to 7x7, classifier fc 4096 -> ReLU -> dropout -> fc 4096 -> ReLU -> dropout -> fc.
Parameters (torchvision convention): 132,863,336 / 133,047,848 / 138,357,544 / 143,667,240;
VGG-16-BN 138,365,992.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import layers
from ..models import Model
from .blocks import (
    TORCH_BN,
    AdaptiveAveragePooling2D,
    conv2d,
    global_pool,
    max_pool,
    scale_channels,
)
from .registry import register

__all__ = ["alexnet", "vgg", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn",
           "vgg16_bn", "vgg19_bn", "VGG_CONFIGS"]

VGG_CONFIGS: dict[str, list[Any]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512,
          "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512,
          512, 512, 512, "M"],
}


@register("alexnet")
def alexnet(input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
            include_top: bool = True, pooling: str | None = None,
            classifier_activation: Any = None, dropout: float = 0.5, width_mult: float = 1.0,
            name: str = "alexnet") -> Model:
    """AlexNet in torchvision's form (see the module docstring). ``width_mult`` scales every
    channel and hidden-unit count (1.0 = published)."""
    c = lambda n: scale_channels(n, width_mult)  # noqa: E731
    inputs = layers.Input(tuple(input_shape), name="input")
    x = conv2d(inputs, c(64), 11, 4, 2, name="features.0", activation_fn="relu")
    x = max_pool(x, 3, 2, name="features.2")
    x = conv2d(x, c(192), 5, 1, 2, name="features.3", activation_fn="relu")
    x = max_pool(x, 3, 2, name="features.5")
    x = conv2d(x, c(384), 3, 1, 1, name="features.6", activation_fn="relu")
    x = conv2d(x, c(256), 3, 1, 1, name="features.8", activation_fn="relu")
    x = conv2d(x, c(256), 3, 1, 1, name="features.10", activation_fn="relu")
    x = max_pool(x, 3, 2, name="features.12")
    if include_top:
        x = AdaptiveAveragePooling2D(6, name="avgpool")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dropout(dropout, name="classifier.0")(x)
        x = layers.Dense(c(4096), activation="relu", name="classifier.1")(x)
        x = layers.Dropout(dropout, name="classifier.3")(x)
        x = layers.Dense(c(4096), activation="relu", name="classifier.4")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="classifier.6")(x)
    else:
        x = global_pool(x, pooling, "global_pool")
    return Model(inputs, x, name=name)


def vgg(config: str | Sequence[Any], batch_norm: bool = False,
        input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
        include_top: bool = True, pooling: str | None = None, classifier_activation: Any = None,
        dropout: float = 0.5, width_mult: float = 1.0, name: str = "vgg") -> Model:
    """A torchvision-form VGG from a configuration ("A", "B", "D", "E" or a list of channel
    counts and "M" for max pooling); ``batch_norm`` adds BN (eps 1e-5) after every conv."""
    cfg = VGG_CONFIGS[config] if isinstance(config, str) else list(config)
    inputs = layers.Input(tuple(input_shape), name="input")
    x, i = inputs, 0
    for v in cfg:
        if v == "M":
            x = max_pool(x, 2, 2, name=f"features.{i}")
            i += 1
            continue
        f = scale_channels(int(v), width_mult)
        if batch_norm:
            x = conv2d(x, f, 3, 1, 1, name=f"features.{i}")
            x = TORCH_BN(f"features.{i + 1}")(x)
            x = layers.ReLU(name=f"features.{i + 2}")(x)
            i += 3
        else:
            x = conv2d(x, f, 3, 1, 1, name=f"features.{i}", activation_fn="relu")
            i += 2
    if include_top:
        hidden = scale_channels(4096, width_mult)
        x = AdaptiveAveragePooling2D(7, name="avgpool")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(hidden, activation="relu", name="classifier.0")(x)
        x = layers.Dropout(dropout, name="classifier.2")(x)
        x = layers.Dense(hidden, activation="relu", name="classifier.3")(x)
        x = layers.Dropout(dropout, name="classifier.5")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="classifier.6")(x)
    else:
        x = global_pool(x, pooling, "global_pool")
    return Model(inputs, x, name=name)


def _vgg(config: str, batch_norm: bool, default_name: str):
    def build(input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
              include_top: bool = True, pooling: str | None = None,
              classifier_activation: Any = None, dropout: float = 0.5,
              width_mult: float = 1.0, name: str = default_name) -> Model:
        return vgg(config, batch_norm, input_shape, classes, include_top, pooling,
                   classifier_activation, dropout, width_mult, name)

    build.__name__ = default_name
    build.__doc__ = (f"{default_name}: VGG configuration {config}"
                     f"{' with batch norm' if batch_norm else ''}. See :func:`vgg`.")
    return register(default_name)(build)


vgg11 = _vgg("A", False, "vgg11")
vgg13 = _vgg("B", False, "vgg13")
vgg16 = _vgg("D", False, "vgg16")
vgg19 = _vgg("E", False, "vgg19")
vgg11_bn = _vgg("A", True, "vgg11_bn")
vgg13_bn = _vgg("B", True, "vgg13_bn")
vgg16_bn = _vgg("D", True, "vgg16_bn")
vgg19_bn = _vgg("E", True, "vgg19_bn")
