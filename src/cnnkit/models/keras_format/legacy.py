"""Keras 2's HDF5 layout (also what Keras 3 writes for ``model.save("x.h5")``): the
``model_config`` attribute holds the architecture as JSON, the ``model_weights`` group one
group per layer (listed by ``layer_names``) whose ``weight_names`` name its datasets, trainable
weights first. Attributes too large for one HDF5 header are split into ``name0``, ``name1``,
... by Keras 2; both are read, and cnnkit splits the same way when writing."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from .archive import KERAS_VERSION
from .errors import KerasFileError
from .h5read import H5Reader, h5py_module
from .tree import Entry, keras_weight_order
from .weights import assign

_ATTR_LIMIT = 64512  # bytes HDF5 keeps in one object header (Keras 2's HDF5_OBJECT_HEADER_LIMIT)


def _all_weights(e: Entry) -> list:
    if e.children is None:
        return keras_weight_order(e.layer)
    return [w for c in e.children for w in _all_weights(c)]


def _split(e: Entry) -> tuple[list, list]:
    """(trainable, other) weights in Keras's order for ``layer.trainable_weights`` etc."""
    if not e.layer.trainable:
        return [], _all_weights(e)
    if e.children is None:
        pairs = list(zip(e.layer._own_weights, e.layer._weight_trainable, strict=True))
        return [w for w, t in pairs if t], [w for w, t in pairs if not t]
    tr: list = []
    other: list = []
    for c in e.children:
        a, b = _split(c)
        tr += a
        other += b
    return tr, other


def legacy_weights(e: Entry) -> list:
    """A layer's weights in the order Keras 2 files list them."""
    if e.class_name == "Normalization":
        return []  # Keras keeps a given mean and variance in the config
    tr, other = _split(e)
    return tr + other


def _file_layers(reader: H5Reader, group: Any) -> list[tuple[str, list[np.ndarray]]]:
    names = reader.names(group, "layer_names")
    if names is None:
        raise KerasFileError(f"{reader.label}: {group.name} has no 'layer_names' attribute "
                             f"(not a Keras weights file)")
    out = []
    for name in names:
        g = reader.child(group, name, "group")
        if g is None:
            raise KerasFileError(f"{reader.label}: layer_names lists {name[:80]!r}, which the "
                                 f"file does not hold")
        values = []
        for wn in reader.names(g, "weight_names") or []:
            ds = g
            for part in wn.split("/"):
                ds = reader.child(ds, part, "any")
                if ds is None:
                    raise KerasFileError(f"{reader.label}: weight {wn[:80]!r} of layer "
                                         f"{name[:80]!r} is missing")
            if hasattr(ds, "keys"):
                raise KerasFileError(f"{reader.label}: weight {wn[:80]!r} is not a dataset")
            values.append(reader.read(ds))
        if values:
            out.append((name, values))
    return out


def read_legacy(reader: H5Reader, group: Any, entries: list[Entry], by_name: bool) -> None:
    """Assign weights from a Keras 2 layout: by layer name (a full-model file, whose config
    gave the names) or, as Keras 2's ``load_weights``, by the order of layers with weights."""
    targets = [e for e in entries if legacy_weights(e)]
    stored = _file_layers(reader, group)
    if by_name:
        table = {e.layer.name: e for e in entries}
        missing = {e.layer.name for e in targets} - {n for n, _ in stored}
        if missing:
            raise KerasFileError(f"{reader.label}: no weights for layer(s) {sorted(missing)[:5]}")
        pairs = []
        for n, v in stored:
            if n not in table:
                raise KerasFileError(f"{reader.label}: weights for layer {n[:80]!r}, which the "
                                     f"model does not have")
            pairs.append((table[n], v))
    else:
        if len(stored) != len(targets):
            raise KerasFileError(f"{reader.label} holds weights for {len(stored)} layers, the "
                                 f"model has {len(targets)} layers with weights")
        pairs = [(e, v) for e, (_, v) in zip(targets, stored, strict=True)]
    for e, values in pairs:
        where = f"{reader.label}: layer '{e.layer.name}'"
        if e.class_name == "Normalization":  # an adapted one: mean, variance, count
            assign(e.layer.weights, [v.reshape(-1) for v in values[:2]], where)
        else:
            assign(legacy_weights(e), values, where)


def _put_names(h5obj: Any, name: str, values: list[str]) -> None:
    if not values:
        h5obj.attrs[name] = np.array([])
        return
    data = np.array([v.encode("utf-8") for v in values])
    chunks = max(1, -(-data.nbytes // _ATTR_LIMIT))
    if chunks == 1:
        h5obj.attrs[name] = data
        return
    for i, part in enumerate(np.array_split(data, chunks)):
        h5obj.attrs[f"{name}{i}"] = part


def write_legacy(model_config: dict, entries: list[Entry]) -> bytes:
    """The bytes of a Keras 2-layout full-model .h5 file."""
    h5py = h5py_module()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        h5.attrs["keras_version"] = KERAS_VERSION
        h5.attrs["backend"] = "torch"
        h5.attrs["model_config"] = json.dumps(model_config)
        mw = h5.create_group("model_weights")
        _put_names(mw, "layer_names", [e.layer.name for e in entries])
        mw.attrs["backend"] = "torch"
        mw.attrs["keras_version"] = KERAS_VERSION
        for e in entries:
            g = mw.create_group(e.layer.name)
            ws = legacy_weights(e)
            _put_names(g, "weight_names", [w.name for w in ws])
            for w in ws:
                g.create_dataset(w.name, data=np.ascontiguousarray(w.data))
        _put_names(mw.create_group("top_level_model_weights"), "weight_names", [])
    return buf.getvalue()
