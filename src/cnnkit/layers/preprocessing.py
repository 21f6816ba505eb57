"""Image preprocessing layers that live inside a model (Keras 3), channels-last (N, H, W, C).

Resizing and CenterCrop always run. The Random* layers act only when called with
``training=True`` (inside ``fit``); at inference they return their input unchanged. Their
randomness comes from their own generator when ``seed`` is given, else cnnkit's default one
(``cnnkit.random.seed``). The warp maths is :mod:`cnnkit.kernels.warp`, shared with
:mod:`cnnkit.data`.

Factors follow Keras: RandomRotation's angle is factor * 360 degrees (counter-clockwise
positive); RandomZoom's positive factor zooms out (content scaled by 1 / (1 + f));
RandomTranslation shifts by factor * height / width pixels; RandomContrast multiplies the
deviation from each image's per-channel mean by c in [1 - lower, 1 + upper]; RandomBrightness
adds delta * (max - min) of ``value_range``; both clip to ``value_range``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from .. import random as crandom
from ..autograd import Tensor, as_tensor
from ..kernels import warp
from ._utils import check_rank, single_shape
from .base import Layer

__all__ = ["Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom",
           "RandomTranslation", "RandomContrast", "RandomBrightness"]


def _range(name: str, factor: Any, symmetric: bool = True) -> tuple[float, float]:
    """Keras factor: a number f means (-f, f) (or (0, f) when not symmetric); a pair is
    (lower, upper)."""
    if isinstance(factor, (int, float)) and not isinstance(factor, bool):
        lo, hi = (-abs(float(factor)) if symmetric else 0.0), abs(float(factor))
    elif isinstance(factor, (list, tuple)) and len(factor) == 2:
        lo, hi = float(factor[0]), float(factor[1])
    else:
        raise ValueError(f"{name}: factor must be a number or a (lower, upper) pair, got "
                         f"{factor!r}")
    if lo > hi:
        raise ValueError(f"{name}: factor lower bound {lo} exceeds upper bound {hi}")
    return lo, hi


class _Image(Layer):
    """Layers on (N, H, W, C) images."""

    def check_input_shape(self, input_shape: Any) -> None:
        check_rank(self, single_shape(self, input_shape), 2)


class Resizing(_Image):
    """Resize to (height, width) with half-pixel centres (Keras/TF, antialias off)."""

    def __init__(self, height: int, width: int, interpolation: str = "bilinear", **kwargs: Any):
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)
        if self.height < 1 or self.width < 1:
            raise ValueError(f"Resizing: height and width must be >= 1, got {(height, width)}")
        self.interpolation = warp.check_choice("Resizing", "interpolation", interpolation,
                                               ("bilinear", "nearest"))

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        method = "linear" if self.interpolation == "bilinear" else "nearest"
        mode = "half_pixel" if method == "linear" else "asymmetric"
        return ops.resize(inputs, size=(self.height, self.width), method=method,
                          coordinate_transformation_mode=mode, nearest_mode="floor")

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation}


class CenterCrop(_Image):
    """The central (height, width) window: rows from (H - height) // 2 (Keras)."""

    def __init__(self, height: int, width: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)

    def check_input_shape(self, input_shape: Any) -> None:
        super().check_input_shape(input_shape)
        h, w = input_shape[1], input_shape[2]
        if (h is not None and h < self.height) or (w is not None and w < self.width):
            raise ValueError(f"CenterCrop '{self.name}': cannot crop {(self.height, self.width)}"
                             f" from images of shape {tuple(input_shape)}")

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        h, w = inputs.shape[1:3]
        top, left = (h - self.height) // 2, (w - self.width) // 2
        return ops.cropping2d(inputs, ((top, h - self.height - top),
                                       (left, w - self.width - left)))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "height": self.height, "width": self.width}


