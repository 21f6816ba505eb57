"""Which channels of a model are tied together, found by walking its layer graph.

Every channel of every tensor is named by an *atom*. A layer that makes new channels (a
convolution, a dense layer) makes fresh atoms, one per output channel; a layer that works per
channel (BatchNorm, activations, pooling, padding, depthwise convolution) passes its input's
atoms on; ``Add`` and the other element-wise merges tie the i-th atoms of their inputs into one
set (union-find); ``Concatenate`` joins the atom lists, so each input's channels keep their
offsets; ``Flatten`` repeats the atoms once per spatial position in channels-last order
(row p*C + c of the next Dense reads channel c). A set of tied atoms is one prunable unit: it
is removed from every tensor, and every layer, in which it appears. A set is never pruned if it
meets a model input, a model output or a layer whose channels this walk does not understand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ... import layers as L
from ...layers.base import Layer

PASS_THROUGH = (L.ReLU, L.LeakyReLU, L.ELU, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
                L.SpatialDropout3D, L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D,
                L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D,
                L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D,
                L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D,
                L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D, L.Cropping1D, L.Cropping2D,
                L.Cropping3D, L.UpSampling1D, L.UpSampling2D, L.UpSampling3D, L.Rescaling,
                L.Activation)
MERGES = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)
PRODUCERS = (L.Conv1D, L.Conv2D, L.Conv3D, L.Dense, L.SeparableConv2D)


@dataclass
class Call:
    """One call of a layer: the keys of the tensors it reads and writes."""

    layer: Layer
    inputs: list[Any]
    outputs: list[Any]


def layer_calls(model: Any) -> tuple[list[Call], list[Any], list[Any], dict[Any, tuple]]:
    """(calls in order, input keys, output keys, shape per key) of a Sequential or
    functional model."""
    if hasattr(model, "_input_spec"):  # Sequential: a chain, keys 0..n
        if model._input_spec is None:
            raise ValueError(f"model '{model.name}' has no input shape yet; build it first")
        shape, shapes, calls = tuple(model._input_spec), {0: tuple(model._input_spec)}, []
        for i, layer in enumerate(model.layers):
            shape = tuple(layer.compute_output_shape(shape))
            shapes[i + 1] = shape
            calls.append(Call(layer, [i], [i + 1]))
        return calls, [0], [len(calls)], shapes
    if not getattr(model, "_functional", False):
        raise TypeError(f"channel pruning needs a Sequential or functional model; "
                        f"'{model.name}' is subclassed (its graph is not known)")
    shapes, _ = model.node_shapes()
    calls = [Call(n.layer, [id(t) for t in n.input_tensors], [id(t) for t in n.output_tensors])
             for n in model._nodes if not isinstance(n.layer, L.InputLayer)]
    return calls, [id(t) for t in model._inputs], [id(t) for t in model._outputs], shapes


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []

    def new(self, n: int) -> np.ndarray:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        return np.arange(start, start + n, dtype=np.int64)

    def find(self, a: int) -> int:
        parent = self.parent
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(int(a)), self.find(int(b))
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class ChannelGraph:
    """The atoms of a model's tensors and layers, and which of them may be pruned."""

    uf: _UnionFind = field(default_factory=_UnionFind)
    tensors: dict[Any, np.ndarray] = field(default_factory=dict)
    layer_in: dict[str, np.ndarray] = field(default_factory=dict)
    layer_out: dict[str, np.ndarray] = field(default_factory=dict)
    layers: dict[str, Layer] = field(default_factory=dict)
    blocked: list[int] = field(default_factory=list)
    produced: list[int] = field(default_factory=list)

    def roots(self, atoms: np.ndarray) -> np.ndarray:
        find = self.uf.find
        return np.fromiter((find(int(a)) for a in atoms), dtype=np.int64, count=len(atoms))

    def prunable_roots(self) -> set[int]:
        """Sets with a producer's channel and no input, output or unknown-layer channel."""
        blocked = {self.uf.find(a) for a in self.blocked}
        return {self.uf.find(a) for a in self.produced} - blocked

    def families(self) -> list[list[int]]:
        """Prunable sets grouped by the producers whose outputs they tie (one layer, or the
        layers an Add joins); each family keeps its own fraction. A concatenation does not
        join families: each part keeps its fraction."""
        prunable = self.prunable_roots()
        fam = _UnionFind()
        index: dict[int, int] = {}
        for name, atoms in self.layer_out.items():
            if isinstance(self.layers.get(name), L.DepthwiseConv2D):
                continue
            rs = [r for r in set(self.roots(atoms).tolist()) if r in prunable]
            for r in rs:
                if r not in index:
                    index[r] = int(fam.new(1)[0])
            for r in rs[1:]:
                fam.union(index[rs[0]], index[r])
        groups: dict[int, list[int]] = {}
        for r, i in sorted(index.items()):
            groups.setdefault(fam.find(i), []).append(r)
        return list(groups.values())


