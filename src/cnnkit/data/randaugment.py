"""RandAugment (Cubuk et al. 2020): ``num_ops`` random operations at one shared magnitude.

Choice is **per sample**: for each of the ``num_ops`` rounds every image draws its own
operation (uniformly from ``ops``) and its own sign for the signed operations; the batch is
then processed one operation at a time on the images that drew it (a loop over the dozen
operations, never over samples).

Magnitude runs from 0 to 10 (the paper's and timm's scale; level = magnitude / 10). At
level 1 the operations reach: Rotate +-30 degrees, ShearX/ShearY +-0.3 (shear factor),
TranslateX/TranslateY +-45 % of the image size, Brightness/Color/Contrast factor 1 +- 0.9,
Solarize threshold 0 (from 1 at level 0), Posterize 4 bits (from 8). Identity and
AutoContrast ignore the magnitude. Color (saturation) leaves single-channel images unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import color, geometry
from .augment import Augmentation, Batch
from .geometry import FILL_MODES, check_choice

__all__ = ["RandAugment"]

OPS = ("Identity", "AutoContrast", "Rotate", "Solarize", "Color", "Posterize", "Contrast",
       "Brightness", "ShearX", "ShearY", "TranslateX", "TranslateY")


class RandAugment(Augmentation):
    """Apply ``num_ops`` operations drawn per sample from ``ops`` at ``magnitude`` (0-10).
    Pixel values are taken in ``value_range`` (default (0, 255)); returns float images in the
    same range. ``fill_value`` (in that range) fills pixels that geometric operations expose."""

    def __init__(self, num_ops: int = 2, magnitude: float = 9, ops: tuple[str, ...] = OPS,
                 value_range: tuple[float, float] = (0, 255), fill_value: float = 0.0,
                 fill_mode: str = "constant"):
        if int(num_ops) < 0:
            raise ValueError(f"RandAugment: num_ops must be >= 0, got {num_ops}")
        if not 0 <= magnitude <= 10:
            raise ValueError(f"RandAugment: magnitude must be in [0, 10], got {magnitude}")
        ops = tuple(ops)
        for name in ops:
            check_choice("RandAugment", "ops", name, OPS)
        if not ops:
            raise ValueError("RandAugment: ops must not be empty")
        self.num_ops, self.magnitude, self.ops = int(num_ops), float(magnitude), ops
        self.value_range = tuple(float(v) for v in value_range)
        self.fill_value = float(fill_value)
        self.fill_mode = check_choice("RandAugment", "fill_mode", fill_mode, FILL_MODES)

    def _op(self, name: str, u: np.ndarray, sign: np.ndarray) -> np.ndarray:
        level = self.magnitude / 10
        lo, hi = self.value_range
        fill = (self.fill_value - lo) / (hi - lo)
        n, h, w, c = u.shape
        warp = None
        if name == "AutoContrast":
            return color.autocontrast(u)
        if name == "Solarize":
            return color.solarize(u, 1 - level)
        if name == "Posterize":
            return color.posterize(u, 8 - round(4 * level))
        if name == "Brightness":
            return color.adjust_brightness(u, 1 + 0.9 * level * sign)
        if name == "Contrast":
            return color.adjust_contrast(u, 1 + 0.9 * level * sign)
        if name == "Color":
            return u if c == 1 else color.adjust_saturation(u, 1 + 0.9 * level * sign)
        if name == "Rotate":
            warp = geometry.affine_matrix(n, angle=30 * level * sign)
        elif name == "ShearX":
            warp = geometry.affine_matrix(n, shear_x=0.3 * level * sign)
        elif name == "ShearY":
            warp = geometry.affine_matrix(n, shear_y=0.3 * level * sign)
        elif name == "TranslateX":
            warp = geometry.affine_matrix(n, tx=0.45 * level * sign * w)
        elif name == "TranslateY":
            warp = geometry.affine_matrix(n, ty=0.45 * level * sign * h)
        if warp is None:
            return u
        return geometry._warp_forward(u, warp, "bilinear", self.fill_mode, fill)

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        u = color.to_unit(x, self.value_range)
        n = u.shape[0]
        for _ in range(self.num_ops):
            choice = rng.integers(0, len(self.ops), n)
            sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
            for k, name in enumerate(self.ops):
                idx = np.flatnonzero(choice == k)
                if idx.size and name != "Identity":
                    u[idx] = self._op(name, u[idx], sign[idx])
        return color.from_unit(u, self.value_range), y

    def get_config(self) -> dict[str, Any]:
        return {"num_ops": self.num_ops, "magnitude": self.magnitude, "ops": self.ops,
                "value_range": self.value_range, "fill_value": self.fill_value,
                "fill_mode": self.fill_mode}
