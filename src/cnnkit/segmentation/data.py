"""Seeded segmentation scenes: real digits (``cnnkit.datasets.mnist5k``) painted onto crops of
real photographs, with one class per digit (0 background, 1 + d for digit d) and masks from
the digit strokes; and augmentation that moves an image and its mask together.

Backgrounds: the photograph matplotlib ships (``grace_hopper.jpg`` in its sample data, read
with Pillow: ``pip install cnnkit[all]``), or every image in a folder you give (for example
``../shared/images``). Training crops come from the left 60% of each photo, test crops from
the right 40%, and test digits from mnist5k's 1,000 held-out ones, so the test set shares
neither digits nor background pixels with training. A crop (48-160 pixels square, random
flips) is resized to the canvas; 1 to ``max_digits`` (3 by default) digits (frames of 30-44
pixels) are painted on it in a colour contrasting with the crop (alpha = clip((v - 0.4) / 0.2,
0, 1) for stroke value v); the mask is v >= 0.5; a digit is placed where at most 5% of its
strokes cover earlier digits (it covers them there), or left out after 20 tries.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import mnist5k
from ..kernels.warp import affine_matrix, warp_forward

__all__ = ["NUM_CLASSES", "CLASS_NAMES", "load_backgrounds", "make_scenes", "augment_pair"]

NUM_CLASSES = 11
CLASS_NAMES = ["background"] + [f"digit {d}" for d in range(10)]


@functools.lru_cache(maxsize=64)
def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Bilinear interpolation matrix (n_out, n_in), half-pixel centres (cached: read only)."""
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1 - (pos - lo)
    m[np.arange(n_out), hi] += pos - lo
    m.flags.writeable = False
    return m


def _bilinear(img: np.ndarray, size: int) -> np.ndarray:
    """(side, side, C) -> (size, size, C) by bilinear gathers (half-pixel centres)."""
    side = img.shape[0]
    pos = np.clip((np.arange(size) + 0.5) * side / size - 0.5, 0, side - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, side - 1)
    f = (pos - lo)[:, None, None]
    rows = img[lo] * (1 - f) + img[hi] * f
    g = (pos - lo)[None, :, None]
    return rows[:, lo] * (1 - g) + rows[:, hi] * g


def load_backgrounds(folder: Any = None) -> list[np.ndarray]:
    """RGB photos as float arrays (H, W, 3) in [0, 1]: every image in ``folder``, or (None)
    matplotlib's sample photograph. Needs Pillow (and matplotlib without a folder)."""
    try:
        from ..data import load_image
    except ImportError as e:  # pragma: no cover - data imports Pillow lazily
        raise ImportError("segmentation backgrounds need Pillow: pip install cnnkit[all]") from e
    if folder is None:
        try:
            import matplotlib
        except ImportError:
            raise ImportError("the default segmentation backgrounds are matplotlib's sample "
                              "photograph: pip install cnnkit[all], or pass a folder of "
                              "images") from None
        paths = [Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"]
    else:
        exts = {".png", ".jpg", ".jpeg", ".bmp"}
        paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in exts)
        if not paths:
            raise ValueError(f"load_backgrounds: no .png/.jpg/.bmp images in {folder}")
    return [load_image(p, color_mode="rgb").astype(np.float64) / 255.0 for p in paths]


def _crop(rng: np.random.Generator, photo: np.ndarray, split: str, size: int) -> np.ndarray:
    h, w, _ = photo.shape
    x0, x1 = (0, int(w * 0.6)) if split == "train" else (int(w * 0.6), w)
    side = int(rng.integers(48, min(160, x1 - x0, h) + 1))
    top = int(rng.integers(0, h - side + 1))
    left = int(rng.integers(x0, x1 - side + 1))
    crop = photo[top:top + side, left:left + side]
    out = _bilinear(crop, size)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return out


def _paint(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, digit: np.ndarray,
           label: int) -> None:
    size = image.shape[0]
    side = int(rng.integers(30, 45))
    m = _resize_matrix(28, side)
    v = np.clip(m @ digit @ m.T, 0, 1)
    stroke = v >= 0.5
    n_stroke = np.count_nonzero(stroke)
    for _ in range(20):  # a spot where at most 5% (1 in 20) of the strokes cover earlier digits
        # two scalar draws: the same numbers as integers(0, n, 2), in a quarter of the time
        top, left = int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))
        covered = np.count_nonzero(mask[top:top + side, left:left + side][stroke])
        if n_stroke and covered * 20 <= n_stroke:
            break
    else:
        return
    region = image[top:top + side, left:left + side]
    bright = region.mean() < 0.5  # paint light strokes on dark crops and dark on light
    colour = rng.uniform(0.75, 1.0, 3) if bright else rng.uniform(0.0, 0.25, 3)
    colour[int(rng.integers(3))] = rng.uniform(0, 1)  # some hue
    alpha = np.clip((v - 0.4) / 0.2, 0, 1)[..., None]
    region[...] = region * (1 - alpha) + colour * alpha
    mask[top:top + side, left:left + side][stroke] = label


