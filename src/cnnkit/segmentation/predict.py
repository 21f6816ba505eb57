"""Running a per-pixel classifier: label maps from logits, colour overlays, and a batch
transform for ``BatchIterator`` that augments images and masks together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .data import augment_pair

__all__ = ["predict_masks", "palette", "overlay", "pair_transform"]


def predict_masks(model: Any, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Class ids (N, H, W): the argmax over the last axis of the model's (N, H, W, C) output."""
    out = model.predict(np.asarray(images, np.float32), batch_size=batch_size)
    if out.ndim != 4 or out.shape[:3] != tuple(images.shape[:3]):
        raise ValueError(f"model '{getattr(model, 'name', model)}' outputs shape {out.shape}, "
                         f"not one score per class and pixel of the {images.shape[1:3]} images")
    return np.argmax(out, axis=-1)


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
