"""Spatial reshaping layers (Keras): UpSampling, ZeroPadding and Cropping in 1, 2 and 3 D.

- UpSampling*: repeat each cell ``size`` times per spatial axis ("nearest"); UpSampling2D can
  also interpolate ("bilinear", half-pixel centres, no antialias: torch ``interpolate(...,
  align_corners=False)``).
- ZeroPadding*: add zeros before/after each spatial axis.
- Cropping*: remove cells before/after each spatial axis (at least one must remain).

``padding``/``cropping`` take Keras' forms: an int (every side), one int per spatial axis
(symmetric; for the 1-D layers a pair of ints is (before, after)), or one (before, after) pair
per spatial axis. No weights; ``compute_macs`` is 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..autograd import Tensor
from ..kernels.padding import side_pairs
from ._utils import check_data_format, check_rank, single_shape, tuple_arg
from .base import Layer

__all__ = ["UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D",
           "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "Resize"]


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _pairs_config(pairs: tuple[tuple[int, int], ...]) -> list:
    if len(pairs) == 1:
        return list(pairs[0])
    return [list(p) for p in pairs]


class _Spatial(Layer):
    """Base: a single channels-last input of rank ``rank + 2``."""

    rank = 2

    def __init__(self, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        check_data_format(type(self).__name__, data_format)

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)


class _UpSampling(_Spatial):
    _op = staticmethod(ops.upsampling2d)
    interpolations: tuple[str, ...] = ("nearest",)

    def __init__(self, size: Any = 2, data_format: str | None = None,
                 interpolation: str = "nearest", **kwargs: Any):
        super().__init__(data_format, **kwargs)
        cls = type(self).__name__
        self.size = tuple_arg(cls, size, self.rank, "size")
        if interpolation not in self.interpolations:
            raise ValueError(f"{cls}: interpolation must be one of {self.interpolations}, got "
                             f"{interpolation!r}")
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        check_rank(self, shape, self.rank)
        spatial = [None if d is None else int(d) * s
                   for d, s in zip(shape[1:-1], self.size, strict=True)]
        return (shape[0], *spatial, shape[-1])

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        size = self.size[0] if self.rank == 1 else self.size
        return type(self)._op(inputs, size, self.interpolation)

    def get_config(self) -> dict:
        cfg = {**super().get_config(),
               "size": self.size[0] if self.rank == 1 else list(self.size)}
        if self.rank > 1:
            cfg["data_format"] = "channels_last"
        if len(self.interpolations) > 1:
            cfg["interpolation"] = self.interpolation
        return cfg


class UpSampling1D(_UpSampling):
    """Repeat each step ``size`` times: (batch, steps, C) -> (batch, steps*size, C)."""

    rank = 1
    _op = staticmethod(ops.upsampling1d)

    def __init__(self, size: int = 2, **kwargs: Any):
        super().__init__(size, None, "nearest", **kwargs)


class UpSampling2D(_UpSampling):
    """Upsample rows and columns by ``size``; "nearest" repeats, "bilinear" interpolates."""

    rank = 2
    _op = staticmethod(ops.upsampling2d)
    interpolations = ("nearest", "bilinear")

    def __init__(self, size: Any = (2, 2), data_format: str | None = None,
                 interpolation: str = "nearest", **kwargs: Any):
        super().__init__(size, data_format, interpolation, **kwargs)


class UpSampling3D(_UpSampling):
    """Repeat each cell of a volume ``size`` times per spatial axis."""

    rank = 3
    _op = staticmethod(ops.upsampling3d)

    def __init__(self, size: Any = (2, 2, 2), data_format: str | None = None, **kwargs: Any):
        super().__init__(size, data_format, "nearest", **kwargs)


class _ZeroPadding(_Spatial):
    _op = staticmethod(ops.zero_padding2d)

    def __init__(self, padding: Any = 1, data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format, **kwargs)
        self.padding = side_pairs(type(self).__name__, "padding", padding, self.rank)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        check_rank(self, shape, self.rank)
        spatial = [None if d is None else int(d) + b + a
                   for d, (b, a) in zip(shape[1:-1], self.padding, strict=True)]
        return (shape[0], *spatial, shape[-1])

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return steps.ZeroPad(tuple(tuple(p) for p in self.padding))

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return type(self)._op(inputs, self.padding)

    def get_config(self) -> dict:
        cfg = {**super().get_config(), "padding": _pairs_config(self.padding)}
        if self.rank > 1:
            cfg["data_format"] = "channels_last"
        return cfg


class ZeroPadding1D(_ZeroPadding):
    """Zeros before/after the steps of (batch, steps, C); ``padding`` int or (before, after)."""

    rank = 1
    _op = staticmethod(ops.zero_padding1d)

    def __init__(self, padding: Any = 1, data_format: str | None = None, **kwargs: Any):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding2D(_ZeroPadding):
    """Rows and columns of zeros around (batch, H, W, C); ``padding`` int, (h, w) or
    ((top, bottom), (left, right))."""

    rank = 2
    _op = staticmethod(ops.zero_padding2d)

    def __init__(self, padding: Any = (1, 1), data_format: str | None = None, **kwargs: Any):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Zeros around the spatial axes of (batch, D, H, W, C)."""

    rank = 3
    _op = staticmethod(ops.zero_padding3d)

    def __init__(self, padding: Any = ((1, 1), (1, 1), (1, 1)), data_format: str | None = None,
                 **kwargs: Any):
        super().__init__(padding, data_format, **kwargs)


