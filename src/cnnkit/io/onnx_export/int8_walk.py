"""The ONNX export of an int8 model (``cnnkit.deploy.quantize``'s ``QuantizedModel``, read
here by its attributes: ``io`` does not import ``deploy``).

The walk goes through the int8 plan's steps (:mod:`cnnkit.deploy.int8_graph`) in order. The
integer steps are written by :mod:`.int8_steps` (form "integer": ConvInteger and a float
requantize chain) or :mod:`.qdq_steps` (form "qdq": DequantizeLinear / QuantizeLinear pairs
around float operators, which ONNX Runtime fuses into QLinearConv, QGemm, QLinearAdd, ...),
both giving ONNX Runtime the same integers; views and concatenations on codes are Reshape /
Concat. A step that stays in float (a layer kept in float, average pooling, softmax, ...) is
written layer by layer with the float exporter's writers: the layer calls it fused are
found in the model's layer graph, from the step's output slot back to its input slot. Shapes
come from one dry run of the int8 plan on a batch of zeros, so the input size must be fixed.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ...runtime import quantized_steps as QS
from ...runtime import steps as S
from . import int8_steps as W
from . import qdq_steps as Q
from .errors import OnnxExportError
from .graph import Graph, Value, onnx_axis
from .layout import as_last, flatten_order, same_layout
from .walk import Walker

MIN_INT8_OPSET = 13  # QuantizeLinear / DequantizeLinear 13, Clip on integers 12
INT8_FORMATS = ("integer", "qdq")


def is_quantized(model: Any) -> bool:
    """Whether ``model`` is an int8 model (a float model, its int8 plan and graph)."""
    graph = getattr(model, "graph", None)
    return (hasattr(model, "float_plan") and hasattr(model, "plan")
            and hasattr(graph, "slot_q") and hasattr(graph, "nodes"))


def _as_list(args: Any) -> list[int]:
    return list(args) if isinstance(args, list) else [args]


def dry_run_shapes(q: Any) -> dict[int, tuple[tuple, Any]]:
    """slot -> (shape, dtype) of every value of the int8 plan run on one sample of zeros."""
    graph = q.float_plan.graph
    shape = q.model.input_shape if hasattr(q.model, "input_shape") else None
    if not isinstance(shape, tuple) or any(d is None for d in shape[1:]):
        raise OnnxExportError(f"the int8 ONNX export needs a model with a fixed input size; "
                              f"'{q.model.name}' takes {shape}")
    vals: dict[int, Any] = {0: np.zeros((1, *shape[1:]), np.float32)}
    for s in q.plan.steps:
        a = [vals[i] for i in s.args] if s.multi_in else vals[s.args]
        r = s.fn(a)
        for slot, v in zip(_as_list(s.outs), r if s.multi_out else [r], strict=True):
            vals[slot] = np.asarray(v)
    assert graph is not None
    return {k: (v.shape, v.dtype) for k, v in vals.items()}


class _Int8Walk:
    def __init__(self, g: Graph, q: Any, form: str = "integer"):
        self.g, self.q, self.qdq = g, q, form == "qdq"
        nodes = q.float_plan.node_list()
        self.sw = {nodes[i].outs[0]: w.scale for i, w in q.graph.weights.items()}
        self.info = dry_run_shapes(q)
        self.graph = q.float_plan.graph
        self.producer = {s: gn for gn in self.graph.nodes for s in gn.outs}
        self.float_args = {tuple(nd.outs): nd.args for nd in q.float_plan.node_list()}
        self.walker = Walker(g, False)

    def shape(self, slot: int) -> tuple:
        return self.info[slot][0]

    def cnnkit_shape(self, slot: int) -> tuple:
        return (None, *self.shape(slot)[1:])

    def run(self, inputs: list[Value]) -> list[Value]:
        vals: dict[int, Value] = {0: inputs[0]}
        for k, nd in enumerate(self.q.graph.nodes):
            layer = getattr(nd.step, "layer", None)
            base = getattr(layer, "name", None) or f"int8_{type(nd.step).__name__}_{k}"
            out = self.write(nd, vals, base)
            if out is None:
                self.write_float(nd, vals)
            else:
                vals[nd.outs[0]] = out.named(out.name, shape=self.cnnkit_shape(nd.outs[0]))
        return [vals[s] for s in self.graph.outputs]

    def write(self, nd: Any, vals: dict[int, Value], base: str) -> Value | None:
        """The step written as integer ops, or None for a float step."""
        step, g = nd.step, self.g
        xs = [vals[a] for a in _as_list(nd.args)]
        if isinstance(step, QS.Quantize):
            return W.quantize(g, xs[0], step.scale, step.zero, step.dtype, f"{base}/quantize")
        if isinstance(step, QS.Dequantize):
            return W.dequantize(g, xs[0], step.scale, step.zero, f"{base}/dequantize")
        shapes = (self.shape(nd.args) if isinstance(nd.args, int) else None,
                  self.shape(nd.outs[0]))
        if isinstance(step, QS.QuantizedConv) and self.qdq:
            slot_q = self.q.graph.slot_q
            return Q.qdq_layer(g, step, xs[0], *shapes, base, slot_q[nd.args],
                               slot_q.get(nd.outs[0]), self.sw[nd.outs[0]])
        if isinstance(step, QS.QuantizedConv):
            return W.integer_layer(g, step, xs[0], *shapes, base)
        if isinstance(step, QS.QuantizedMaxPool):
            return W.max_pool(g, step, xs[0], *shapes, f"{base}/int8_max_pool")
        if isinstance(step, QS.QuantizedAdd):
            if self.qdq:
                return Q.qdq_add(g, step, same_layout(g, xs), f"{base}/int8_add")
            return W.add(g, step, same_layout(g, xs), f"{base}/int8_add")
        if isinstance(step, QS.QuantizedClamp):
            return W.clamp(g, xs[0], (step.lo, step.hi), f"{base}/int8_clamp")
        if xs[0].dtype.kind == "f":
            return None
        if isinstance(step, S.Concat):
            xs = same_layout(g, xs)
            if self.qdq:
                return Q.qdq_concat(g, xs, self.q.graph.slot_q[_as_list(nd.args)[0]],
                                    onnx_axis(step.axis, xs[0]), f"{base}/int8_concat")
            return xs[0].named(g.node("Concat", [v.name for v in xs], f"{base}/int8_concat",
                                      axis=onnx_axis(step.axis, xs[0])))
        if isinstance(step, (S.View, S.Identity)):
            return self.view(xs[0], shapes[1], base)
        raise OnnxExportError(f"the int8 step {type(step).__name__} has no ONNX form")

    def view(self, x: Value, out_shape: tuple, base: str) -> Value:
        """A reshape of codes (flatten, reshape, dropout and input layers)."""
        if tuple(out_shape[1:]) == tuple(x.shape[1:]):
            return x
        target = [-1, *(int(d) for d in out_shape[1:])]
        if x.cf and len(out_shape) == 2 and x.order is None:  # flatten channels-first
            name = self.g.node("Reshape", [x.name, self.g.ints(target, "shape")],
                               f"{base}/int8_flatten")
            return x.named(name, cf=False, order=flatten_order((None, *x.shape[1:])))
        x = as_last(self.g, x)
        return x.named(self.g.node("Reshape", [x.name, self.g.ints(target, "shape")],
                                   f"{base}/int8_reshape"))

    def chain(self, nd: Any) -> list[Any]:
        """The layer calls a float step fused: from the one writing its output back to the
        one reading its input."""
        want = _as_list(self.float_args.get(tuple(nd.outs), nd.args))
        gn = self.producer.get(nd.outs[0])
        found = []
        while gn is not None and len(found) <= len(self.graph.nodes):
            found.insert(0, gn)
            if gn.arg_slots == want:
                return found
            gn = self.producer.get(gn.args) if isinstance(gn.args, int) else None
        raise OnnxExportError(f"step {type(nd.step).__name__} writing slot {nd.outs[0]} does "
                              f"not match the model's layer graph")

    def write_float(self, nd: Any, vals: dict[int, Value]) -> None:
        chain = self.chain(nd)
        orig = chain[0].arg_slots
        local = {o: vals[a] for o, a in zip(orig, _as_list(nd.args), strict=True)}
        for gn in chain:
            res = self.walker.write_node(gn, [local[s] for s in gn.arg_slots], None, None)
            outs = res if isinstance(res, list) else [res]
            for s, v in zip(gn.outs, outs, strict=True):
                local[s] = v
        for s in nd.outs:
            vals[s] = local[s]


def write_quantized(g: Graph, q: Any, inputs: list[Value], form: str = "integer"
                    ) -> list[Value]:
    """The output values of int8 model ``q`` written into ``g`` (module docstring) in
    ``form`` "integer" (:mod:`.int8_steps`) or "qdq" (:mod:`.qdq_steps`)."""
    if form not in INT8_FORMATS:
        raise OnnxExportError(f"int8_format must be 'integer' or 'qdq', got {form!r}")
    g.need(MIN_INT8_OPSET, "the int8 model's QuantizeLinear / DequantizeLinear")
    if form == "qdq":
        warn_8bit_weights(q)
    return _Int8Walk(g, q, form).run(inputs)


def warn_8bit_weights(q: Any) -> bool:
    """Warn (and return True) when an integer layer has weight codes beyond +-63: ONNX
    Runtime's fused u8 x s8 kernels on x86 CPUs without VNNI (AVX2) add byte products in
    pairs into int16, which saturates with 8-bit weights, so its outputs can differ."""
    steps = q.float_plan.steps
    big = [steps[i].step.layer.name for i, w in sorted(q.graph.weights.items())
           if int(np.abs(w.wq.astype(np.int16)).max()) > 63]
    if big:
        warnings.warn(f"int8_format='qdq' with 8-bit weights (layers {', '.join(big[:3])}"
                      f"{', ...' if len(big) > 3 else ''}): ONNX Runtime on x86 CPUs without "
                      f"VNNI (AVX2) saturates u8 x s8 pair sums, so its outputs can differ from "
                      f"cnnkit's; quantize with weight_bits=7 (the default) for a QDQ file that "
                      f"runs with the same results there, or export int8_format='integer'",
                      UserWarning, stacklevel=4)
    return bool(big)
