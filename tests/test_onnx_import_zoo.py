"""Every zoo architecture, exported to ONNX by cnnkit's exporter (NCHW interface, random
batch-norm statistics, reduced width), imported back with ``load_onnx``: the imported model's
outputs equal ONNX Runtime's on the same file (the reference is ONNX Runtime, not the model
that was exported) to 1e-4 of the output's scale. Image CNNs import with one transpose, at the
input (U-Net's 4-D output and the Siamese network's second input add one; AlexNet's and VGG's
adaptive average pooling, exported as two MatMuls over H and W, adds two). The default suite runs
three; ``-m slow`` all of them."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_export_helpers import randomize_norms, run_ort, to_layout

pytest.importorskip("onnx", reason="onnx is not installed (test-only reference)")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

from test_onnx_export import ALL, inputs_like, small_kwargs  # noqa: E402

from cnnkit import zoo  # noqa: E402
from cnnkit.io import load_onnx  # noqa: E402

FEW = ["resnet20", "mobilenet_v3_small", "textcnn"]
TRANSPOSES = {"unet": 2, "siamese": 2, "alexnet": 3, "textcnn": 0,
              **{n: 3 for n in ALL if n.startswith("vgg")}}


def round_trip_error(name: str) -> tuple[float, int]:
    """(max error relative to the output's scale, Permute layers) of the imported model."""
    from cnnkit.io.onnx_export import to_onnx

    model = zoo.get(name, **small_kwargs(name))
    randomize_norms(model, seed=len(name))
    feeds = [to_layout(f, "NCHW") for f in inputs_like(
        model, int_high=50 if name == "textcnn" else None)(3)]
    proto = to_onnx(model)
    ref = run_ort(proto, feeds)
    imported = load_onnx(proto.SerializeToString())
    out = imported.predict(feeds if len(feeds) > 1 else feeds[0])
    outs = out if isinstance(out, list) else [out]
    err = max(float(np.abs(o - r).max() / max(1.0, float(np.abs(r).max())))
              for o, r in zip(outs, ref, strict=True))
    return err, sum(type(la).__name__ == "Permute" for la in imported.layers)


def _check(name: str) -> None:
    err, permutes = round_trip_error(name)
    assert err <= 1e-4, f"{name}: {err:.2e}"
    assert permutes == TRANSPOSES.get(name, 1), (name, permutes)


@pytest.mark.parametrize("name", FEW)
def test_zoo_export_import_few(name: str) -> None:
    _check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in ALL if n not in FEW])
def test_zoo_export_import_all(name: str) -> None:
    _check(name)