class _Cropping(_Spatial):
    _op = staticmethod(ops.cropping2d)

    def __init__(self, cropping: Any = 1, data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format, **kwargs)
        self.cropping = side_pairs(type(self).__name__, "cropping", cropping, self.rank)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        check_rank(self, shape, self.rank)
        spatial: list[int | None] = []
        for axis, (d, (b, a)) in enumerate(zip(shape[1:-1], self.cropping, strict=True)):
            if d is None:
                spatial.append(None)
                continue
            if b + a >= int(d):
                raise ValueError(f"{type(self).__name__} '{self.name}': cropping {(b, a)} "
                                 f"removes {b + a} of the {d} cells of spatial axis {axis} "
                                 f"(input shape {shape}); at least one must remain")
            spatial.append(int(d) - b - a)
        return (shape[0], *spatial, shape[-1])

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return type(self)._op(inputs, self.cropping)

    def get_config(self) -> dict:
        cfg = {**super().get_config(), "cropping": _pairs_config(self.cropping)}
        if self.rank > 1:
            cfg["data_format"] = "channels_last"
        return cfg


class Cropping1D(_Cropping):
    """Remove steps at the start and end of (batch, steps, C); ``cropping`` (start, end)."""

    rank = 1
    _op = staticmethod(ops.cropping1d)

    def __init__(self, cropping: Any = (1, 1), **kwargs: Any):
        super().__init__(cropping, None, **kwargs)


class Cropping2D(_Cropping):
    """Remove rows and columns at the borders of (batch, H, W, C); ``cropping`` int, (h, w) or
    ((top, bottom), (left, right))."""

    rank = 2
    _op = staticmethod(ops.cropping2d)

    def __init__(self, cropping: Any = ((0, 0), (0, 0)), data_format: str | None = None,
                 **kwargs: Any):
        super().__init__(cropping, data_format, **kwargs)


class Cropping3D(_Cropping):
    """Remove cells at the borders of the spatial axes of (batch, D, H, W, C)."""

    rank = 3
    _op = staticmethod(ops.cropping3d)

    def __init__(self, cropping: Any = ((1, 1), (1, 1), (1, 1)),
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(cropping, data_format, **kwargs)


class Resize(Layer):
    """ONNX Resize of the spatial axes of (batch, *spatial, channels) to ``sizes`` or by
    ``scales`` (one per spatial axis), with every mode of :func:`cnnkit.ops.resize`: method
    "nearest", "linear" or "cubic", the coordinate transformation modes PyTorch, TensorFlow
    and Paddle export, nearest rounding, antialias."""

    def __init__(self, sizes: Any = None, scales: Any = None, method: str = "nearest",
                 coordinate_transformation_mode: str = "half_pixel",
                 nearest_mode: str = "round_prefer_floor", cubic_coeff_a: float = -0.75,
                 exclude_outside: bool = False, antialias: bool = False,
                 extrapolation_value: float = 0.0, keep_aspect_ratio_policy: str = "stretch",
                 roi: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        if (sizes is None) == (scales is None):
            raise ValueError(f"Resize: give exactly one of sizes and scales, got sizes={sizes!r}, "
                             f"scales={scales!r}")
        self.sizes = None if sizes is None else tuple_arg("Resize", list(sizes), len(sizes),
                                                          "sizes")
        self.scales = None if scales is None else tuple(float(v) for v in scales)
        if self.scales is not None and not all(np.isfinite(v) and v > 0 for v in self.scales):
            raise ValueError(f"Resize: scales must be finite and > 0, got {scales!r}")
        self.modes = {"method": str(method),
                      "coordinate_transformation_mode": str(coordinate_transformation_mode),
                      "nearest_mode": str(nearest_mode), "cubic_coeff_a": float(cubic_coeff_a),
                      "exclude_outside": bool(exclude_outside), "antialias": bool(antialias),
                      "extrapolation_value": float(extrapolation_value),
                      "keep_aspect_ratio_policy": str(keep_aspect_ratio_policy)}
        self.roi = None if roi is None else [[float(a), float(b)] for a, b in roi]
        if self.modes["coordinate_transformation_mode"] == "tf_crop_and_resize" and (
                self.roi is None or len(self.roi) != self._k()):
            raise ValueError("Resize: 'tf_crop_and_resize' needs roi, one (start, end) pair "
                             "per spatial axis")

    def _k(self) -> int:
        return len(self.sizes if self.sizes is not None else self.scales)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = single_shape(self, input_shape)
        if len(shape) != self._k() + 2:
            raise ValueError(f"Resize '{self.name}' resizes {self._k()} spatial axes: it expects "
                             f"inputs of rank {self._k() + 2}, got shape {shape}")
        spatial = shape[1:-1]
        if self.scales is not None:
            out = [None if d is None else int(np.floor(d * s))
                   for d, s in zip(spatial, self.scales, strict=True)]
        elif self.modes["keep_aspect_ratio_policy"] == "stretch":
            out = list(self.sizes)
        elif any(d is None for d in spatial):
            out = [None] * len(spatial)
        else:
            f = [o / d for o, d in zip(self.sizes, spatial, strict=True)]
            s = (min if self.modes["keep_aspect_ratio_policy"] == "not_larger" else max)(f)
            out = [int(s * d + 0.5) for d in spatial]
        return (shape[0], *out, shape[-1])

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.resize(inputs, size=self.sizes, scales=self.scales, roi=self.roi,
                          **self.modes)

    def get_config(self) -> dict:
        return {**super().get_config(),
                "sizes": None if self.sizes is None else list(self.sizes),
                "scales": None if self.scales is None else list(self.scales), **self.modes,
                "roi": self.roi}
