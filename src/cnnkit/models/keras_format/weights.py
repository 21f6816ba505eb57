"""Weights in Keras's HDF5 layouts.

Keras 3 (``model.weights.h5`` inside a ``.keras``, and ``.weights.h5``): one group per layer,
``layers/<class>[_<n>]/vars/<i>``, nested models under their own ``layers/``; a layer's
variables in creation order, trainable ones first.

Keras 2 / legacy ``.h5``: a ``model_weights`` group (or the file's root for a weights-only
file) whose ``layer_names`` attribute lists one group per layer; each group's
``weight_names`` attribute lists its datasets, in the order trainable weights then the rest.
Both attributes may be split into ``layer_names0``, ``layer_names1``, ... (see h5read).
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from .errors import KerasFileError
from .h5read import H5Reader, h5py_module
from .tree import Entry, keras_weight_order, keyed

MAX_OBJECTS = 1_000_000


def stored_values(reader: H5Reader) -> int:
    """Number of values in every dataset of the file (shapes only: the build budget)."""
    total, seen = 0, 0
    stack = [reader.file]
    while stack:
        group = stack.pop()
        for name in reader.keys(group):
            seen += 1
            if seen > MAX_OBJECTS:
                raise KerasFileError(f"{reader.label} holds more than {MAX_OBJECTS} objects")
            obj = reader.child(group, name)
            if hasattr(obj, "keys"):
                stack.append(obj)
            else:
                total += math.prod(reader.dataset_info(obj)[0])
    return total


def assign(targets: list, values: list[np.ndarray], where: str) -> None:
    if len(values) != len(targets):
        raise KerasFileError(f"{where}: the file holds {len(values)} weights, the layer has "
                             f"{len(targets)}")
    for w, v in zip(targets, values, strict=True):
        if v.shape != w.shape:
            raise KerasFileError(f"{where}: weight '{w.name}' has shape {w.shape} in the "
                                 f"model but {v.shape} in the file")
    for w, v in zip(targets, values, strict=True):
        w.data[...] = v.astype(w.dtype, copy=False)


def _layer_values(reader: H5Reader, vars_group: Any) -> list[np.ndarray]:
    names = reader.keys(vars_group)
    if sorted(names) != sorted(str(i) for i in range(len(names))):
        raise KerasFileError(f"{reader.label}: {vars_group.name} must hold datasets 0, 1, ...; "
                             f"found {sorted(names)[:8]}")
    return [reader.read(reader.child(vars_group, str(i), "dataset"))
            for i in range(len(names))]


def _fit_keras_values(entry: Entry, values: list[np.ndarray]) -> list[np.ndarray]:
    """Keras's variables for layers whose set differs from cnnkit's."""
    layer = entry.layer
    if entry.class_name == "Normalization":
        if not values:  # mean and variance were in the config
            return [w.data for w in layer.weights]
        return [np.asarray(v).reshape(-1) for v in values[:2]]  # (drops Keras's count)
    return values


def read_v3(reader: H5Reader, entries: list[Entry], base: list[str]) -> None:
    """Assign every layer's weights from ``base/<key>/vars`` (recursing into models)."""
    for key, e in keyed(entries):
        where = f"{reader.label}: layer '{e.layer.name}' ({'/'.join([*base, key])})"
        if e.children is not None:
            read_v3(reader, e.children, [*base, key, "layers"])
            continue
        targets = keras_weight_order(e.layer)
        group = reader.path([*base, key, "vars"], "group")
        if group is None:
            if targets:
                raise KerasFileError(f"{where}: the file has no weights for it")
            continue
        values = _fit_keras_values(e, _layer_values(reader, group))
        assign(targets, values, where)


def _write_entries(h5: Any, entries: list[Entry], base: str) -> None:
    for key, e in keyed(entries):
        path = f"{base}/{key}"
        if e.children is not None:
            write_vars(h5, f"{path}/vars", e.layer.name, [])
            _write_entries(h5, e.children, f"{path}/layers")
            continue
        values = [] if e.class_name == "Normalization" else [
            w.data for w in keras_weight_order(e.layer)]
        write_vars(h5, f"{path}/vars", e.layer.name, values)


def write_vars(h5: Any, path: str, name: str, values: list[np.ndarray]) -> None:
    group = h5.create_group(path)
    group.attrs["name"] = name
    for i, v in enumerate(values):
        group.create_dataset(str(i), data=np.ascontiguousarray(v))


def write_v3(model: Any, entries: list[Entry]) -> bytes:
    """The bytes of a Keras 3 weights file for ``model`` laid out as ``entries``."""
    h5py = h5py_module()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        h5.create_group("layers")
        _write_entries(h5, entries, "layers")
        write_vars(h5, "vars", model.name, [])
    return buf.getvalue()
