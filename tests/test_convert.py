"""``cnnkit.io.load_any`` / ``save_any`` and the ``cnnkit convert`` / ``cnnkit export``
commands: each format pair that this version reads and writes, checked against ONNX Runtime
or PyTorch where the file leaves cnnkit; pieces that other parts of cnnkit provide (ONNX
import, Keras files) are tested when present and skipped with the reason when not."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from onnx_export_helpers import randomize_norms, run_ort

from cnnkit import cli, io, zoo
from cnnkit.io import load_any, save_any

KW = {"input_shape": (16, 16, 3)}  # resnet20 at a small input


@pytest.fixture(scope="module")
def model():
    m = zoo.get("resnet20", **KW)
    randomize_norms(m, seed=5)
    return m


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((3, 16, 16, 3)).astype(np.float32)


def test_safetensors_round_trip_and_torch_layout(model, x, tmp_path):
    """.safetensors holds the torchvision-named state dict in PyTorch's layouts: reading it
    back into the architecture gives the same model; the conv kernel is (O, I, KH, KW)."""
    path = tmp_path / "r20.safetensors"
    save_any(model, path)
    state = io.load_safetensors(path)
    first = model.get_layer("conv1")
    assert state["conv1.weight"].shape == (16, 3, 3, 3)
    np.testing.assert_array_equal(state["conv1.weight"],
                                  first.kernel.data.transpose(3, 2, 0, 1))
    back = load_any(path, architecture=zoo.get("resnet20", **KW))
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


def test_pth_written_by_torch_loads(model, x, tmp_path):
    """A .pth that PyTorch wrote (torch.save of the state dict) reads without PyTorch."""
    torch = pytest.importorskip("torch")
    from cnnkit.io.torch_state import to_torch_state_dict

    state = {k: torch.from_numpy(v) for k, v in to_torch_state_dict(model).items()}
    torch.save(state, tmp_path / "r20.pth")
    back = load_any(tmp_path / "r20.pth", architecture=zoo.get("resnet20", **KW))
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


def test_dense_after_flatten_goes_back_to_torch_order():
    """A Linear after a flatten of (C, H, W): the state dict's weight equals PyTorch's own
    (checked by running torch's Linear on torch's flatten)."""
    torch = pytest.importorskip("torch")
    from cnnkit.io.torch_state import to_torch_state_dict

    m = zoo.get("vgg11", input_shape=(32, 32, 3), classes=4, width_mult=0.125)
    state = to_torch_state_dict(m)
    fc = m.get_layer("classifier.0")
    feats = np.random.default_rng(1).standard_normal((2, 7, 7, 64)).astype(np.float32)
    ours = feats.reshape(2, -1) @ fc.kernel.data + fc.bias.data
    lin = torch.nn.Linear(7 * 7 * 64, fc.units)
    lin.load_state_dict({"weight": torch.from_numpy(state["classifier.0.weight"]),
                         "bias": torch.from_numpy(state["classifier.0.bias"])})
    with torch.no_grad():
        theirs = lin(torch.from_numpy(feats).permute(0, 3, 1, 2).flatten(1)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_cnnkit_to_onnx_runs_in_ort(model, x, tmp_path):
    pytest.importorskip("onnxruntime")
    src = tmp_path / "r20.cnnkit"
    model.save(src)
    assert cli.main(["convert", str(src), str(tmp_path / "r20.onnx"), "--layout", "nhwc"]) == 0
    import onnx

    got = run_ort(onnx.load(tmp_path / "r20.onnx"), [x])[0]
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-4, atol=1e-4)
    assert cli.main(["export", str(src), str(tmp_path / "e.onnx"), "--opset", "11"]) == 0
    got = run_ort(onnx.load(tmp_path / "e.onnx"), [x.transpose(0, 3, 1, 2)])[0]
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-4, atol=1e-4)


def test_safetensors_to_cnnkit_by_command(model, x, tmp_path):
    save_any(model, tmp_path / "w.safetensors")
    args = ["convert", str(tmp_path / "w.safetensors"), str(tmp_path / "m.cnnkit"),
            "--architecture", "resnet20", "--input-shape", "16", "16", "3"]
    assert cli.main(args) == 0
    back = load_any(tmp_path / "m.cnnkit")
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


def test_onnx_import_round_trip(model, x, tmp_path):
    if getattr(io, "load_onnx", None) is None:
        pytest.skip("cnnkit.io.load_onnx (ONNX import) is not in this version yet")
    save_any(model, tmp_path / "r20.onnx")
    back = load_any(tmp_path / "r20.onnx")
    got = back.predict(x.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-4, atol=1e-4)


def _real_keras_archive(path) -> bool:
    with zipfile.ZipFile(path) as z:
        return {"config.json", "model.weights.h5"} <= set(z.namelist())


def test_keras_round_trip(model, x, tmp_path):
    path = tmp_path / "r20.keras"
    save_any(model, path)
    if not _real_keras_archive(path):
        pytest.skip("model.save('x.keras') does not write a Keras 3 archive in this version "
                    "yet (Keras file support comes separately)")
    back = load_any(path)
    np.testing.assert_allclose(back.predict(x), model.predict(x), rtol=1e-5, atol=1e-5)


def test_load_any_refusals(tmp_path):
    with pytest.raises(ValueError, match="holds weights only"):
        load_any(tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="holds its own architecture"):
        load_any(tmp_path / "m.cnnkit", architecture=zoo.get("lenet5"))
    with pytest.raises(ValueError, match="architecture must be a built cnnkit model"):
        load_any(tmp_path / "w.safetensors", architecture="resnet20")
    with pytest.raises(ValueError, match=r"unknown model file type '\.tflite'"):
        load_any(tmp_path / "m.tflite")
    m = zoo.get("lenet5")
    with pytest.raises(ValueError, match="does not write .pth"):
        save_any(m, tmp_path / "m.pth")
    with pytest.raises(ValueError, match="apply to .onnx output only"):
        save_any(m, tmp_path / "m.cnnkit", opset=13)
    assert list(tmp_path.iterdir()) == []
