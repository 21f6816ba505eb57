"""Elastic distortion (Simard, Steinkraus & Platt 2003, "Best practices for convolutional
neural networks applied to visual document analysis"): each pixel moves along a smooth random
displacement field."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels.warp import sample
from .augment import Augmentation, Batch

__all__ = ["RandomElastic", "gaussian_smooth"]


def gaussian_smooth(f: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """``f`` (N, H, W) convolved with a normalised Gaussian of standard deviation ``sigma``
    pixels along H and W, taps out to ``truncate * sigma``, the border mirrored (d c b | a b c d
    | c b a): scipy's ``ndimage.gaussian_filter(mode="mirror")`` per image."""
    if sigma <= 0:
        return f.copy()
    r = int(truncate * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = f
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (r, r)
        padded = np.pad(out, pad, mode="reflect")
        size = out.shape[axis]
        acc = np.zeros_like(out)
        for k, t in enumerate(taps):
            acc += t * np.take(padded, np.arange(k, k + size), axis=axis)
        out = acc
    return out


class RandomElastic(Augmentation):
    """With probability ``p`` per image, move every pixel by ``alpha * G_sigma * U(-1, 1)``:
    two fields of uniform noise in [-1, 1] per image (rows, columns), each smoothed by
    :func:`gaussian_smooth` with ``sigma`` pixels and scaled by ``alpha`` pixels; output pixel
    (i, j) takes the input at (i + dy, j + dx), bilinear, ``fill_value`` outside. Simard et al.
    used alpha 34, sigma 4 on 28x28 digits. Returns float32 (float64 stays float64)."""

    def __init__(self, alpha: float = 34.0, sigma: float = 4.0, p: float = 1.0,
                 fill_value: float = 0.0):
        if not float(alpha) >= 0:
            raise ValueError(f"RandomElastic: alpha must be >= 0 pixels, got {alpha!r}")
        if not float(sigma) > 0:
            raise ValueError(f"RandomElastic: sigma must be > 0 pixels, got {sigma!r}")
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"RandomElastic: p must lie in [0, 1], got {p!r}")
        self.alpha, self.sigma, self.p = float(alpha), float(sigma), float(p)
        self.fill_value = float(fill_value)

    def displacements(self, n: int, h: int, w: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(dy, dx), each (N, H, W) in pixels; zero for the images left as they are."""
        noise = rng.uniform(-1.0, 1.0, (2 * n, h, w))
        field = self.alpha * gaussian_smooth(noise, self.sigma)
        keep = (rng.random(n) < self.p)[:, None, None]
        return field[:n] * keep, field[n:] * keep

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        n, h, w, _ = x.shape
        dy, dx = self.displacements(n, h, w, rng)
        rows = np.arange(h, dtype=np.float64)[None, :, None] + dy
        cols = np.arange(w, dtype=np.float64)[None, None, :] + dx
        out = sample(x, cols, rows, "bilinear", "constant", self.fill_value)
        return out, y

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "sigma": self.sigma, "p": self.p,
                "fill_value": self.fill_value}
