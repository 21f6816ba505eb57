"""Hostile .cnnkit model files: each is built by hand so the right answer is known by
construction (refused with ValueError, memory bounded by the file's size), never from what
cnnkit happens to do."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from helpers import traced_peak

import cnnkit
from cnnkit import layers
from cnnkit.models import Sequential, load_model
from cnnkit.train import losses, optimizers

MB = 1 << 20


def _model(seed=0, compiled=True):
    cnnkit.random.seed(seed)
    m = Sequential([layers.Input((6, 6, 1)), layers.Conv2D(3, 3, activation="relu"),
                    layers.BatchNormalization(), layers.Flatten(), layers.Dense(4)])
    if compiled:
        m.compile(optimizers.Adam(learning_rate=0.01),
                  losses.SparseCategoricalCrossentropy(from_logits=True), seed=seed)
        r = np.random.default_rng(0)
        m.fit(r.random((8, 6, 6, 1), dtype=np.float32), r.integers(0, 4, 8), epochs=1,
              batch_size=4, verbose=0)
    return m


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "m.cnnkit"
    _model().save(path)
    return path


def _members(path):
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _meta(members):
    return json.loads(np.load(io.BytesIO(members["__meta__.npy"])).tobytes())


def _write(path, members, meta=None, deflate=()):
    if meta is not None:
        members = {**members, "__meta__.npy": _npy(np.frombuffer(
            json.dumps(meta).encode(), dtype=np.uint8))}
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data, zipfile.ZIP_DEFLATED if name in deflate
                       else zipfile.ZIP_STORED)
    return path


def _peak_mb(fn):
    return traced_peak(fn)[1] / MB


def _refused(path, match=None):
    def go():
        with pytest.raises(ValueError, match=match):
            load_model(path)
    return _peak_mb(go)


def test_extra_deflated_member_is_refused_unread(saved, tmp_path):
    m = _members(saved)
    zeros = bytes(64 * MB)  # deflates to ~64 KB
    p = _write(tmp_path / "extra.cnnkit", {**m, "extra.bin": zeros}, deflate={"extra.bin"})
    assert p.stat().st_size < 2 * MB
    assert _refused(p, "unknown member 'extra.bin'|zip bomb") < 8
    p = _write(tmp_path / "small.cnnkit", {**m, "extra.bin": b"hi"})
    assert _refused(p, "unknown member 'extra.bin'") < 8
    # a member with a valid name but inflating far beyond the file's size: refused unread
    bomb = _npy(np.zeros(16 * MB, np.float32))
    p = _write(tmp_path / "bomb.cnnkit", {**m, "optimizer/zz.npy": bomb},
               deflate={"optimizer/zz.npy"})
    assert _refused(p, "zip bomb") < 8


def test_declared_units_beyond_stored_bytes_allocate_nothing(saved, tmp_path):
    m = _members(saved)
    meta = _meta(m)
    dense = meta["model"]["config"]["layers"][-1]
    assert dense["class_name"] == "Dense"
    dense["config"]["units"] = 8_000_000  # a (27, 8e6) float32 kernel: 864 MB
    p = _write(tmp_path / "units.cnnkit", m, meta)
    assert p.stat().st_size < 64 * 1024
    assert _refused(p, "more values than the file stores") < 16


def test_weights_whose_header_disagrees_with_the_model_are_refused(saved, tmp_path):
    m = _members(saved)
    meta = _meta(m)
    meta["model"]["config"]["layers"][-1]["config"]["units"] = 2  # smaller: fits the budget
    _refused(_write(tmp_path / "shape.cnnkit", m, meta), "has shape")
    # a weight member whose .npy header promises more data than the member holds
    bad = dict(m)
    bad["weights/00000.npy"] = _npy(np.zeros((3, 3, 1, 3), np.float32))[:-8]
    _refused(_write(tmp_path / "short.cnnkit", bad), "declares shape")


@pytest.mark.parametrize("dtype", [object, np.complex64, "U3", [("a", "f4")]])
def test_weight_arrays_of_odd_dtypes_are_refused(saved, tmp_path, dtype):
    m = dict(_members(saved))
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 3, 1, 3), dtype=dtype), allow_pickle=True)
    m["weights/00000.npy"] = buf.getvalue()
    _refused(_write(tmp_path / "odd.cnnkit", m), "dtype")


def test_deep_json_is_refused(saved, tmp_path):
    m = _members(saved)
    for depth in (100, 200_000):
        raw = ('{"format": "cnnkit-model", "version": 1, "kind": "model", "model": '
               + "[" * depth + "]" * depth + "}").encode()
        members = {**m, "__meta__.npy": _npy(np.frombuffer(raw, np.uint8))}
        _refused(_write(tmp_path / f"deep{depth}.cnnkit", members))


def test_nested_sequentials_deeper_than_the_limit_are_refused(saved, tmp_path):
    m = _members(saved)
    meta = _meta(m)
    inner = meta["model"]
    for _ in range(40):  # 80 JSON levels
        inner = {"class_name": "Sequential", "config": {"name": None, "layers": [inner]}}
    meta["model"] = inner
    _refused(_write(tmp_path / "nest.cnnkit", m, meta), "nested more than")


def test_more_layers_than_the_limit_are_refused_before_building(saved, tmp_path):
    m = _members(saved)
    meta = _meta(m)
    meta["model"]["config"]["layers"] += [{"class_name": "ReLU", "config": {}}] * 20_001
    _refused(_write(tmp_path / "many.cnnkit", m, meta), "more than the limit of 20000")


@pytest.mark.parametrize("meta_patch, match", [
    ({"format": "other"}, "not a cnnkit model file"),
    ({"version": "1"}, "'version' must be"),
    ({"version": 99}, "newer cnnkit"),
    ({"kind": 3}, "'kind' must be"),
    ({"seed": "x"}, "'seed' must be"),
    ({"seed": -1}, "'seed' must be"),
    ({"model": []}, "'model' must be"),
    ({"compile": [1]}, "'compile' must be"),
    ({"model": {"class_name": "os.system"}}, "unknown layer class"),
    ({"model": {"class_name": "Sequential", "config": {"layers": "x"}}}, "'layers' must be"),
    ({"model": {"class_name": "Sequential", "config": {"layers": [],
                                                       "input_shape": [-3]}}},
     "'input_shape' must be"),
    ({"model": {"class_name": "Dense", "config": {"units": "many"}}}, "Dense"),
    ({"model": {"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Dense", "config": {"units": 3, "dtype": "U100000000"}}],
        "input_shape": [None, 27]}}}, "weights must be numbers"),
    ({"model": {"class_name": "Dense", "config": {"units": 2, "bogus": 1}}},
     "unexpected arguments"),
    ({"model": {"class_name": "Model", "config": {"layers": [], "nodes": [{"layer": 1}]}}},
     "node must be"),
])
def test_metadata_fields_of_the_wrong_type_are_refused(saved, tmp_path, meta_patch, match):
    m = _members(saved)
    meta = {**_meta(m), **meta_patch}
    _refused(_write(tmp_path / "meta.cnnkit", m, meta), match)


def test_functional_graph_with_dangling_references_is_refused(tmp_path):
    cnnkit.random.seed(0)
    inp = layers.Input((4,))
    model = cnnkit.models.Model(inp, layers.Dense(2)(layers.Dense(3)(inp)))
    model.save(tmp_path / "f.cnnkit")
    m = _members(tmp_path / "f.cnnkit")
    for patch in ({"outputs": [[9, 0]]}, {"inputs": [[0, 5]]}, {"single_input": "yes"}):
        meta = _meta(m)
        meta["model"]["config"].update(patch)
        _refused(_write(tmp_path / "g.cnnkit", m, meta), "invalid model config|not the output")
    meta = _meta(m)
    meta["model"]["config"]["nodes"][1]["layer"] = "nowhere"
    _refused(_write(tmp_path / "g.cnnkit", m, meta), "does not define")


def test_truncation_at_every_offset_gives_value_error(saved, tmp_path):
    data = saved.read_bytes()
    p = tmp_path / "t.cnnkit"
    for cut in sorted({0, 1, 4, 21, 22, 100, len(data) - 1, len(data) - 22,
                       *range(0, len(data), max(1, len(data) // 60))}):
        p.write_bytes(data[:cut])
        with pytest.raises(ValueError):
            load_model(p)


def test_random_byte_flips_load_or_give_value_error(saved, tmp_path):
    data = saved.read_bytes()
    rng = np.random.default_rng(11)
    p = tmp_path / "flip.cnnkit"
    for _ in range(60):
        b = bytearray(data)
        for i in rng.integers(0, len(b), rng.integers(1, 5)):
            b[i] ^= 1 << int(rng.integers(0, 8))
        p.write_bytes(bytes(b))
        try:
            load_model(p)
        except ValueError:
            pass


_ODD_VALUES = [None, -1, 0, 2**70, 1e308, float("nan"), "x", "", [], [1, "a"], {}, {"a": 1},
               True, [[[[]]]]]


def _paths(obj, here=()):
    """Every (path, value) inside a JSON value."""
    yield here, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*here, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*here, i))


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def test_seeded_json_mutations_load_or_give_value_error(saved, tmp_path):
    m = _members(saved)
    paths = [p for p, _ in _paths(_meta(m)) if p]
    rng = np.random.default_rng(5)
    p = tmp_path / "mut.cnnkit"
    for _ in range(150):
        meta = _meta(m)
        for _ in range(rng.integers(1, 3)):
            path = paths[rng.integers(len(paths))]
            try:
                _set(meta, path, _ODD_VALUES[rng.integers(len(_ODD_VALUES))])
            except (KeyError, IndexError, TypeError):
                pass  # an earlier change removed the parent
        _write(p, m, meta)
        try:
            load_model(p)
        except ValueError:
            pass


def test_load_weights_refuses_mismatch_and_leaves_model_unchanged(saved, tmp_path):
    target = _model(seed=3, compiled=False)
    before = [w.copy() for w in target.get_weights()]
    m = _members(saved)
    m["weights/00003.npy"] = _npy(np.zeros(5, np.float32))  # BN gamma: 3 values expected
    with pytest.raises(ValueError, match="has shape"):
        target.load_weights(_write(tmp_path / "w.cnnkit", m))
    for a, b in zip(before, target.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    target.load_weights(saved)  # the real file loads
    np.testing.assert_array_equal(target.get_weights()[0], _model().get_weights()[0])


def test_filesystem_errors_pass_through(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.cnnkit")
    with pytest.raises(IsADirectoryError):
        load_model(tmp_path)
