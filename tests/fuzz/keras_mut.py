"""Mutations that understand Keras files: the ``config.json`` of a ``.keras`` archive edited
(JSON node changes, a class renamed to ``Lambda`` or a custom one), and Keras 2 / legacy
``.h5`` files whose ``model_config`` attribute is edited the same way."""

from __future__ import annotations

import io
import json
import random

from . import zipfmt
from .cnnkit_mut import _nodes, _set, mutate_json

_CLASSES = ("Lambda", "TFOpLambda", "MyCustomLayer", "Functional", "Sequential", "Conv2D",
            "Dense", "InputLayer", "__keras_tensor__")


def _edit(config: object, rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.3:
        named = [p for p, v in _nodes(config) if p and p[-1] == "class_name"]
        if named:
            path = rng.choice(named)
            value = rng.choice(_CLASSES)
            return json.dumps(_set(config, path, value)), f"class_name at {list(path)} = {value}"
    return mutate_json(config, rng)


def archive_config_mutation(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A .keras seed with its config.json edited."""
    members = zipfmt.read_members(data)
    i = next(i for i, m in enumerate(members) if m.name == b"config.json")
    text, desc = _edit(json.loads(members[i].payload), rng)
    members[i] = zipfmt.stored("config.json", text.encode("utf-8"))
    return zipfmt.build(members), f"config.json: {desc}"


def h5_config_mutation(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A legacy .h5 seed with its model_config attribute edited (rewritten by h5py)."""
    import h5py

    buf = io.BytesIO(data)
    with h5py.File(buf, "a") as f:
        text, desc = _edit(json.loads(f.attrs["model_config"]), rng)
        f.attrs["model_config"] = text
    return buf.getvalue(), f"model_config: {desc}"
