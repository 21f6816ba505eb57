"""The state of one import: every ONNX value's cnnkit form, the layers made so far, and the
layout pass (a tensor changes layout only where a reader needs another one, so for a CNN the
transposes sit at the model's inputs and outputs)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...layers import Permute
from ...layers.base import Layer
from ...layers.build_context import shapes_only
from .errors import UnsupportedOnnxError
from .values import Partial, Sym, Value, channels_last, identity, inverse


@dataclass
class OnnxNode:
    """One decoded node: attributes as Python values (tensors as arrays)."""

    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    opset: int
    proto: Any = None

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    @property
    def label(self) -> str:
        return f"node '{self.name}' ({self.op_type}, opset {self.opset})"


@dataclass
class Context:
    """Values by ONNX name, the consumers of each value, and the layer-name registry."""

    source: str
    opset: int
    values: dict[str, Value] = field(default_factory=dict)
    consumers: dict[str, list[OnnxNode]] = field(default_factory=dict)
    graph_outputs: set[str] = field(default_factory=set)
    layer_names: set[str] = field(default_factory=set)
    _permuted: dict[tuple[int, tuple], Sym] = field(default_factory=dict)
    absorbed: set[int] = field(default_factory=set)  # ids of nodes folded into another
    node: OnnxNode | None = None
    permutes: int = 0
    batch_size: int | None = None  # the batch size the model's inputs declare
    dtype: str = "float32"  # the layers' dtype
    budget: Any = None  # the file's MemoryBudget (arrays made at import are charged to it)

    # ----- errors ----------------------------------------------------------------------
    def unsupported(self, what: str) -> UnsupportedOnnxError:
        where = self.node.label if self.node is not None else "the graph"
        return UnsupportedOnnxError(f"{self.source}: {where}: {what}")

    def used(self, name: str) -> bool:
        """Whether a value is read by a node or is a graph output."""
        return bool(name) and (name in self.consumers or name in self.graph_outputs)

    # ----- values ----------------------------------------------------------------------
    def get(self, name: str) -> Value:
        if name not in self.values:
            raise self.unsupported(f"input {name!r} is not produced by any earlier node, "
                                   f"initializer or graph input")
        return self.values[name]

    def const(self, name: str, what: str) -> np.ndarray:
        """The constant value of input ``name`` (``what`` names it in the error)."""
        v = self.get(name)
        if isinstance(v, Partial) and v.known:
            return v.array()
        if not isinstance(v, np.ndarray):
            raise self.unsupported(f"{what} ({name!r}) must be a constant (an initializer or "
                                   f"computable from the input shape), but it depends on the "
                                   f"data")
        return v

    def optional_const(self, node: OnnxNode, i: int, what: str) -> np.ndarray | None:
        if len(node.inputs) <= i or not node.inputs[i]:
            return None
        return self.const(node.inputs[i], what)

    def sym(self, name: str, what: str = "input") -> Sym:
        v = self.get(name)
        if not isinstance(v, Sym):
            raise self.unsupported(f"{what} ({name!r}) is a constant where cnnkit expects the "
                                   f"data flowing through the model")
        return v

    # ----- layers ----------------------------------------------------------------------
    def layer_name(self, base: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.:-]+", "_", base).strip("_") or "layer"
        name, i = base, 1
        while name in self.layer_names:
            name, i = f"{base}_{i}", i + 1
        self.layer_names.add(name)
        return name

    def name_for(self, suffix: str = "") -> str:
        """A layer name from the current node (its ONNX output name for a graph output)."""
        node = self.node
        if node is not None and not suffix and len(node.outputs) == 1 and (
                node.outputs[0] in self.graph_outputs):
            return self.layer_name(node.outputs[0])
        base = (node.name or node.outputs[0] if node is not None else "layer") or "layer"
        return self.layer_name(base + suffix)

    def apply(self, layer_cls: type[Layer], inputs: Any, perm: tuple[int, ...],
              weights: list[np.ndarray] | None = None, suffix: str = "", **kwargs: Any
              ) -> Any:
        """Call a new ``layer_cls(**kwargs)`` on the cnnkit tensors ``inputs``, set its
        ``weights``, and return the output as Sym(s) with layout ``perm``."""
        args = [s.tensor for s in inputs] if isinstance(inputs, list) else inputs.tensor
        try:
            layer = layer_cls(name=self.name_for(suffix), dtype=self.dtype, **kwargs)
            if weights is None:
                out = layer(args)
            else:  # built without initialising weights that are replaced at once
                with shapes_only():
                    out = layer(args)
                _set_weights(layer, weights)
        except ValueError as e:
            raise self.unsupported(f"cannot build {layer_cls.__name__}: {e}") from None
        if isinstance(out, list):
            return [Sym(t, perm) for t in out]
        return Sym(out, perm)

    # ----- the layout pass -------------------------------------------------------------
    def ensure(self, sym: Sym, perm: tuple[int, ...]) -> Sym:
        """``sym`` held with layout ``perm`` (one Permute per tensor and layout, shared by
        every reader that needs it)."""
        if sym.flat_order is not None:
            sym = self._unflatten_order(sym)
        if sym.perm == perm:
            return sym
        key = (id(sym.tensor), perm)
        if key in self._permuted:
            return self._permuted[key]
        if sym.perm[0] != 0 or perm[0] != 0:
            raise self.unsupported("the batch axis would move (cnnkit keeps axis 0 as the "
                                   "batch)")
        dims = [sym.perm.index(perm[i]) for i in range(1, len(perm))]
        out = self.apply(Permute, sym, perm, suffix="_layout", dims=dims)
        self.permutes += 1
        self._permuted[key] = out
        return out

    def _unflatten_order(self, sym: Sym) -> Sym:
        raise self.unsupported("a flattened tensor whose features are in cnnkit's order "
                               "reaches a reader that needs ONNX's order")

    def onnx_layout(self, sym: Sym) -> Sym:
        return self.ensure(sym, identity(sym.rank))

    def channels_last(self, sym: Sym) -> Sym:
        return self.ensure(sym, channels_last(sym.rank))

    def common(self, syms: list[Sym]) -> list[Sym]:
        """The tensors in one layout (the first channels-last one's, else the first's)."""
        ranks = {s.rank for s in syms}
        if len(ranks) > 1:
            raise self.unsupported(f"inputs of different ranks {sorted(ranks)} (cnnkit "
                                   f"broadcasts tensors of equal rank)")
        target = next((s.perm for s in syms if s.perm != identity(s.rank)), syms[0].perm)
        return [self.ensure(s, target) for s in syms]


def _set_weights(layer: Layer, values: list[np.ndarray]) -> None:
    ws = layer.weights
    if len(ws) != len(values):
        raise ValueError(f"{type(layer).__name__} has {len(ws)} weights, the node gives "
                         f"{len(values)}")
    for w, v in zip(ws, values, strict=True):
        v = np.asarray(v)
        if v.size != w.size:
            raise ValueError(f"weight {w.name} has shape {w.shape}, the node gives {v.shape}")
        w.data = np.array(v.reshape(w.shape), dtype=layer.dtype, order="C")


def phys_to_onnx(perm: tuple[int, ...]) -> tuple[int, ...]:
    """The ONNX ``Transpose`` perm turning cnnkit's tensor back into ONNX's layout."""
    return inverse(perm)
