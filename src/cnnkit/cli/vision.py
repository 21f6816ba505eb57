"""``cnnkit detect`` and ``cnnkit segment``: run a saved detector or segmenter on one image and
write a picture of the result (boxes with labels and scores, or the mask overlay)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from . import checks
from .commands import _read_image
from .errors import UsageError, about

MIN_SIDE = 256  # pictures are enlarged (nearest) until their shorter side reaches this


def _out_path(args: argparse.Namespace, suffix: str) -> Path:
    out = Path(args.out) if args.out else Path(Path(args.image).stem + suffix)
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give a .png file name")
    if not out.parent.exists() or not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist")
    return out


def _model_image(args: argparse.Namespace, model: Any) -> tuple[np.ndarray, np.ndarray]:
    """(the image at the model's input size, the image at its own size)."""
    h, w, c = checks.image_input(model, args.model)
    if c not in (1, 3):
        raise UsageError(f"{args.model}: model '{model.name}' expects {c}-channel images; "
                         f"images are read as grayscale (1) or RGB (3)")
    small = _read_image(args.image, h, w, c)
    full = _read_image(args.image, None, None, c)
    if getattr(args, "invert", False) and c == 1:
        small, full = 255 - small, 255 - full
    return small, full


def _scale_for(shape: tuple) -> int:
    return max(1, int(np.ceil(MIN_SIDE / max(1, min(shape[:2])))))


def cmd_detect(args: argparse.Namespace) -> int:
    from ..detection import detect, find_head
    from ..detection.draw import draw_detections, save_png

    out = _out_path(args, "_detections.png")
    model = checks.load_trained(args.model)
    try:
        head = find_head(model)
    except ValueError as e:
        raise UsageError(f"{args.model}: {e}") from None
    small, full = _model_image(args, model)
    with about(f"{args.image} in model '{model.name}'"):
        det = detect(model, small[None], args.score_threshold, args.iou_threshold,
                     soft=args.soft_nms)[0]
    fy, fx = full.shape[0] / small.shape[0], full.shape[1] / small.shape[1]
    det["boxes"] = det["boxes"] * np.array([fx, fy, fx, fy])
    for b, s, k in zip(det["boxes"], det["scores"], det["classes"], strict=True):
        print(f"{head.class_names[int(k)]} {s:.3f} box {' '.join(f'{v:.1f}' for v in b)}")
    print(f"{len(det['scores'])} detections (score >= {args.score_threshold})")
    with about(f"--out {out}"):
        save_png(out, draw_detections(full, det, head.class_names, _scale_for(full.shape)))
    print(f"wrote {out}")
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    from ..detection.draw import save_png
    from ..segmentation import (
        ONE_PIXEL_SHIFTS,
        masks_from_probabilities,
        overlay,
        predict_probabilities,
    )

    out = _out_path(args, "_mask.png")
    model = checks.load_trained(args.model)
    shape = getattr(model, "output_shape", None)
    if not isinstance(shape, tuple) or len(shape) != 4:
        raise UsageError(f"{args.model}: model '{model.name}' outputs shape {shape}, not one "
                         f"score per class and pixel (N, H, W, classes): not a segmenter")
    small, _ = _model_image(args, model)
    shifts = ONE_PIXEL_SHIFTS if args.tta else ((0, 0),)
    with about(f"{args.image} in model '{model.name}'"):
        probs = predict_probabilities(model, small[None], shifts=shifts)
        mask = masks_from_probabilities(probs, args.background_below)[0]
    counts = np.bincount(mask.ravel(), minlength=shape[-1])
    found = [f"class {k}: {n} px" for k, n in enumerate(counts) if n and k > 0]
    print(", ".join(found) if found else "no foreground pixels")
    s = _scale_for(small.shape)
    pic = overlay(np.repeat(np.repeat(small, s, 0), s, 1), np.kron(mask, np.ones((s, s), int)),
                  args.alpha)
    with about(f"--out {out}"):
        save_png(out, pic)
    print(f"wrote {out}")
    return 0
