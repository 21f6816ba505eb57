"""The int8 model file: a ``.cnnkit`` zip of .npy arrays, like a model file, holding

- ``__meta__``: JSON: the float model's architecture, the quantization options, every
  calibrated range (value slot, lo, hi) and the integer layers (plan step index, layer name,
  kind);
- ``int8/<i>_w``: an integer layer's int8 weights, ``int8/<i>_s`` its float32 per-channel
  scales, ``int8/<i>_b`` its folded float32 bias (when it has one);
- ``weights/<n>``: the float weights of the layers that stay in float (index n in
  ``model.weights``); the float weights of integer layers (and of the batch norms folded
  into them) are not stored.

Reading trusts nothing: only these members, each read up to its .npy header's size
(:class:`cnnkit.npz.NpzArchive`), the JSON checked field by field, the architecture built
under a parameter budget bounded by what the file stores, every array's dtype and shape
checked against the layer it belongs to. Every problem raises ValueError.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write
from ..npz import NpzArchive, NpzError
from .int8_graph import IntWeights

__all__ = ["FORMAT", "save_quantized", "load_quantized", "is_int8_file"]

FORMAT = "cnnkit-int8-model"
VERSION = 1
MAX_META_BYTES = 16 << 20
_MEMBER = re.compile(r"__meta__\.npy|weights/\d{5,9}\.npy|int8/\d{5,9}_[wsb]\.npy")


def _layer_weights(step: Any) -> list[Any]:
    return [w for layer in (step.layer, getattr(step, "affine", None)) if layer is not None
            for w in layer.weights]


def save_quantized(q: Any, path: Any) -> None:
    """Write QuantizedModel ``q`` (module docstring); atomic."""
    from ..models.serialization import serialize

    steps = q.float_plan.steps
    int_layers, arrays, folded = [], {}, set()
    for i in sorted(q.graph.weights):
        w: IntWeights = q.graph.weights[i]
        step = steps[i].step
        int_layers.append([i, step.layer.name, q.graph.kinds[i]])
        arrays[f"int8/{i:05d}_w"] = w.wq
        arrays[f"int8/{i:05d}_s"] = w.scale.astype(np.float32)
        if w.bias is not None:
            arrays[f"int8/{i:05d}_b"] = w.bias.astype(np.float32)
        folded.update(id(v) for v in _layer_weights(step))
    kept = [n for n, v in enumerate(q.model.weights) if id(v) not in folded]
    for n in kept:
        arrays[f"weights/{n:05d}"] = q.model.weights[n].data
    meta = {"format": FORMAT, "version": VERSION, "kind": "model",
            "model": serialize(q.model), "options": q.options,
            "ranges": [[int(s), float(lo), float(hi)] for s, (lo, hi) in sorted(q.ranges.items())],
            "int_layers": int_layers, "float_weights": kept}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    with atomic_write(Path(path)) as f:
        np.savez(f, **arrays)


def is_int8_file(path: Any) -> bool:
    """Whether ``path`` is a ``.cnnkit`` archive whose metadata names the int8 format (False
    for any other file, readable or not: the reader that follows gives the error)."""
    try:
        with NpzArchive(path, max_ratio=16) as archive:
            if "__meta__.npy" not in archive.members:
                return False
            shape, dtype = archive.header("__meta__")
            if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_META_BYTES:
                return False
            meta = json.loads(archive.read("__meta__").tobytes().decode("utf-8"))
    except (NpzError, OSError, ValueError, RecursionError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def _fail(path: Any, what: str) -> ValueError:
    return ValueError(f"{path}: not a readable cnnkit int8 model file: {what}")


def _read_meta(archive: NpzArchive, path: Any) -> dict:
    from ..models._meta import check_meta

    odd = [n for n in archive.members if not _MEMBER.fullmatch(n)]
    if odd or "__meta__.npy" not in archive.members:
        raise _fail(path, f"unknown member {odd[0]!r}" if odd else "no __meta__ entry")
    shape, dtype = archive.header("__meta__")
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_META_BYTES:
        raise _fail(path, "the __meta__ entry must be uint8 JSON of at most 16 MiB")
    try:
        meta = json.loads(archive.read("__meta__").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _fail(path, f"corrupted metadata ({type(e).__name__})") from None
    meta = check_meta(meta, str(path), "int8 model", FORMAT, VERSION)
    _check_fields(meta, path)
    return meta


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_fields(meta: dict, path: Any) -> None:
    opts = meta.get("options")
    if not isinstance(opts, dict) or opts.get("activations") not in ("uint8", "int8") or \
            not isinstance(opts.get("per_channel"), bool) or \
            not isinstance(opts.get("keep_float", []), list) or \
            opts.get("weight_bits", 8) not in (7, 8) or isinstance(opts.get("weight_bits"), bool):
        raise _fail(path, "'options' must give activations, per_channel, keep_float and "
                          "weight_bits 7 or 8")
    ranges = meta.get("ranges")
    if not isinstance(ranges, list) or not all(
            isinstance(r, list) and len(r) == 3 and _is_int(r[0]) and r[0] >= 0 and
            all(isinstance(v, (int, float)) and math.isfinite(v) for v in r[1:])
            for r in ranges):
        raise _fail(path, "'ranges' must be [slot, lo, hi] triples of finite numbers")
    layers = meta.get("int_layers")
    if not isinstance(layers, list) or not all(
            isinstance(r, list) and len(r) == 3 and _is_int(r[0]) and isinstance(r[1], str)
            and r[2] in ("conv", "depthwise", "dense") for r in layers):
        raise _fail(path, "'int_layers' must be [step index, layer name, kind] triples")
    kept = meta.get("float_weights")
    if not isinstance(kept, list) or not all(_is_int(n) and n >= 0 for n in kept):
        raise _fail(path, "'float_weights' must be a list of weight indices")


def _read(archive: NpzArchive, key: str, dtype: Any, shape: tuple, path: Any) -> np.ndarray:
    if f"{key}.npy" not in archive.members:
        raise _fail(path, f"missing array {key!r}")
    got_shape, got_dtype = archive.header(key)
    if got_dtype != np.dtype(dtype) or tuple(got_shape) != tuple(shape):
        raise _fail(path, f"{key!r} is {got_dtype} {tuple(got_shape)}, expected "
                          f"{np.dtype(dtype)} {tuple(shape)}")
    return archive.read(key)


def _build_model(meta: dict, archive: NpzArchive, path: Any) -> Any:
    from ..layers.build_context import weight_budget
    from ..models.serialization import deserialize

    stored = sum(math.prod(archive.header(n[:-4])[0]) for n in archive.members
                 if n != "__meta__.npy")
    try:
        # folded batch norms (4 values per stored bias value) are rebuilt but not stored
        with weight_budget(5 * stored + 1024):
            model = deserialize(meta["model"])
    except MemoryError:
        raise
    except Exception as e:  # anything wrong in the file's architecture is the file's
        raise _fail(path, f"invalid architecture: {type(e).__name__}: {e}") from None
    ws = model.weights
    for n in meta["float_weights"]:
        if n >= len(ws):
            raise _fail(path, f"float weight {n} but the model has {len(ws)} weights")
        ws[n].data[...] = _read(archive, f"weights/{n:05d}", ws[n].dtype, ws[n].shape, path)
    return model


def _expected_shape(step: Any, kind: str) -> tuple:
    shape = tuple(step.layer.kernel.shape)
    return shape[:3] if kind == "depthwise" else ((1, 1, *shape) if kind == "dense" else shape)


def load_quantized(path: Any, make: Callable[..., Any]) -> Any:
    """make(model, ranges, options, weights=...) for the float model, calibrated ranges,
    options and integer weights a file written by :func:`save_quantized` holds (the
    QuantizedModel constructor)."""
    try:
        archive = NpzArchive(path, max_ratio=16)
    except NpzError as e:
        raise _fail(path, str(e)) from None
    with archive:
        meta = _read_meta(archive, path)
        model = _build_model(meta, archive, path)
        table = {r[0]: (r[1], r[2]) for r in meta["int_layers"]}

        def from_file(i: int, step: Any, kind: str) -> IntWeights:
            if table.get(i) != (step.layer.name, kind):
                raise _fail(path, f"integer layer {step.layer.name!r} ({kind}) at step {i} is "
                                  f"not the one the file stores ({table.get(i)})")
            shape = _expected_shape(step, kind)
            wq = _read(archive, f"int8/{i:05d}_w", np.int8, shape, path)
            scale = _read(archive, f"int8/{i:05d}_s", np.float32, shape[-1:], path)
            has_bias = f"int8/{i:05d}_b.npy" in archive.members
            bias = _read(archive, f"int8/{i:05d}_b", np.float32, shape[-1:], path) \
                if has_bias else None
            return IntWeights(wq, scale, bias)

        ranges = {int(s): (float(lo), float(hi)) for s, lo, hi in meta["ranges"]}
        try:
            q = make(model, ranges, meta["options"], weights=from_file)
        except NpzError:
            raise
        except (KeyError, TypeError) as e:
            raise _fail(path, f"{type(e).__name__}: {e}") from None
    return q
