"""Model files: one zip archive of .npy arrays holding the architecture as JSON, the weights
and the optimizer state. Written to a temporary name, flushed to disk and renamed, so an
interrupted save never leaves a broken file. Nothing in a file can run code.

Reading trusts nothing: the archive may only hold ``__meta__.npy``, ``weights/<n>.npy`` and
``optimizer/<key>.npy``; only the members the model needs are read, each up to the size its
.npy header declares; the JSON is at most 16 MiB and 64 levels deep and checked field by
field; a config may only name known layer classes; the layers are built under a budget of
the parameter count the file stores, so a config cannot allocate what the file does not hold.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write
from ..npz import NpzArchive, NpzError
from . import sparse_store
from ._meta import check_compile, check_meta

FORMAT = "cnnkit-model"
VERSION = 2  # the newest this reads; 2 adds sparse weights (a dense file stays 1)
DENSE_VERSION = 1
MAX_META_BYTES = 16 << 20
# deflated members may inflate to at most this many times the file's size in total
MAX_RATIO = 16
_MEMBER = re.compile(r"__meta__\.npy|weights/\d{5,9}\.npy|optimizer/[\w./-]{1,200}\.npy|"
                     r"sparse/\d{5,9}/(mask|values)\.npy")


def _json_array(obj: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def _open_archive(path: Any, kind: str) -> tuple[dict, NpzArchive]:
    """The checked metadata and the open archive (the caller closes it)."""
    try:
        archive = NpzArchive(path, max_ratio=MAX_RATIO)
    except NpzError as e:
        raise NpzError(f"not a readable cnnkit {kind} file: {e}") from None
    try:
        meta = _read_meta(archive, Path(path), kind)
    except NpzError as e:
        archive.close()
        raise NpzError(f"{path} is not a readable cnnkit {kind} file: {e}") from None
    except BaseException:
        archive.close()
        raise
    return meta, archive


def _read_meta(archive: NpzArchive, path: Path, kind: str) -> dict:
    if "__meta__.npy" not in archive.members:
        raise NpzError(f"{path} is not a cnnkit {kind} file: it has no __meta__ entry")
    odd = [n for n in archive.members if not _MEMBER.fullmatch(n)]
    if odd:
        raise NpzError(f"{path} is not a cnnkit {kind} file: unknown member {odd[0]!r}")
    shape, dtype = archive.header("__meta__")
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_META_BYTES:
        raise NpzError(f"{path}: the __meta__ entry must be at most {MAX_META_BYTES} bytes of "
                       f"uint8 JSON, got shape {shape} of {dtype}")
    raw = archive.read("__meta__").tobytes()
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise NpzError(f"{path}: corrupted metadata in cnnkit {kind} file: "
                       f"{type(e).__name__}: {e}") from None
    return check_meta(meta, str(path), kind, FORMAT, VERSION)


def _weight_arrays(model: Any) -> dict[str, np.ndarray]:
    return {f"weights/{i:05d}": w.data for i, w in enumerate(model.weights)}


def save_weights(model: Any, path: Any) -> None:
    """Write only the weights (in ``model.weights`` order).

    Raises FileNotFoundError / NotADirectoryError / PermissionError when the folder is missing,
    not a folder or not writable (nothing is left behind)."""
    meta = {"format": FORMAT, "version": DENSE_VERSION, "kind": "weights",
            "weight_names": [w.name for w in model.weights]}
    _atomic_savez(Path(path), {"__meta__": _json_array(meta), **_weight_arrays(model)})


def _stored_shapes(archive: NpzArchive, meta: dict
                   ) -> list[tuple[tuple[int, ...], np.dtype, bool]]:
    """(shape, dtype, sparse?) of each stored weight, dense or sparse, in weight order."""
    sparse = sparse_store.declared(meta, archive.source)
    dense = {int(n[len("weights/"):-4]): n[:-4] for n in archive.members
             if n.startswith("weights/")}
    keys = sorted([*dense, *sparse])
    for i, k in enumerate(keys):
        if k != i or (k in dense and k in sparse):
            raise NpzError(f"{archive.source}: weight arrays are not numbered 0, 1, 2, ... "
                           f"once each: found weight {k} in place {i}")
    out = []
    for i in keys:
        if i in sparse:
            out.append((sparse[i], sparse_store.check_headers(archive, i, sparse[i]), True))
        else:
            out.append((*archive.header(dense[i]), False))
    return out


def _assign_weights(model: Any, archive: NpzArchive, stored: list, path: Any) -> None:
    ws = model.weights
    if len(stored) != len(ws):
        raise ValueError(f"{path} holds {len(stored)} weight arrays but model '{model.name}' has "
                         f"{len(ws)} weights")
    for w, (shape, _, _) in zip(ws, stored, strict=True):
        if shape != w.shape:
            raise ValueError(f"{path}: weight '{w.name}' has shape {w.shape} in the model but "
                             f"{shape} in the file")
    for i, (w, (shape, _, is_sparse)) in enumerate(zip(ws, stored, strict=True)):
        if is_sparse:
            w.data[...] = sparse_store.decode(archive, i, shape, w.dtype)
        else:
            w.data[...] = archive.read(f"weights/{i:05d}").astype(w.dtype, copy=False)


def load_weights(model: Any, path: Any) -> None:
    """Read weights written by ``save_weights`` or ``save`` into an identically built model.

    Raises FileNotFoundError / PermissionError / IsADirectoryError for the filesystem, and
    ValueError (naming the part) for a damaged or mismatched file; the model's weights are
    unchanged unless every stored shape matches."""
    meta, archive = _open_archive(path, "weights")
    try:
        _assign_weights(model, archive, _stored_shapes(archive, meta), path)
    finally:
        archive.close()


def _sparse_arrays(model: Any, meta: dict) -> dict[str, np.ndarray]:
    """Each weight as a bit mask + non-zero values where that is smaller, else dense."""
    arrays: dict[str, np.ndarray] = {}
    table: dict[str, list[int]] = {}
    for i, w in enumerate(model.weights):
        coded = sparse_store.encode(w.data)
        if coded is None:
            arrays[f"weights/{i:05d}"] = w.data
            continue
        arrays[sparse_store.mask_key(i)], arrays[sparse_store.values_key(i)] = coded
        table[str(i)] = list(w.shape)
    meta["sparse"] = table
    return arrays


def save_model(model: Any, path: Any, sparse: bool = False,
               include_optimizer: bool = True) -> None:
    """Architecture + weights + compile settings + optimizer state, in one file.

    ``sparse=True`` stores each mostly-zero weight as a bit mask and its non-zero values
    (what a magnitude-pruned model needs to be small on disk); it loads the same way.

    Raises FileNotFoundError / NotADirectoryError / PermissionError when the folder is missing,
    not a folder or not writable (nothing is left behind)."""
    from .serialization import serialize

    meta: dict[str, Any] = {"format": FORMAT, "version": VERSION if sparse else DENSE_VERSION,
                            "kind": "model",
                            "model": serialize(model), "seed": getattr(model, "seed", None)}
    arrays = _sparse_arrays(model, meta) if sparse else dict(_weight_arrays(model))
    if include_optimizer and getattr(model, "compiled", False):
        meta["compile"] = model._compile_config
        params = model.trainable_weights
        state = model.optimizer.get_state()
        meta["optimizer_state_keys"] = sorted(state)
        meta["n_trainable"] = len(params)
        for k, v in state.items():
            arrays[f"optimizer/{k}"] = np.asarray(v)
    arrays["__meta__"] = _json_array(meta)
    _atomic_savez(Path(path), arrays)


def _build(meta: dict, stored: list, path: Any) -> Any:
    """The model the config describes, built under a budget of the stored parameter count."""
    from ..layers.build_context import weight_budget
    from .serialization import deserialize

    budget = sum(math.prod(shape) for shape, _, _ in stored)
    try:
        with weight_budget(budget):
            model = deserialize(meta["model"])
    except MemoryError:
        raise
    except Exception as e:  # any failure while building from the file's config is the file's
        kind = "" if isinstance(e, ValueError) else f"{type(e).__name__}: "
        raise ValueError(f"{path}: the model architecture in the file is invalid: "
                         f"{kind}{e}") from None
    if model._build_shape is None and not model.built:
        raise ValueError(f"{path}: the saved model has no input shape, cannot rebuild it")
    return model


def _restore_compile(model: Any, meta: dict, archive: NpzArchive, path: Any) -> None:
    from ..train import losses as losses_mod
    from ..train import optimizers as opt_mod

    c = meta["compile"]
    loss = [losses_mod.get(lc) if lc is not None else None for lc in c["loss"]]
    model.compile(optimizer=opt_mod.get(c["optimizer"]),
                  loss=loss if len(loss) > 1 else loss[0], metrics=c.get("metrics"),
                  loss_weights=c.get("loss_weights"), seed=model.seed)
    keys = [n[len("optimizer/"):-4] for n in archive.members if n.startswith("optimizer/")]
    params = model.trainable_weights
    for k in keys:
        shape, _ = archive.header(f"optimizer/{k}")
        idx, _, slot = k.partition("/")
        want = params[int(idx)].shape if idx.isdigit() and int(idx) < len(params) \
            and slot != "step" else ()
        if shape != want:
            raise ValueError(f"optimizer state {k!r} has shape {shape}, expected {want}")
    if keys:
        state = {k: archive.read(f"optimizer/{k}") for k in keys}
        model.optimizer.build(params)
        model.optimizer.set_state(state)


def load_model(path: Any, compile: bool = True) -> Any:
    """Rebuild a model saved with ``model.save(path)``: same outputs, optimizer state and all.

    Raises FileNotFoundError / PermissionError / IsADirectoryError for the filesystem, and
    ValueError (naming the part that is wrong) for anything wrong with the file's contents.
    Keras's ``.keras`` archives and ``.h5`` files are read too (``models.keras_format``)."""
    from . import keras_format

    if keras_format.file_kind(path):
        return keras_format.load_model(path)
    meta, archive = _open_archive(path, "model")
    try:
        if meta["kind"] != "model":
            raise ValueError(f"{path} holds only weights; build the model and call "
                             f"load_weights")
        stored = _stored_shapes(archive, meta)
        model = _build(meta, stored, path)
        _assign_weights(model, archive, stored, path)
        if meta.get("seed") is not None:
            model.seed = meta["seed"]
        if compile and meta.get("compile"):
            check_compile(meta["compile"], str(path))
            try:
                _restore_compile(model, meta, archive, path)
            except (NpzError, MemoryError):
                raise
            except Exception as e:  # the file's compile settings or optimizer state
                raise ValueError(f"{path}: the compile settings or optimizer state in the file "
                                 f"are invalid: {type(e).__name__}: {e}") from None
    finally:
        archive.close()
    return model
