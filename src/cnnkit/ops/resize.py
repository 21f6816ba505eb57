"""Upsampling, general resizing, zero padding and cropping of channels-last Tensors.

``upsampling1d/2d/3d`` follow Keras UpSampling layers (integer factors; nearest = repeat,
bilinear = half-pixel centres without antialias, i.e. ``torch.nn.functional.interpolate(...,
align_corners=False)``). ``resize`` covers the ONNX Resize operator on the spatial axes.
``zero_padding*``/``cropping*`` take Keras' argument forms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..kernels import resize as K
from ..kernels.padding import side_pairs
from ._core import Tensor, check_rank, floating, record

__all__ = ["upsampling1d", "upsampling2d", "upsampling3d", "resize", "zero_padding1d",
           "zero_padding2d", "zero_padding3d", "cropping1d", "cropping2d", "cropping3d"]

_LAYOUTS = {1: "(N, L, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}
_METHOD_ALIASES = {"nearest": "nearest", "linear": "linear", "bilinear": "linear",
                   "trilinear": "linear", "cubic": "cubic", "bicubic": "cubic"}


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _factors(op: str, size: Any, k: int) -> tuple[int, ...]:
    if _is_int(size):
        out = (int(size),) * k
    elif (isinstance(size, Sequence) and not isinstance(size, str) and len(size) == k
          and all(_is_int(v) for v in size)):
        out = tuple(int(v) for v in size)
    else:
        raise ValueError(f"{op}: size must be an int or a sequence of {k} ints, got {size!r}")
    if any(v < 1 for v in out):
        raise ValueError(f"{op}: size must be >= 1, got {size!r}")
    return out


def _upsampling(op: str, x: Any, size: Any, interpolation: str, k: int,
                linear_names: tuple[str, ...]) -> Tensor:
    x = floating(x, "x")
    check_rank(op, "x", x, k + 2, _LAYOUTS[k])
    factors = _factors(op, size, k)
    if interpolation == "nearest":
        z = K.upsample_nearest_forward(x.data, factors)
        return record(z, (x,), lambda g: (K.upsample_nearest_backward(g, factors),), op)
    if interpolation in linear_names:
        return _resize(op, x, [n * s for n, s in zip(x.shape[1:-1], factors, strict=True)],
                       [float(s) for s in factors], "linear", "half_pixel",
                       "round_prefer_floor", -0.75, False, False, None, 0.0)
    raise ValueError(f"{op}: interpolation must be one of {('nearest',) + linear_names}, "
                     f"got {interpolation!r}")


def upsampling1d(x: Any, size: int = 2, interpolation: str = "nearest") -> Tensor:
    """Repeat each step of (N, L, C) ``size`` times (Keras UpSampling1D); ``interpolation=
    "linear"`` interpolates with half-pixel centres instead."""
    return _upsampling("upsampling1d", x, size, interpolation, 1, ("linear",))


def upsampling2d(x: Any, size: Any = (2, 2), interpolation: str = "nearest") -> Tensor:
    """Upsample (N, H, W, C) by integer factors (Keras UpSampling2D): "nearest" repeats rows
    and columns, "bilinear" interpolates with half-pixel centres and no antialias."""
    return _upsampling("upsampling2d", x, size, interpolation, 2, ("bilinear", "linear"))


def upsampling3d(x: Any, size: Any = (2, 2, 2), interpolation: str = "nearest") -> Tensor:
    """Repeat (N, D, H, W, C) along each spatial axis (Keras UpSampling3D); "trilinear"
    interpolates with half-pixel centres instead."""
    return _upsampling("upsampling3d", x, size, interpolation, 3, ("trilinear", "linear"))


def _per_axis(op: str, name: str, value: Any, k: int, kind: type) -> list[Any]:
    def ok(v: Any) -> bool:
        if kind is int:
            return _is_int(v)
        return (isinstance(v, (int, float, np.integer, np.floating))
                and not isinstance(v, (bool, np.bool_)))

    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, Sequence) or isinstance(value, str):
        value = [value] * k
    elif len(value) != k:
        raise ValueError(f"{op}: {name} must be one {kind.__name__} or a sequence of {k} (one "
                         f"per spatial axis), got {value!r}")
    if not all(ok(v) for v in value):
        raise ValueError(f"{op}: {name} must be one {kind.__name__} or a sequence of {k} (one "
                         f"per spatial axis), got {value!r}")
    return list(value)


def resize(x: Any, size: Any = None, scales: Any = None, method: str = "nearest",
           coordinate_transformation_mode: str = "half_pixel",
           nearest_mode: str = "round_prefer_floor", *, cubic_coeff_a: float = -0.75,
           exclude_outside: bool = False, antialias: bool = False, roi: Any = None,
           extrapolation_value: float = 0.0, keep_aspect_ratio_policy: str = "stretch"
           ) -> Tensor:
    """Resize the spatial axes of (N, *spatial, C) to ``size`` or by ``scales`` (ONNX Resize).

    Args:
        size: output length per spatial axis (int or sequence); the scale is size/input.
        scales: float per spatial axis; output length floor(input * scale), and the given
            scale (not output/input) maps coordinates, as in ONNX and torch's scale_factor.
        method: "nearest", "linear" (= "bilinear"/"trilinear") or "cubic" (= "bicubic").
        coordinate_transformation_mode: "half_pixel" (= torch align_corners=False),
            "pytorch_half_pixel", "half_pixel_symmetric", "align_corners", "asymmetric"
            (torch "nearest" is asymmetric + floor) or "tf_crop_and_resize" (needs ``roi``).
        nearest_mode: "round_prefer_floor", "round_prefer_ceil", "floor" or "ceil".
        cubic_coeff_a: Keys cubic parameter (-0.75 as in ONNX/torch bicubic, -0.5 in TF).
        exclude_outside: drop taps outside the input and renormalise (else edge-clamp).
        antialias: widen linear/cubic kernels by 1/scale when downsampling.
        roi: for tf_crop_and_resize, (start, end) per spatial axis in normalised coordinates.
        extrapolation_value: output where tf_crop_and_resize samples outside the input.
        keep_aspect_ratio_policy: with ``size``: "stretch", "not_larger" or "not_smaller"
            (one scale for all axes, output round(scale * input)).
    """
    op = "resize"
    x = floating(x, "x")
    if x.ndim < 3:
        raise ValueError(f"{op} expects x of rank >= 3 (N, *spatial, C), got rank {x.ndim} "
                         f"(shape {x.shape})")
    k = x.ndim - 2
    in_sizes = x.shape[1:-1]
    if (size is None) == (scales is None):
        raise ValueError(f"{op}: give exactly one of size and scales, got size={size!r}, "
                         f"scales={scales!r}")
    method = _check_resize_modes(op, method, coordinate_transformation_mode, nearest_mode,
                                 keep_aspect_ratio_policy, antialias)
    if size is not None:
        out_sizes, factors = _sizes_from_size(op, size, in_sizes, keep_aspect_ratio_policy)
    else:
        out_sizes, factors = _sizes_from_scales(op, scales, in_sizes)
    rois = None
    if coordinate_transformation_mode == "tf_crop_and_resize":
        rois = _crop_rois(op, roi, k)
    return _resize(op, x, out_sizes, factors, method, coordinate_transformation_mode,
                   nearest_mode, float(cubic_coeff_a), bool(exclude_outside), bool(antialias),
                   rois, float(extrapolation_value))


def _check_resize_modes(op: str, method: Any, coord: Any, nearest_mode: Any,
                        keep_aspect_ratio_policy: Any, antialias: bool) -> str:
    """The canonical method name ("nearest", "linear", "cubic"), once every mode is valid."""
    if not isinstance(method, str) or method.lower() not in _METHOD_ALIASES:
        raise ValueError(f"{op}: method must be one of {tuple(_METHOD_ALIASES)}, "
                         f"got {method!r}")
    method = _METHOD_ALIASES[method.lower()]
    if coord not in K.COORDINATE_MODES:
        raise ValueError(f"{op}: coordinate_transformation_mode must be one of "
                         f"{K.COORDINATE_MODES}, got {coord!r}")
    if nearest_mode not in K.NEAREST_MODES:
        raise ValueError(f"{op}: nearest_mode must be one of {K.NEAREST_MODES}, "
                         f"got {nearest_mode!r}")
    if keep_aspect_ratio_policy not in ("stretch", "not_larger", "not_smaller"):
        raise ValueError(f"{op}: keep_aspect_ratio_policy must be 'stretch', 'not_larger' or "
                         f"'not_smaller', got {keep_aspect_ratio_policy!r}")
    if antialias and method == "nearest":
        raise ValueError(f"{op}: antialias applies to 'linear' and 'cubic', not 'nearest'")
    return method


def _sizes_from_size(op: str, size: Any, in_sizes: Sequence[int], keep_aspect_ratio_policy: str
                     ) -> tuple[list[int], list[float]]:
    """(output lengths, scales): scale = size / input per axis, or with a keep-aspect policy
    one scale s = min or max of those for all axes and output round(s * input)."""
    k = len(in_sizes)
    out_sizes = [int(v) for v in _per_axis(op, "size", size, k, int)]
    if any(v < 1 for v in out_sizes):
        raise ValueError(f"{op}: size must be >= 1, got {size!r}")
    factors = [o / n for o, n in zip(out_sizes, in_sizes, strict=True)]
    if keep_aspect_ratio_policy != "stretch":
        s = (min if keep_aspect_ratio_policy == "not_larger" else max)(factors)
        factors = [s] * k
        out_sizes = [int(s * n + 0.5) for n in in_sizes]
    return out_sizes, factors


def _sizes_from_scales(op: str, scales: Any, in_sizes: Sequence[int]
                       ) -> tuple[list[int], list[float]]:
    """(output lengths floor(input * scale), the given scales)."""
    factors = [float(v) for v in _per_axis(op, "scales", scales, len(in_sizes), float)]
    if any(not (math.isfinite(v) and v > 0) for v in factors):
        raise ValueError(f"{op}: scales must be finite and > 0, got {scales!r}")
    out_sizes = [int(math.floor(n * s)) for n, s in zip(in_sizes, factors, strict=True)]
    if any(v < 1 for v in out_sizes):
        raise ValueError(f"{op}: scales {scales!r} shrink the spatial shape {in_sizes} to "
                         f"{tuple(out_sizes)}; every output length must be >= 1")
    return out_sizes, factors


def _crop_rois(op: str, roi: Any, k: int) -> list[tuple[float, float]]:
    """tf_crop_and_resize's ``roi`` as one (start, end) pair per spatial axis."""
    if roi is None:
        raise ValueError(f"{op}: coordinate_transformation_mode 'tf_crop_and_resize' needs "
                         f"roi, one (start, end) pair per spatial axis")
    pairs = np.asarray(roi, dtype=np.float64)
    if pairs.shape != (k, 2):
        raise ValueError(f"{op}: roi must hold one (start, end) pair per spatial axis, "
                         f"shape ({k}, 2), got shape {pairs.shape}")
    return [(float(a), float(b)) for a, b in pairs]


