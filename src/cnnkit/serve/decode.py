"""Request bodies to model inputs: image files (raw bytes or multipart) and JSON arrays.

Images are read as ``cnnkit predict`` reads them: grayscale or RGB after the model's
channels, resized (bilinear) to its input size, as uint8 pixel values. JSON is either
``{"instances": [...]}`` or a bare array, shaped (N, H, W, C), (H, W, C), or (H, W) for a
one-channel model, in the model's own input scale. Every mistake raises
:class:`BadRequest` with one line saying what was expected and what came.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..data.files import ImageTooLarge, decode_image


class BadRequest(ValueError):
    """A malformed request (HTTP 400; ``status`` 413 for one over a size limit)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def image_array(data: bytes, shape: tuple, max_pixels: int, name: str = "the request body"
                ) -> np.ndarray:
    """(1, H, W, C) uint8 from image bytes, for a model taking (H, W, C) images."""
    h, w, c = shape
    if c not in (1, 3):
        raise BadRequest(f"this model takes {c}-channel inputs; send them as JSON arrays "
                         f"(images are read as grayscale or RGB)")
    if not data:
        raise BadRequest(f"{name} is empty (expected image bytes: PNG, JPEG, ... or JSON)")
    mode = "grayscale" if c == 1 else "rgb"
    try:
        size = (h, w) if h is not None and w is not None else None
        img = decode_image(data, size, mode, max_pixels=max_pixels, name=name)
        if size is None and (h is not None or w is not None):  # one free axis
            img = decode_image(data, (h or img.shape[0], w or img.shape[1]), mode,
                               max_pixels=max_pixels, name=name)
    except ImageTooLarge as e:
        raise BadRequest(str(e), 413) from None
    except (ValueError, OSError) as e:
        raise BadRequest(str(e)) from None
    return img[None]


def json_array(data: bytes, shape: tuple, max_instances: int) -> np.ndarray:
    """(N, H, W, C) float32 from a JSON body (see the module docstring)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise BadRequest(f"the body is not valid JSON: {e}") from None
    if isinstance(doc, dict):
        if "instances" not in doc:
            raise BadRequest(f"a JSON object body needs an 'instances' key, got keys "
                             f"{sorted(doc)[:5]}")
        doc = doc["instances"]
    try:
        arr = np.asarray(doc, dtype=np.float32)
    except (ValueError, TypeError, OverflowError) as e:
        raise BadRequest(f"'instances' must be a rectangular array of numbers: "
                         f"{str(e).splitlines()[0]}") from None
    return check_shape(arr, shape, max_instances)


def check_shape(arr: np.ndarray, shape: tuple, max_instances: int) -> np.ndarray:
    """arr as (N, *shape): one sample gets a batch axis, a missing channel axis of a
    one-channel model is added; a ValueError naming both shapes otherwise."""
    rank = len(shape)

    def fits(a: np.ndarray) -> bool:
        return a.ndim == rank + 1 and all(d is None or d == n for d, n in
                                          zip(shape, a.shape[1:], strict=True))

    tries = [arr, arr[None]]
    if shape[-1] == 1:  # a one-channel model also takes arrays without the channel axis
        tries += [arr[..., None], arr[None, ..., None]]
    found = next((t for t in tries if fits(t)), None)
    if found is None:
        want = ", ".join("any" if d is None else str(d) for d in shape)
        raise BadRequest(f"expected inputs of shape (N, {want}) or one sample, got an array "
                         f"of shape {arr.shape}")
    arr = found
    if len(arr) == 0:
        raise BadRequest("the request holds no instances")
    if len(arr) > max_instances:
        raise BadRequest(f"at most {max_instances} instances per request, got {len(arr)}", 413)
    if not np.all(np.isfinite(arr)):
        raise BadRequest("the inputs hold NaN or infinite values")
    return np.ascontiguousarray(arr)


def instances(content_type: str, body: bytes, form_files: list[tuple[str, bytes]] | None,
              shape: tuple, max_pixels: int, max_instances: int) -> np.ndarray:
    """The request's inputs as one (N, H, W, C) float32 array."""
    if form_files is not None:
        if not form_files:
            raise BadRequest("the multipart form holds no file (send images as file fields)")
        if len(form_files) > max_instances:
            raise BadRequest(f"at most {max_instances} images per request, got "
                             f"{len(form_files)}", 413)
        imgs = [image_array(data, shape, max_pixels, repr(name)) for name, data in form_files]
        if len({i.shape for i in imgs}) > 1:
            raise BadRequest("the images differ in size after resizing; this model takes any "
                             "size, so send one image per request")
        return np.concatenate(imgs).astype(np.float32)
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        return json_array(body, shape, max_instances)
    if len(shape) != 3:
        raise BadRequest(f"this model takes inputs of rank {len(shape)}, not images; send "
                         f"JSON arrays")
    return image_array(body, shape, max_pixels).astype(np.float32)


def parse_top_k(value: Any, default: int, classes: int) -> int:
    """The ``top_k`` query value as an integer in [1, classes]."""
    if value is None:
        return min(default, classes)
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"top_k must be an integer, got {value!r}") from None
    if k < 1:
        raise BadRequest(f"top_k must be >= 1, got {k}")
    return min(k, classes)
