"""Geometric transforms of image batches (N, H, W, C): one vectorised affine warp, and the
flips, crops, rotations, translations, zooms and resizes built on it.

Coordinates: pixel centres sit at integers; ``x`` is the column index (pointing right), ``y``
the row index (pointing down). A warp is given by its *inverse* map: output pixel (row i,
column j) of sample n takes the input value at ``(x', y', 1)^T = A[n] @ (j, i, 1)^T``, sampled
bilinearly or at the nearest pixel. Every sample has its own ``A[n]`` and the whole batch is
one gather, with no Python loop over samples or pixels.

Angles are in degrees, positive = counter-clockwise as the image is displayed; positive
translations move the content right (x) and down (y).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "affine_transform", "affine", "affine_matrix", "rotate", "translate", "zoom", "resize",
    "crop_and_resize", "sample", "crop", "center_crop", "pad", "flip_left_right", "flip_up_down",
]

from ..kernels.warp import (  # noqa: F401  (re-exported: the warp lives in kernels)
    FILL_MODES,
    INTERPOLATIONS,
    _per_sample,
    affine_matrix,
    affine_transform,
    as_float,
    check_choice,
    check_images,
    sample,
)
from ..kernels.warp import warp_forward as _warp_forward


def affine(x: Any, angle: Any = 0.0, translate: tuple[Any, Any] = (0.0, 0.0), scale: Any = 1.0,
           shear: tuple[Any, Any] = (0.0, 0.0), interpolation: str = "bilinear",
           fill_mode: str = "constant", fill_value: float = 0.0) -> np.ndarray:
    """Rotate by ``angle`` degrees, shear by ``shear`` = (x, y) degrees, scale by ``scale`` and
    translate by ``translate`` = (dx, dy) pixels, about the image centre (see affine_matrix);
    every parameter is a scalar or one value per sample."""
    x = check_images(x, "affine")
    n = x.shape[0]
    fwd = affine_matrix(n, angle, translate[0], translate[1], scale, scale,
                        np.tan(np.deg2rad(_per_sample(shear[0], n, "shear[0]"))),
                        np.tan(np.deg2rad(_per_sample(shear[1], n, "shear[1]"))))
    return _warp_forward(x, fwd, interpolation, fill_mode, fill_value)


def rotate(x: Any, angle: Any, interpolation: str = "bilinear", fill_mode: str = "constant",
           fill_value: float = 0.0) -> np.ndarray:
    """Rotate counter-clockwise by ``angle`` degrees (scalar or per sample) about the centre."""
    x = check_images(x, "rotate")
    return _warp_forward(x, affine_matrix(x.shape[0], angle=angle), interpolation, fill_mode,
                         fill_value)


def translate(x: Any, dx: Any, dy: Any, interpolation: str = "bilinear",
              fill_mode: str = "constant", fill_value: float = 0.0) -> np.ndarray:
    """Shift the content ``dx`` pixels right and ``dy`` pixels down (scalars or per sample):
    out[i, j] = x[i - dy, j - dx]."""
    x = check_images(x, "translate")
    return _warp_forward(x, affine_matrix(x.shape[0], tx=dx, ty=dy), interpolation, fill_mode,
                         fill_value)


def zoom(x: Any, height_scale: Any, width_scale: Any = None, interpolation: str = "bilinear",
         fill_mode: str = "constant", fill_value: float = 0.0) -> np.ndarray:
    """Magnify the content about the centre by ``height_scale`` vertically and ``width_scale``
    (default: the same) horizontally; scales > 1 zoom in, < 1 zoom out."""
    x = check_images(x, "zoom")
    width_scale = height_scale if width_scale is None else width_scale
    fwd = affine_matrix(x.shape[0], scale_x=width_scale, scale_y=height_scale)
    return _warp_forward(x, fwd, interpolation, fill_mode, fill_value)


def crop_and_resize(x: Any, boxes: Any, size: tuple[int, int],
                    interpolation: str = "bilinear") -> np.ndarray:
    """Crop box n = (top, left, height, width) of image n (pixel units) and resample it to
    ``size`` = (H_out, W_out) with half-pixel centres, as crop-then-resize:
    x' = clip(left + (j + 1/2) * width / W_out - 1/2, left, left + width - 1), likewise y'
    (bilinear without antialiasing, so strong downscaling aliases)."""
    x = check_images(x, "crop_and_resize")
    n = x.shape[0]
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim == 1:
        b = np.broadcast_to(b, (n, 4))
    if b.shape != (n, 4):
        raise ValueError(f"crop_and_resize expects boxes of shape ({n}, 4) (top, left, height, "
                         f"width), got {b.shape}")
    ho, wo = int(size[0]), int(size[1])
    top, left, bh, bw = (v[:, None, None] for v in b.T)
    jj = np.arange(wo, dtype=np.float64)[None, None, :]
    ii = np.arange(ho, dtype=np.float64)[None, :, None]
    sx = np.clip(left + (jj + 0.5) * bw / wo - 0.5, left, left + np.maximum(bw - 1, 0))
    sy = np.clip(top + (ii + 0.5) * bh / ho - 0.5, top, top + np.maximum(bh - 1, 0))
    return sample(x, sx, sy, interpolation, "nearest")


def resize(x: Any, height: int, width: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resize to (height, width) with half-pixel centres (align_corners=False), edge-clamped."""
    x = check_images(x, "resize")
    h, w = x.shape[1:3]
    return crop_and_resize(x, np.array([0.0, 0.0, h, w]), (height, width), interpolation)


