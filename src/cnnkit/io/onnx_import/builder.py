"""The model builder: decode the graph, refuse what cannot be built (before building
anything), then turn each node into constants or cnnkit layers in the graph's order, and make
the functional Model whose inputs and outputs have the ONNX names, layouts and shapes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ...layers import Input, InputLayer
from ...models import Model
from . import (
    ops_activation,
    ops_arith,
    ops_conv,
    ops_norm,
    ops_pool,
    ops_reduce,
    ops_resize,
    ops_shape,
)
from .context import Context, OnnxNode
from .errors import OnnxFormatError, UnsupportedOnnxError
from .fold import FOLDABLE, fold
from .reader import DTYPES, Source, read_model, tensor_array
from .values import Sym, identity

CONVERTERS: dict[str, Any] = {
    **ops_conv.CONVERTERS, **ops_norm.CONVERTERS, **ops_pool.CONVERTERS,
    **ops_activation.CONVERTERS, **ops_arith.CONVERTERS, **ops_shape.CONVERTERS,
    **ops_resize.CONVERTERS, **ops_reduce.CONVERTERS}
SUPPORTED = frozenset(CONVERTERS) | FOLDABLE
MIN_OPSET = 7


def supported_ops() -> list[str]:
    """Every operator type the importer takes (some only on constant inputs)."""
    return sorted(SUPPORTED)


def _opset(model: Any, src: Source) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise OnnxFormatError(f"{src.name}: the model imports no version of the default "
                              f"('ai.onnx') operator set")
    v = int(versions[0])
    if v < MIN_OPSET:
        raise UnsupportedOnnxError(f"{src.name}: opset {v}; cnnkit reads opsets {MIN_OPSET} "
                                   f"and later (tested: 9 to 21)")
    return v


def _attrs(node: Any, src: Source) -> dict[str, Any]:
    from onnx import AttributeProto

    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
            raise UnsupportedOnnxError(f"{src.name}: node '{node.name}' ({node.op_type}) has a "
                                       f"subgraph (control flow is not supported)")
        if a.type == AttributeProto.TENSOR:
            out[a.name] = tensor_array(a.t, f"attribute {a.name} of node '{node.name}'", src)
        elif a.type == AttributeProto.FLOAT:
            out[a.name] = float(a.f)
        elif a.type == AttributeProto.INT:
            out[a.name] = int(a.i)
        elif a.type == AttributeProto.STRING:
            out[a.name] = a.s.decode("utf-8", "replace")
        elif a.type == AttributeProto.FLOATS:
            out[a.name] = [float(v) for v in a.floats]
        elif a.type == AttributeProto.INTS:
            out[a.name] = [int(v) for v in a.ints]
        elif a.type == AttributeProto.STRINGS:
            out[a.name] = [s.decode("utf-8", "replace") for s in a.strings]
    return out


def decode(model: Any, src: Source) -> tuple[list[OnnxNode], int]:
    """The graph's nodes; UnsupportedOnnxError for the first one cnnkit cannot build."""
    opset = _opset(model, src)
    nodes = []
    for i, n in enumerate(model.graph.node):
        name = n.name or f"{n.op_type}_{i}"
        if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED:
            where = f"domain {n.domain!r}, " if n.domain not in ("", "ai.onnx") else ""
            raise UnsupportedOnnxError(
                f"{src.name}: node '{name}' has op type {n.op_type} ({where}opset {opset}), "
                f"which cnnkit cannot import; supported: {', '.join(supported_ops())}")
        nodes.append(OnnxNode(name, n.op_type, list(n.input), list(n.output), _attrs(n, src),
                              opset, n))
    return nodes, opset


def _inputs(model: Any, ctx: Context, src: Source) -> list[Any]:
    """Input layers for the graph inputs that are not initializers (batch axis: any size)."""
    tensors = []
    for vi in model.graph.input:
        if vi.name in ctx.values:
            continue
        tt = vi.type.tensor_type
        dtype = DTYPES.get(int(tt.elem_type))
        if not vi.type.HasField("tensor_type") or dtype is None:
            raise UnsupportedOnnxError(f"{src.name}: input '{vi.name}' is not a tensor of a "
                                       f"numeric type")
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in tt.shape.dim]
        if not dims:
            raise UnsupportedOnnxError(f"{src.name}: input '{vi.name}' has no batch axis "
                                       f"(rank 0)")
        if dims[0] is not None:
            ctx.batch_size = dims[0]
        if dtype.kind == "f":
            dtype = np.dtype(ctx.dtype)
        t = Input(shape=tuple(dims[1:]), dtype=dtype, name=ctx.layer_name(vi.name))
        ctx.values[vi.name] = Sym(t, identity(len(dims)))
        tensors.append(t)
    if not tensors:
        raise UnsupportedOnnxError(f"{src.name}: the graph has no data input")
    return tensors


