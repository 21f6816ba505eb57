"""Augmentation of volume batches (N, D, H, W, C), one random draw per sample from a
``numpy.random.Generator``: flips along chosen spatial axes, quarter turns in chosen planes,
integer shifts with zero fill, additive Gaussian noise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["check_volumes", "random_flip", "random_rot90", "random_shift", "gaussian_noise",
           "augment"]

SPATIAL = (1, 2, 3)  # D, H, W


def check_volumes(x: np.ndarray, op: str) -> np.ndarray:
    """``x`` as an array of rank 5 (N, D, H, W, C), else a ValueError naming ``op``."""
    x = np.asarray(x)
    if x.ndim != 5:
        raise ValueError(f"{op} expects volumes of shape (N, D, H, W, C), got shape {x.shape}")
    return x


def _axes(axes: Sequence[int], op: str) -> tuple[int, ...]:
    axes = tuple(int(a) for a in axes)
    if not set(axes) <= set(SPATIAL):
        raise ValueError(f"{op}: axes must be spatial axes among {SPATIAL} (D, H, W), got "
                         f"{axes}")
    return axes


def random_flip(x: np.ndarray, rng: np.random.Generator, axes: Sequence[int] = SPATIAL,
                p: float = 0.5) -> np.ndarray:
    """Each sample flipped along each axis of ``axes`` with probability ``p``."""
    x = check_volumes(x, "random_flip").copy()
    for a in _axes(axes, "random_flip"):
        hit = rng.random(len(x)) < p
        x[hit] = np.flip(x[hit], axis=a)
    return x


def random_rot90(x: np.ndarray, rng: np.random.Generator,
                 planes: Sequence[tuple[int, int]] = ((2, 3),)) -> np.ndarray:
    """Each sample turned by k * 90 degrees, k uniform in {0, 1, 2, 3}, in each plane (a pair
    of spatial axes; the two sizes must match)."""
    x = check_volumes(x, "random_rot90").copy()
    for plane in planes:
        a, b = _axes(plane, "random_rot90")
        if x.shape[a] != x.shape[b]:
            raise ValueError(f"random_rot90: plane {plane} needs equal sizes, got "
                             f"{x.shape[a]} and {x.shape[b]}")
        k = rng.integers(0, 4, len(x))
        for turns in (1, 2, 3):
            hit = k == turns
            x[hit] = np.rot90(x[hit], turns, axes=(a, b))
    return x


def _shifted(v: np.ndarray, s: Sequence[int]) -> np.ndarray:
    """One volume (D, H, W, C) moved by s voxels per axis, zeros shifted in."""
    out = np.zeros_like(v)
    src = tuple(slice(max(-k, 0), n - max(k, 0)) for k, n in zip(s, v.shape, strict=False))
    dst = tuple(slice(max(k, 0), n - max(-k, 0)) for k, n in zip(s, v.shape, strict=False))
    out[dst] = v[src]
    return out


def random_shift(x: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Each sample moved by integers drawn uniformly from [-max_shift, max_shift] per axis."""
    x = check_volumes(x, "random_shift")
    if max_shift < 0:
        raise ValueError(f"random_shift: max_shift must be >= 0, got {max_shift}")
    shifts = rng.integers(-max_shift, max_shift + 1, (len(x), 3))
    return np.stack([_shifted(v, s) for v, s in zip(x, shifts, strict=True)]) if len(x) \
        else x.copy()


def gaussian_noise(x: np.ndarray, rng: np.random.Generator, std: float = 0.05) -> np.ndarray:
    """x + N(0, std^2) per voxel, in x's dtype."""
    x = check_volumes(x, "gaussian_noise")
    if std < 0:
        raise ValueError(f"gaussian_noise: std must be >= 0, got {std}")
    return (x + rng.normal(0.0, std, x.shape)).astype(x.dtype, copy=False)


def augment(x: np.ndarray, rng: np.random.Generator, flip_axes: Sequence[int] = SPATIAL,
            rot90_planes: Sequence[tuple[int, int]] = ((2, 3),), max_shift: int = 2,
            noise_std: float = 0.0) -> np.ndarray:
    """Flips, quarter turns, shifts, then noise (each step skipped when its argument is empty
    or zero)."""
    x = check_volumes(x, "augment")
    if flip_axes:
        x = random_flip(x, rng, flip_axes)
    if rot90_planes:
        x = random_rot90(x, rng, rot90_planes)
    if max_shift:
        x = random_shift(x, rng, max_shift)
    if noise_std:
        x = gaussian_noise(x, rng, noise_std)
    return x