def flip_left_right(x: Any) -> np.ndarray:
    """Mirror every image horizontally (the column axis)."""
    return check_images(x, "flip_left_right")[:, :, ::-1]


def flip_up_down(x: Any) -> np.ndarray:
    """Mirror every image vertically (the row axis)."""
    return check_images(x, "flip_up_down")[:, ::-1]


def pad(x: Any, padding: int | tuple[int, int], mode: str = "constant",
        fill_value: float = 0.0) -> np.ndarray:
    """Pad rows and columns by ``padding`` = p or (p_rows, p_cols) on both sides; mode
    ``constant`` (fill_value) or ``reflect`` (mirror without repeating the edge)."""
    x = check_images(x, "pad")
    check_choice("pad", "mode", mode, ("constant", "reflect"))
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    ph, pw = int(ph), int(pw)
    if ph < 0 or pw < 0:
        raise ValueError(f"pad: padding must be >= 0, got {(ph, pw)}")
    widths = ((0, 0), (ph, ph), (pw, pw), (0, 0))
    if mode == "reflect":
        if ph >= x.shape[1] or pw >= x.shape[2]:
            raise ValueError(f"pad: reflect padding {(ph, pw)} must be smaller than the image "
                             f"size {x.shape[1:3]}")
        return np.pad(x, widths, mode="reflect")
    return np.pad(x, widths, mode="constant", constant_values=fill_value)


def crop(x: Any, top: Any, left: Any, height: int, width: int) -> np.ndarray:
    """Crop a (height, width) window at (top, left) from every image; top and left are
    integers, scalars or one per sample (one fancy-indexing gather, dtype kept)."""
    x = check_images(x, "crop")
    n, h, w, _ = x.shape
    top = np.broadcast_to(np.asarray(top, dtype=np.int64), (n,))
    left = np.broadcast_to(np.asarray(left, dtype=np.int64), (n,))
    if height < 1 or width < 1 or height > h or width > w:
        raise ValueError(f"crop: window ({height}, {width}) does not fit images of size {(h, w)}")
    if (top < 0).any() or (left < 0).any() or (top + height > h).any() or \
            (left + width > w).any():
        raise ValueError(f"crop: window ({height}, {width}) at the given offsets leaves the "
                         f"image of size {(h, w)}")
    rows = top[:, None] + np.arange(height)  # (N, height)
    cols = left[:, None] + np.arange(width)  # (N, width)
    return x[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def center_crop(x: Any, height: int, width: int) -> np.ndarray:
    """The central (height, width) window of every image (offsets rounded down)."""
    x = check_images(x, "center_crop")
    h, w = x.shape[1:3]
    return crop(x, (h - height) // 2, (w - width) // 2, height, width)
