"""Hostile and damaged ONNX files: external data is read only from the model's own folder
(no ``..``, absolute paths or links leading out), within the file's bounds; damaged files,
lying tensors and unsupported nodes raise ValueErrors naming what is wrong, before anything
is built."""

from __future__ import annotations

import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed (test-only reference)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from cnnkit.io import (  # noqa: E402
    OnnxFormatError,
    UnsafeOnnxError,
    UnsupportedOnnxError,
    load_onnx,
)

W = np.arange(24, dtype=np.float32).reshape(4, 6) / 10


def _model(weight: TensorProto, extra_nodes: list | None = None) -> onnx.ModelProto:
    """y = x @ W (x: (N, 4)), W given as ``weight``."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 6])
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm"), *(extra_nodes or [])]
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _external(location: str, offset: int = 0, length: int | None = None) -> TensorProto:
    t = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 6])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)),
                 ("length", str(W.nbytes if length is None else length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def _save(tmp_path, model: onnx.ModelProto, name: str = "model.onnx"):
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def test_external_data_in_the_model_folder_is_read(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 8 + W.tobytes())
    path = _save(tmp_path, _model(_external("weights.bin", offset=8)))
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(load_onnx(path).predict(x), x @ W, rtol=1e-6)


@pytest.mark.parametrize("location", ["../secret.bin", "sub/../../secret.bin",
                                      "/etc/passwd", "C:\\secret.bin", "..\\secret.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (tmp_path / "secret.bin").write_bytes(W.tobytes())
    path = _save(model_dir, _model(_external(location)))
    with pytest.raises(UnsafeOnnxError, match="external data"):
        load_onnx(path)


def test_external_data_through_a_link_leading_out_is_refused(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (tmp_path / "secret.bin").write_bytes(W.tobytes())
    os.symlink(tmp_path / "secret.bin", model_dir / "weights.bin")
    path = _save(model_dir, _model(_external("weights.bin")))
    with pytest.raises(UnsafeOnnxError, match="outside the model's folder"):
        load_onnx(path)


def test_external_data_past_the_end_or_of_the_wrong_length_is_refused(tmp_path):
    (tmp_path / "weights.bin").write_bytes(W.tobytes())
    with pytest.raises(OnnxFormatError, match="which has 96"):
        load_onnx(_save(tmp_path, _model(_external("weights.bin", offset=8))))
    with pytest.raises(OnnxFormatError, match="need 96"):
        load_onnx(_save(tmp_path, _model(_external("weights.bin", length=10**12)), "b.onnx"))


def test_external_data_from_bytes_is_refused():
    with pytest.raises(UnsafeOnnxError, match="load it from its path"):
        load_onnx(_model(_external("weights.bin")).SerializeToString())


def test_damaged_and_lying_files_raise_value_errors(tmp_path):
    good = _model(numpy_helper.from_array(W, "W")).SerializeToString()
    assert isinstance(load_onnx(good).predict(np.ones((1, 4), np.float32)), np.ndarray)
    with pytest.raises(OnnxFormatError, match="not an ONNX model"):
        load_onnx(b"\x08\x07garbage" + bytes(range(256)))
    lying = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 6], raw_data=b"\0" * 12)
    with pytest.raises(OnnxFormatError, match="holds 12 bytes"):
        load_onnx(_model(lying).SerializeToString())
    huge = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    with pytest.raises(UnsafeOnnxError, match="justifies"):
        load_onnx(_model(huge).SerializeToString())
    fill = helper.make_node("ConstantOfShape", ["big"], ["z"], name="fill")
    big = numpy_helper.from_array(np.array([1 << 16, 1 << 16], np.int64), "big")
    model = _model(numpy_helper.from_array(W, "W"), [fill])
    model.graph.initializer.append(big)
    with pytest.raises(UnsafeOnnxError, match="max_bytes"):
        load_onnx(model.SerializeToString())


def test_unsupported_node_named_before_anything_is_built():
    """One message: the node, its op type, the opset and what is supported."""
    odd = helper.make_node("NonMaxSuppression", ["y"], ["z"], name="nms_1")
    model = _model(numpy_helper.from_array(W, "W"), [odd])
    with pytest.raises(UnsupportedOnnxError) as info:
        load_onnx(model.SerializeToString())
    msg = str(info.value)
    for part in ("'nms_1'", "NonMaxSuppression", "opset 17", "supported:", "Conv", "Resize"):
        assert part in msg, (part, msg)
    custom = helper.make_node("Gelu", ["y"], ["z"], name="g", domain="com.example")
    with pytest.raises(UnsupportedOnnxError, match="domain 'com.example'"):
        load_onnx(_model(numpy_helper.from_array(W, "W"), [custom]).SerializeToString())
