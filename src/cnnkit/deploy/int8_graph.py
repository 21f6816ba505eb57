"""The int8 graph: a float inference plan's fused steps (batch norm already folded into the
convolution or dense layer before it, ReLU-type activations fused) rewritten with integer
steps (:mod:`cnnkit.runtime.steps`).

Each value slot is either float or quantized (codes with a scale and zero point, from the
calibrated range of that slot). Convolutions, depthwise convolutions (multiplier 1) and
dense layers become integer layers; max pooling, views (flatten, reshape, dropout), adds,
concatenations (their inputs share one range: :func:`shared_concat_ranges`) and ReLU-type
activations stay on codes; every other step runs in float on dequantized
values. A Quantize / Dequantize step is put in where a value crosses between the two, once
per slot. A convolution or dense layer whose readers all run in float (or that gives a model
output) writes float32 directly (its requantize step scales to the real value instead).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..kernels import qconv
from ..kernels import quantize as qk
from ..runtime import quantized_steps as Q
from ..runtime import steps as S
from ..runtime.passes import StepNode

__all__ = ["int_kind", "IntWeights", "weights_of_step", "Int8Graph", "build_int8_nodes",
           "activation_before_pool", "int8_float_plan", "shared_concat_ranges"]

QuantParams = tuple[float, int]


def _clamp_ok(act: Any) -> bool:
    return act is None or getattr(act, "bounds", None) is not None


def int_kind(step: Any, keep_float: set[str]) -> str | None:
    """What a fused float step becomes in the int8 graph ("conv", "depthwise", "dense",
    "maxpool", "view", "add", "clamp", "concat"), or None to keep it in float."""
    layer = getattr(step, "layer", None)
    if layer is not None and getattr(layer, "name", None) in keep_float:
        return None
    if isinstance(step, S.Conv):
        if not _clamp_ok(step.act) or layer.rank != 2:
            return None
        if step.depthwise:
            return "depthwise" if layer.kernel.shape[-1] == 1 else None
        return "conv" if layer.groups == 1 else None
    if isinstance(step, S.Dense):
        return "dense" if _clamp_ok(step.act) else None
    if isinstance(step, S.Pool):
        return "maxpool" if step.is_max and _clamp_ok(step.act) else None
    if isinstance(step, (S.View, S.Identity)):
        return "view"
    if isinstance(step, S.Merge):
        return "add" if step.ufunc is np.add and _clamp_ok(step.act) else None
    if isinstance(step, S.Activate):
        return "clamp" if step.act.bounds is not None else None
    if isinstance(step, S.Concat):
        return "concat"
    return None


@dataclass
class IntWeights:
    """A layer's quantized weights: ``wq`` int8 in the kernel's layout (depthwise
    (KH, KW, C), dense (1, 1, C, COUT)), per-channel ``scale`` float32 and the folded float
    ``bias`` (or None)."""

    wq: np.ndarray
    scale: np.ndarray
    bias: np.ndarray | None


def weights_of_step(step: Any, kind: str, per_channel: bool, qmax: int = 127) -> IntWeights:
    """The step's layer weights with its batch norm folded in (runtime.compute), quantized
    symmetric (codes -qmax .. qmax) per output channel (or per tensor)."""
    from ..runtime.compute import folded_params

    layer = step.layer
    shape = layer.kernel.shape[-2:] if kind == "depthwise" else None
    w, b = folded_params(layer, step.affine, shape)
    w = np.asarray(w, np.float32)
    if kind == "depthwise":
        w = w.reshape(w.shape[:3])
    elif kind == "dense":
        w = w.reshape(1, 1, *w.shape)
    wq, scale = qk.quantize_weights(w, -1 if per_channel else None, qmax)
    return IntWeights(wq, scale, None if b is None else np.asarray(b, np.float32))


def _act_limits(act: Any, q: QuantParams, dtype: Any) -> tuple[int, int]:
    """[lo, hi] codes of ``dtype`` after a ReLU-type activation (or none)."""
    lo, hi = qk.qrange(dtype)
    if act is None:
        return lo, hi
    b_lo, b_hi = act.bounds
    lo = max(lo, q[1] + int(np.rint(b_lo / q[0])))
    if b_hi is not None:
        hi = min(hi, q[1] + int(np.rint(b_hi / q[0])))
    return lo, hi


def conv_params(w: IntWeights, kind: str, qx: QuantParams, qy: QuantParams | None,
                act: Any, dtype: Any) -> qconv.QuantConvParams:
    """The integer layer's constants: bias_q = rint(b / (sx sw)) - zx sum wq, mult =
    sx sw / sy (sx sw for float output), output limits from the activation.

    mult is float32(sx) * float32(sw) / float32(sy), each operation rounded to float32, as
    ONNX Runtime's QLinearConv / QGemm compute it, so a QDQ export requantizes alike."""
    sx, zx = qx
    acc_scale = np.float64(sx) * w.scale.astype(np.float64)
    colsum = w.wq.astype(np.int64).reshape(-1, w.wq.shape[-1]).sum(axis=0)
    b = np.zeros(w.wq.shape[-1]) if w.bias is None else w.bias.astype(np.float64)
    bias = np.rint(b / acc_scale).astype(np.int64) - zx * colsum
    bias = np.clip(bias, -(1 << 31), (1 << 31) - 1).astype(np.int32)
    acc32 = np.float32(sx) * w.scale.astype(np.float32)
    if qy is None:
        return qconv.QuantConvParams(w.wq, bias, acc32, zx)
    lo, hi = _act_limits(act, qy, dtype)
    packed = qconv.pack_weights(w.wq) if kind != "depthwise" else None
    return qconv.QuantConvParams(w.wq, bias, acc32 / np.float32(qy[0]), zx,
                                 qy[1], lo, hi, packed)