def scene_sources(caller: str, seed: int | list[int], split: str, size: int,
                  backgrounds: list[np.ndarray] | None
                  ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.random.Generator]:
    """(photos, digits, labels, rng) of ``split`` for a scene generator, its arguments checked."""
    if split not in ("train", "test"):
        raise ValueError(f"{caller}: split must be 'train' or 'test', got {split!r}")
    if size < 48:
        raise ValueError(f"{caller}: size must be >= 48 pixels, got {size}")
    photos = load_backgrounds() if backgrounds is None else backgrounds
    (xt, yt), (xv, yv) = mnist5k.load_data()
    x, y = (xt, yt) if split == "train" else (xv, yv)
    return photos, x, y, np.random.default_rng(seed)


def make_scenes(n: int, seed: int | list[int], split: str = "train", size: int = 64,
                backgrounds: list[np.ndarray] | None = None, max_digits: int = 3
                ) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, size, size, 3), masks uint8 (n, size, size) of class ids), each
    scene with 1 to ``max_digits`` digits (fewer where no free spot is found)."""
    if int(max_digits) < 1:
        raise ValueError(f"make_scenes: max_digits must be >= 1, got {max_digits}")
    photos, x, y, rng = scene_sources("make_scenes", seed, split, size, backgrounds)
    images = np.zeros((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        img = _crop(rng, photos[int(rng.integers(len(photos)))], split, size)
        for _ in range(int(rng.integers(1, max_digits + 1))):
            j = int(rng.integers(len(x)))
            _paint(rng, img, masks[i], x[j] / 255.0, 1 + int(y[j]))
        img += rng.normal(0, 0.02, img.shape)
        images[i] = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    return images, masks


def augment_pair(images: np.ndarray, masks: np.ndarray, rng: np.random.Generator,
                 rotation: float = 10.0, zoom: tuple[float, float] = (0.9, 1.1),
                 translate: float = 0.1, brightness: float = 0.15,
                 permute_channels: bool = False, whole_pixels: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The same random affine warp (rotation in degrees, zoom, translation as a fraction of
    the size) applied to images (bilinear) and masks (nearest, so class ids stay ids), borders
    reflected in both; then a brightness change of the images only, and (``permute_channels``)
    a random order of their colour channels per image. ``whole_pixels`` rounds the shifts to
    whole pixels: with rotation 0 and zoom (1, 1) the warp then moves pixels without
    resampling, so image edges stay as sharp as the scenes' and stay on the mask's edges.
    Returns float32 images and masks of the masks' dtype."""
    images, masks = np.asarray(images), np.asarray(masks)
    if images.ndim != 4 or masks.shape != images.shape[:3]:
        raise ValueError(f"augment_pair expects images (N, H, W, C) and masks (N, H, W), got "
                         f"{images.shape} and {masks.shape}")
    n, h, w = masks.shape
    scale = rng.uniform(*zoom, n)
    angle = rng.uniform(-rotation, rotation, n)
    tx = rng.uniform(-translate, translate, n) * w
    ty = rng.uniform(-translate, translate, n) * h
    if whole_pixels:
        tx, ty = np.rint(tx), np.rint(ty)
    if whole_pixels and rotation == 0 and zoom == (1.0, 1.0):  # pure moves: gather pixels
        x, m = _shift(images.astype(np.float32), ty, tx), _shift(masks[..., None], ty, tx)
    else:
        fwd = affine_matrix(n, angle=angle, tx=tx, ty=ty, scale_x=scale, scale_y=scale)
        x = warp_forward(images.astype(np.float32), fwd, "bilinear", "reflect", 0.0)
        m = warp_forward(masks[..., None].astype(np.float32), fwd, "nearest", "reflect", 0.0)
    x = x * rng.uniform(1 - brightness, 1 + brightness, (n, 1, 1, 1)).astype(np.float32)
    if permute_channels:
        order = np.argsort(rng.random((n, x.shape[-1])), axis=1)
        x = np.stack([x[k][..., order[k]] for k in range(n)])  # 15x take_along_axis's speed
    return np.clip(x, 0, 255), np.rint(m[..., 0]).astype(masks.dtype)


def _shift(a: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """out[k, i, j] = a[k, f(i - dy[k]), f(j - dx[k])] for whole-pixel moves, f folding an
    index back in with the edge pixel repeated (-1 -> 0, n -> n - 1): the warp's "reflect"."""
    n, h, w = a.shape[:3]

    def fold(i: np.ndarray, size: int) -> np.ndarray:
        i = np.mod(i, 2 * size)
        return np.where(i < size, i, 2 * size - 1 - i)

    rows = fold(np.arange(h)[None, :] - dy.astype(np.int64)[:, None], h)
    cols = fold(np.arange(w)[None, :] - dx.astype(np.int64)[:, None], w)
    out = np.empty_like(a)
    for k in range(n):  # two 1-D takes per image: ~3x one 3-D fancy index
        np.take(np.take(a[k], rows[k], axis=0), cols[k], axis=1, out=out[k])
    return out
