"""Post-training int8 quantization of whole models (cnnkit.deploy.quantize): outputs near the
float model's, the integer graph counted by construction, the file (int8 weights, smaller,
reloads to the same outputs, refuses damaged files), the report, bad arguments, and the real
digit-recognizer checkpoint's accuracy on 5,000 MNIST digits."""

from __future__ import annotations

import gzip
import zipfile

import numpy as np
import pytest
from helpers import shared_path

from cnnkit import layers, losses
from cnnkit.deploy import QuantizedModel, load_quantized, quantize
from cnnkit.kernels.native import qconv as native_q
from cnnkit.models import Model, Sequential


def _cnn(seed=0):
    rng = np.random.default_rng(seed)
    m = Sequential([
        layers.Input((12, 12, 3)),
        layers.Conv2D(8, 3, padding="same", use_bias=False), layers.BatchNormalization(),
        layers.ReLU(), layers.MaxPooling2D(2),
        layers.Conv2D(16, 3, padding="same", activation="relu", name="c2"),
        layers.Flatten(), layers.Dense(20, activation="relu", name="d1"),
        layers.Dropout(0.3), layers.Dense(5, name="logits"),
    ])
    m.build((None, 12, 12, 3))
    for w in m.weights:  # non-trivial batch-norm statistics
        if "moving_variance" in w.name:
            w.data[...] = rng.uniform(0.5, 2.0, w.shape)
        elif "moving_mean" in w.name or "beta" in w.name:
            w.data[...] = rng.uniform(-0.3, 0.3, w.shape)
    return m, rng.random((64, 12, 12, 3)).astype(np.float32)


def _sqnr(ref, got):
    return 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) /
                         np.sum((ref.astype(np.float64) - got) ** 2))


def _kinds(q):
    return [type(s.step).__name__ for s in q.plan.steps]


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy", "mse"])
def test_quantized_cnn_is_close_to_float_and_all_integer(method):
    m, x = _cnn()
    q = quantize(m, x, method=method)
    assert _kinds(q) == ["Quantize", "QuantizedConv", "QuantizedMaxPool", "QuantizedConv",
                         "View", "QuantizedConv", "Identity", "QuantizedConv"]
    y, yq = m.predict(x), q.predict(x)
    assert yq.dtype == np.float32 and yq.shape == y.shape
    assert _sqnr(y, yq) > 25
    assert np.mean(y.argmax(1) == yq.argmax(1)) > 0.9


def test_int8_activations_keep_float_and_numpy_path():
    m, x = _cnn(1)
    q8 = quantize(m, x, method="minmax", activations="int8")
    assert q8.dtype == np.int8 and _sqnr(m.predict(x), q8.predict(x)) > 25
    kept = quantize(m, x, method="minmax", keep_float=["c2"])
    assert "c2" not in kept.int_layers and "d1" in kept.int_layers
    assert _kinds(kept).count("Dequantize") == 1 and _kinds(kept).count("Quantize") == 2
    if native_q.available():
        q = quantize(m, x, method="minmax")
        with_c = q.predict(x)
        native_q.set_enabled(False)
        try:
            np.testing.assert_array_equal(q.predict(x), with_c)
        finally:
            native_q.set_enabled(None)


def test_residual_add_runs_on_codes():
    inp = layers.Input((8, 8, 4))
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    b = layers.Conv2D(4, 3, padding="same")(a)
    s = layers.ReLU()(layers.Add()([a, b]))
    out = layers.Dense(3)(layers.GlobalAveragePooling2D()(s))
    m = Model(inp, out)
    x = np.random.default_rng(2).random((32, 8, 8, 4)).astype(np.float32)
    q = quantize(m, x, method="minmax")
    kinds = _kinds(q)
    assert kinds.count("QuantizedAdd") == 1 and kinds.count("QuantizedConv") == 3
    assert _sqnr(m.predict(x), q.predict(x)) > 25


def test_save_load_same_outputs_smaller_file(tmp_path):
    m, x = _cnn(3)
    q = quantize(m, x)
    q.save(tmp_path / "q.cnnkit")
    m.save(tmp_path / "f.cnnkit")
    back = load_quantized(tmp_path / "q.cnnkit")
    assert isinstance(back, QuantizedModel)
    np.testing.assert_array_equal(back.predict(x), q.predict(x))
    with zipfile.ZipFile(tmp_path / "q.cnnkit") as z:
        names = z.namelist()
    assert any(n.startswith("int8/") for n in names)
    ratio = (tmp_path / "f.cnnkit").stat().st_size / (tmp_path / "q.cnnkit").stat().st_size
    assert ratio > 2.5  # small model: the JSON architecture is a large part of both files


