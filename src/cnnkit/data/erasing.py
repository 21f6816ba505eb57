"""Random erasing (Zhong et al. 2017, "Random Erasing Data Augmentation"), with the sampling
rule of torchvision's ``transforms.RandomErasing``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .augment import Augmentation, Batch

__all__ = ["RandomErasing"]

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
