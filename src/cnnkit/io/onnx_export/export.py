"""``to_onnx`` (a model to an ONNX ``ModelProto``) and ``export_onnx`` (written to a file,
atomically): the graph's inputs and outputs in the layout asked for, a dynamic batch axis,
the walk in between, and ``onnx.checker`` over the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...files import atomic_write
from .errors import OnnxExportError, require_onnx
from .graph import Graph, Value, onnx_shape
from .int8_walk import INT8_FORMATS, is_quantized, write_quantized
from .layout import as_cf, as_last, in_order
from .walk import Walker

MIN_OPSET, MAX_OPSET = 9, 23  # the opsets the tests run through ONNX Runtime
DEFAULT_OPSET = 17
LAYOUTS = ("NCHW", "NHWC")


def _check_options(opset: Any, layout: Any) -> tuple[int, str]:
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not (
            MIN_OPSET <= int(opset) <= MAX_OPSET):
        raise OnnxExportError(f"opset must be an integer from {MIN_OPSET} to {MAX_OPSET}, got "
                              f"{opset!r}")
    key = str(layout).upper()
    if key not in LAYOUTS:
        raise OnnxExportError(f"layout must be 'NCHW' (channels-first, ONNX's own) or 'NHWC' "
                              f"(channels-last, cnnkit's), got {layout!r}")
    return int(opset), key


def _input_specs(model: Any) -> list[tuple[str, tuple, Any]]:
    """(name, cnnkit shape, dtype) of each model input."""
    from ...models import Model, Sequential

    if not isinstance(model, Model):
        raise OnnxExportError(f"export needs a cnnkit Model or Sequential, got "
                              f"{type(model).__name__}")
    if isinstance(model, Sequential):
        shape = model.input_shape
        if shape is None:
            raise OnnxExportError(f"Sequential '{model.name}' has no input shape yet: build it "
                                  f"(model.build(shape), or Input(...) first) before export")
        name = getattr(model, "_input_layer_name", None) or "input"
        return [(name, tuple(shape), np.dtype(model.dtype))]
    if model.inference_graph() is None:
        raise OnnxExportError(f"{type(model).__name__} '{model.name}' is a subclassed model "
                              f"(its call() is Python code), so it has no layer graph to "
                              f"export; build it as a functional Model or a Sequential")
    return [(t.name or t.node.layer.name, tuple(t.shape), t.dtype) for t in model.inputs]


def _output_names(model: Any, n: int) -> list[str]:
    from ...models import Sequential

    if not isinstance(model, Sequential):
        return [t.node.layer.name for t in model.outputs]
    return [model.layers[-1].name] * n if model.layers else ["output"] * n


def _dims(shape: tuple, batch: Any, prefix: str) -> list[Any]:
    return [batch if i == 0 else (f"{prefix}_dim{i}" if d is None else int(d))
            for i, d in enumerate(shape)]


def _graph_inputs(g: Graph, model: Any, layout: str, batch: Any) -> tuple[list, list[Value]]:
    infos, values = [], []
    for name, shape, dtype in _input_specs(model):
        g.reserve(name)
        cf = layout == "NCHW" and len(shape) >= 3 and np.dtype(dtype).kind == "f"
        v = Value(name, shape, cf, np.dtype(dtype))
        infos.append(g.onnx.helper.make_tensor_value_info(
            name, g.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)),
            _dims(onnx_shape(v), batch, name)))
        values.append(as_cf(g, v) if v.rank >= 3 and np.dtype(dtype).kind == "f" else v)
    return infos, values


def _graph_outputs(g: Graph, outs: list[Value], names: list[str], layout: str, batch: Any,
                   input_names: set[str]) -> list:
    infos, used = [], set()
    for v, want in zip(outs, names, strict=True):
        v = in_order(g, v)
        v = as_cf(g, v) if layout == "NCHW" else as_last(g, v)
        if v.name in input_names or v.name in used or v.name in {
                i.name for i in g.initializers}:
            v = v.named(g.node("Identity", [v.name], want))
        elif v.name != want and want not in g.taken:
            g.reserve(want)
            g.rename(v.name, want)
            v = v.named(want)
        used.add(v.name)
        infos.append(g.onnx.helper.make_tensor_value_info(
            v.name, g.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(v.dtype)),
            _dims(onnx_shape(v), batch, v.name)))
    return infos


def to_onnx(model: Any, opset: int = DEFAULT_OPSET, layout: str = "NCHW",
            training: bool = False, dynamic_batch: bool = True,
            int8_format: str = "integer") -> Any:
    """The ONNX ``ModelProto`` of a functional or Sequential ``model`` (see
    :func:`export_onnx`)."""
    onnx = require_onnx()
    opset, layout = _check_options(opset, layout)
    g = Graph(opset)
    int8 = is_quantized(model)
    if int8_format not in INT8_FORMATS or (int8_format != "integer" and not int8):
        raise OnnxExportError(f"int8_format is 'integer' or 'qdq' (for an int8 model), got "
                              f"{int8_format!r}" + ("" if int8 else " for a float model"))
    if int8 and training:
        raise OnnxExportError("an int8 model exports for inference only: training=False")
    source = model.model if int8 else model  # an int8 model's interface is its float model's
    declared = _input_specs(source)[0][1][0]
    batch = "N" if dynamic_batch else int(declared or 1)
    in_infos, inputs = _graph_inputs(g, source, layout, batch)
    if int8:
        outs = write_quantized(g, model, inputs, int8_format)
    else:
        outs = Walker(g, bool(training)).write_model(model, inputs)
    names = _output_names(source, len(outs))
    out_infos = _graph_outputs(g, outs, names, layout, batch, {i.name for i in in_infos})
    graph = onnx.helper.make_graph(g.nodes, source.name, in_infos, out_infos, g.initializers)
    ids = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=ids, producer_name="cnnkit",
                                   ir_version=onnx.helper.find_min_ir_version_for(ids))
    from ... import __version__

    proto.producer_version = __version__
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: Any, path: Any, opset: int = DEFAULT_OPSET, layout: str = "NCHW",
                training: bool = False, dynamic_batch: bool = True,
                int8_format: str = "integer") -> Any:
    """Write ``model`` as an ONNX file at ``path`` (atomically) and return the ``ModelProto``.

    Args:
        opset: ONNX opset, 9 to 23 (default 17); an operator a layer needs that the opset
            lacks raises :class:`OnnxExportError` naming the layer and the opset it needs.
        layout: "NCHW" (default): image inputs and outputs channels-first, as ONNX models
            are; "NHWC": cnnkit's channels-last shapes, with one Transpose at each edge.
            Inside, the graph is channels-first either way.
        training: False (default) folds each batch norm into the convolution or dense layer
            before it and drops dropout; True keeps BatchNormalization and Dropout nodes
            (inference mode) for a framework that will train the file further.
        dynamic_batch: the batch axis is the symbol "N" (default), or fixed to the model's
            declared batch size (1 if none).

    ``model`` may be an int8 model (``cnnkit.deploy.quantize``): its float layers are
    written as in a float export, its integer layers (opset 13 or later) in ``int8_format``
    "integer" (default): ConvInteger with a requantize chain (:mod:`.int8_steps`), or "qdq":
    DequantizeLinear -> Conv / Gemm / Add / Concat -> QuantizeLinear with cnnkit's scales and
    zero points (:mod:`.qdq_steps`), which ONNX Runtime fuses into QLinearConv, QGemm,
    QLinearAdd, QLinearConcat. Either way ONNX Runtime computes cnnkit's integers (QDQ: with
    7-bit weights, quantize's default; 8-bit weights warn, as ONNX Runtime on AVX2 CPUs
    without VNNI saturates them).

    Raises OnnxExportError (a ValueError) for a layer without an ONNX form (naming it and
    its class), a subclassed model, or a bad option; ImportError when ``onnx`` is missing.
    """
    proto = to_onnx(model, opset, layout, training, dynamic_batch, int8_format)
    with atomic_write(Path(path)) as f:
        f.write(proto.SerializeToString())
    return proto