def test_damaged_files_are_refused(tmp_path):
    m, x = _cnn(4)
    q = quantize(m, x, method="minmax")
    good = tmp_path / "q.cnnkit"
    q.save(good)
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    w = next(n for n in members if n.endswith("_w.npy"))
    bad = dict(members)
    bad[w] = members[next(n for n in members if n.endswith("_s.npy"))]  # float32, wrong shape
    for i, variant in enumerate([bad, {k: v for k, v in members.items() if k != w},
                                 {**members, "evil.npy": b"x"}]):
        path = tmp_path / f"bad{i}.cnnkit"
        with zipfile.ZipFile(path, "w") as z:
            for k, v in variant.items():
                z.writestr(k, v)
        with pytest.raises(ValueError):
            load_quantized(path)
    (tmp_path / "junk.cnnkit").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError):
        load_quantized(tmp_path / "junk.cnnkit")


def test_report_gives_scales_sqnr_and_suggests_the_damaged_layer():
    m, x = _cnn(5)
    d1 = m.get_layer("d1")
    d1.kernel.data[0, 0] = 40 * np.abs(d1.kernel.data).max()  # one huge weight
    q = quantize(m, x, method="minmax", per_channel=False)
    rep = q.report()
    names = [r.name for r in rep.layers]
    assert names == q.int_layers
    row = rep.layers[names.index("d1")]
    assert row.in_zero == q.graph.slot_q[q.plan.steps[[type(s.step).__name__ for s in
                                                       q.plan.steps].index("View")].outs][1]
    assert rep.suggestions[0] == "d1"
    assert all(np.isfinite(r.sqnr_added_db) for r in rep.layers)
    assert "d1" in str(rep)


def test_bad_arguments_raise_clear_errors():
    m, x = _cnn(6)
    with pytest.raises(ValueError, match="method"):
        quantize(m, x, method="kl")
    with pytest.raises(ValueError, match="activations"):
        quantize(m, x, activations="int4")
    with pytest.raises(ValueError, match="keep_float"):
        quantize(m, x, keep_float=["nope"])
    with pytest.raises(TypeError, match="keep_float"):
        quantize(m, x, keep_float="c2")
    with pytest.raises(ValueError, match="non-empty"):
        quantize(m, x[:0])
    with pytest.raises(TypeError, match="calibration data"):
        quantize(m, 3.0)