@dataclass
class Int8Graph:
    """The rewritten nodes, their slot count, each integer step's kind and quantized weights
    (by the index of the float step it replaces) and the slots' quantization."""

    nodes: list[StepNode]
    n_slots: int
    kinds: dict[int, str] = field(default_factory=dict)
    weights: dict[int, IntWeights] = field(default_factory=dict)
    slot_q: dict[int, QuantParams] = field(default_factory=dict)


class _Builder:
    def __init__(self, n_slots: int, params: Callable[[int], QuantParams], dtype: Any):
        self.nodes: list[StepNode] = []
        self.next = n_slots
        self.params, self.dtype = params, np.dtype(dtype)
        self.domain: dict[int, QuantParams] = {}  # quantized slots
        self.cache: dict[tuple[int, str], int] = {}

    def new_slot(self) -> int:
        self.next += 1
        return self.next - 1

    def emit(self, step: Any, args: Any, outs: list[int], multi_out: bool = False) -> None:
        self.nodes.append(StepNode(step, args, outs, multi_out))

    def as_q(self, slot: int) -> int:
        if slot in self.domain:
            return slot
        key = (slot, "q")
        if key not in self.cache:
            q = self.params(slot)
            t = self.new_slot()
            self.emit(Q.Quantize(q[0], q[1], self.dtype), slot, [t])
            self.domain[t] = q
            self.cache[key] = t
        return self.cache[key]

    def as_f(self, slot: int) -> int:
        if slot not in self.domain:
            return slot
        key = (slot, "f")
        if key not in self.cache:
            t = self.new_slot()
            self.emit(Q.Dequantize(*self.domain[slot]), slot, [t])
            self.cache[key] = t
        return self.cache[key]


