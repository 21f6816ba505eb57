"""Keras's own files: ``.keras`` archives (Keras 3), full-model ``.h5`` files (Keras 2, and
Keras 3's legacy writer) and ``.weights.h5`` weight files, read into cnnkit models and written
from them so that Keras loads them. ``h5py`` is needed (``pip install 'cnnkit[keras]'``).

Nothing in a file runs: configs may name only Keras's built-in layers that cnnkit has (a
Lambda or a custom class is refused by name), HDF5 links to other files and data stored
outside the file are refused, and every array's size is checked against the file's before it
is read.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from ...npz import ZIP_ERRORS
from .errors import KerasFileError

__all__ = ["KerasFileError", "file_kind", "load_model", "save_model", "load_weights",
           "save_weights"]

_H5_SUFFIXES = (".h5", ".hdf5")
CONFIG_VALUES = 1 << 20  # weight values a model may build beyond those the file stores


def file_kind(path: Any, suffix_only: bool = False) -> str | None:
    """"keras" (a Keras 3 archive), "h5" (HDF5) or None (cnnkit's own format), from the
    file's first bytes (or its name when it does not exist yet or cannot be told)."""
    name = str(path).lower()
    by_name = "keras" if name.endswith(".keras") else "h5" if name.endswith(
        _H5_SUFFIXES) else None
    if suffix_only:
        return by_name
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if head == b"\x89HDF\r\n\x1a\n":
                return "h5"
            if head[:4] == b"PK\x03\x04":
                names = set(zipfile.ZipFile(f).namelist())
                if "__meta__.npy" in names:
                    return None
                if "config.json" in names:
                    return "keras"
    except ZIP_ERRORS:  # unreadable: the name decides, and the reader reports
        pass
    return by_name


def load_model(path: Any) -> Any:
    """The cnnkit model a ``.keras`` or Keras ``.h5`` file describes, with its weights."""
    from ...layers.build_context import weight_budget
    from .archive import parse_json, read_archive
    from .graph_in import build
    from .h5read import H5Reader
    from .legacy import read_legacy
    from .weights import read_v3, stored_values

    label = str(path)
    if file_kind(path) == "keras":
        config, weights = read_archive(path)
        reader = H5Reader(None, f"{label}: model.weights.h5", data=weights)
    else:
        config, reader = None, H5Reader(path, label)
    with reader:
        if config is None:
            text = reader.text(reader.file, "model_config")
            if text is None:
                raise KerasFileError(f"{label} holds weights only (no model_config): build "
                                     f"the model and call model.load_weights")
            config = parse_json(text, f"{label}: model_config")
            legacy = True
        else:
            legacy = False
        # (a Normalization given its mean in the config makes weights the file does not store)
        with weight_budget(stored_values(reader) + CONFIG_VALUES):
            top = build(config, label)
        if top.children is None:
            raise KerasFileError(f"{label} holds a single layer, not a model")
        if legacy:
            group = reader.path(["model_weights"], "group")
            read_legacy(reader, group if group is not None else reader.file, top.children,
                        by_name=True)
        else:
            read_v3(reader, top.children, ["layers"])
    return top.layer


def load_weights(model: Any, path: Any) -> None:
    """Keras weights (``.weights.h5`` of Keras 3, or a Keras 2 / legacy ``.h5``) into a cnnkit
    model built like the one saved; on any error the model's weights are unchanged."""
    from .h5read import H5Reader
    from .legacy import read_legacy
    from .tree import model_tree
    from .weights import read_v3

    entries = model_tree(model)
    before = [w.data.copy() for w in model.weights]
    try:
        with H5Reader(path, str(path)) as reader:
            group = reader.path(["model_weights"], "group")
            if group is not None or reader.names(reader.file, "layer_names") is not None:
                read_legacy(reader, group if group is not None else reader.file, entries,
                            by_name=False)
            else:
                read_v3(reader, entries, ["layers"])
    except BaseException:
        for w, v in zip(model.weights, before, strict=True):
            w.data[...] = v
        raise


def _top(model: Any) -> Any:
    from ..serialization import layer_class
    from .tree import Entry, model_tree

    kind = "Sequential" if isinstance(model, layer_class("Sequential")) else "Functional"
    return Entry(model, kind, model_tree(model))


def save_model(model: Any, path: Any) -> None:
    """``.keras``: a Keras 3 archive; ``.h5``: Keras's legacy full-model file (no optimizer
    state: keep ``.cnnkit`` for resuming training)."""
    from ...files import atomic_write
    from .archive import write_archive
    from .graph_out import entry_config, legacy_config
    from .legacy import write_legacy
    from .weights import write_v3

    top = _top(model)
    config = entry_config(top)
    if file_kind(path, suffix_only=True) == "keras":
        write_archive(path, config, write_v3(model, top.children))
        return
    data = write_legacy(legacy_config(config), top.children)
    with atomic_write(Path(path)) as f:
        f.write(data)


def save_weights(model: Any, path: Any) -> None:
    """A Keras 3 ``.weights.h5`` file (what ``keras.Model.load_weights`` reads)."""
    from ...files import atomic_write
    from .weights import write_v3

    top = _top(model)
    data = write_v3(model, top.children)
    with atomic_write(Path(path)) as f:
        f.write(data)
