"""Checks made before any work starts: model files, a model's input shape against the data,
architectures built by shape inference alone (no weight memory), and output folders."""

from __future__ import annotations

import inspect
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..layers.build_context import shapes_only
from .errors import UsageError, about


def fmt_shape(shape: Any) -> str:
    """(28, 28, 1) -> '28x28x1'; an unknown size prints as 'any'."""
    return "x".join("any" if d is None else str(d) for d in shape)


# ----- saved models --------------------------------------------------------------------------
def load_trained(path: str) -> Any:
    """The model saved in ``path`` (``.cnnkit``, or an ONNX model ``.onnx`` built into cnnkit
    layers); one-line errors for a missing, wrong or damaged file."""
    from ..models import load_model

    p = Path(path)
    if not p.exists():
        raise UsageError(f"model file not found: {path}")
    if p.is_dir():
        raise UsageError(f"model file {path} is a directory, not a .cnnkit file")
    with about(path):
        if p.suffix.lower() == ".onnx":
            from ..io import load_onnx

            return load_onnx(p)
        from ..deploy.int8_file import is_int8_file

        if is_int8_file(p):  # an int8 model (cnnkit quantize) predicts and evaluates too
            from ..deploy import load_quantized

            return load_quantized(p)
        return load_model(p, compile=False)


def channels_first(model: Any) -> bool:
    """Whether the model takes images as (N, C, H, W): an NCHW ONNX model."""
    return getattr(model, "input_layout", None) == "NCHW"


def image_input(model: Any, where: str) -> tuple:
    """(H, W, C) the model takes (H or W None for any size); a UsageError unless the model
    takes one batch of images ((N, C, H, W) for an NCHW ONNX model)."""
    shape = getattr(model, "input_shape", None)
    if not isinstance(shape, tuple) or len(shape) != 4:
        layout = "(N, C, H, W)" if channels_first(model) else "(N, H, W, C)"
        raise UsageError(f"{where}: model '{model.name}' takes input of shape {shape}, not one "
                         f"batch of images {layout}")
    if channels_first(model):
        return (shape[2], shape[3], shape[1])
    return tuple(shape[1:])


def class_count(model: Any, where: str) -> int:
    """Number of classes the model scores; a UsageError unless its output is (N, classes)."""
    out = getattr(model, "output_shape", None)
    if not isinstance(out, tuple) or len(out) != 2 or out[1] is None:
        raise UsageError(f"{where}: model '{model.name}' outputs shape {out}, not one score "
                         f"per class: it is not an image classifier")
    return int(out[1])


def check_fits(model_shape: tuple, data_shape: tuple, model_name: str, dataset: str,
               where: str) -> None:
    """The model's (H, W, C) against the data's: channels equal, sizes equal or free."""
    ok = len(model_shape) == len(data_shape) and all(
        m is None or m == d for m, d in zip(model_shape, data_shape, strict=True))
    if not ok:
        raise UsageError(f"{where}: model '{model_name}' expects {fmt_shape(model_shape)} "
                         f"images, data set {dataset!r} has {fmt_shape(data_shape)}")


# ----- architectures from the zoo ------------------------------------------------------------
def _builder_args(name: str, input_shape: tuple | None, classes: int | None,
                  purpose: str, extra: dict | None = None) -> tuple[Any, dict]:
    from .. import zoo

    with about(purpose):
        fn = zoo.builder(name)
    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {}
    if input_shape is not None:
        if "input_shape" not in params:
            raise UsageError(f"{purpose}: architecture {name!r} is not an image model (it "
                             f"takes no input shape; its options: {', '.join(params)})")
        default = params["input_shape"].default
        if isinstance(default, tuple) and len(input_shape) != len(default):
            raise UsageError(f"{purpose}: architecture {name!r} takes an input shape of "
                             f"{len(default)} numbers (height width channels, e.g. "
                             f"{' '.join(map(str, default))}), got {len(input_shape)}")
        kwargs["input_shape"] = tuple(input_shape)
    if classes is not None:
        if "classes" not in params:
            raise UsageError(f"{purpose}: architecture {name!r} is not a classifier (it takes "
                             f"no number of classes)")
        kwargs["classes"] = int(classes)
    for key, value in (extra or {}).items():
        if key not in params:
            raise UsageError(f"{purpose}: architecture {name!r} takes no {key!r} option (its "
                             f"options: {', '.join(params)})")
        kwargs[key] = value
    return fn, kwargs


def build_arch(name: str, input_shape: tuple | None, classes: int | None, purpose: str,
               allocate: bool = True, extra: dict | None = None) -> Any:
    """The zoo architecture ``name``; first built by shape inference alone, so an input too
    small for it or too big for memory is reported before memory is spent. With
    ``allocate=False`` that weightless model is returned (enough for a summary)."""
    fn, kwargs = _builder_args(name, input_shape, classes, purpose, extra)
    what = f"{purpose}: architecture {name!r}"
    if input_shape is not None:
        what += f" cannot take {fmt_shape(input_shape)} input"
    with about(what), shapes_only():
        dry = fn(**kwargs)
    if not allocate:
        return dry
    check_memory(dry, purpose)
    with about(what):
        return fn(**kwargs)


def memory_bytes() -> int | None:
    """Physical memory of this machine, or None where the system does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(model: Any, purpose: str, budget: int | None = None, copies: int = 4) -> None:
    """Training keeps about ``copies`` arrays per weight (weights, gradients, two optimizer
    moments): that must fit in half of the memory (``budget`` bytes)."""
    budget = budget if budget is not None else (memory_bytes() or 0) // 2
    need = sum(math.prod(w.shape) * np.dtype(w.dtype).itemsize for w in model.weights) * copies
    if budget and need > budget:
        raise UsageError(f"{purpose}: model '{model.name}' has "
                         f"{sum(math.prod(w.shape) for w in model.weights):,} parameters; "
                         f"training it needs about {need / 2**30:,.1f} GiB, more than "
                         f"{budget / 2**30:,.1f} GiB (half this machine's memory)")


# ----- output folders ------------------------------------------------------------------------
def check_out_dir(path: Path, option: str = "--out") -> None:
    """``path`` can become our output folder: not a file, under a writable folder. Nothing
    is created yet, so a mistake found later leaves no empty folder behind."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is a file, not a folder")
    try:  # a trial folder, removed at once: the only test that read-only mounts cannot fool
        os.rmdir(tempfile.mkdtemp(prefix=".cnnkit-check-", dir=existing))
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write in {existing} ({e.strerror or e})"
                         ) from None


def make_out_dir(path: Path, option: str = "--out") -> Path:
    """Create the output folder (checked by :func:`check_out_dir`)."""
    with about(f"{option} {path}"):
        path.mkdir(parents=True, exist_ok=True)
    return path
