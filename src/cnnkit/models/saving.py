"""Model files: one zip archive of .npy arrays (read with allow_pickle=False) holding the
architecture as JSON, the weights, and the optimizer state. Written to a temporary name and
renamed, so an interrupted save never leaves a broken file. Nothing in a file can run code."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write

FORMAT = "cnnkit-model"
VERSION = 1


def _json_array(obj: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def _read_archive(path: Any, kind: str) -> tuple[dict, dict[str, np.ndarray]]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such {kind} file: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise ValueError(f"{path} is not a readable cnnkit {kind} file (truncated, corrupted "
                         f"or another format): {e}") from None
    if "__meta__" not in arrays:
        raise ValueError(f"{path} is not a cnnkit {kind} file: it has no __meta__ entry")
    try:
        meta = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: corrupted metadata in cnnkit {kind} file: {e}") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a cnnkit {kind} file (format {meta.get('format')!r})")
    if meta.get("version", 0) > VERSION:
        raise ValueError(f"{path} was written by a newer cnnkit (file version "
                         f"{meta['version']}, this cnnkit reads up to {VERSION})")
    return meta, arrays


def _weight_arrays(model: Any) -> dict[str, np.ndarray]:
    return {f"weights/{i:05d}": w.data for i, w in enumerate(model.weights)}


def save_weights(model: Any, path: Any) -> None:
    """Write only the weights (in ``model.weights`` order)."""
    meta = {"format": FORMAT, "version": VERSION, "kind": "weights",
            "weight_names": [w.name for w in model.weights]}
    _atomic_savez(Path(path), {"__meta__": _json_array(meta), **_weight_arrays(model)})


def _assign_weights(model: Any, arrays: dict[str, np.ndarray], path: Any) -> None:
    keys = sorted(k for k in arrays if k.startswith("weights/"))
    ws = model.weights
    if len(keys) != len(ws):
        raise ValueError(f"{path} holds {len(keys)} weight arrays but model '{model.name}' has "
                         f"{len(ws)} weights")
    for w, k in zip(ws, keys, strict=True):
        a = arrays[k]
        if a.shape != w.shape:
            raise ValueError(f"{path}: weight '{w.name}' has shape {w.shape} in the model but "
                             f"{a.shape} in the file")
    for w, k in zip(ws, keys, strict=True):
        w.data[...] = arrays[k].astype(w.dtype)


def load_weights(model: Any, path: Any) -> None:
    """Read weights written by ``save_weights`` or ``save`` into an identically built model."""
    _, arrays = _read_archive(path, "weights")
    _assign_weights(model, arrays, path)


def save_model(model: Any, path: Any) -> None:
    """Architecture + weights + compile settings + optimizer state, in one file."""
    from .serialization import serialize

    meta: dict[str, Any] = {"format": FORMAT, "version": VERSION, "kind": "model",
                            "model": serialize(model), "seed": getattr(model, "seed", None)}
    arrays: dict[str, np.ndarray] = dict(_weight_arrays(model))
    if getattr(model, "compiled", False):
        meta["compile"] = model._compile_config
        params = model.trainable_weights
        state = model.optimizer.get_state()
        meta["optimizer_state_keys"] = sorted(state)
        meta["n_trainable"] = len(params)
        for k, v in state.items():
            arrays[f"optimizer/{k}"] = np.asarray(v)
    arrays["__meta__"] = _json_array(meta)
    _atomic_savez(Path(path), arrays)


def load_model(path: Any, compile: bool = True) -> Any:
    """Rebuild a model saved with ``model.save(path)``: same outputs, optimizer state and all."""
    from ..train import losses as losses_mod
    from ..train import optimizers as opt_mod
    from .serialization import deserialize

    meta, arrays = _read_archive(path, "model")
    if meta.get("kind") != "model":
        raise ValueError(f"{path} holds only weights; build the model and call load_weights")
    try:
        model = deserialize(meta["model"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: the model architecture in the file is invalid: {e}") from None
    if model._build_shape is None and not model.built:
        raise ValueError(f"{path}: the saved model has no input shape, cannot rebuild it")
    _assign_weights(model, arrays, path)
    if meta.get("seed") is not None:
        model.seed = int(meta["seed"])
    if compile and meta.get("compile"):
        c = meta["compile"]
        loss_cfgs = c["loss"]
        loss = [losses_mod.get(lc) if lc is not None else None for lc in loss_cfgs]
        model.compile(optimizer=opt_mod.get(c["optimizer"]),
                      loss=loss if len(loss) > 1 else loss[0], metrics=c.get("metrics"),
                      loss_weights=c.get("loss_weights"), seed=model.seed)
        state = {k[len("optimizer/"):]: v for k, v in arrays.items()
                 if k.startswith("optimizer/")}
        if state:
            model.optimizer.build(model.trainable_weights)
            model.optimizer.set_state(state)
    return model
