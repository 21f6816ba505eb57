"""Run an ONNX node test case through ``cnnkit.io.load_onnx`` (test helper for
``test_onnx_import_nodes.py``).

The case's one-node model is serialised, with the inputs that are weights or operator
arguments (convolution weights, scales, shapes, axes, pads, a lower-rank broadcast operand)
turned into initializers holding the data set's values, since cnnkit builds those into its
layers. The other inputs stay graph inputs: the imported Model takes them in ONNX's layout and
its outputs come back in ONNX's layout, so nothing in the comparison is transposed by the test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from helpers import onnx_node_cases

# The operators the importer supports that onnx has node test cases for.
OP_TYPES = (
    "Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization", "LRN", "Relu",
    "LeakyRelu", "PRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Clip",
    "Softmax", "LogSoftmax", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Sum", "Max", "Min",
    "Mean", "Concat", "Split", "Slice", "Reshape", "Flatten", "Transpose", "Squeeze",
    "Unsqueeze", "Pad", "Resize", "Upsample", "Dropout", "Identity", "Cast", "Shape", "Gather",
    "ConstantOfShape", "Constant", "ReduceMean", "ReduceSum", "ReduceMax", "ArgMax",
)
# ops whose inputs after the first are all data (the rest: weights and arguments)
_DATA_OPERANDS = {"Add", "Sub", "Mul", "Div", "Pow", "Sum", "Max", "Min", "Mean", "Concat",
                  "MatMul", "PRelu"}


def as_array(value: Any) -> np.ndarray:
    """A data set entry (an array, or a TensorProto in some cases) as an array."""
    if hasattr(value, "SerializeToString"):
        from onnx import numpy_helper

        return numpy_helper.to_array(value)
    return np.asarray(value)


def collect_cases() -> list[Any]:
    return onnx_node_cases(OP_TYPES, skip_if_none=False)


def _is_data(op: str, i: int, arrays: list[np.ndarray]) -> bool:
    """Input i stays a model input: the first, or an operand of the first's rank and batch."""
    if i == 0:
        return True
    if op not in _DATA_OPERANDS:
        return False
    a, b = arrays[0], arrays[i]
    if op == "PRelu" or b.ndim != a.ndim or b.ndim == 0 or b.shape[0] != a.shape[0]:
        return False
    return not (op == "MatMul" and b.ndim == 2)


def frozen_model(case: Any, data_set: int) -> tuple[bytes, list[np.ndarray]]:
    """(serialised model with weight inputs as initializers, the data inputs' arrays)."""
    from onnx import numpy_helper

    model = type(case.model)()
    model.CopyFrom(case.model)
    node = model.graph.node[0]
    inputs, _ = case.data_sets[data_set]
    arrays = [as_array(a) for a in inputs]
    names = [vi.name for vi in model.graph.input]
    keep, feeds = [], []
    for i, (vi, a) in enumerate(zip(list(model.graph.input), arrays, strict=True)):
        index = list(node.input).index(names[i]) if names[i] in node.input else i
        if _is_data(node.op_type, index, arrays):
            keep.append(vi)
            feeds.append(a)
        else:
            model.graph.initializer.append(numpy_helper.from_array(a, vi.name))
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model.SerializeToString(), feeds


def run_case(case: Any, data_set: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(cnnkit outputs, expected outputs) for one data set of a case, through load_onnx."""
    from cnnkit import no_grad
    from cnnkit.io import load_onnx

    blob, feeds = frozen_model(case, data_set)
    f64 = bool(feeds) and feeds[0].dtype == np.float64
    model = load_onnx(blob, dtype="float64" if f64 else "float32")
    with no_grad():  # one call on the whole batch, through the model's inference plan
        out = model(feeds if len(feeds) > 1 else feeds[0])
    outs = [o.data for o in (out if isinstance(out, list) else [out])]
    return [np.asarray(o) for o in outs], [as_array(e) for e in case.data_sets[data_set][1]]
