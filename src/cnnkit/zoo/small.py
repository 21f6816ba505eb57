"""Small CNNs for 28x28 digits and clothes: the seeds' SimpleCNN and LeNet-5, and cnnkit's
default ``mnist_cnn``. Each takes raw pixels (0-255) and scales them inside the model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import layers
from ..models import Sequential
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
