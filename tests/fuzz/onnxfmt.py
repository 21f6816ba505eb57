"""ONNX seeds and crafted ONNX files for ``load_onnx``: valid small CNNs (static and dynamic
shapes, the light SqueezeNet from the onnx wheel), and models edited at the protobuf level to
lie: tensors whose bytes disagree with their dims, huge dims, hostile external data paths,
absurd attributes (zero strides, negative pads, huge groups), unknown operators and opsets,
missing and cyclic inputs, and folded constants asking for huge arrays."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np

from .seeds import Seed


def _small_cnn(dynamic: bool) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    n = "n" if dynamic else 1
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, 4])

    def init(name: str, a: np.ndarray) -> Any:
        return numpy_helper.from_array(np.asarray(a), name)

    inits = [init("w", rng.standard_normal((6, 3, 3, 3)).astype(np.float32)),
             init("b", np.zeros(6, np.float32)), init("g", np.ones(6, np.float32)),
             init("be", np.zeros(6, np.float32)), init("m", np.zeros(6, np.float32)),
             init("v", np.ones(6, np.float32)),
             init("fw", rng.standard_normal((4, 6 * 4 * 4)).astype(np.float32)),
             init("fb", np.zeros(4, np.float32)), init("scales", np.array(
                 [1, 1, 2, 2], np.float32)), init("zero", np.array([0], np.int64)),
             init("minus1", np.array([-1], np.int64))]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["bn"]),
             helper.make_node("Relu", ["bn"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Resize", ["p", "", "scales"], ["u"], mode="nearest"),
             helper.make_node("AveragePool", ["u"], ["a"], kernel_shape=[2, 2],
                              strides=[2, 2])]
    if dynamic:  # x.view(x.size(0), -1) as PyTorch exports it
        nodes += [helper.make_node("Shape", ["a"], ["s"]),
                  helper.make_node("Gather", ["s", "zero"], ["s0"], axis=0),
                  helper.make_node("Concat", ["s0", "minus1"], ["tgt"], axis=0),
                  helper.make_node("Reshape", ["a", "tgt"], ["f"])]
    else:
        nodes.append(helper.make_node("Flatten", ["a"], ["f"]))
    nodes += [helper.make_node("Gemm", ["f", "fw", "fb"], ["z"], transB=1),
              helper.make_node("Softmax", ["z"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "fuzz", [x], [y], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def onnx_seeds() -> list[Seed]:
    """Two small CNNs made with onnx.helper, and the light SqueezeNet when the wheel has it."""
    out = [Seed("cnn_static.onnx", _small_cnn(False).SerializeToString(), ".onnx"),
           Seed("cnn_dynamic.onnx", _small_cnn(True).SerializeToString(), ".onnx")]
    import onnx

    light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                         "light_squeezenet.onnx")
    if os.path.exists(light):
        with open(light, "rb") as f:
            out.append(Seed("light_squeezenet.onnx", f.read(), ".onnx"))
    return out


_HUGE = (0, -1, -7, 1 << 31, 1 << 40, (1 << 63) - 1, -(1 << 63))
_PATHS = ("../x.bin", "/etc/passwd", "a/../../x.bin", "", "\x00", "C:\\x.bin", ".", "..",
          "sub/" * 60 + "x", "w.bin")


def _tensor_lie(rng: random.Random, model: Any) -> str:
    t = rng.choice(list(model.graph.initializer))
    kind = rng.choice(("dims", "raw", "type", "external", "typed"))
    if kind == "dims":
        del t.dims[:]
        t.dims.extend(rng.choice(_HUGE) for _ in range(rng.randint(0, 4)))
    elif kind == "raw":
        t.raw_data = t.raw_data[: rng.randint(0, len(t.raw_data))] + b"\x00" * rng.randint(0, 9)
    elif kind == "type":
        t.data_type = rng.choice((0, 8, 14, 15, 16, 17, 23, 99, 7, 9, 10))
    elif kind == "external":
        t.data_location = 1
        del t.external_data[:]
        for key, value in (("location", rng.choice(_PATHS)),
                           ("offset", str(rng.choice(_HUGE))),
                           ("length", rng.choice(("x", str(rng.choice(_HUGE)))))):
            e = t.external_data.add()
            e.key, e.value = key, value
    else:
        t.ClearField("raw_data")
        t.float_data.extend([1.0] * rng.randint(0, 5))
    return f"initializer {t.name!r}: lying {kind}"


def _attribute_lie(rng: random.Random, model: Any) -> str:
    from onnx import AttributeProto, helper

    node = rng.choice(list(model.graph.node))
    name = rng.choice(("strides", "pads", "kernel_shape", "dilations", "group", "axis", "perm",
                       "axes", "mode", "auto_pad", "epsilon", "transB", "output_padding"))
    values: Any = rng.choice((
        [rng.choice(_HUGE) for _ in range(rng.randint(0, 5))], rng.choice(_HUGE), "SAME_LOWER",
        "wrap", 1e300, [0.5], b"\xff"))
    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    kind = AttributeProto.INTS if values == [] else None
    node.attribute.append(helper.make_attribute(name, values, attr_type=kind))
    return f"node {node.op_type}: attribute {name} = {values!r:.60}"


def _graph_lie(rng: random.Random, model: Any) -> str:
    from onnx import helper, numpy_helper

    nodes = model.graph.node
    node = rng.choice(list(nodes))
    kind = rng.choice(("op", "input", "cycle", "opset", "fill", "domain", "drop"))
    if kind == "op":
        node.op_type = rng.choice(("Loop", "If", "Scan", "NoSuchOp", "", "Conv", "Gemm",
                                   "Reshape", "Upsample", "Einsum"))
    elif kind == "input":
        node.input.append(rng.choice(("missing", "", "y", "x")))
    elif kind == "cycle":
        node.input[0] = node.output[0]
    elif kind == "opset":
        model.opset_import[0].version = rng.choice((0, 1, 6, 9, 11, 99, -3, 1 << 40))
    elif kind == "fill":
        shape = numpy_helper.from_array(np.array([rng.choice((1 << 20, 1 << 31, -5))] * 3,
                                                 np.int64), "fill_shape")
        model.graph.initializer.append(shape)
        nodes.insert(0, helper.make_node("ConstantOfShape", ["fill_shape"], ["fill_out"]))
        node.input.append("fill_out")
    elif kind == "domain":
        node.domain = rng.choice(("com.microsoft", "ai.onnx.ml", "x" * 300))
    else:
        nodes.remove(node)
    return f"graph: {kind} at {node.op_type}"


def onnx_file(rng: random.Random, seeds: list[Seed]) -> tuple[str, bytes]:
    """A seed model edited to lie in one to three places."""
    import onnx

    seed = rng.choice(seeds)
    model = onnx.ModelProto()
    model.ParseFromString(seed.data)
    descs = [rng.choice((_tensor_lie, _tensor_lie, _attribute_lie, _attribute_lie,
                         _graph_lie))(rng, model) for _ in range(rng.randint(1, 3))]
    return f"{seed.name}: " + "; ".join(descs), model.SerializeToString()
