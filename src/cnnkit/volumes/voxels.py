"""Volumes from images: a 2D image extruded into a slab of voxels, then turned by a 3D rotation
(trilinear resampling about the grid centre, zeros outside). ``digit_volumes`` makes the
rotated-digit data set of the 3D example from any (N, H, W) images."""

from __future__ import annotations

import numpy as np

__all__ = ["random_rotations", "rotate", "extrude", "digit_volumes"]


def random_rotations(n: int, rng: np.random.Generator, max_angle: float = 30.0) -> np.ndarray:
    """(n, 3, 3) rotation matrices about uniformly random axes by angles uniform in
    [-max_angle, max_angle] degrees (Rodrigues: R = I + sin t K + (1 - cos t) K^2)."""
    axis = rng.standard_normal((n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    t = np.deg2rad(rng.uniform(-max_angle, max_angle, n))
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k -= k.transpose(0, 2, 1)
    eye = np.eye(3)[None]
    return eye + np.sin(t)[:, None, None] * k + (1 - np.cos(t))[:, None, None] * (k @ k)


def _trilinear(v: np.ndarray, p: np.ndarray) -> np.ndarray:
    """v (B, D, H, W) sampled at points p (B, M, 3) in voxel coordinates; zero outside."""
    shape = np.array(v.shape[1:])
    base = np.floor(p).astype(np.int64)
    frac = p - base
    flat = v.reshape(-1)
    offset = (np.arange(len(v)) * shape.prod())[:, None]
    out = np.zeros(p.shape[:2], dtype=np.float64)
    for corner in np.ndindex(2, 2, 2):
        idx = base + corner
        w = np.prod(np.where(corner, frac, 1 - frac), axis=-1)
        ok = np.all((idx >= 0) & (idx < shape), axis=-1)
        idx = np.clip(idx, 0, shape - 1)
        lin = offset + (idx[..., 0] * shape[1] + idx[..., 1]) * shape[2] + idx[..., 2]
        out += np.where(ok, w, 0.0) * flat[lin]
    return out


def rotate(volumes: np.ndarray, rotations: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Each (D, H, W) volume turned by its rotation about the grid centre: out(q) = v(R^T (q -
    c) + c), sampled trilinearly."""
    v = np.asarray(volumes)
    if v.ndim != 4 or rotations.shape != (len(v), 3, 3):
        raise ValueError(f"rotate expects volumes (N, D, H, W) and rotations (N, 3, 3), got "
                         f"{v.shape} and {rotations.shape}")
    c = (np.array(v.shape[1:]) - 1) / 2
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in v.shape[1:]], indexing="ij"), -1)
    q = grid.reshape(-1, 3) - c
    out = np.empty(v.shape, dtype=np.float32)
    for s in range(0, len(v), chunk):
        r = rotations[s:s + chunk]
        p = np.einsum("mi,bij->bmj", q, r) + c  # row q R = (R^T q)^T
        out[s:s + chunk] = _trilinear(v[s:s + chunk], p).reshape((len(r), *v.shape[1:]))
    return out


def extrude(images: np.ndarray, depth: int, thickness: int) -> np.ndarray:
    """(N, H, W) images -> (N, depth, H, W) volumes: the image repeated over ``thickness``
    central slices, zeros elsewhere."""
    x = np.asarray(images)
    if x.ndim != 3 or not 1 <= thickness <= depth:
        raise ValueError(f"extrude expects images (N, H, W) and 1 <= thickness <= depth, got "
                         f"shape {x.shape}, thickness {thickness}, depth {depth}")
    out = np.zeros((len(x), depth, *x.shape[1:]), dtype=np.float32)
    start = (depth - thickness) // 2
    out[:, start:start + thickness] = x[:, None]
    return out


def digit_volumes(images: np.ndarray, rng: np.random.Generator, size: int = 20,
                  thickness: int = 3, max_angle: float = 30.0) -> np.ndarray:
    """(N, size, size, size, 1) float32 in [0, 1]: uint8 images centre-cropped (or zero-padded)
    to size x size, extruded ``thickness`` voxels deep, turned by random rotations."""
    x = np.asarray(images, dtype=np.float32) / 255.0
    if x.ndim != 3:
        raise ValueError(f"digit_volumes expects images (N, H, W), got shape {x.shape}")
    for axis in (1, 2):
        extra = x.shape[axis] - size
        if extra > 0:
            x = np.take(x, np.arange(extra // 2, extra // 2 + size), axis=axis)
        elif extra < 0:
            pad = [(0, 0)] * 3
            pad[axis] = (-extra // 2, -extra - (-extra // 2))
            x = np.pad(x, pad)
    vol = rotate(extrude(x, size, thickness), random_rotations(len(x), rng, max_angle))
    return np.clip(vol, 0, 1)[..., None]
