"""Seeded detection scenes made from the embedded real digits (``cnnkit.datasets.mnist5k``).

Each canvas (default 64 x 64, grey) holds 1 to 4 digits at random scales (the 28-pixel digit
frame resized to 22-34 pixels) and positions, allowed to overlap up to IoU 0.15 with the digits
already placed (strokes combine by maximum), plus clutter: 2 to 5 stroke fragments (5-9 pixel
crops of other digits, dimmed) and Gaussian pixel noise. A digit's box is the tight box of its
resized strokes (pixels >= 0.3 of its peak). Training scenes use the 4,000 training digits,
test scenes the 1,000 held-out ones, so the test set shows digits the detector never saw.
``make_scenes(n, seed, split)`` returns the same scenes for the same arguments on any machine.
"""

from __future__ import annotations

import numpy as np

from ..datasets import mnist5k
from .boxes import iou

__all__ = ["make_scenes", "held_out_scenes", "digit_patches", "resize_matrix"]


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Bilinear interpolation matrix (n_out, n_in), pixel centres aligned (half-pixel)."""
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    f = pos - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1 - f
    m[np.arange(n_out), hi] += f
    return m


def _digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in ("train", "test"):
        raise ValueError(f"make_scenes: split must be 'train' or 'test', got {split!r}")
    (xt, yt), (xv, yv) = mnist5k.load_data()
    x, y = (xt, yt) if split == "train" else (xv, yv)
    return x.astype(np.float64) / 255.0, y.astype(np.int64)


def _place(rng: np.random.Generator, canvas: np.ndarray, digit: np.ndarray, placed: list,
           max_overlap: float) -> np.ndarray | None:
    """Paste ``digit`` where its box overlaps the placed boxes by at most ``max_overlap``."""
    size = canvas.shape[0]
    side = int(rng.integers(22, 35))
    m = resize_matrix(28, side)
    patch = m @ digit @ m.T
    ys, xs = np.nonzero(patch >= 0.3 * patch.max())
    for _ in range(20):
        top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
        box = np.array([left + xs.min(), top + ys.min(), left + xs.max() + 1,
                        top + ys.max() + 1], np.float64)
        if not placed or iou(box[None], np.array(placed)).max() <= max_overlap:
            view = canvas[top:top + side, left:left + side]
            np.maximum(view, patch, out=view)
            return box
    return None


def _clutter(rng: np.random.Generator, canvas: np.ndarray, x: np.ndarray) -> None:
    size = canvas.shape[0]
    for _ in range(int(rng.integers(2, 6))):
        k = int(rng.integers(5, 10))
        src = x[int(rng.integers(len(x)))]
        r, c = (int(v) for v in rng.integers(4, 24 - k, 2))
        frag = src[r:r + k, c:c + k] * rng.uniform(0.4, 0.8)
        top, left = (int(v) for v in rng.integers(0, size - k, 2))
        view = canvas[top:top + k, left:left + k]
        np.maximum(view, frag, out=view)


def make_scenes(n: int, seed: int, split: str = "train", size: int = 64,
                max_digits: int = 4, max_overlap: float = 0.15
                ) -> tuple[np.ndarray, list[dict]]:
    """(images uint8 (n, size, size, 1), one dict per image: 'boxes' xyxy float (k, 4),
    'classes' int (k,))."""
    if size < 40:
        raise ValueError(f"make_scenes: size must be >= 40 pixels (digits are up to 34), got "
                         f"{size}")
    x, y = _digits(split)
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 1), np.uint8)
    targets = []
    for i in range(n):
        canvas = np.zeros((size, size))
        _clutter(rng, canvas, x)
        boxes, classes = [], []
        for _ in range(int(rng.integers(1, max_digits + 1))):
            j = int(rng.integers(len(x)))
            box = _place(rng, canvas, x[j], boxes, max_overlap)
            if box is not None:
                boxes.append(box)
                classes.append(int(y[j]))
        canvas += rng.normal(0, 0.04, canvas.shape)
        images[i, :, :, 0] = np.clip(np.round(canvas * 255), 0, 255).astype(np.uint8)
        targets.append({"boxes": np.array(boxes, np.float64).reshape(-1, 4),
                        "classes": np.array(classes, np.int64)})
    return images, targets


def held_out_scenes(n: int = 500, size: int = 64) -> tuple[np.ndarray, list[dict]]:
    """The fixed held-out set: ``make_scenes(n, seed=2026, split="test")``."""
    return make_scenes(n, 2026, "test", size)


def digit_patches(n: int, seed: int, split: str = "train", size: int = 32
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(patches uint8 (n, size, size, 1), labels (n,)): one digit each, at the scenes' scales,
    its box centre within 3 pixels of the patch centre, with the scenes' clutter and noise (for
    pretraining the detector's backbone as a classifier)."""
    x, y = _digits(split)
    rng = np.random.default_rng(seed)
    big = size + 24
    out = np.zeros((n, size, size, 1), np.uint8)
    labels = np.zeros(n, np.int64)
    for i in range(n):
        canvas = np.zeros((big, big))
        _clutter(rng, canvas, x)
        j = int(rng.integers(len(x)))
        box = _place(rng, canvas, x[j], [], 1.0)
        cx, cy = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        left = int(np.clip(round(cx - size / 2 + rng.integers(-3, 4)), 0, big - size))
        top = int(np.clip(round(cy - size / 2 + rng.integers(-3, 4)), 0, big - size))
        crop = canvas[top:top + size, left:left + size] + rng.normal(0, 0.04, (size, size))
        out[i, :, :, 0] = np.clip(np.round(crop * 255), 0, 255).astype(np.uint8)
        labels[i] = y[j]
    return out, labels
