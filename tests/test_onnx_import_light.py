"""The real-architecture models shipped in the onnx wheel (``onnx/backend/test/data/light``)
through ``cnnkit.io.load_onnx``, against the expected outputs shipped beside them.

Each ``light_<name>.onnx`` makes its weights inside the graph (ConstantOfShape of one value per
tensor: a 4 KB file becomes AlexNet's 240 MB), so the import is allowed more memory than the
file's size justifies (``max_bytes``). The input is what onnx's backend runner feeds them,
``arange(n).reshape(shape) / n``, and the comparison is its own: rtol 1e-3, atol 1e-7.

AlexNet and SqueezeNet end in a softmax over 1000 logits that are equal in exact arithmetic
and about 4e12 in size; float32 rounding (1e-7 relative, about 4e5 absolute) then decides the
softmax, in any float32 engine whose matrix products round columns differently. Their
expected outputs are compared in float64 (``load_onnx(dtype="float64")``), the rest in
float32. The default suite runs two models; ``-m slow`` runs all nine.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed (test-only reference)")

from cnnkit.io import load_onnx  # noqa: E402

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
MODELS = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
          "shufflenet", "squeezenet", "vgg19", "zfnet512"]
FLOAT64 = {"bvlc_alexnet", "squeezenet"}  # the ill-conditioned softmax described above
DEFAULT = {"squeezenet", "inception_v1"}
MAX_ERRORS: dict[str, float] = {}


def run_light(name: str) -> tuple[np.ndarray, np.ndarray, object]:
    """(cnnkit's output, the expected output, the imported model) for light_<name>."""
    from onnx import numpy_helper

    path = os.path.join(LIGHT, f"light_{name}.onnx")
    if not os.path.exists(path):
        pytest.skip(f"{path} is not in this onnx wheel")
    proto = onnx.load(path, load_external_data=False)
    inits = {t.name for t in proto.graph.initializer}
    x = next(i for i in proto.graph.input if i.name not in inits)
    shape = tuple(d.dim_value if d.HasField("dim_value") else 1
                  for d in x.type.tensor_type.shape.dim)
    n = int(np.prod(shape))
    feed = (np.arange(n).reshape(shape) / n).astype(np.float32)
    expected = numpy_helper.to_array(onnx.load_tensor(
        os.path.join(LIGHT, f"light_{name}_output_0.pb")))
    model = load_onnx(path, max_bytes=2 << 30,
                      dtype="float64" if name in FLOAT64 else "float32")
    return np.asarray(model.predict(feed)), expected, model


def _check(name: str) -> None:
    out, expected, model = run_light(name)
    assert out.shape == expected.shape
    MAX_ERRORS[name] = float(np.abs(out - expected).max())
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-7, err_msg=name)
    # the layout pass: transposes only at the NCHW input and, for a 4-D output, the output
    # (and ShuffleNet's 16 channel shuffles, each a transpose of the data itself)
    permutes = sum(type(la).__name__ == "Permute" for la in model.layers)
    edges = 2 if expected.ndim == 4 else 1
    assert permutes == edges + (16 if name == "shufflenet" else 0), permutes


@pytest.mark.parametrize("name", sorted(DEFAULT))
def test_light_model(name: str) -> None:
    _check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(MODELS) - DEFAULT))
def test_light_model_slow(name: str) -> None:
    _check(name)


@pytest.mark.slow
def test_light_float32_alexnet_error_is_the_softmax() -> None:
    """In float32, AlexNet's logits match onnxruntime's to float32 rounding; only the
    saturated softmax of equal logits differs (the reason it is compared in float64)."""
    ort = pytest.importorskip("onnxruntime")
    import onnx.shape_inference as si

    path = os.path.join(LIGHT, "light_bvlc_alexnet.onnx")
    proto = si.infer_shapes(onnx.load(path))
    logits = next(v for v in proto.graph.value_info if v.name == "r24")
    proto.graph.output.insert(0, logits)
    blob = proto.SerializeToString()
    feed = (np.arange(3 * 224 * 224).reshape(1, 3, 224, 224) / (3 * 224 * 224)).astype(
        np.float32)
    ref = ort.InferenceSession(blob, providers=["CPUExecutionProvider"]).run(None, {
        "data_0": feed})[0]
    ours = load_onnx(blob, max_bytes=2 << 30).predict(feed)[0]
    assert np.abs(ours - ref).max() <= 1e-5 * np.abs(ref).max()


def test_light_models_need_max_bytes() -> None:
    """Without ``max_bytes`` a file that generates 60,000x its size in weights is refused."""
    from cnnkit.io import UnsafeOnnxError

    path = os.path.join(LIGHT, "light_bvlc_alexnet.onnx")
    if not os.path.exists(path):
        pytest.skip("light_bvlc_alexnet.onnx is not in this onnx wheel")
    with pytest.raises(UnsafeOnnxError, match="max_bytes"):
        load_onnx(path)
