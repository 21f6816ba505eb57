"""Occlusion: Cutout (DeVries & Taylor 2017, fixed-size holes) and random erasing (Zhong et al.
2017, "Random Erasing Data Augmentation"), with the sampling rule of torchvision's
``transforms.RandomErasing``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .augment import Augmentation, Batch

__all__ = ["Cutout", "RandomErasing", "box_masks"]

ATTEMPTS = 10  # torchvision's number of tries for a box that fits


def _pair(value: Any, name: str, low: float, positive: bool = False) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"RandomErasing: {name} must be a (low, high) pair, got "
                        f"{value!r}") from None
    if not (a <= b) or a < low or (positive and a <= 0):
        raise ValueError(f"RandomErasing: {name} must be (low, high) with "
                         f"{'0 < ' if positive else f'{low} <= '}low <= high, got {value!r}")
    return a, b


class RandomErasing(Augmentation):
    """With probability ``p`` per image, erase one box of the image and fill it with ``value``.

    Sampling (torchvision's rule): up to 10 attempts, each drawing a target area
    ``s = H * W * U(scale)`` and an aspect ratio ``r = exp(U(log ratio[0], log ratio[1]))``;
    the box is ``h = round(sqrt(s * r))`` by ``w = round(sqrt(s / r))``, kept at the first
    attempt with ``h < H`` and ``w < W``, its top-left corner uniform over the positions where
    it fits. No attempt fitting leaves the image as it is. ``value``: a number (pixels in the
    batch's own scale, e.g. 0 = black), one number per channel, or ``"random"`` (standard
    normal noise per pixel, as torchvision's ``value="random"``). The dtype is kept.
    """

    def __init__(self, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.33),
                 ratio: tuple[float, float] = (0.3, 3.3), value: Any = 0.0):
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"RandomErasing: p must lie in [0, 1], got {p!r}")
        self.p = float(p)
        self.scale = _pair(scale, "scale", 0.0)
        if self.scale[1] > 1.0:
            raise ValueError(f"RandomErasing: scale must lie in [0, 1], got {scale!r}")
        self.ratio = _pair(ratio, "ratio", 0.0, positive=True)
        if isinstance(value, str):
            if value != "random":
                raise ValueError(f"RandomErasing: value must be a number, one per channel or "
                                 f"'random', got {value!r}")
            self.value: Any = value
        else:
            self.value = float(value) if np.ndim(value) == 0 else tuple(float(v) for v in value)

    def boxes(self, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """(N, 4) integer boxes (top, left, height, width); height 0 where nothing is erased."""
        area = h * w * rng.uniform(*self.scale, (n, ATTEMPTS))
        log_r = rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), (n, ATTEMPTS))
        r = np.exp(log_r)
        bh = np.rint(np.sqrt(area * r)).astype(np.int64)
        bw = np.rint(np.sqrt(area / r)).astype(np.int64)
        fits = (bh < h) & (bw < w) & (bh > 0) & (bw > 0)
        first = np.argmax(fits, axis=1)  # the first attempt that fits (0 when none does)
        rows = np.arange(n)
        ok = fits[rows, first] & (rng.random(n) < self.p)
        bh, bw = np.where(ok, bh[rows, first], 0), np.where(ok, bw[rows, first], 0)
        top = np.floor(rng.random(n) * (h - bh + 1)).astype(np.int64)
        left = np.floor(rng.random(n) * (w - bw + 1)).astype(np.int64)
        return np.stack([top, left, bh, bw], axis=1)

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        n, h, w, c = x.shape
        if self.value != "random" and np.ndim(self.value) == 1 and len(self.value) != c:
            raise ValueError(f"RandomErasing: value has {len(self.value)} entries, the images "
                             f"{c} channels")
        top, left, bh, bw = self.boxes(n, h, w, rng).T
        r = np.arange(h)[None, :]
        col = np.arange(w)[None, :]
        rin = (r >= top[:, None]) & (r < (top + bh)[:, None])
        cin = (col >= left[:, None]) & (col < (left + bw)[:, None])
        mask = (rin[:, :, None] & cin[:, None, :])[..., None]  # (N, H, W, 1)
        if self.value == "random":
            fill = rng.standard_normal(x.shape).astype(x.dtype)
        else:
            fill = np.asarray(self.value).astype(x.dtype)
        return np.where(mask, fill, x), y

    def get_config(self) -> dict[str, Any]:
        return {"p": self.p, "scale": self.scale, "ratio": self.ratio, "value": self.value}


def box_masks(n: int, h: int, w: int, cy: np.ndarray, cx: np.ndarray, bh: np.ndarray,
              bw: np.ndarray) -> np.ndarray:
    """Boolean masks (N, H, W), True inside the union over k of boxes
    rows [cy - bh // 2, cy - bh // 2 + bh) x cols [cx - bw // 2, cx - bw // 2 + bw), clipped
    to the image; cy, cx, bh, bw are integer arrays (N, K)."""
    y0, x0 = cy - bh // 2, cx - bw // 2
    r = np.arange(h)[None, None, :]
    c = np.arange(w)[None, None, :]
    rin = (r >= y0[..., None]) & (r < (y0 + bh)[..., None])  # (N, K, H)
    cin = (c >= x0[..., None]) & (c < (x0 + bw)[..., None])  # (N, K, W)
    return (rin[..., :, None] & cin[..., None, :]).any(axis=1)


class Cutout(Augmentation):
    """Cutout (DeVries & Taylor 2017): set ``n_holes`` squares of side ``length`` (or
    (height, width) boxes) centred at uniform random pixels to ``fill_value``; holes may be
    clipped by the border. The dtype is kept."""

    def __init__(self, length: int | tuple[int, int] = 16, n_holes: int = 1,
                 fill_value: float = 0.0):
        self.length = int(length) if np.ndim(length) == 0 else tuple(int(v) for v in length)
        lh, lw = (self.length, self.length) if isinstance(self.length, int) else self.length
        if lh < 1 or lw < 1:
            raise ValueError(f"Cutout: length must be positive, got {length}")
        if int(n_holes) < 1:
            raise ValueError(f"Cutout: n_holes must be >= 1, got {n_holes}")
        self.n_holes, self.fill_value, self._hw = int(n_holes), fill_value, (lh, lw)

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        n, h, w, _ = x.shape
        k = self.n_holes
        cy, cx = rng.integers(0, h, (n, k)), rng.integers(0, w, (n, k))
        mask = box_masks(n, h, w, cy, cx, np.full((n, k), self._hw[0]),
                         np.full((n, k), self._hw[1]))
        return np.where(mask[..., None], np.asarray(self.fill_value).astype(x.dtype), x), y

    def get_config(self) -> dict[str, Any]:
        return {"length": self.length, "n_holes": self.n_holes, "fill_value": self.fill_value}
