"""The grid detector's output layer (YOLO-style): it reshapes the last convolution's channels
into (anchors, 5 + classes) per cell and keeps what decoding needs in the model file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import ops
from .core import Reshape

__all__ = ["GridHead"]


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
        return ops.reshape(inputs, (inputs.shape[0], *self._target(inputs.shape)))

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return steps.View(lambda x: x.reshape(*x.shape[:3], len(self.anchors), -1))

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("target_shape", None)
        return {**cfg, "anchors": [list(a) for a in self.anchors], "stride": self.stride,
                "num_classes": self.num_classes, "class_names": list(self.class_names)}
