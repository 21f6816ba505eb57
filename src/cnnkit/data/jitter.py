"""Colour jitter of image batches: random brightness, contrast, saturation and hue per image
(torchvision's order and factor ranges)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import color
from .augment import Augmentation, Batch, draw_uniform, symmetric_range

__all__ = ["ColorJitter"]


def _factor_range(value: Any, name: str) -> tuple[float, float]:
    """b -> (max(0, 1 - b), 1 + b); (lo, hi) -> itself."""
    if np.ndim(value) == 0:
        b = float(value)
        if b < 0:
            raise ValueError(f"ColorJitter: {name} must be >= 0, got {b}")
        return (max(0.0, 1 - b), 1 + b)
    lo, hi = (float(v) for v in value)
    if not 0 <= lo <= hi:
        raise ValueError(f"ColorJitter: {name} must be (low, high) with 0 <= low <= high, got "
                         f"{tuple(value)}")
    return (lo, hi)


class ColorJitter(Augmentation):
    """Random brightness, contrast, saturation and hue per image, in that fixed order, as
    torchvision: factors from ``brightness`` b -> [max(0, 1 - b), 1 + b] (or a pair), likewise
    contrast and saturation; hue h -> shift in [-h, h] turns (h <= 0.5). Pixel values are taken
    in ``value_range`` (Keras's default (0, 255); use (0, 1) for unit images) and clipped to it.
    Single-channel images get brightness and contrast only. Returns float."""

    def __init__(self, brightness: Any = 0.0, contrast: Any = 0.0, saturation: Any = 0.0,
                 hue: Any = 0.0, value_range: tuple[float, float] = (0, 255)):
        self.brightness = _factor_range(brightness, "brightness")
        self.contrast = _factor_range(contrast, "contrast")
        self.saturation = _factor_range(saturation, "saturation")
        self.hue = symmetric_range(hue, "hue", "ColorJitter")
        if not -0.5 <= self.hue[0] <= self.hue[1] <= 0.5:
            raise ValueError(f"ColorJitter: hue must lie in [-0.5, 0.5], got {hue}")
        self.value_range = tuple(float(v) for v in value_range)

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        c = x.shape[-1]
        if c not in (1, 3):
            raise ValueError(f"ColorJitter expects images with 1 or 3 channels, got {c} "
                             f"(shape {x.shape})")
        n = x.shape[0]
        u = color.to_unit(x, self.value_range)
        if self.brightness != (1.0, 1.0):
            u = color.adjust_brightness(u, draw_uniform(rng, self.brightness, n))
        if self.contrast != (1.0, 1.0):
            u = color.adjust_contrast(u, draw_uniform(rng, self.contrast, n))
        if c == 3 and self.saturation != (1.0, 1.0):
            u = color.adjust_saturation(u, draw_uniform(rng, self.saturation, n))
        if c == 3 and self.hue != (0.0, 0.0):
            u = color.adjust_hue(u, draw_uniform(rng, self.hue, n))
        return color.from_unit(u, self.value_range), y

    def get_config(self) -> dict[str, Any]:
        return {"brightness": self.brightness, "contrast": self.contrast,
                "saturation": self.saturation, "hue": self.hue, "value_range": self.value_range}