def _fresh(g: ChannelGraph, n: int, blocked: bool) -> np.ndarray:
    atoms = g.uf.new(n)
    if blocked:
        g.blocked.extend(atoms.tolist())
    return atoms


def _tie(g: ChannelGraph, a: np.ndarray, b: np.ndarray) -> None:
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        g.uf.union(x, y)


def _layer_in(g: ChannelGraph, layer: Layer, atoms: np.ndarray) -> None:
    """The input channels a layer's weights index; a shared layer ties its calls' inputs."""
    known = g.layer_in.get(layer.name)
    if known is None:
        g.layer_in[layer.name] = atoms
        g.layers[layer.name] = layer
    else:
        _tie(g, known, atoms)


def _block_call(g: ChannelGraph, call: Call, ins: list[np.ndarray], shapes: dict) -> None:
    for a in ins:
        g.blocked.extend(a.tolist())
    for k in call.outputs:
        c = shapes[k][-1] if shapes[k] else 1
        g.tensors[k] = _fresh(g, int(c or 0), blocked=True)


def _softmax(layer: Layer) -> bool:
    return getattr(layer, "activation_name", None) == "softmax"


def _visit_producer(g: ChannelGraph, call: Call, ins: list[np.ndarray], shapes: dict) -> bool:
    layer = call.layer
    if getattr(layer, "groups", 1) != 1 or len(ins) != 1 or len(call.outputs) != 1:
        return False
    _layer_in(g, layer, ins[0])
    out = g.layer_out.get(layer.name)
    if out is None:
        n = layer.units if isinstance(layer, L.Dense) else layer.filters
        out = g.layer_out[layer.name] = _fresh(g, int(n), blocked=_softmax(layer))
        g.produced.extend(out.tolist())
    g.tensors[call.outputs[0]] = out
    return True


def _visit_per_channel(g: ChannelGraph, call: Call, ins: list[np.ndarray], shapes: dict
                       ) -> bool:
    layer = call.layer
    if len(ins) != 1 or len(call.outputs) != 1:
        return False
    rank = len(shapes[call.inputs[0]])
    if isinstance(layer, L.BatchNormalization):
        axis = layer.axis[0] if isinstance(layer.axis, (tuple, list)) and len(
            layer.axis) == 1 else layer.axis
        if not isinstance(axis, int) or axis % rank != rank - 1:
            return False
        _layer_in(g, layer, ins[0])
        out = ins[0]
    elif isinstance(layer, L.DepthwiseConv2D):
        _layer_in(g, layer, ins[0])
        out = np.repeat(ins[0], layer.depth_multiplier)
        g.layer_out[layer.name] = out
    elif isinstance(layer, L.Flatten):
        spatial = shapes[call.inputs[0]][1:-1]
        if any(s is None for s in spatial):
            return False
        out = np.tile(ins[0], math.prod(spatial))
    elif isinstance(layer, PASS_THROUGH) and not (isinstance(layer, L.Activation)
                                                 and _softmax(layer)):
        out = ins[0]
    else:
        return False
    g.tensors[call.outputs[0]] = out
    return True


def _visit_merge(g: ChannelGraph, call: Call, ins: list[np.ndarray], shapes: dict) -> bool:
    layer = call.layer
    if len(call.outputs) != 1 or not ins:
        return False
    rank = len(shapes[call.inputs[0]])
    if isinstance(layer, L.Concatenate) and layer.axis % rank == rank - 1:
        g.tensors[call.outputs[0]] = np.concatenate(ins)
        return True
    if not isinstance(layer, (*MERGES, L.Concatenate)) or len({len(a) for a in ins}) != 1:
        return False
    for a in ins[1:]:
        _tie(g, ins[0], a)
    g.tensors[call.outputs[0]] = ins[0]
    return True


def analyse(model: Any) -> ChannelGraph:
    """The channel graph of a built Sequential or functional model."""
    calls, inputs, outputs, shapes = layer_calls(model)
    g = ChannelGraph()
    for k in inputs:
        g.tensors[k] = _fresh(g, int(shapes[k][-1] or 0), blocked=True)
    for call in calls:
        ins = [g.tensors[k] for k in call.inputs]
        layer = call.layer
        if isinstance(layer, PRODUCERS):
            done = _visit_producer(g, call, ins, shapes)
        elif isinstance(layer, (*MERGES, L.Concatenate)):
            done = _visit_merge(g, call, ins, shapes)
        else:
            done = _visit_per_channel(g, call, ins, shapes)
        if not done:
            _block_call(g, call, ins, shapes)
    for k in outputs:
        g.blocked.extend(g.tensors[k].tolist())
    return g
