"""Test-time augmentation of embeddings: the renormalised mean of the unit embeddings of a few
small rotations and shifts of each image,

    e(x) = m / ||m||,  m = sum_v u(f(T_v x)),  u(z) = z / ||z||,

with f the embedding model and T_v the views: (angle in degrees counter-clockwise, dx pixels
right, dy pixels down) about the image centre, bilinear, zero fill."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..kernels.warp import affine_matrix, warp_forward
from .training import embed

__all__ = ["embed_tta", "tta_views"]


def tta_views(shift: float = 1.0, angle: float = 0.0) -> list[tuple[float, float, float]]:
    """The image itself, its four shifts by ``shift`` pixels (right, left, down, up) and, when
    ``angle`` > 0, its turns by +-``angle`` degrees: 5 or 7 views (angle, dx, dy)."""
    views = [(0.0, 0.0, 0.0)]
    if shift:
        views += [(0.0, shift, 0.0), (0.0, -shift, 0.0), (0.0, 0.0, shift), (0.0, 0.0, -shift)]
    if angle:
        views += [(angle, 0.0, 0.0), (-angle, 0.0, 0.0)]
    return views


def _unit(e: np.ndarray) -> np.ndarray:
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def embed_tta(model: Any, x: np.ndarray, views: Sequence[Sequence[float]] | None = None,
              batch_size: int = 256) -> np.ndarray:
    """Unit embeddings (N, D) of images ``x`` (N, H, W, C): the renormalised mean of the unit
    embeddings of each view (angle, dx, dy) of every image; ``views`` defaults to
    :func:`tta_views` (the image and its four one-pixel shifts)."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"embed_tta expects images (N, H, W, C), got shape {x.shape}")
    views = tta_views() if views is None else [tuple(map(float, v)) for v in views]
    if not views or any(len(v) != 3 for v in views):
        raise ValueError(f"embed_tta expects views as (angle, dx, dy) triples, got {views}")
    total = None
    for angle, dx, dy in views:
        xv = x if angle == dx == dy == 0 else warp_forward(
            x, affine_matrix(len(x), angle=angle, tx=dx, ty=dy), "bilinear", "constant", 0.0)
        e = _unit(embed(model, xv.astype(x.dtype, copy=False), batch_size).astype(np.float64))
        total = e if total is None else total + e
    return _unit(total)