def _mnist5k():
    with gzip.open(shared_path("datasets", "mnist5k", "mnist_5k.csv.gz"), "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    return data[:, :784].reshape(-1, 28, 28, 1).astype(np.float32), data[:, 784]


def _digit_checkpoint_accuracies(n):
    """The real checkpoint (3 x conv-ReLU-pool, 1152 -> 256 -> 10; input (x/255 - 0.1307) /
    0.3081) quantized on 500 of the 5,000 digits: (float32, int8) accuracy on the first n."""
    from cnnkit.io.torch_checkpoint import load_state_dict
    from cnnkit.io.torch_weights import load_sequential_state_dict

    state = load_state_dict(shared_path("weights", "digit_recognizer_handwriting_model.pth"))
    model = Sequential([
        layers.Input((28, 28, 1)), layers.Rescaling(1 / (255 * 0.3081), -0.1307 / 0.3081),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(256, activation="relu"), layers.Dense(10),
    ])
    load_sequential_state_dict(model, state)
    x, y = _mnist5k()
    q = quantize(model, x[:500])
    x, y = x[:n], y[:n]
    acc_f = float(np.mean(model.predict(x).argmax(1) == y))
    acc_q = float(np.mean(q.predict(x).argmax(1) == y))
    print(f"digit checkpoint, {n} digits: float32 {acc_f:.2%}, int8 {acc_q:.2%}")
    return acc_f, acc_q


def test_digit_checkpoint_int8_accuracy_within_0_3_points_short():
    acc_f, acc_q = _digit_checkpoint_accuracies(1500)
    assert acc_f >= 0.99 and acc_q >= acc_f - 0.003


@pytest.mark.slow
def test_digit_checkpoint_int8_accuracy_within_0_3_points():
    acc_f, acc_q = _digit_checkpoint_accuracies(5000)
    assert acc_f >= 0.99 and acc_q >= acc_f - 0.003


def test_cli_quantize_writes_a_smaller_int8_model(tmp_path, capsys):
    from cnnkit.cli import main

    m = Sequential([layers.Input((28, 28, 1)), layers.Rescaling(1 / 255),
                    layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(2),
                    layers.Flatten(), layers.Dense(10)])
    m.build((None, 28, 28, 1))
    m.save(tmp_path / "m.cnnkit")
    out = tmp_path / "q.cnnkit"
    rc = main(["quantize", str(tmp_path / "m.cnnkit"), "--calibrate", "mnist5k",
               "--samples", "64", "--method", "minmax", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "file size" in text and "test accuracy (1000 images)" in text
    assert len(load_quantized(out).int_layers) == 2  # the convolution and the dense layer
    for bad in (["--method", "kl"], ["--keep-float", "nope"], ["--samples", "0"]):
        rc = main(["quantize", str(tmp_path / "m.cnnkit"), "--calibrate", "mnist5k",
                   "--out", str(out), *bad])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("cnnkit")
    assert main(["quantize", str(tmp_path / "nope.cnnkit"), "--calibrate", "mnist5k",
                 "--out", str(out)]) == 2


def test_qat_forward_simulates_the_int8_model_and_converts():
    from cnnkit import random as cnnkit_random
    from cnnkit.deploy import prepare_qat

    cnnkit_random.seed(7)
    rng = np.random.default_rng(7)
    m = Sequential([layers.Input((12, 12, 3)),
                    layers.Conv2D(8, 3, padding="same", activation="relu"),
                    layers.MaxPooling2D(2), layers.Conv2D(16, 3, padding="same"), layers.ReLU(),
                    layers.Flatten(), layers.Dense(20, activation="relu"), layers.Dense(5)])
    m.build((None, 12, 12, 3))
    x = rng.random((64, 12, 12, 3)).astype(np.float32)
    y = rng.integers(0, 5, 64)
    ptq = quantize(m, x, method="minmax")
    qat = prepare_qat(m, x, method="minmax")
    simulated = m(x, training=True).data  # the fake-quantized training graph
    int8 = ptq.predict(x)
    # equal up to codes rounded apart at float32 ties (one step, rarely), far closer than
    # the float model
    assert _sqnr(int8, simulated) > max(55, _sqnr(int8, m.predict(x)) + 15)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = [w.data.copy() for w in m.weights]
    m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert any(not np.array_equal(a, w.data) for a, w in zip(before, m.weights, strict=True))
    simulated = m(x, training=True).data
    q = qat.convert()
    assert all("call" not in la.__dict__ for la in m.layers)  # hooks removed
    assert _sqnr(q.predict(x), simulated) > 55  # the fine-tuned weights, as trained


def test_concatenation_joins_codes_with_one_shared_range():
    inp = layers.Input((8, 8, 3))
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    b = layers.Conv2D(6, 1, activation="relu")(inp)
    c = layers.Conv2D(5, 3, padding="same")(layers.Concatenate()([a, b]))
    m = Model(inp, layers.Dense(3)(layers.Flatten()(c)))
    x = np.random.default_rng(8).random((32, 8, 8, 3)).astype(np.float32)
    q = quantize(m, x, method="minmax")
    kinds = _kinds(q)
    assert "Concat" in kinds and "Dequantize" not in kinds and kinds.count("Quantize") == 1
    concat = next(s for s in q.plan.steps if type(s.step).__name__ == "Concat")
    assert len({q.graph.slot_q[a] for a in concat.args}) == 1
    assert _sqnr(m.predict(x), q.predict(x)) > 25


def test_cli_predict_and_evaluate_read_an_int8_model(tmp_path, capsys):
    """`cnnkit predict` and `cnnkit evaluate` take the int8 file `cnnkit quantize` wrote: top
    class of a real digit as the float model's, accuracy on 1,000 test digits within a point."""
    from cnnkit.cli import main
    from cnnkit.datasets import mnist5k
    Image = pytest.importorskip("PIL.Image")

    (x, y), (xt, yt) = mnist5k.load_data()
    m = Sequential([layers.Input((28, 28, 1)), layers.Rescaling(1 / 255),
                    layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(2),
                    layers.Flatten(), layers.Dense(10)])
    m.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x.reshape(-1, 28, 28, 1).astype(np.float32), y, epochs=1, batch_size=64, verbose=0)
    m.save(tmp_path / "m.cnnkit")
    q = tmp_path / "q.cnnkit"
    assert main(["quantize", str(tmp_path / "m.cnnkit"), "--calibrate", "mnist5k",
                 "--samples", "128", "--out", str(q)]) == 0
    png = tmp_path / "digit.png"
    Image.fromarray(xt[0].reshape(28, 28).astype(np.uint8)).save(png)
    capsys.readouterr()
    accs = []
    for path in (tmp_path / "m.cnnkit", q):
        assert main(["predict", str(path), str(png), "--top-k", "1"]) == 0
        top = capsys.readouterr().out.split(": ")[1]
        assert top.startswith(str(yt[0]))
        assert main(["evaluate", str(path), "--out", str(tmp_path / path.stem)]) == 0
        accs.append(float(capsys.readouterr().out.split("accuracy: ")[1].split()[0]))
    assert accs[0] > 0.8 and abs(accs[0] - accs[1]) <= 0.01
