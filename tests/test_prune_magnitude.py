"""Magnitude pruning (masks counted in NumPy here, schedules against the Zhu-Gupta formula,
masks kept through training) and sparse model files (round trip, size, damaged files)."""

import json
import math
import zipfile

import numpy as np
import pytest

from cnnkit import layers
from cnnkit import random as crandom
from cnnkit.deploy import prune
from cnnkit.models import Sequential, load_model
from cnnkit.models.saving import save_model
from cnnkit.train.callbacks import Callback


def _model(seed=0):
    crandom.seed(seed)
    return Sequential([layers.Input((8, 8, 1)), layers.Conv2D(8, 3, activation="relu"),
                       layers.BatchNormalization(), layers.Flatten(),
                       layers.Dense(15, activation="relu"), layers.Dense(3)])


def test_layer_scope_zeros_the_smallest_fraction_of_each_kernel():
    model = _model()
    olds = {w.name: w.data.copy() for w in prune.prunable_weights(model)}
    assert sorted(olds) == sorted([model.layers[0].kernel.name, model.layers[3].kernel.name,
                                   model.layers[4].kernel.name])
    prune.prune_magnitude(model, 0.7, "layer")
    for w in prune.prunable_weights(model):
        old = olds[w.name]
        k = int(0.7 * old.size)
        assert int((w.data == 0).sum()) == k
        threshold = np.sort(np.abs(old).ravel())[k - 1]
        assert np.all(np.abs(old[w.data == 0]) <= threshold)
        np.testing.assert_array_equal(w.data[w.data != 0], old[w.data != 0])
    assert model.layers[3].bias is not None and np.all(model.layers[1].gamma.data != 0)


def test_global_scope_uses_one_threshold_for_all_kernels():
    model = _model(1)
    ws = prune.prunable_weights(model)
    flat = np.sort(np.concatenate([np.abs(w.data).ravel() for w in ws]))
    k = int(0.6 * flat.size)
    prune.prune_magnitude(model, 0.6, "global")
    zeros = sum(int((w.data == 0).sum()) for w in ws)
    assert zeros == k
    kept_min = min(np.abs(w.data[w.data != 0]).min() for w in ws)
    assert kept_min >= flat[k - 1]
    assert abs(prune.sparsity(model) - k / flat.size) < 1e-12


def test_polynomial_schedule_is_the_zhu_gupta_formula():
    s = prune.PolynomialDecay(0.1, 0.9, begin_step=10, end_step=110, power=3, frequency=20)
    for t in (10, 30, 50, 110):
        assert abs(s(t) - (0.9 + (0.1 - 0.9) * (1 - (t - 10) / 100) ** 3)) < 1e-12
    assert s(5) is None and s(31) is None and s(111) is None
    c = prune.ConstantSparsity(0.5, begin_step=3, frequency=4)
    assert [c(t) for t in (0, 3, 5, 7)] == [None, 0.5, None, 0.5]


def test_callback_keeps_pruned_weights_zero_through_training():
    model = _model(2)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 8, 8, 1)).astype(np.float32), np.arange(64) % 3
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.loss_fns[0].from_logits = True
    cb = prune.MagnitudePruning(prune.PolynomialDecay(0.0, 0.8, 0, 6, frequency=2))
    history = []

    class Watch(Callback):
        def on_train_batch_end(self, batch, logs=None):
            history.append(prune.sparsity(model))

    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[cb, Watch()])
    assert abs(prune.sparsity(model) - 0.8) < 0.01
    assert history[0] == 0.0 and history[-1] == pytest.approx(prune.sparsity(model))
    assert all(b >= a - 1e-12 for a, b in zip(history, history[1:], strict=False))
    for w in prune.prunable_weights(model):
        assert np.all(w.data[~cb.masks[w.name]] == 0)