def _resize(op: str, x: Tensor, out_sizes: Sequence[int], factors: Sequence[float],
            method: str, coord: str, nearest_mode: str, cubic_coeff_a: float,
            exclude_outside: bool, antialias: bool, rois: Sequence[tuple[float, float]] | None,
            extrapolation_value: float) -> Tensor:
    plans, masks = [], []
    for i, (n, o, s) in enumerate(zip(x.shape[1:-1], out_sizes, factors, strict=True)):
        a_mat, mask = K.interpolation_matrix(
            n, o, s, method, coord, nearest_mode, cubic_coeff_a, exclude_outside, antialias,
            None if rois is None else rois[i], x.dtype)
        plans.append(K.plan_axis(a_mat))
        masks.append(mask)
    z = K.resize_forward(x.data, plans, masks, extrapolation_value)
    return record(z, (x,), lambda g: (K.resize_backward(g, plans),), op)


def _zero_padding(op: str, x: Any, padding: Any, k: int) -> Tensor:
    x = floating(x, "x")
    check_rank(op, "x", x, k + 2, _LAYOUTS[k])
    pads = side_pairs(op, "padding", padding, k)
    return record(K.zero_pad_forward(x.data, pads), (x,),
                  lambda g: (K.zero_pad_backward(g, pads),), op)


