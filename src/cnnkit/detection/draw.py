"""Pictures of detections: boxes with class names and scores drawn onto an image, saved as a
PNG (Pillow: ``pip install cnnkit[images]``); written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..files import atomic_write

__all__ = ["draw_detections", "save_png"]

_COLOURS = [(255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 200, 0), (255, 64, 255),
            (0, 220, 220), (255, 140, 0), (160, 100, 255), (140, 255, 140), (255, 160, 160)]


def _pil() -> Any:
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise ImportError("drawing detections needs Pillow: pip install cnnkit[images]") from None
    return Image, ImageDraw, ImageFont


def draw_detections(image: np.ndarray, detections: dict, class_names: Sequence[str],
                    scale: int = 1, ground_truth: dict | None = None) -> np.ndarray:
    """RGB uint8 (H scale, W scale, 3): ``image`` (H, W) or (H, W, C) enlarged ``scale`` times,
    each detection's box in its class colour with "name score" above it; ground-truth boxes,
    if given, in thin white."""
    Image, ImageDraw, ImageFont = _pil()
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    pic = Image.fromarray(img.astype(np.uint8)).convert("RGB")
    if scale != 1:
        pic = pic.resize((pic.width * scale, pic.height * scale), Image.NEAREST)
    draw, font = ImageDraw.Draw(pic), ImageFont.load_default()
    if ground_truth is not None:
        for b in np.asarray(ground_truth["boxes"]).reshape(-1, 4):
            draw.rectangle([float(v) * scale for v in b], outline=(255, 255, 255), width=1)
    for b, s, c in zip(np.asarray(detections["boxes"]).reshape(-1, 4), detections["scores"],
                       detections["classes"], strict=True):
        colour = _COLOURS[int(c) % len(_COLOURS)]
        x1, y1, x2, y2 = (float(v) * scale for v in b)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        name = class_names[int(c)] if int(c) < len(class_names) else str(int(c))
        text = f"{name} {float(s):.2f}"
        tx, ty = x1, max(y1 - 11, 0)
        box = draw.textbbox((tx, ty), text, font=font)
        draw.rectangle(box, fill=colour)
        draw.text((tx, ty), text, fill=(0, 0, 0), font=font)
    return np.asarray(pic)


def save_png(path: Any, rgb: np.ndarray) -> None:
    """Write an RGB or grey uint8 array as a PNG, atomically."""
    Image, _, _ = _pil()
    with atomic_write(path) as f:
        Image.fromarray(np.asarray(rgb, np.uint8)).save(f, format="PNG")
