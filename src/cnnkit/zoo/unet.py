"""U-Net (Ronneberger, Fischer & Brox 2015) for per-pixel classification.

Contracting path: ``depth`` levels of [conv3x3 -> (BN) -> ReLU] x 2 with base_filters * 2^d
channels, each followed by maxpool2x2; a bottleneck double conv with base_filters * 2^depth
channels; expanding path: Conv2DTranspose 2x2/2 (halving the channels) -> concatenation with
the skip connection of the same level -> double conv; a final 1x1 conv to ``classes``
channels (logits per pixel). Convolutions use "same" padding (the paper used "valid" plus
cropping), so the output has the input's height and width, which must be divisible by
2^depth. The paper's network is ``unet(depth=4, base_filters=64)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import layers
from ..layers.base import KerasTensor
from ..models import Model
from .registry import register

__all__ = ["unet", "double_conv"]


def double_conv(x: KerasTensor, filters: int, *, batch_norm: bool = False, dropout: float = 0.0,
                name: str) -> KerasTensor:
    """[conv3x3 "same" -> (BN) -> ReLU] twice (conv bias only without BN)."""
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm,
                          kernel_initializer="he_uniform", name=f"{name}.conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}.bn{i}")(x)
        x = layers.ReLU(name=f"{name}.relu{i}")(x)
        if dropout and i == 1:
            x = layers.Dropout(dropout, name=f"{name}.dropout")(x)
    return x


@register("unet")
def unet(input_shape: Sequence[int] = (128, 128, 1), classes: int = 2, depth: int = 4,
         base_filters: int = 64, batch_norm: bool = False, dropout: float = 0.0,
         final_activation: Any = None, rescale: float | None = None,
         name: str = "unet") -> Model:
    """A U-Net with ``depth`` down/up-sampling levels.

    Args:
        input_shape: (H, W, C); H and W divisible by 2**depth (or None).
        classes: output channels (per-pixel logits unless ``final_activation``).
        depth: number of poolings (4 in the paper).
        base_filters: channels of the first level (64 in the paper), doubled per level.
        batch_norm: BN after every 3x3 convolution.
        dropout: dropout inside each double conv (0 = none).
        rescale: a Rescaling(rescale) after the input (1 / 255 for raw pixels); None: none.
    """
    if depth < 1:
        raise ValueError(f"unet depth must be >= 1, got {depth}")
    for d in input_shape[:2]:
        if d is not None and int(d) % (2 ** depth):
            raise ValueError(f"unet with depth {depth} needs height and width divisible by "
                             f"{2 ** depth}, got input_shape {tuple(input_shape)}")
    inputs = layers.Input(tuple(input_shape), name="input")
    x, skips = inputs, []
    if rescale is not None:
        x = layers.Rescaling(rescale, name="rescale")(x)
    for d in range(depth):
        x = double_conv(x, base_filters * 2 ** d, batch_norm=batch_norm, dropout=dropout,
                        name=f"down{d + 1}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{d + 1}.pool")(x)
    x = double_conv(x, base_filters * 2 ** depth, batch_norm=batch_norm, dropout=dropout,
                    name="bottleneck")
    for d in reversed(range(depth)):
        f = base_filters * 2 ** d
        x = layers.Conv2DTranspose(f, 2, strides=2, name=f"up{d + 1}.upconv")(x)
        x = layers.Concatenate(name=f"up{d + 1}.concat")([skips[d], x])
        x = double_conv(x, f, batch_norm=batch_norm, dropout=dropout, name=f"up{d + 1}")
    x = layers.Conv2D(classes, 1, activation=final_activation, name="head")(x)
    return Model(inputs, x, name=name)
