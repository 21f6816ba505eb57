"""SqueezeNet 1.0 and 1.1 (Iandola et al. 2016) in torchvision's form.

Fire module: squeeze 1x1 (s channels) -> ReLU -> [expand 1x1 (e1) -> ReLU, expand 3x3 (e3,
pad 1) -> ReLU] concatenated. Max pools 3x3/2 use PyTorch's ceil mode. Classifier: dropout
0.5 -> conv1x1 to the classes -> ReLU -> global average pool (so logits are >= 0, as in
torchvision). 1.0: conv7x7/2 96 first; 1.1: conv3x3/2 64 and earlier pooling (2.4x less
computation, same accuracy). Parameters (torchvision convention, 224x224x3, 1000 classes):
1,248,424 (1.0) and 1,235,496 (1.1). Initialisation as torchvision: He-uniform convolutions,
N(0, 0.01) for the final one (SqueezeNet has no BN, so Glorot's smaller scale would starve
the deep layers of signal).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import initializers, layers
from ..layers.base import KerasTensor
from ..models import Model
from .blocks import conv2d, global_pool, join, max_pool, scale_channels
from .registry import register

__all__ = ["fire", "squeezenet", "squeezenet1_0", "squeezenet1_1"]


_INIT = "he_uniform"  # torchvision: kaiming_uniform_ (fan_in, gain sqrt(2))


def fire(x: KerasTensor, squeeze: int, expand1x1: int, expand3x3: int, *, name: str
         ) -> KerasTensor:
    """SqueezeNet's Fire module (torchvision names ``<name>.squeeze``, ``.expand1x1``,
    ``.expand3x3``)."""
    s = conv2d(x, squeeze, 1, name=join(name, "squeeze"), activation_fn="relu",
               kernel_initializer=_INIT)
    e1 = conv2d(s, expand1x1, 1, name=join(name, "expand1x1"), activation_fn="relu",
                kernel_initializer=_INIT)
    e3 = conv2d(s, expand3x3, 3, 1, 1, name=join(name, "expand3x3"), activation_fn="relu",
                kernel_initializer=_INIT)
    return layers.Concatenate(name=join(name, "concat"))([e1, e3])


def squeezenet(version: str = "1_0", input_shape: Sequence[int] = (224, 224, 3),
               classes: int = 1000, include_top: bool = True, pooling: str | None = None,
               classifier_activation: Any = None, dropout: float = 0.5,
               width_mult: float = 1.0, name: str | None = None) -> Model:
    """SqueezeNet "1_0" or "1_1" (torchvision form and names). ``width_mult`` scales every
    channel count but the classifier's (1.0 = published)."""
    c = lambda n: scale_channels(n, width_mult)  # noqa: E731
    inputs = layers.Input(tuple(input_shape), name="input")
    if version in ("1_0", "1.0"):
        x = conv2d(inputs, c(96), 7, 2, name="features.0", activation_fn="relu",
                   kernel_initializer=_INIT)
        x = max_pool(x, 3, 2, ceil_mode=True, name="features.2")
        plan: list[Any] = [(16, 64, 64), (16, 64, 64), (32, 128, 128), "M", (32, 128, 128),
                           (48, 192, 192), (48, 192, 192), (64, 256, 256), "M",
                           (64, 256, 256)]
    elif version in ("1_1", "1.1"):
        x = conv2d(inputs, c(64), 3, 2, name="features.0", activation_fn="relu",
                   kernel_initializer=_INIT)
        x = max_pool(x, 3, 2, ceil_mode=True, name="features.2")
        plan = [(16, 64, 64), (16, 64, 64), "M", (32, 128, 128), (32, 128, 128), "M",
                (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)]
    else:
        raise ValueError(f"squeezenet version must be '1_0' or '1_1', got {version!r}")
    for i, v in enumerate(plan, start=3):
        if v == "M":
            x = max_pool(x, 3, 2, ceil_mode=True, name=f"features.{i}")
        else:
            x = fire(x, *(c(n) for n in v), name=f"features.{i}")
    if include_top:
        x = layers.Dropout(dropout, name="classifier.0")(x)
        x = conv2d(x, classes, 1, name="classifier.1", activation_fn="relu",
                   kernel_initializer=initializers.RandomNormal(0.0, 0.01))
        x = layers.GlobalAveragePooling2D(name="classifier.3")(x)
        if classifier_activation is not None:
            x = layers.Activation(classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling, "global_pool")
    return Model(inputs, x, name=name or f"squeezenet{version.replace('.', '_')}")


@register("squeezenet1_0")
def squeezenet1_0(input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
                  include_top: bool = True, pooling: str | None = None,
                  classifier_activation: Any = None, dropout: float = 0.5,
                  width_mult: float = 1.0, name: str = "squeezenet1_0") -> Model:
    """SqueezeNet 1.0 (torchvision): 1,248,424 parameters."""
    return squeezenet("1_0", input_shape, classes, include_top, pooling, classifier_activation,
                      dropout, width_mult, name)


@register("squeezenet1_1")
def squeezenet1_1(input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
                  include_top: bool = True, pooling: str | None = None,
                  classifier_activation: Any = None, dropout: float = 0.5,
                  width_mult: float = 1.0, name: str = "squeezenet1_1") -> Model:
    """SqueezeNet 1.1 (torchvision): 1,235,496 parameters."""
    return squeezenet("1_1", input_shape, classes, include_top, pooling, classifier_activation,
                      dropout, width_mult, name)
