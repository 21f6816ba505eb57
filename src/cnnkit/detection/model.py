"""The single-stage grid detector: a small convolutional backbone of stride 8 whose last 1x1
convolution gives, per cell and anchor, (t_x, t_y, t_w, t_h, t_o, c_1..c_C); and the
``GridHead`` layer that shapes those into (N, rows, cols, A, 5 + C) and carries the anchors,
stride and class names inside the saved model file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import layers
from ..layers.detection_head import GridHead
from ..models import Sequential

__all__ = ["GridHead", "grid_detector", "find_head", "backbone", "backbone_classifier",
           "copy_backbone"]


def _block(filters: int, n: int) -> list:
    out = []
    for _ in range(n):
        out += [layers.Conv2D(filters, 3, padding="same", use_bias=False),
                layers.BatchNormalization(momentum=0.9), layers.ReLU()]
    return out


def backbone(width: int = 16) -> list:
    """The detector's layers before its head: pixels / 255 -> [conv3-BN-ReLU] w -> pool -> 2w
    -> pool -> 4w x 2 -> pool -> 8w x 2 (stride 8)."""
    return [layers.Rescaling(1 / 255.0),
            *_block(width, 1), layers.MaxPooling2D(2),
            *_block(2 * width, 1), layers.MaxPooling2D(2),
            *_block(4 * width, 2), layers.MaxPooling2D(2),
            *_block(8 * width, 2)]


def backbone_classifier(width: int = 16, num_classes: int = 10, size: int = 32) -> Sequential:
    """The backbone with global average pooling and a dense layer: a classifier of
    (size, size, 1) patches whose weights ``copy_backbone`` moves into a detector."""
    return Sequential([layers.Input((size, size, 1)), *backbone(width),
                       layers.GlobalAveragePooling2D(), layers.Dense(num_classes)],
                      name="backbone_classifier")


def copy_backbone(source: Any, detector: Any) -> int:
    """Copy the weights of ``source``'s leading backbone layers into ``detector``'s (same
    width); returns the number of layers copied."""
    n = 0
    for a, b in zip(source.layers, detector.layers, strict=False):
        if type(a) is not type(b) or isinstance(a, (layers.Dense, GridHead)):
            break
        if a.weights:
            b.set_weights(a.get_weights())
        n += 1
    return n


def grid_detector(input_shape: Sequence[int] = (64, 64, 1), num_classes: int = 10,
                  anchors: Sequence[Sequence[float]] = ((16.0, 20.0), (24.0, 28.0)),
                  width: int = 16, class_names: Sequence[str] | None = None,
                  name: str = "grid_detector") -> Sequential:
    """pixels / 255 -> [conv3-BN-ReLU] w -> pool -> 2w -> pool -> 4w x 2 -> pool ->
    8w x 2 -> conv1x1 A (5 + C) -> GridHead: a stride-8 grid of (H / 8, W / 8) cells."""
    h, w, _ = input_shape
    if h % 8 or w % 8:
        raise ValueError(f"grid_detector needs height and width divisible by 8 (its stride), "
                         f"got input_shape {tuple(input_shape)}")
    a = len(anchors)
    return Sequential([
        layers.Input(tuple(input_shape)), *backbone(width),
        layers.Conv2D(a * (5 + num_classes), 1, name="predictions"),
        GridHead([list(map(float, x)) for x in anchors], 8, num_classes,
                 list(class_names) if class_names is not None else None, name="grid_head"),
    ], name=name)


def find_head(model: Any) -> GridHead:
    """The model's last layer if it is a GridHead, else ValueError."""
    last = model.layers[-1] if getattr(model, "layers", None) else None
    if not isinstance(last, GridHead):
        raise ValueError(f"model '{getattr(model, 'name', model)}' is not a grid detector (its "
                         f"last layer is {type(last).__name__}, not GridHead)")
    return last
