"""``cnnkit predict model.onnx image.png`` and ``cnnkit summary model.onnx``: an NCHW ONNX
classifier made by PyTorch takes the image transposed to (1, C, H, W), and its top classes are
PyTorch's on the same pixels; a damaged .onnx file is one line and exit status 2."""

from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import shared_path, torch_or_skip

torch = torch_or_skip()
pytest.importorskip("onnx", reason="onnx is not installed (test-only reference)")
pytest.importorskip("PIL", reason="Pillow is not installed")

from cnnkit.cli import main  # noqa: E402
from cnnkit.data import load_image  # noqa: E402


@pytest.fixture(scope="module")
def onnx_classifier(tmp_path_factory):
    """A small NCHW classifier on 24x24 RGB images ending in softmax, and the module."""
    nn = torch.nn
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8 * 12 * 12, 6), nn.Softmax(dim=1)).eval()
    with torch.no_grad():
        net[0].weight.mul_(0.02)  # 0..255 pixels: keep the logits moderate
    f = io.BytesIO()
    torch.onnx.export(net, (torch.zeros(1, 3, 24, 24),), f, dynamo=False,
                      input_names=["pixels"], output_names=["probs"],
                      dynamic_axes={"pixels": {0: "n"}, "probs": {0: "n"}}, opset_version=13)
    path = tmp_path_factory.mktemp("onnx") / "classifier.onnx"
    path.write_bytes(f.getvalue())
    return path, net


def test_predict_onnx_image_matches_torch(onnx_classifier, capsys):
    path, net = onnx_classifier
    image = shared_path("images", "chelsea.png")
    code = main(["predict", str(path), str(image), "--top-k", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    pixels = load_image(image, target_size=(24, 24)).astype(np.float32)
    with torch.no_grad():
        probs = net(torch.from_numpy(pixels.transpose(2, 0, 1)[None].copy()))[0].numpy()
    top = np.argsort(-probs)[:3]
    got = [p.split(":") for p in out.strip().split(": ", 1)[1].split(", ")]
    assert [int(k) for k, _ in got] == list(top), (out, probs)
    np.testing.assert_allclose([float(v) for _, v in got], probs[top], atol=2e-3)


def test_summary_onnx(onnx_classifier, capsys):
    path, _ = onnx_classifier
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "pixels (InputLayer)" in out and "(None, 3, 24, 24)" in out
    assert "Conv2D" in out and "probs" in out
    assert "Total params: 7,726" in out  # 224 + 584 + 6,918, as PyTorch counts them


def test_damaged_onnx_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x0a\xff\xff\xff\xff\x0f not a protobuf")
    assert main(["summary", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnnkit: error:") and "bad.onnx" in err and "\n" not in err
