"""The layers the importer added (LRN, Clip, HardSigmoid, ConstantOperand, UnaryMath, Slice,
Split, Pad, Resize, Reduce, Squeeze/ExpandDims, Divide, Power, LogSoftmax, ArgMax, pooling
with ceil_mode/count_include_pad): one ONNX graph using them all matches ONNX Runtime, every
layer's ``compute_output_shape`` equals what it computes, the model saves as ``.cnnkit`` and
loads back with the same outputs, and LRN's gradient matches finite differences and PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_vs_torch, gradcheck

onnx = pytest.importorskip("onnx", reason="onnx is not installed (test-only reference)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from cnnkit import Tensor, no_grad  # noqa: E402
from cnnkit import layers as L  # noqa: E402
from cnnkit.io import load_onnx  # noqa: E402
from cnnkit.models import load_model  # noqa: E402


def _const(name: str, value) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _graph() -> bytes:
    """x (N, 4, 9, 10) through the new layers; outputs y (N, 5) and idx (N,)."""
    rng = np.random.default_rng(0)
    n = helper.make_node
    nodes = [
        n("LRN", ["x"], ["lrn"], size=3, alpha=0.02, beta=0.75, bias=2.0),
        n("Clip", ["lrn", "lo", "hi"], ["clip"]),
        n("HardSigmoid", ["clip"], ["hs"], alpha=0.3, beta=0.4),
        n("Mul", ["hs", "scale"], ["mul"]),
        n("Sqrt", ["mul"], ["sq"]),
        n("Pad", ["sq", "pads"], ["pad"], mode="reflect"),
        n("AveragePool", ["pad"], ["ap"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
          ceil_mode=1, count_include_pad=1),
        n("MaxPool", ["pad"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
          ceil_mode=1),
        n("Sub", ["ap", "mp"], ["diff"]),
        n("Split", ["diff", "split"], ["s1", "s2"], axis=1),
        n("Div", ["s1", "s2"], ["div"]),
        n("Pow", ["div", "two"], ["pw"]),
        n("Slice", ["pw", "starts", "ends", "axes", "steps"], ["sl"]),
        n("Resize", ["sl", "", "scales"], ["rs"], mode="linear",
          coordinate_transformation_mode="pytorch_half_pixel"),
        n("ReduceMean", ["rs", "raxes"], ["rm"], keepdims=0),
        n("Unsqueeze", ["rm", "uaxes"], ["un"]),
        n("Squeeze", ["un", "uaxes"], ["sqz"]),
        n("Exp", ["sqz"], ["ex"]),
        n("Flatten", ["ex"], ["fl"]),
        n("Gemm", ["fl", "w", "b"], ["logits"], transB=1),
        n("LogSoftmax", ["logits"], ["y"], axis=1),
        n("ArgMax", ["logits"], ["idx"], axis=1, keepdims=0),
    ]
    inits = [_const("lo", np.float32(-0.5)), _const("hi", np.float32(1.5)),
             _const("scale", rng.uniform(0.5, 2, (1, 4, 1, 1)).astype(np.float32)),
             _const("pads", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)),
             _const("split", np.array([2, 2], np.int64)), _const("two", np.float32(2.0)),
             _const("starts", np.array([1, 0], np.int64)),
             _const("ends", np.array([1 << 62, 4], np.int64)),
             _const("axes", np.array([2, 3], np.int64)),
             _const("steps", np.array([1, 2], np.int64)),
             _const("scales", np.array([1, 1, 2, 1.5], np.float32)),
             _const("raxes", np.array([3], np.int64)), _const("uaxes", np.array([2], np.int64)),
             _const("w", rng.standard_normal((5, 2 * 12)).astype(np.float32)),
             _const("b", rng.standard_normal(5).astype(np.float32))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 9, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, ["n"])
    graph = helper.make_graph(nodes, "new_layers", [x], [y, idx], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]
                             ).SerializeToString()


@pytest.fixture(scope="module")
def blob() -> bytes:
    return _graph()


def _x(n: int = 3) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 2, (n, 4, 9, 10)).astype(np.float32)


def test_new_layers_match_onnxruntime(blob):
    model = load_onnx(blob)
    y, idx = model.predict(_x())
    ref_y, ref_idx = ort.InferenceSession(blob, providers=["CPUExecutionProvider"]).run(
        None, {"x": _x()})
    np.testing.assert_allclose(y, ref_y, rtol=1e-4, atol=1e-5 * np.abs(ref_y).max())
    np.testing.assert_array_equal(idx, ref_idx)
    kinds = {type(la).__name__ for la in model.layers}
    assert {"LocalResponseNormalization", "Clip", "HardSigmoid", "ConstantOperand", "UnaryMath",
            "Pad", "AveragePooling2D", "MaxPooling2D", "Split", "Divide", "Slice", "Resize",
            "Reduce", "ExpandDims", "Squeeze", "LogSoftmax", "ArgMax"} <= kinds, kinds


def test_compute_output_shape_equals_what_each_layer_computes(blob):
    model = load_onnx(blob)
    shapes, _ = model.node_shapes([(3, 4, 9, 10)])
    values = {id(model.inputs[0]): Tensor(_x())}
    with no_grad():
        for node in model._nodes:
            if isinstance(node.layer, L.InputLayer):
                continue
            args = [values[id(t)] for t in node.input_tensors]
            out = node.layer(args if isinstance(node.inputs, list) else args[0])
            outs = out if isinstance(out, list) else [out]
            for t, o in zip(node.output_tensors, outs, strict=True):
                assert shapes[id(t)] == o.shape, (node.layer.name, shapes[id(t)], o.shape)
                values[id(t)] = o


def test_round_trip_through_cnnkit_file(blob, tmp_path):
    model = load_onnx(blob)
    path = tmp_path / "new_layers.cnnkit"
    model.save(path)
    again = load_model(path)
    for a, b in zip(again.predict(_x(5)), model.predict(_x(5)), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [type(la).__name__ for la in again.layers] == [
        type(la).__name__ for la in model.layers]


def test_lrn_gradient_matches_finite_differences_and_torch():
    lrn = L.LocalResponseNormalization(size=3, alpha=0.3, beta=0.75, bias=1.5, dtype="float64")
    x = np.random.default_rng(2).standard_normal((2, 3, 2, 5))
    gradcheck(lambda t: lrn(t), x)
    torch = pytest.importorskip("torch")
    lrn32 = L.LocalResponseNormalization(size=3, alpha=0.3, beta=0.75, bias=1.5)

    def theirs(t):
        y = torch.nn.functional.local_response_norm(t.permute(0, 3, 1, 2), 3, 0.3, 0.75, 1.5)
        return y.permute(0, 2, 3, 1)

    check_vs_torch(lambda t: lrn32(t), theirs, x.astype(np.float32), what="LRN")


def test_nhwc_model_from_tf2onnx_needs_no_transpose():
    """A TensorFlow-style graph (NHWC input, Transpose to NCHW around each convolution) keeps
    cnnkit's channels-last layout: the two Transposes only relabel axes, no Permute layer."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 3, 1])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8, 8, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8, 8, 4])
    inits = [_const("W", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
             _const("B", rng.standard_normal(4).astype(np.float32))]
    blob = helper.make_model(helper.make_graph(nodes, "tf", [x], [y], initializer=inits),
                             opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    model = load_onnx(blob)
    assert [type(la).__name__ for la in model.layers] == ["InputLayer", "Conv2D", "ReLU"]
    assert model.input_layout == "NHWC"
    xs = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    ref = ort.InferenceSession(blob, providers=["CPUExecutionProvider"]).run(None, {"x": xs})[0]
    np.testing.assert_allclose(model.predict(xs), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("opset", [9, 10])
def test_old_opset_forms_match_onnxruntime(opset):
    """Attribute forms of old opsets: Clip min/max, Slice starts/ends (opset 9), Squeeze and
    Unsqueeze axes, Upsample (9) and Resize (10) scales, and Softmax's old semantics (the
    axes from ``axis`` on taken together)."""
    n = helper.make_node
    up = (n("Upsample", ["clip", "scales"], ["up"], mode="nearest") if opset == 9 else
          n("Resize", ["clip", "scales"], ["up"], mode="linear"))
    sl = (n("Slice", ["up"], ["sl"], starts=[1], ends=[7], axes=[3]) if opset == 9 else
          n("Slice", ["up", "st", "en", "ax"], ["sl"]))
    nodes = [n("Clip", ["x"], ["clip"], min=-0.5, max=0.8), up, sl,
             n("ReduceMean", ["sl"], ["rm"], axes=[2], keepdims=1),
             n("Squeeze", ["rm"], ["sq"], axes=[2]),
             n("Unsqueeze", ["sq"], ["un"], axes=[3]),
             n("Softmax", ["un"], ["y"], axis=1)]
    inits = [_const("scales", np.array([1, 1, 2, 2], np.float32)),
             _const("st", np.array([1], np.int64)), _const("en", np.array([7], np.int64)),
             _const("ax", np.array([3], np.int64))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, 6, 1])
    blob = helper.make_model(helper.make_graph(nodes, "old", [x], [y], initializer=inits),
                             opset_imports=[helper.make_opsetid("", opset)]
                             ).SerializeToString()
    xs = np.random.default_rng(4).standard_normal((2, 3, 4, 5)).astype(np.float32)
    ref = ort.InferenceSession(blob, providers=["CPUExecutionProvider"]).run(None, {"x": xs})[0]
    out = load_onnx(blob).predict(xs)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    assert abs(float(out[0].sum()) - 1.0) < 1e-5  # one softmax over C*H*W, not per channel
