"""Running a per-pixel classifier: label maps from logits, colour overlays, and a batch
transform for ``BatchIterator`` that augments images and masks together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .data import augment_pair

__all__ = ["ONE_PIXEL_SHIFTS", "predict_masks", "predict_probabilities",
           "masks_from_probabilities", "palette", "overlay", "pair_transform"]

ONE_PIXEL_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # the input and its 4 moves


def predict_masks(model: Any, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Class ids (N, H, W): the argmax over the last axis of the model's (N, H, W, C) output."""
    out = model.predict(np.asarray(images, np.float32), batch_size=batch_size)
    if out.ndim != 4 or out.shape[:3] != tuple(images.shape[:3]):
        raise ValueError(f"model '{getattr(model, 'name', model)}' outputs shape {out.shape}, "
                         f"not one score per class and pixel of the {images.shape[1:3]} images")
    return np.argmax(out, axis=-1)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def predict_probabilities(model: Any, images: np.ndarray, batch_size: int = 32,
                          shifts: Sequence[tuple[int, int]] = ((0, 0),)) -> np.ndarray:
    """Class probabilities (N, H, W, C): the softmax of the model's logits, averaged over
    whole-pixel shifts (dy, dx) of the input (test-time augmentation; borders reflected):
    P(i, j) = mean_s softmax(f(x moved by s))(i + dy_s, j + dx_s), edges repeated."""
    x = np.asarray(images, np.float32)
    n, h, w = x.shape[:3]
    r = max([abs(int(v)) for s in shifts for v in s] + [0])
    pad = np.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode="reflect")
    total = None
    for dy, dx in shifts:
        moved = pad[:, r - dy:r - dy + h, r - dx:r - dx + w]
        p = _softmax(model.predict(np.ascontiguousarray(moved), batch_size=batch_size))
        p = np.pad(p, ((0, 0), (r, r), (r, r), (0, 0)), mode="edge")
        p = p[:, r + dy:r + dy + h, r + dx:r + dx + w]
        total = p if total is None else total + p
    return total / len(shifts)


def masks_from_probabilities(probs: np.ndarray, background_below: float | None = None
                             ) -> np.ndarray:
    """Class ids (N, H, W) from probabilities (N, H, W, C): the argmax (None), or foreground
    where P(class 0) < ``background_below`` with the most probable of classes 1.. there."""
    probs = np.asarray(probs)
    if background_below is None:
        return np.argmax(probs, axis=-1)
    return np.where(probs[..., 0] < background_below, np.argmax(probs[..., 1:], axis=-1) + 1, 0)


def palette(n: int) -> np.ndarray:
    """(n, 3) uint8 colours: black for class 0, then well-separated hues (golden-ratio steps)."""
    h = (np.arange(n) * 0.618034) % 1.0
    k = (np.arange(3)[None, :] / 3.0 + h[:, None]) % 1.0
    rgb = np.clip(np.abs(k * 6 - 3) - 1, 0, 1) * 0.85 + 0.15  # saturated, never black
    out = np.round(rgb * 255).astype(np.uint8)
    out[0] = 0
    return out


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """RGB uint8 (H, W, 3): the image with every non-background pixel tinted by its class
    colour, (1 - alpha) image + alpha colour."""
    img = np.asarray(image, np.float64)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    if img.shape[:2] != mask.shape:
        raise ValueError(f"overlay: image {img.shape[:2]} and mask {mask.shape} differ in size")
    col = palette(int(mask.max()) + 1)[mask].astype(np.float64)
    fg = (mask > 0)[..., None]
    out = np.where(fg, (1 - alpha) * img + alpha * col, img)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def pair_transform(**kwargs: Any) -> Callable[[np.ndarray, Any, np.random.Generator], tuple]:
    """``BatchIterator(..., transform=pair_transform())``: augment_pair on every batch."""
    def transform(xb: np.ndarray, yb: Any, rng: np.random.Generator) -> tuple:
        return augment_pair(xb, yb, rng, **kwargs)

    return transform
