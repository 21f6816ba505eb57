"""Random affine warps of image batches: rotation, translation, zoom and the general affine
(rotation, translation, scale, shear), each drawn per image and applied by inverse mapping with
the chosen interpolation and fill; the output is float."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import geometry
from .augment import Augmentation, Batch, draw_uniform, symmetric_range
from .geometry import FILL_MODES, INTERPOLATIONS, check_choice

__all__ = ["RandomRotation", "RandomTranslation", "RandomZoom", "RandomAffine"]


class _Warp(Augmentation):
    """Shared sampling options of the affine augmentations."""

    def __init__(self, interpolation: str, fill_mode: str, fill_value: float):
        where = type(self).__name__
        self.interpolation = check_choice(where, "interpolation", interpolation, INTERPOLATIONS)
        self.fill_mode = check_choice(where, "fill_mode", fill_mode, FILL_MODES)
        self.fill_value = float(fill_value)

    def forward(self, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        n, h, w, _ = x.shape
        fwd = self.forward(n, h, w, rng)
        return geometry._warp_forward(x, fwd, self.interpolation, self.fill_mode,
                                      self.fill_value), y

    def _warp_config(self) -> dict[str, Any]:
        return {"interpolation": self.interpolation, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value}


class RandomRotation(_Warp):
    """Rotate each image about its centre by a random angle, counter-clockwise positive.

    Give ``factor`` as in Keras (a fraction of a full turn: f -> [-f, f] * 360 degrees, or a
    (low, high) pair) or ``degrees`` (d -> [-d, d], or a pair), not both.
    """

    def __init__(self, factor: Any = None, degrees: Any = None, interpolation: str = "bilinear",
                 fill_mode: str = "constant", fill_value: float = 0.0):
        super().__init__(interpolation, fill_mode, fill_value)
        if (factor is None) == (degrees is None):
            raise ValueError("RandomRotation: give exactly one of factor (fraction of a turn) "
                             "or degrees")
        self.factor = None if factor is None else symmetric_range(factor, "factor",
                                                                  "RandomRotation")
        self.degrees = None if degrees is None else symmetric_range(degrees, "degrees",
                                                                    "RandomRotation")
        self._range = ((self.factor[0] * 360, self.factor[1] * 360) if self.factor is not None
                       else self.degrees)

    def forward(self, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        return geometry.affine_matrix(n, angle=draw_uniform(rng, self._range, n))

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor, "degrees": self.degrees, **self._warp_config()}


class RandomTranslation(_Warp):
    """Shift each image by a random fraction of its size, as Keras: ``height_factor`` f ->
    [-f, f] * H pixels down (negative = up), or a (low, high) pair; likewise
    ``width_factor`` for the shift right."""

    def __init__(self, height_factor: Any, width_factor: Any, interpolation: str = "bilinear",
                 fill_mode: str = "constant", fill_value: float = 0.0):
        super().__init__(interpolation, fill_mode, fill_value)
        self.height_factor = symmetric_range(height_factor, "height_factor", "RandomTranslation")
        self.width_factor = symmetric_range(width_factor, "width_factor", "RandomTranslation")

    def forward(self, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        dy = draw_uniform(rng, self.height_factor, n) * h
        dx = draw_uniform(rng, self.width_factor, n) * w
        return geometry.affine_matrix(n, tx=dx, ty=dy)

    def get_config(self) -> dict[str, Any]:
        return {"height_factor": self.height_factor, "width_factor": self.width_factor,
                **self._warp_config()}


class RandomZoom(_Warp):
    """Zoom each image about its centre, as Keras: a factor z drawn from ``height_factor``
    (f -> [-f, f], or a (low, high) pair, values > -1) shows a region (1 + z) times the
    image's size, so positive = zoom out, negative = zoom in. ``width_factor`` None keeps the
    aspect ratio (the same z for both axes)."""

    def __init__(self, height_factor: Any, width_factor: Any = None,
                 interpolation: str = "bilinear", fill_mode: str = "constant",
                 fill_value: float = 0.0):
        super().__init__(interpolation, fill_mode, fill_value)
        self.height_factor = symmetric_range(height_factor, "height_factor", "RandomZoom")
        self.width_factor = (None if width_factor is None
                             else symmetric_range(width_factor, "width_factor", "RandomZoom"))
        for f in (self.height_factor, self.width_factor):
            if f is not None and f[0] <= -1:
                raise ValueError(f"RandomZoom: factors must be > -1, got {f}")

    def forward(self, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        zh = draw_uniform(rng, self.height_factor, n)
        zw = zh if self.width_factor is None else draw_uniform(rng, self.width_factor, n)
        return geometry.affine_matrix(n, scale_x=1 / (1 + zw), scale_y=1 / (1 + zh))

    def get_config(self) -> dict[str, Any]:
        return {"height_factor": self.height_factor, "width_factor": self.width_factor,
                **self._warp_config()}


class RandomAffine(_Warp):
    """Random rotation, translation, scale and shear in one warp, as torchvision:
    ``degrees`` d -> [-d, d] (or a pair); ``translate`` (a, b) -> dx in [-a W, a W],
    dy in [-b H, b H]; ``scale`` (low, high); ``shear`` in degrees: s -> x-shear in [-s, s],
    (lo, hi) -> x-shear in it, (xlo, xhi, ylo, yhi) -> both axes."""

    def __init__(self, degrees: Any = 0.0, translate: tuple[float, float] | None = None,
                 scale: tuple[float, float] | None = None, shear: Any = None,
                 interpolation: str = "bilinear", fill_mode: str = "constant",
                 fill_value: float = 0.0):
        super().__init__(interpolation, fill_mode, fill_value)
        self.degrees = symmetric_range(degrees, "degrees", "RandomAffine")
        if translate is not None:
            translate = tuple(float(t) for t in translate)
            if len(translate) != 2 or not all(0 <= t <= 1 for t in translate):
                raise ValueError(f"RandomAffine: translate must be (a, b) in [0, 1], got "
                                 f"{translate}")
        self.translate = translate
        if scale is not None:
            scale = tuple(float(s) for s in scale)
            if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
                raise ValueError(f"RandomAffine: scale must be (low, high) with 0 < low <= "
                                 f"high, got {scale}")
        self.scale = scale
        self.shear = shear if shear is None or np.ndim(shear) == 0 else tuple(shear)
        if shear is None:
            self._shear = ((0.0, 0.0), (0.0, 0.0))
        elif np.ndim(shear) == 0 or len(shear) == 2:
            self._shear = (symmetric_range(shear, "shear", "RandomAffine"), (0.0, 0.0))
        elif len(shear) == 4:
            self._shear = (symmetric_range(shear[:2], "shear", "RandomAffine"),
                           symmetric_range(shear[2:], "shear", "RandomAffine"))
        else:
            raise ValueError(f"RandomAffine: shear must be a number or 2 or 4 numbers, got "
                             f"{shear}")

    def forward(self, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        angle = draw_uniform(rng, self.degrees, n)
        a, b = self.translate or (0.0, 0.0)
        dx = draw_uniform(rng, (-a * w, a * w), n)
        dy = draw_uniform(rng, (-b * h, b * h), n)
        s = draw_uniform(rng, self.scale or (1.0, 1.0), n)
        shx = np.tan(np.deg2rad(draw_uniform(rng, self._shear[0], n)))
        shy = np.tan(np.deg2rad(draw_uniform(rng, self._shear[1], n)))
        return geometry.affine_matrix(n, angle, dx, dy, s, s, shx, shy)

    def get_config(self) -> dict[str, Any]:
        return {"degrees": self.degrees, "translate": self.translate, "scale": self.scale,
                "shear": self.shear, **self._warp_config()}