def zero_padding1d(x: Any, padding: Any = 1) -> Tensor:
    """Add zeros at the start and end of the steps of (N, L, C) (Keras ZeroPadding1D)."""
    return _zero_padding("zero_padding1d", x, padding, 1)


def zero_padding2d(x: Any, padding: Any = (1, 1)) -> Tensor:
    """Add rows and columns of zeros around (N, H, W, C) (Keras ZeroPadding2D)."""
    return _zero_padding("zero_padding2d", x, padding, 2)


def zero_padding3d(x: Any, padding: Any = (1, 1, 1)) -> Tensor:
    """Add zeros around the spatial axes of (N, D, H, W, C) (Keras ZeroPadding3D)."""
    return _zero_padding("zero_padding3d", x, padding, 3)


def _cropping(op: str, x: Any, cropping: Any, k: int) -> Tensor:
    x = floating(x, "x")
    check_rank(op, "x", x, k + 2, _LAYOUTS[k])
    crops = side_pairs(op, "cropping", cropping, k)
    for axis, (n, (b, a)) in enumerate(zip(x.shape[1:-1], crops, strict=True)):
        if b + a >= n:
            raise ValueError(f"{op}: cropping {(b, a)} removes {b + a} of the {n} cells of "
                             f"spatial axis {axis} (input shape {x.shape}); at least one must "
                             f"remain")
    return record(K.crop_forward(x.data, crops), (x,),
                  lambda g: (K.crop_backward(g, crops),), op)


def cropping1d(x: Any, cropping: Any = (1, 1)) -> Tensor:
    """Remove steps at the start and end of (N, L, C) (Keras Cropping1D)."""
    return _cropping("cropping1d", x, cropping, 1)


def cropping2d(x: Any, cropping: Any = ((0, 0), (0, 0))) -> Tensor:
    """Remove rows and columns at the borders of (N, H, W, C) (Keras Cropping2D)."""
    return _cropping("cropping2d", x, cropping, 2)


def cropping3d(x: Any, cropping: Any = ((1, 1), (1, 1), (1, 1))) -> Tensor:
    """Remove cells at the borders of the spatial axes of (N, D, H, W, C) (Keras Cropping3D)."""
    return _cropping("cropping3d", x, cropping, 3)
