"""Small CNNs for 28x28 digits and clothes: the seeds' SimpleCNN and LeNet-5, cnnkit's
``mnist_cnn`` and ``small_resnet``. Each takes raw pixels (0-255) and scales them inside the
model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import layers
from ..models import Model, Sequential
from .blocks import conv2d
from .registry import register


@register("lenet5")
def lenet5(input_shape: Sequence[int] = (28, 28, 1), classes: int = 10,
           rescale: float | None = None, name: str = "lenet5") -> Any:
    """LeNet-5 in seed 004's form: conv5 (pad 2) 6 -> avgpool -> conv5 16 -> avgpool ->
    120 -> 84 -> classes, ReLU. 61,706 parameters at 28x28x1, 10 classes."""
    pre = [layers.Rescaling(rescale)] if rescale else []
    return Sequential([
        layers.Input(tuple(input_shape)), *pre,
        layers.ZeroPadding2D(2),
        layers.Conv2D(6, 5, activation="relu"),
        layers.AveragePooling2D(2),
        layers.Conv2D(16, 5, activation="relu"),
        layers.AveragePooling2D(2),
        layers.Flatten(),
        layers.Dense(120, activation="relu"),
        layers.Dense(84, activation="relu"),
        layers.Dense(classes),
    ], name=name)


@register("simple_cnn")
def simple_cnn(input_shape: Sequence[int] = (28, 28, 1), classes: int = 10,
               rescale: float | None = None, name: str = "simple_cnn") -> Any:
    """Seed 004's SimpleCNN: [conv3 32 -> ReLU -> maxpool2] -> [conv3 64 -> ReLU -> maxpool2]
    -> flatten -> 128 -> ReLU -> dropout 0.5 -> classes (logits)."""
    pre = [layers.Rescaling(rescale)] if rescale else []
    return Sequential([
        layers.Input(tuple(input_shape)), *pre,
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(classes),
    ], name=name)


@register("mnist_cnn")
def mnist_cnn(input_shape: Sequence[int] = (28, 28, 1), classes: int = 10,
              width: int = 16, name: str = "mnist_cnn") -> Any:
    """cnnkit's default small CNN: pixels/255 -> 2x[conv3-BN-ReLU] -> maxpool ->
    2x[conv3-BN-ReLU] -> maxpool -> dense 128 -> dropout -> classes (logits)."""
    w = width

    def block(filters: int) -> list:
        return [layers.Conv2D(filters, 3, padding="same", use_bias=False),
                layers.BatchNormalization(momentum=0.9), layers.ReLU()]

    return Sequential([
        layers.Input(tuple(input_shape)),
        layers.Rescaling(1 / 255.0),
        *block(w), *block(w), layers.MaxPooling2D(2),
        *block(2 * w), *block(2 * w), layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(classes),
    ], name=name)


def _conv_bn(x: Any, filters: int, strides: int, name: str, relu: bool = True,
             kernel: int = 3) -> Any:
    """conv (no bias, PyTorch padding k // 2) -> BN (eps 1e-5, PyTorch momentum 0.1) [-> ReLU]."""
    x = conv2d(x, filters, kernel, strides, kernel // 2, use_bias=False, name=f"{name}.conv")
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}.bn")(x)
    return layers.ReLU(name=f"{name}.relu")(x) if relu else x


def _residual(x: Any, filters: int, strides: int, name: str) -> Any:
    """Basic block: conv-BN-ReLU -> conv-BN, plus x (or a 1x1 conv-BN projection of x where
    the shape changes), then ReLU."""
    short = x
    if strides != 1 or int(x.shape[-1]) != filters:
        short = _conv_bn(x, filters, strides, f"{name}.shortcut", relu=False, kernel=1)
    y = _conv_bn(x, filters, strides, f"{name}.0")
    y = _conv_bn(y, filters, 1, f"{name}.1", relu=False)
    y = layers.Add(name=f"{name}.add")([y, short])
    return layers.ReLU(name=f"{name}.relu")(y)


@register("small_resnet")
def small_resnet(input_shape: Sequence[int] = (28, 28, 1), classes: int = 10,
                 widths: Sequence[int] = (24, 48, 96), blocks: Sequence[int] = (1, 1, 1),
                 stem_pool: bool = True, dropout: float = 0.0,
                 name: str = "small_resnet") -> Any:
    """A small residual network for small images (28x28 digits and clothes): pixels/255 ->
    conv3x3(widths[0])-BN-ReLU [-> maxpool 2] -> stages of ``blocks[i]`` basic residual blocks
    of ``widths[i]`` channels (every stage after the first starts with stride 2, a 1x1
    projection shortcut where the shape changes) -> global average pool [-> dropout] ->
    classes (logits). 28x28x1 with the defaults: 14x14 -> 14x14 -> 7x7 -> 4x4."""
    if len(widths) != len(blocks) or not widths:
        raise ValueError(f"small_resnet: widths {tuple(widths)} and blocks {tuple(blocks)} "
                         f"need one entry per stage")
    inputs = layers.Input(tuple(input_shape), name="input")
    x = layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    x = _conv_bn(x, int(widths[0]), 1, "stem")
    if stem_pool:
        x = layers.MaxPooling2D(2, name="stem.pool")(x)
    for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
        for j in range(int(n)):
            x = _residual(x, int(w), 2 if i > 0 and j == 0 else 1, f"stage{i + 1}.{j}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(classes, name="fc")(x)
    return Model(inputs, x, name=name)


@register("small_resnet16")
def small_resnet16(input_shape: Sequence[int] = (28, 28, 1), classes: int = 10,
                   name: str = "small_resnet16") -> Any:
    """``small_resnet`` with stages of 16, 32 and 64 channels (78 k parameters for 28x28x1
    and 10 classes; about 0.8 of ``mnist_cnn``'s training time per image)."""
    return small_resnet(input_shape, classes, widths=(16, 32, 64), name=name)