def test_sparse_file_round_trips_and_is_smaller(tmp_path):
    model = _model(3)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    prune.prune_magnitude(model, 0.9, "global")
    dense, sparse = tmp_path / "d.cnnkit", tmp_path / "s.cnnkit"
    save_model(model, dense, include_optimizer=False)
    prune.save_sparse(model, sparse, include_optimizer=True)
    back = load_model(sparse)
    for a, b in zip(model.weights, back.weights, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x), back.predict(x))
    assert back.compiled  # optimizer state travels too
    # closed form: each 90%-zero kernel of n floats becomes n/8 + 0.4 n bytes instead of 4 n
    n = sum(w.size for w in prune.prunable_weights(model))
    prune.save_sparse(model, sparse)
    assert not load_model(sparse).compiled  # by default without the (dense) optimizer state
    saved = dense.stat().st_size - sparse.stat().st_size
    assert saved > 0.8 * (4 * n - (n / 8 + 0.4 * n)) - 2 * len(model.weights) * 200
    small = tmp_path / "w.cnnkit"
    prune.save_sparse(model, small)
    fresh = _model(4)
    fresh.load_weights(small)
    np.testing.assert_array_equal(fresh.predict(x), model.predict(x))


def _rewrite(src, dst, change):
    """Copy the zip ``src`` to ``dst`` with ``change(name, bytes) -> bytes | None`` applied."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)


def _npy(arr):
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _meta_edit(fn):
    def change(name, data):
        if name != "__meta__.npy":
            return data
        import io

        meta = json.loads(np.load(io.BytesIO(data)).tobytes())
        fn(meta)
        return _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    return change


@pytest.mark.parametrize("case,match", [
    ("mask_short", "mask must be"),
    ("bits_beyond", "beyond"),
    ("count", "non-zero values but"),
    ("values_int", "values must be"),
    ("shape_type", "shape list"),
    ("shape_huge", "mask must be"),
    ("both", "once each"),
    ("gap", "once each"),
    ("index", "sparse weight index"),
    ("not_object", "'sparse' must be an object"),
])
def test_damaged_sparse_files_raise_value_errors(tmp_path, case, match):
    model = _model(5)
    prune.prune_magnitude(model, 0.9)
    src = tmp_path / "s.cnnkit"
    prune.save_sparse(model, src)
    with zipfile.ZipFile(src) as z:
        names = z.namelist()
    mask = next(n for n in names if n.endswith("/mask.npy"))
    idx = mask.split("/")[1]
    values = mask.replace("mask", "values")

    def mask_change(fn):
        def change(name, data):
            if name != mask:
                return data
            import io

            return _npy(fn(np.load(io.BytesIO(data))))
        return change

    changes = {
        "mask_short": mask_change(lambda m: m[:-1]),
        "count": mask_change(lambda m: np.concatenate([[m[0] ^ 1], m[1:]]).astype(np.uint8)),
        "values_int": lambda name, data: _npy(np.zeros(3, np.int32)) if name == values
        else data,
        "shape_type": _meta_edit(lambda m: m["sparse"].update({str(int(idx)): "big"})),
        "shape_huge": _meta_edit(lambda m: m["sparse"].update({str(int(idx)): [2**30, 2**9]})),
        "both": lambda name, data: data,
        "gap": _meta_edit(lambda m: m["sparse"].update({"99": [1]})),
        "index": _meta_edit(lambda m: m["sparse"].update({"\u00b2": [1]})),
        "not_object": _meta_edit(lambda m: m.update({"sparse": [1]})),
    }
    change = changes.get(case)
    dst = tmp_path / "bad.cnnkit"
    if case == "bits_beyond":
        # a weight whose size is not a multiple of 8 gets its padding bits set
        w = next(w for w in prune.prunable_weights(model) if w.size % 8)
        i = [x.name for x in model.weights].index(w.name)
        key = f"sparse/{i:05d}/mask.npy"

        def change(name, data):
            if name != key:
                return data
            import io

            m = np.load(io.BytesIO(data)).copy()
            m[-1] |= 1
            return _npy(m)
    if case == "both":
        _rewrite(src, dst, change)
        with zipfile.ZipFile(dst, "a") as z:
            z.writestr(f"weights/{idx}.npy", _npy(np.zeros(3, np.float32)))
    else:
        _rewrite(src, dst, change)
    with pytest.raises(ValueError, match=match):
        load_model(dst)


def test_bad_sparsity_arguments():
    model = _model()
    for bad in (1.0, -0.1, math.nan):
        with pytest.raises(ValueError, match="sparsity"):
            prune.prune_magnitude(model, bad)
    with pytest.raises(ValueError, match="scope"):
        prune.magnitude_masks(model, 0.5, "row")
    with pytest.raises(ValueError, match="end_step"):
        prune.PolynomialDecay(0, 0.5, 10, 10)
