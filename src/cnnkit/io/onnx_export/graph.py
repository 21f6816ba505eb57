"""The ONNX graph being written: nodes, initializers, unique names, and the operators whose
form changed between opsets (axes and bounds moved from attributes to inputs), each written
in the form the target opset reads.

A :class:`Value` is one tensor of the cnnkit model as the ONNX graph holds it: its cnnkit
(channels-last) shape, and whether the ONNX tensor is channels-first (``cf``: an (N, H, W, C)
tensor held as (N, C, H, W)). Flattened features may be held in another order
(``order[j]`` = the cnnkit feature at ONNX position j), which a following Dense layer
absorbs into its kernel instead of a transpose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .errors import OnnxExportError


@dataclass(frozen=True)
class Value:
    """One tensor: ONNX name, cnnkit shape (batch None), layout, dtype, feature order."""

    name: str
    shape: tuple
    cf: bool = False
    dtype: Any = np.dtype("float32")
    order: Any = None

    @property
    def rank(self) -> int:
        return len(self.shape)

    def named(self, name: str, **changes: Any) -> Value:
        return replace(self, name=name, **changes)


def to_cf(rank: int) -> tuple[int, ...]:
    """Transpose permutation channels-last -> channels-first: (0, r-1, 1, ..., r-2)."""
    return (0, rank - 1, *range(1, rank - 1))


def to_last(rank: int) -> tuple[int, ...]:
    """Transpose permutation channels-first -> channels-last: (0, 2, ..., r-1, 1)."""
    return (0, *range(2, rank), 1)


def onnx_axis(axis: int, value: Value) -> int:
    """The ONNX axis holding cnnkit axis ``axis`` of ``value``."""
    r = value.rank
    a = axis % r
    if not value.cf or a == 0:
        return a
    return 1 if a == r - 1 else a + 1


def onnx_shape(value: Value) -> tuple:
    s = value.shape
    return tuple(s[i] for i in to_cf(len(s))) if value.cf else tuple(s)


class Graph:
    """Nodes and initializers in the order written; every name unique."""

    def __init__(self, opset: int):
        import onnx

        self.onnx = onnx
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: set[str] = set()
        self._weights: dict[Any, str] = {}
        self.moved: dict[tuple[str, str], str] = {}  # (value, layout) -> its transposed name

    # ----- names, nodes, constants -------------------------------------------------------------
    def fresh(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``, ... if taken."""
        name, n = base, 0
        while name in self._names:
            n += 1
            name = f"{base}_{n}"
        self._names.add(name)
        return name

    @property
    def taken(self) -> set[str]:
        return self._names

    def reserve(self, name: str) -> None:
        if name in self._names:
            raise OnnxExportError(f"two graph inputs or outputs are named {name!r}")
        self._names.add(name)

    def node(self, op: str, inputs: list[str], base: str, n_out: int = 1,
             **attrs: Any) -> Any:
        """Add ``op``; returns its output name (a list when ``n_out`` > 1)."""
        outs = [self.fresh(base if i == 0 else f"{base}_out{i}") for i in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outs, name=self.fresh(
            f"{base}/{op}"), **attrs))
        return outs[0] if n_out == 1 else outs

    def weight(self, key: Any, array: np.ndarray, base: str) -> str:
        """An initializer, written once per ``key`` (a layer's weight shared by two calls)."""
        if key is not None and key in self._weights:
            return self._weights[key]
        name = self.fresh(base)
        self.initializers.append(self.onnx.numpy_helper.from_array(
            np.require(array, requirements="C"), name))  # (0-d stays a scalar)
        if key is not None:
            self._weights[key] = name
        return name

    def const(self, array: Any, base: str, dtype: Any = None) -> str:
        a = np.asarray(array, dtype=dtype)
        return self.weight(("const", a.dtype.str, a.shape, a.tobytes()), a, base)

    def ints(self, values: Any, base: str) -> str:
        return self.const(np.asarray(values, dtype=np.int64), base)

    def rename(self, old: str, new: str) -> None:
        """Every use of tensor ``old`` renamed ``new`` (a graph output's name)."""
        for nd in self.nodes:
            for seq in (nd.input, nd.output):
                for i, n in enumerate(seq):
                    if n == old:
                        seq[i] = new

    # ----- opset checks ------------------------------------------------------------------------
    def need(self, opset: int, what: str) -> None:
        if self.opset < opset:
            raise OnnxExportError(f"{what} needs opset >= {opset}, got opset {self.opset}")

    # ----- operators whose form depends on the opset -------------------------------------------
    def transpose(self, x: str, perm: tuple, base: str) -> str:
        return self.node("Transpose", [x], base, perm=list(perm))

    def unsqueeze(self, x: str, axes: list[int], base: str) -> str:
        if self.opset >= 13:
            return self.node("Unsqueeze", [x, self.ints(axes, "axes")], base)
        return self.node("Unsqueeze", [x], base, axes=list(axes))

    def reduce(self, op: str, x: str, axes: list[int], keepdims: bool, base: str) -> str:
        """ReduceMean / ReduceMax / ReduceSum over ``axes`` (an input from opset 18, 13 for
        ReduceSum; an attribute before)."""
        since = 13 if op == "ReduceSum" else 18
        if self.opset >= since:
            return self.node(op, [x, self.ints(axes, "axes")], base, keepdims=int(keepdims))
        return self.node(op, [x], base, axes=list(axes), keepdims=int(keepdims))

    def clip(self, x: str, lo: float | None, hi: float | None, dtype: Any, base: str) -> str:
        """min(max(x, lo), hi); bounds are inputs from opset 11, attributes before."""
        if self.opset >= 11:
            ins = [x, "" if lo is None else self.const(lo, "clip_min", dtype),
                   "" if hi is None else self.const(hi, "clip_max", dtype)]
            while ins[-1] == "":
                ins.pop()
            return self.node("Clip", ins, base)
        return self.node("Clip", [x], base, min=None if lo is None else float(lo),
                         max=None if hi is None else float(hi))

    def pad(self, x: str, pads: list[int], dtype: Any, base: str, value: float = 0.0) -> str:
        """Constant padding; ``pads`` = all begins then all ends (ONNX order)."""
        if self.opset >= 11:
            return self.node("Pad", [x, self.ints(pads, "pads"),
                                     self.const(value, "pad_value", dtype)], base)
        return self.node("Pad", [x], base, pads=list(pads), value=float(value))

    def slice(self, x: str, starts: list[int], ends: list[int], axes: list[int],
              base: str) -> str:
        if self.opset >= 10:
            return self.node("Slice", [x, self.ints(starts, "starts"), self.ints(ends, "ends"),
                                       self.ints(axes, "axes")], base)
        return self.node("Slice", [x], base, starts=list(starts), ends=list(ends),
                         axes=list(axes))

    def dropout(self, x: str, rate: float, dtype: Any, base: str) -> str:
        """A Dropout node in inference mode (the identity), kept for a training export."""
        if self.opset >= 12:
            return self.node("Dropout", [x, self.const(rate, "ratio", dtype)], base)
        return self.node("Dropout", [x], base, ratio=float(rate))

    def hard_sigmoid(self, x: str, alpha: float, beta: float, base: str) -> str:
        return self.node("HardSigmoid", [x], base, alpha=float(alpha), beta=float(beta))

    def shape_of(self, x: str, start: int, end: int, base: str) -> str:
        """Shape(x)[start:end] as an int64 vector."""
        shape = self.node("Shape", [x], f"{base}/shape")
        return self.slice(shape, [start], [end], [0], f"{base}/dims")

    def resize(self, x: str, base: str, mode: str, coords: str, scales: str = "",
               sizes: str = "") -> str:
        """Resize by ``scales`` or to ``sizes`` (opset 11+: roi, coordinate modes)."""
        self.need(11, "Resize with coordinate_transformation_mode")
        if self.opset < 13:  # roi and scales are required inputs: empty when unused
            empty = self.const(np.zeros(0, np.float32), "empty")
            ins = [x, empty, scales or empty] + ([sizes] if sizes else [])
        else:
            ins = [x, "", scales] + ([sizes] if sizes else [])
        nearest = {"nearest_mode": "floor"} if mode == "nearest" else {}
        return self.node("Resize", ins, base, mode=mode, coordinate_transformation_mode=coords,
                         **nearest)