class _Random(_Image):
    """Acts only with training=True; draws from its own generator when seeded."""

    def __init__(self, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def rng(self) -> np.random.Generator:
        return crandom.get_rng(self._rng)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training:
            return inputs
        x = as_tensor(inputs)
        if x.requires_grad:  # the augmentations have no backward: refuse, never cut silently
            raise ValueError(f"{type(self).__name__} '{self.name}' got an input that carries "
                             f"gradients; place preprocessing layers before trainable ones")
        return Tensor(self.augment(x.data).astype(x.dtype, copy=False))

    def augment(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


class RandomFlip(_Random):
    """Flip each image left-right and/or up-down with probability 1/2 each."""

    MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode: str = "horizontal_and_vertical", seed: int | None = None,
                 **kwargs: Any):
        super().__init__(seed, **kwargs)
        self.mode = warp.check_choice("RandomFlip", "mode", mode, self.MODES)

    def augment(self, x: np.ndarray) -> np.ndarray:
        out, n = x.copy(), x.shape[0]
        if self.mode != "vertical":
            flip = self.rng().random(n) < 0.5
            out[flip] = out[flip, :, ::-1]
        if self.mode != "horizontal":
            flip = self.rng().random(n) < 0.5
            out[flip] = out[flip, ::-1]
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


class _Warp(_Random):
    """Random affine warps: fill_mode, interpolation and fill_value as in Keras."""

    def __init__(self, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0, **kwargs: Any):
        super().__init__(seed, **kwargs)
        cls = type(self).__name__
        self.fill_mode = warp.check_choice(cls, "fill_mode", fill_mode, warp.FILL_MODES)
        self.interpolation = warp.check_choice(cls, "interpolation", interpolation,
                                               warp.INTERPOLATIONS)
        self.fill_value = float(fill_value)

    def _warp(self, x: np.ndarray, forward: np.ndarray) -> np.ndarray:
        return warp.warp_forward(x, forward, self.interpolation, self.fill_mode,
                                 self.fill_value)

    def get_config(self) -> dict:
        return {**super().get_config(), "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


class RandomRotation(_Warp):
    """Rotate each image by an angle drawn from factor * 360 degrees."""

    def __init__(self, factor: Any, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0, **kwargs: Any):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = _range("RandomRotation", factor)

    def augment(self, x: np.ndarray) -> np.ndarray:
        angle = self.rng().uniform(*self.factor, size=x.shape[0]) * 360.0
        return self._warp(x, warp.affine_matrix(x.shape[0], angle=angle))

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": list(self.factor)}


class RandomZoom(_Warp):
    """Zoom each image out by 1 + f (f from height_factor; width_factor None keeps the aspect
    ratio; negative f zooms in)."""

    def __init__(self, height_factor: Any, width_factor: Any = None,
                 fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0, **kwargs: Any):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = _range("RandomZoom", height_factor)
        self.width_factor = None if width_factor is None else _range("RandomZoom", width_factor)

    def augment(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        zh = 1.0 + self.rng().uniform(*self.height_factor, size=n)
        zw = zh if self.width_factor is None else 1.0 + self.rng().uniform(*self.width_factor,
                                                                           size=n)
        return self._warp(x, warp.affine_matrix(n, scale_x=1.0 / zw, scale_y=1.0 / zh))

    def get_config(self) -> dict:
        wf = None if self.width_factor is None else list(self.width_factor)
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": wf}


class RandomTranslation(_Warp):
    """Shift each image by dy = f_h * H rows and dx = f_w * W columns."""

    def __init__(self, height_factor: Any, width_factor: Any, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None,
                 fill_value: float = 0.0, **kwargs: Any):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = _range("RandomTranslation", height_factor)
        self.width_factor = _range("RandomTranslation", width_factor)

    def augment(self, x: np.ndarray) -> np.ndarray:
        n, h, w = x.shape[:3]
        dy = self.rng().uniform(*self.height_factor, size=n) * h
        dx = self.rng().uniform(*self.width_factor, size=n) * w
        return self._warp(x, warp.affine_matrix(n, tx=dx, ty=dy))

    def get_config(self) -> dict:
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": list(self.width_factor)}


class _Intensity(_Random):
    def __init__(self, factor: Any, value_range: Any = (0, 255), seed: int | None = None,
                 **kwargs: Any):
        super().__init__(seed, **kwargs)
        self.factor = _range(type(self).__name__, factor)
        lo, hi = (float(v) for v in value_range)
        if not lo < hi:
            raise ValueError(f"{type(self).__name__}: value_range must be (low, high) with "
                             f"low < high, got {value_range!r}")
        self.value_range = (lo, hi)

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}


class RandomContrast(_Intensity):
    """out = clip((x - mean) * c + mean), mean per image and channel, c in [1 - lo, 1 + hi]
    for a factor (lo, hi) given as a number f = (f, f)."""

    def __init__(self, factor: Any, value_range: Any = (0, 255), seed: int | None = None,
                 **kwargs: Any):
        super().__init__(factor, value_range, seed, **kwargs)
        lo, hi = self.factor
        self.factor = (abs(lo), abs(hi)) if isinstance(factor, (int, float)) else (lo, hi)

    def augment(self, x: np.ndarray) -> np.ndarray:
        c = self.rng().uniform(1.0 - self.factor[0], 1.0 + self.factor[1], size=x.shape[0])
        mean = x.mean(axis=(1, 2), keepdims=True)
        out = (x - mean) * c[:, None, None, None] + mean
        return np.clip(out, *self.value_range)


class RandomBrightness(_Intensity):
    """out = clip(x + delta * (high - low)), delta drawn from the factor range."""

    def augment(self, x: np.ndarray) -> np.ndarray:
        lo, hi = self.value_range
        delta = self.rng().uniform(*self.factor, size=x.shape[0]) * (hi - lo)
        return np.clip(x + delta[:, None, None, None], lo, hi)
