"""Keras files that must be refused, each with a message naming what is wrong: a Lambda,
a custom class, HDF5 links to other files, data stored outside the file, a zip bomb; and the
command line on Keras files (summary, predict)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from keras_models import keras_or_skip, keras_out, randomize, sequential_cnn

from cnnkit import models

keras = keras_or_skip()
h5py = pytest.importorskip("h5py")


def test_lambda_is_refused_by_name(tmp_path):
    inp = keras.Input((4,))
    out = keras.layers.Lambda(lambda t: t * 2, name="doubler")(keras.layers.Dense(3)(inp))
    keras.Model(inp, out).save(tmp_path / "lam.keras")
    with pytest.raises(ValueError, match=r"'Lambda' named 'doubler'.*never runs code"):
        models.load_model(tmp_path / "lam.keras")


def test_custom_class_is_refused_by_name(tmp_path):
    @keras.saving.register_keras_serializable(package="mine")
    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 3

    inp = keras.Input((4,))
    keras.Model(inp, Scale(name="triple")(inp)).save(tmp_path / "custom.keras")
    with pytest.raises(ValueError, match=r"'Scale' named 'triple' is a custom class"):
        models.load_model(tmp_path / "custom.keras")


def test_lambda_in_a_legacy_h5_is_refused(tmp_path):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3], "name": "i"}},
        {"class_name": "Lambda", "config": {"name": "evil", "function": ["4wEAAAA=", None,
                                                                         None]}}]}}
    with h5py.File(tmp_path / "lam.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.create_group("model_weights").attrs["layer_names"] = np.array([b"evil"])
    with pytest.raises(ValueError, match="'Lambda' named 'evil'"):
        models.load_model(tmp_path / "lam.h5")


def _ds(f, i):
    """Path of the i-th weight of the "out" layer, as its weight_names attribute gives it."""
    name = f["model_weights/out"].attrs["weight_names"][i]
    return "model_weights/out/" + (name.decode() if isinstance(name, bytes) else name)


@pytest.fixture
def saved(tmp_path):
    kmodel = randomize(sequential_cnn(keras))
    kmodel.save(tmp_path / "m.h5")
    return kmodel, tmp_path / "m.h5"


def test_external_link_is_refused(saved, tmp_path):
    _, path = saved
    with h5py.File(path, "a") as f:
        kernel = _ds(f, 0)
        del f[kernel]
        f[kernel] = h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(ValueError, match="ExternalLink.*refused"):
        models.load_model(path)


def test_soft_link_is_refused(saved):
    _, path = saved
    with h5py.File(path, "a") as f:
        kernel, bias = _ds(f, 0), _ds(f, 1)
        del f[bias]
        f[bias] = h5py.SoftLink("/" + kernel)
    with pytest.raises(ValueError, match="SoftLink"):
        models.load_model(path)


def test_external_and_virtual_datasets_are_refused(tmp_path):
    ours = randomize(models.load_model(_keras_h5(tmp_path)))
    ours.save_weights(tmp_path / "w.weights.h5")
    raw = tmp_path / "raw.bin"
    bias = ours.layers[-1].weights[1]
    raw.write_bytes(np.zeros(bias.shape, np.float32).tobytes())
    for kind in ("external", "virtual"):
        target = tmp_path / f"{kind}.weights.h5"
        target.write_bytes((tmp_path / "w.weights.h5").read_bytes())
        with h5py.File(target, "a") as f:
            path = "layers/dense/vars/1"
            del f[path]
            if kind == "external":
                f.create_dataset(path, shape=bias.shape, dtype="f4",
                                 external=[(str(raw), 0, h5py.h5f.UNLIMITED)])
            else:
                layout = h5py.VirtualLayout(shape=bias.shape, dtype="f4")
                layout[:] = h5py.VirtualSource(str(tmp_path / "w.weights.h5"),
                                               "layers/dense/vars/1", shape=bias.shape)
                f.create_virtual_dataset(path, layout)
        with pytest.raises(ValueError, match="outside the file"):
            ours.load_weights(target)


def _keras_h5(tmp_path):
    randomize(sequential_cnn(keras)).save(tmp_path / "src.h5")
    return tmp_path / "src.h5"


def test_zip_bomb_is_refused(tmp_path):
    randomize(sequential_cnn(keras)).save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in members.items():
            z.writestr(n, data)
        z.writestr("assets/zeros", b"\0" * (32 << 20))  # inflates ~1000x
    (tmp_path / "bomb.keras").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="zip bomb"):
        models.load_model(tmp_path / "bomb.keras")


def test_oversized_dataset_is_refused_before_reading(saved, tmp_path):
    _, path = saved
    with h5py.File(path, "a") as f:
        kernel = _ds(f, 0)
        del f[kernel]
        f.create_dataset(kernel, shape=(1 << 16, 1 << 16),
                         dtype="f4", chunks=(64, 64), compression="gzip")
    with pytest.raises(ValueError, match="more than the file's size justifies"):
        models.load_model(path)


def test_weights_only_file_given_to_load_model(tmp_path):
    randomize(sequential_cnn(keras)).save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match="weights only.*load_weights"):
        models.load_model(tmp_path / "w.weights.h5")


def test_cli_summary_and_predict_on_keras_files(tmp_path, capsys):
    pil = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    from cnnkit.cli import main
    from cnnkit.data import load_image

    kmodel = randomize(sequential_cnn(keras))
    kmodel.save(tmp_path / "m.h5")
    kmodel.save(tmp_path / "m.keras")
    assert main(["summary", str(tmp_path / "m.h5")]) == 0
    assert f"Total params: {kmodel.count_params():,}" in capsys.readouterr().out
    img = (np.random.default_rng(0).random((20, 16, 3)) * 255).astype(np.uint8)
    pil.fromarray(img).save(tmp_path / "x.png")
    assert main(["predict", str(tmp_path / "m.keras"), str(tmp_path / "x.png"),
                 "--top-k", "5"]) == 0
    line = capsys.readouterr().out.strip()
    x = load_image(tmp_path / "x.png", target_size=(12, 12), color_mode="rgb")
    probs = keras_out(keras, kmodel, x[None].astype(np.float32))[0]
    got = {int(p.split(":")[0]): float(p.split(":")[1]) for p in line.split(": ", 1)[1]
           .split(",")}
    assert got == {i: round(float(probs[i]), 3) for i in range(5)}


def test_saving_what_keras_cannot_load_is_refused_and_leaves_the_old_file(tmp_path):
    from cnnkit import layers as L

    good = randomize(models.Sequential([L.Input((4,)), L.Dense(3)]))
    good.save(tmp_path / "m.keras")
    before = (tmp_path / "m.keras").read_bytes()
    inp = L.Input((4,))
    lam = models.Model(inp, L.Lambda(lambda t: t * 2, name="twice")(L.Dense(3)(inp)))
    l2n = models.Sequential([L.Input((4,)), L.L2Normalize()])
    for bad, pattern in ((lam, "'twice' is a Lambda"), (l2n, "L2Normalize.*no Keras twin")):
        for name in ("m.keras", "m.h5"):
            with pytest.raises(ValueError, match=pattern):
                bad.save(tmp_path / name)
    assert (tmp_path / "m.keras").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]


def test_compiled_keras_models_load(tmp_path):
    """Optimizer variables and training settings in the file are skipped, not misread."""
    kmodel = randomize(sequential_cnn(keras))
    kmodel.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((4, 12, 12, 3)).astype(np.float32)
    kmodel.fit(x, np.arange(4) % 5, epochs=1, verbose=0)
    for suffix in (".keras", ".h5"):
        kmodel.save(tmp_path / f"c{suffix}")
        got = models.load_model(tmp_path / f"c{suffix}").predict(x)
        np.testing.assert_allclose(got, keras_out(keras, kmodel, x), rtol=0, atol=1e-5)


def test_without_h5py_the_error_names_the_extra(tmp_path, monkeypatch):
    import sys

    randomize(sequential_cnn(keras)).save(tmp_path / "m.keras")
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now fails
    with pytest.raises(ImportError, match=r"cnnkit\[keras\]"):
        models.load_model(tmp_path / "m.keras")


def test_unsupported_keras_op_is_refused_by_name(tmp_path):
    inp = keras.Input((4,))
    keras.Model(inp, keras.ops.sin(keras.layers.Dense(3)(inp))).save(tmp_path / "op.keras")
    with pytest.raises(ValueError, match=r"operation 'Sin' named 'sin' is not supported"):
        models.load_model(tmp_path / "op.keras")
