"""Mutations that understand .cnnkit files (an .npz zip of .npy members, one of them the
JSON architecture ``__meta__``): JSON edits and lying .npy headers."""

from __future__ import annotations

import io
import json
import random
import struct
from dataclasses import replace
from typing import Any

import numpy as np

from . import zipfmt

_DEEP = "__fuzz_deep__"
_NUMBERS: tuple[Any, ...] = (10 ** 9, 1 << 31, 1 << 63, 10 ** 40, -1, 0, None, "7", 1.5, [],
                             {}, True, 1e308, [10 ** 6, 10 ** 6])
_STRINGS = ("Foo", "", "os.system", "__import__", "Model" * 1000, "Sequential", "Dense",
            "InputLayer", "functional")
_SIZE_KEYS = ("units", "filters", "kernel_size", "pool_size", "strides", "batch_shape",
              "input_shape", "shape", "rate", "axis", "n_trainable", "version", "seed")


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _meta_index(members: list[zipfmt.Member]) -> int:
    return next(i for i, m in enumerate(members) if m.name == b"__meta__.npy")


def read_meta(members: list[zipfmt.Member]) -> Any:
    """The JSON object stored in ``__meta__.npy`` (of a trusted seed file)."""
    raw = np.load(io.BytesIO(members[_meta_index(members)].payload), allow_pickle=False)
    return json.loads(raw.tobytes().decode("utf-8"))


def _nodes(obj: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every (path, value) in a JSON tree."""
    out = [(path, obj)]
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(
        obj, list) else ()
    for k, v in items:
        out += _nodes(v, path + (k,))
    return out


def _set(obj: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    return obj


def mutate_json(meta: Any, rng: random.Random) -> tuple[str, str]:
    """(JSON text, description) of ``meta`` with one node changed."""
    nodes = _nodes(meta)
    sized = [(p, v) for p, v in nodes if p and p[-1] in _SIZE_KEYS]
    kind = rng.choice(("size", "size", "number", "string", "drop", "deep", "type"))
    if kind == "size" and sized:
        path, _ = rng.choice(sized)
        value = rng.choice(_NUMBERS)
    elif kind == "number":
        path, _ = rng.choice([(p, v) for p, v in nodes if isinstance(v, int | float)] or nodes)
        value = rng.choice(_NUMBERS)
    elif kind == "string":
        path, _ = rng.choice([(p, v) for p, v in nodes if isinstance(v, str)] or nodes)
        value = rng.choice(_STRINGS)
    elif kind == "drop":
        dicts = [(p, v) for p, v in nodes if isinstance(v, dict) and v]
        path, d = rng.choice(dicts)
        key = rng.choice(sorted(d))
        del d[key]
        return json.dumps(meta), f"json drop key {key!r} at {list(path)}"
    elif kind == "deep":
        path, _ = rng.choice(nodes)
        text = json.dumps(_set(meta, path, _DEEP))
        return (text.replace(f'"{_DEEP}"', "[" * 100_000 + "]" * 100_000),
                f"json list nested 100k deep at {list(path)}")
    else:
        path, _ = rng.choice(nodes)
        value = rng.choice(([], {}, None, 0, "", [[[]]], {"class_name": "Dense"}))
    return json.dumps(_set(meta, path, value)), f"json {list(path)} = {value!r:.60}"


def json_mutation(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """The seed with its architecture JSON mutated."""
    members = zipfmt.read_members(data)
    text, desc = mutate_json(read_meta(members), rng)
    arr = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    i = _meta_index(members)
    members[i] = zipfmt.stored("__meta__.npy", _npy(arr))
    return zipfmt.build(members), desc


def _npy_header(descr: str, fortran: Any, shape: Any) -> bytes:
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran!r}, 'shape': {shape!r}, }}"
    text += " " * (-(len(text) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def npy_header_mutation(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One .npy member's header rewritten: huge or odd shape, odd dtype; data unchanged."""
    members = zipfmt.read_members(data)
    i = rng.randrange(len(members))
    m = members[i]
    descr = rng.choice(("<f4", "<f4", "|O", "<U10", ">f8", "V8", "<c16", "|b1", "<M8[s]"))
    shape = rng.choice(((1 << 30,), (1 << 62, 4), (-1,), (10 ** 6, 10 ** 6), (), (0,),
                        (3, 3, 1, 4), (1 << 40,) * 3, "x", None, (2.5,)))
    fortran = rng.choice((False, True, 2, "no"))
    body = m.payload
    if body.startswith(b"\x93NUMPY\x01") and len(body) >= 10:
        body = body[10 + struct.unpack_from("<H", body, 8)[0]:]
    members[i] = replace(zipfmt.stored(m.name.decode(), _npy_header(descr, fortran, shape)
                                       + body), name=m.name)
    return zipfmt.build(members), (f"npy header of {m.name!r}: descr {descr} shape {shape} "
                                   f"fortran {fortran}")
