"""The single-stage grid detector: a small convolutional backbone of stride 8 whose last 1x1
convolution gives, per cell and anchor, (t_x, t_y, t_w, t_h, t_o, c_1..c_C); and the
``GridHead`` layer that shapes those into (N, rows, cols, A, 5 + C) and carries the anchors,
stride and class names inside the saved model file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import layers
from ..layers.core import Reshape
from ..models import Sequential, register

__all__ = ["GridHead", "grid_detector", "find_head", "backbone", "backbone_classifier",
           "copy_backbone"]


def _check_head(anchors: Any, stride: Any, num_classes: Any, class_names: Any) -> None:
    an = np.asarray(anchors, dtype=object)
    ok = an.ndim == 2 and an.shape[1] == 2 and an.shape[0] >= 1 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1e6
        for v in an.ravel())
    if not ok:
        raise ValueError(f"GridHead: anchors must be a list of [width, height] pairs of "
                         f"positive numbers, got {str(anchors)[:80]}")
    if not isinstance(stride, int) or isinstance(stride, bool) or not 1 <= stride <= 4096:
        raise ValueError(f"GridHead: stride must be an integer in [1, 4096], got {stride!r}")
    if not isinstance(num_classes, int) or not 1 <= num_classes <= 100_000:
        raise ValueError(f"GridHead: num_classes must be an integer >= 1, got {num_classes!r}")
    if class_names is not None and (
            not isinstance(class_names, list) or len(class_names) != num_classes
            or not all(isinstance(c, str) and len(c) <= 200 for c in class_names)):
        raise ValueError(f"GridHead: class_names must be {num_classes} strings, got "
                         f"{str(class_names)[:80]}")


@register
class GridHead(Reshape):
    """(N, rows, cols, A (5 + C)) -> (N, rows, cols, A, 5 + C), remembering what decoding
    needs: ``anchors`` [[w, h], ...] in pixels, ``stride`` (pixels per cell), class names."""

    def __init__(self, anchors: Sequence[Sequence[float]], stride: int, num_classes: int,
                 class_names: Sequence[str] | None = None, **kwargs: Any):
        kwargs.pop("target_shape", None)
        anchors = [[float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                    for v in a] if isinstance(a, (list, tuple)) else a for a in anchors]
        names = list(class_names) if class_names is not None else None
        _check_head(anchors, stride, num_classes, names)
        super().__init__((0, 0, len(anchors), 5 + num_classes), **kwargs)
        self.anchors = anchors
        self.stride = stride
        self.num_classes = num_classes
        self.class_names = names or [str(i) for i in range(num_classes)]
        self.target_shape = (-1, 0, len(anchors), 5 + num_classes)

    def _target(self, input_shape: Any) -> tuple:
        return (input_shape[1], input_shape[2], len(self.anchors), 5 + self.num_classes)

    def compute_output_shape(self, input_shape: Any) -> Any:
        want = len(self.anchors) * (5 + self.num_classes)
        if input_shape[-1] is not None and input_shape[-1] != want:
            raise ValueError(f"GridHead '{self.name}' expects {want} channels ({len(self.anchors)}"
                             f" anchors x (5 + {self.num_classes})), got {input_shape[-1]}")
        return (input_shape[0], *self._target(input_shape))

    def call(self, inputs: Any, training: bool = False) -> Any:
        from .. import ops

        return ops.reshape(inputs, (inputs.shape[0], *self._target(inputs.shape)))

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return steps.View(lambda x: x.reshape(*x.shape[:3], len(self.anchors), -1))

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("target_shape", None)
        return {**cfg, "anchors": [list(a) for a in self.anchors], "stride": self.stride,
                "num_classes": self.num_classes, "class_names": list(self.class_names)}


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