def _convert(ctx: Context, nodes: list[OnnxNode], budget: Any) -> None:
    for node in nodes:
        ctx.node = node
        if id(node) in ctx.absorbed:
            continue
        try:
            outs = _node_values(ctx, node, budget)
        except ValueError:
            raise
        except (TypeError, IndexError, KeyError, ZeroDivisionError, OverflowError,
                AttributeError, RecursionError) as e:  # attributes of the wrong kind or size
            raise ctx.unsupported(f"malformed attributes or inputs ({type(e).__name__}: "
                                  f"{str(e)[:160]})") from None
        for name, v in zip(node.outputs, outs, strict=False):
            if name:
                ctx.values[name] = v
    ctx.node = None


def _node_values(ctx: Context, node: OnnxNode, budget: Any) -> list[Any]:
    outs = fold(ctx, node, budget)
    if outs is None:
        if node.op_type not in CONVERTERS:
            raise ctx.unsupported("cnnkit computes this operator only on constants (it folds "
                                  "it at import), but its input is the model's data")
        outs = CONVERTERS[node.op_type](ctx, node)
    return outs


def _outputs(model: Any, ctx: Context, src: Source) -> list[Any]:
    """Each graph output in ONNX's layout, its layer named as the output."""
    outs = []
    for vi in model.graph.output:
        v = ctx.values.get(vi.name)
        if not isinstance(v, Sym):
            raise UnsupportedOnnxError(f"{src.name}: output '{vi.name}' is a constant or is "
                                       f"never computed")
        v = ctx.onnx_layout(v)
        layer = v.tensor.node.layer
        if layer.name != vi.name and vi.name not in ctx.layer_names and not isinstance(
                layer, InputLayer):
            ctx.layer_names.add(vi.name)
            layer.name = vi.name
        outs.append(v.tensor)
    return outs


def load_onnx(source: str | os.PathLike | bytes, max_bytes: int | None = None,
              dtype: str = "float32") -> Model:
    """A functional cnnkit Model built from the ONNX model at ``source`` (a path or the
    file's bytes), out of cnnkit layers: inputs and outputs keep the ONNX names, layouts and
    shapes (an NCHW model takes NCHW input, with any batch size); inside, tensors are
    channels-last. Raises OnnxFormatError (a ValueError) for a damaged file,
    UnsupportedOnnxError for an operator or form cnnkit cannot build (before anything is
    built), UnsafeOnnxError for refused external data; OSError from the file system.

    ``max_bytes``: the memory the arrays read or folded from the file may take (default
    8 x (file + external data size) + 16 MiB; raise it for a trusted model that generates
    its weights inside the graph, e.g. with ConstantOfShape). ``dtype``: the layers' dtype,
    "float32" (ONNX's usual) or "float64" (floating inputs are then taken as float64)."""
    if dtype not in ("float32", "float64"):
        raise ValueError(f"load_onnx: dtype must be 'float32' or 'float64', got {dtype!r}")
    model, src = read_model(source)
    if max_bytes is not None:
        src.budget.limit = int(max_bytes)
    nodes, opset = decode(model, src)
    ctx = Context(src.name, opset, dtype=dtype, budget=src.budget)
    ctx.graph_outputs = {o.name for o in model.graph.output}
    for node in nodes:
        for name in node.inputs:
            ctx.consumers.setdefault(name, []).append(node)
    for t in model.graph.initializer:
        ctx.values[t.name] = tensor_array(t, f"initializer '{t.name}'", src)
    inputs = _inputs(model, ctx, src)
    _convert(ctx, nodes, src.budget)
    outputs = _outputs(model, ctx, src)
    name = model.graph.name or (Path(str(source)).stem if not isinstance(
        source, (bytes, bytearray, memoryview)) else "onnx_model")
    out = Model(inputs if len(inputs) > 1 else inputs[0],
                outputs if len(outputs) > 1 else outputs[0], name=ctx.layer_name(name))
    moved = {key[0] for key in ctx._permuted}
    out.input_layout = None if len(inputs[0].shape) != 4 else (
        "NCHW" if id(inputs[0]) in moved else "NHWC")
    out.onnx_opset = opset
    out.onnx_layout_transposes = ctx.permutes
    return out

