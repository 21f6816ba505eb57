"""Colour and intensity transforms of image batches (N, H, W, C), vectorised over the batch.

The ``adjust_*`` functions, ``solarize``, ``posterize`` and ``autocontrast`` work on images
scaled to the unit range [0, 1] (``to_unit`` / ``from_unit`` convert from and to a
``value_range`` such as (0, 255)); factors are scalars or one value per sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .geometry import as_float, check_images

__all__ = [
    "normalize", "rgb_to_hsv", "hsv_to_rgb", "rgb_to_grayscale", "to_unit", "from_unit",
    "adjust_brightness", "adjust_contrast", "adjust_saturation", "adjust_hue", "solarize",
    "posterize", "autocontrast",
]

#: ITU-R BT.601 luma weights, as Pillow's "L" conversion and torchvision use.
LUMA = (0.299, 0.587, 0.114)


def normalize(x: Any, mean: Any, std: Any) -> np.ndarray:
    """(x - mean) / std per channel (mean and std broadcast over the last axis)."""
    xf = as_float(np.asarray(x))
    mean = np.asarray(mean, dtype=xf.dtype)
    std = np.asarray(std, dtype=xf.dtype)
    if np.any(std == 0):
        raise ValueError("normalize: std contains zeros")
    return (xf - mean) / std


def to_unit(x: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """(x - lo) / (hi - lo) as float."""
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    xf = as_float(x)
    return (xf - xf.dtype.type(lo)) / xf.dtype.type(hi - lo)


def from_unit(u: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """lo + u * (hi - lo)."""
    lo, hi = float(value_range[0]), float(value_range[1])
    return u * u.dtype.type(hi - lo) + u.dtype.type(lo)


def _factor(f: Any, x: np.ndarray) -> np.ndarray:
    """A scalar or per-sample factor shaped to broadcast over (N, H, W, C)."""
    f = np.asarray(f, dtype=x.dtype)
    if f.ndim == 0:
        return f
    if f.shape != (x.shape[0],):
        raise ValueError(f"factor must be a scalar or have shape ({x.shape[0]},), got {f.shape}")
    return f[:, None, None, None]


def _channels(x: np.ndarray, where: str, allowed: tuple[int, ...]) -> None:
    if x.shape[-1] not in allowed:
        raise ValueError(f"{where} expects images with {' or '.join(map(str, allowed))} "
                         f"channels, got {x.shape[-1]} (shape {x.shape})")


def rgb_to_grayscale(x: Any) -> np.ndarray:
    """Luma 0.299 R + 0.587 G + 0.114 B, shape (..., 1); single-channel input returned as is."""
    x = as_float(np.asarray(x))
    if x.shape[-1] == 1:
        return x
    _channels(x, "rgb_to_grayscale", (1, 3))
    return (x @ np.asarray(LUMA, dtype=x.dtype))[..., None]


def rgb_to_hsv(rgb: Any) -> np.ndarray:
    """RGB in [0, 1] (..., 3) -> HSV in [0, 1] (..., 3), as ``colorsys.rgb_to_hsv``:
    v = max, s = (max - min) / max, h = sector offset + (difference of the other two) / delta,
    divided by 6."""
    rgb = as_float(np.asarray(rgb))
    _channels(rgb, "rgb_to_hsv", (3,))
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    maxc = rgb.max(axis=-1)
    minc = rgb.min(axis=-1)
    delta = maxc - minc
    s = np.where(maxc > 0, delta / np.where(maxc > 0, maxc, 1), 0)
    safe = np.where(delta > 0, delta, 1)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = np.where(r == maxc, bc - gc, np.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.where(delta > 0, np.mod(h / 6.0, 1.0), 0)
    return np.stack([h, s, maxc], axis=-1).astype(rgb.dtype)


def hsv_to_rgb(hsv: Any) -> np.ndarray:
    """HSV in [0, 1] (..., 3) -> RGB in [0, 1], as ``colorsys.hsv_to_rgb``: sector
    i = floor(6 h) mod 6, f = 6 h - floor(6 h), p = v (1 - s), q = v (1 - s f),
    t = v (1 - s (1 - f))."""
    hsv = as_float(np.asarray(hsv))
    _channels(hsv, "hsv_to_rgb", (3,))
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    h6 = np.mod(h, 1.0) * 6.0
    i = np.floor(h6)
    f = h6 - i
    i = i.astype(np.int64) % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1).astype(hsv.dtype)


def adjust_brightness(u: np.ndarray, factor: Any) -> np.ndarray:
    """clip(factor * u, 0, 1)."""
    u = as_float(check_images(u, "adjust_brightness"))
    return np.clip(u * _factor(factor, u), 0, 1)


def adjust_contrast(u: np.ndarray, factor: Any) -> np.ndarray:
    """clip(factor * u + (1 - factor) * m, 0, 1), m = mean grey level of each image."""
    u = as_float(check_images(u, "adjust_contrast"))
    _channels(u, "adjust_contrast", (1, 3))
    m = rgb_to_grayscale(u).mean(axis=(1, 2, 3), keepdims=True)
    f = _factor(factor, u)
    return np.clip(f * u + (1 - f) * m, 0, 1)


def adjust_saturation(u: np.ndarray, factor: Any) -> np.ndarray:
    """clip(factor * u + (1 - factor) * grey(u), 0, 1) per pixel (RGB only)."""
    u = as_float(check_images(u, "adjust_saturation"))
    _channels(u, "adjust_saturation", (3,))
    f = _factor(factor, u)
    return np.clip(f * u + (1 - f) * rgb_to_grayscale(u), 0, 1)


def adjust_hue(u: np.ndarray, shift: Any) -> np.ndarray:
    """Rotate the hue by ``shift`` turns (in [-0.5, 0.5]): HSV with h <- (h + shift) mod 1."""
    u = as_float(check_images(u, "adjust_hue"))
    _channels(u, "adjust_hue", (3,))
    hsv = rgb_to_hsv(u)
    f = _factor(shift, u)
    hsv[..., 0] = np.mod(hsv[..., 0] + (f[..., 0] if f.ndim else f), 1.0)
    return hsv_to_rgb(hsv)


def solarize(u: np.ndarray, threshold: Any) -> np.ndarray:
    """1 - u where u >= threshold, else u."""
    u = as_float(check_images(u, "solarize"))
    return np.where(u >= _factor(threshold, u), 1 - u, u)


def posterize(u: np.ndarray, bits: Any) -> np.ndarray:
    """Keep the top ``bits`` (1-8) of each 8-bit value: floor(255 u / 2^(8-bits)) * 2^(8-bits)."""
    u = as_float(check_images(u, "posterize"))
    step = 2.0 ** (8 - _factor(bits, u))
    return np.floor(np.rint(u * 255) / step) * step / 255


def autocontrast(u: np.ndarray) -> np.ndarray:
    """Stretch each image channel to [0, 1]: (u - min) / (max - min); flat channels unchanged."""
    u = as_float(check_images(u, "autocontrast"))
    lo = u.min(axis=(1, 2), keepdims=True)
    hi = u.max(axis=(1, 2), keepdims=True)
    span = hi - lo
    return np.where(span > 0, (u - lo) / np.where(span > 0, span, 1), u)