def _readers(nodes: list[StepNode]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for j, nd in enumerate(nodes):
        for a in (nd.args if isinstance(nd.args, list) else [nd.args]):
            out.setdefault(a, []).append(j)
    return out


def _code_step(b: _Builder, nd: StepNode, kind: str) -> tuple[Any, Any, QuantParams] | None:
    """(integer step, its argument slot(s), its output's quantization) for a step on codes,
    or None when its input is float (then it stays a float step)."""
    step, dtype = nd.step, b.dtype
    if kind == "add":
        if len(nd.args) != 2 or not any(a in b.domain for a in nd.args):
            return None
        xs = [b.as_q(a) for a in nd.args]
        qy = b.params(nd.outs[0])
        lo, hi = _act_limits(step.act, qy, dtype)
        return Q.QuantizedAdd(b.domain[xs[0]], b.domain[xs[1]], qy, dtype, lo, hi), xs, qy
    if kind == "concat":  # exact on codes only when every input has the same quantization
        qs = {b.domain.get(a) for a in nd.args}
        return None if len(qs) != 1 or None in qs else (step, nd.args, qs.pop())
    if nd.args not in b.domain:
        return None
    q = b.domain[nd.args]
    if kind == "view":
        return step, nd.args, q
    if kind == "clamp":
        return Q.QuantizedClamp(*_act_limits(step.act, q, dtype)), nd.args, q
    limits = None if step.act is None else _act_limits(step.act, q, dtype)
    pool = Q.QuantizedMaxPool(tuple(step.pool), tuple(step.strides), step.padding,
                              qk.qrange(dtype)[0], limits)
    return pool, nd.args, q


def _emit_layer(b: _Builder, g: Int8Graph, i: int, nd: StepNode, float_out: bool,
                weights: IntWeights) -> None:
    kind, step, out = g.kinds[i], nd.step, nd.outs[0]
    x = b.as_q(nd.args)
    qy = None if float_out else b.params(out)
    p = conv_params(weights, kind, b.domain[x], qy, step.act, b.dtype)
    b.emit(Q.QuantizedConv(step.layer, p, kind, np.float32 if float_out else b.dtype,
                           getattr(step, "extra_pads", None), step.act if float_out else None),
           x, [out])
    if qy is not None:
        b.domain[out] = qy
    g.weights[i] = weights


def build_int8_nodes(nodes: list[StepNode], n_slots: int, outputs: set[int],
                     params: Callable[[int], QuantParams], dtype: Any, keep_float: set[str],
                     weights_for: Callable[[int, Any, str], IntWeights]) -> Int8Graph:
    """The int8 graph of a float plan's nodes (module docstring). ``params(slot)``: the
    calibrated quantization of a float slot; ``weights_for(i, step, kind)``: the quantized
    weights of node i."""
    kinds = {i: (None if nd.multi_out else int_kind(nd.step, keep_float))
             for i, nd in enumerate(nodes)}
    readers = _readers(nodes)
    b = _Builder(n_slots, params, dtype)
    g = Int8Graph([], n_slots)
    for i, nd in enumerate(nodes):
        kind = kinds[i]
        if kind in ("conv", "depthwise", "dense"):
            g.kinds[i] = kind
            out = nd.outs[0]
            float_out = out in outputs or all(kinds[j] is None for j in readers.get(out, []))
            _emit_layer(b, g, i, nd, float_out, weights_for(i, nd.step, kind))
            continue
        made = None if kind is None else _code_step(b, nd, kind)
        if made is None:
            args = [b.as_f(a) for a in nd.args] if isinstance(nd.args, list) \
                else b.as_f(nd.args)
            b.emit(nd.step, args, nd.outs, nd.multi_out)
            continue
        step, args, q = made
        g.kinds[i] = kind
        out = nd.outs[0]
        if out in outputs:  # a model output is float
            t = b.new_slot()
            b.emit(step, args, [t])
            b.emit(Q.Dequantize(*q), t, [out])
        else:
            b.emit(step, args, [out])
            b.domain[out] = q
    g.nodes, g.n_slots, g.slot_q = b.nodes, b.next, b.domain
    return g


def activation_before_pool(nodes: list[StepNode], outputs: set[int]) -> list[StepNode]:
    """Undo the float plan's move of a ReLU-type activation past a max pooling (they
    commute): the convolution or dense layer applies it again, so its output is
    non-negative and uses the whole uint8 range (the float pass moved it to touch fewer
    values)."""
    readers = _readers(nodes)
    producer = {nd.outs[0]: nd for nd in nodes if not nd.multi_out}
    for nd in nodes:
        step = nd.step
        if not (isinstance(step, S.Pool) and step.is_max and step.act is not None
                and isinstance(nd.args, int)):
            continue
        src = producer.get(nd.args)
        if src is None or len(readers.get(nd.args, [])) != 1 or nd.args in outputs or \
                not isinstance(src.step, (S.Conv, S.Dense)) or src.step.act is not None:
            continue
        moved = src.step.with_activation(step.act)
        if moved is not None:
            src.step, nd.step = moved, replace(step, act=None)
    return nodes


def shared_concat_ranges(nodes: list[StepNode], ranges: dict[int, tuple[float, float]]
                         ) -> dict[int, tuple[float, float]]:
    """The ranges with every concatenation's inputs and output given their union, so that
    the codes of the inputs join exactly (one scale and zero point)."""
    out = dict(ranges)
    for nd in nodes:
        if isinstance(nd.step, S.Concat) and isinstance(nd.args, list):
            slots = [s for s in (*nd.args, *nd.outs) if s in out]
            if slots:
                lo = min(out[s][0] for s in slots)
                hi = max(out[s][1] for s in slots)
                out.update({s: (lo, hi) for s in slots})
    return out


def int8_float_plan(model: Any) -> Any:
    """The float plan the int8 graph is built from (and calibrated on): the model's plan
    with :func:`activation_before_pool` applied."""
    from ..runtime import InferencePlan

    plan = InferencePlan(model)
    if plan.graph is None:
        raise TypeError(f"quantize needs a Sequential or functional model, got "
                        f"{type(model).__name__}")
    nodes = activation_before_pool(plan.node_list(), set(plan.graph.outputs))
    return plan.with_nodes(nodes, plan.n_slots)
