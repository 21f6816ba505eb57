"""Moving a value between the layouts the graph holds: channels-first (the ONNX operators'
own layout, used for every image-like tensor) and channels-last (cnnkit's), and undoing a
permuted feature order. Each move is one node; the walk asks for them only where a layer
needs the other layout, so a CNN in NCHW has transposes at its edges alone."""

from __future__ import annotations

import numpy as np

from .graph import Graph, Value, to_cf, to_last


def as_cf(g: Graph, v: Value) -> Value:
    """``v`` channels-first (rank >= 3; a rank-2 value is the same in both layouts)."""
    if v.cf or v.rank < 3:
        return v
    key = (v.name, "cf")
    if key not in g.moved:  # one transpose per value, however many layers read it
        g.moved[key] = g.transpose(v.name, to_cf(v.rank), f"{v.name}.nchw")
    return v.named(g.moved[key], cf=True)


def as_last(g: Graph, v: Value) -> Value:
    """``v`` in cnnkit's channels-last layout and feature order."""
    v = in_order(g, v)
    if not v.cf:
        return v
    if all(d == 1 for d in v.shape[1:-1]):  # (N, C, 1, 1) and (N, 1, 1, C) share one order
        shape = [0, *(1 for _ in v.shape[1:-1]), int(v.shape[-1])]
        if v.shape[-1] is not None:
            name = g.node("Reshape", [v.name, g.ints(shape, "shape")], f"{v.name}.nhwc")
            return v.named(name, cf=False)
    return v.named(g.transpose(v.name, to_last(v.rank), f"{v.name}.nhwc"), cf=False)


def in_order(g: Graph, v: Value) -> Value:
    """``v`` with its features in cnnkit's order (a Gather of the inverse permutation)."""
    if v.order is None:
        return v
    inverse = np.argsort(v.order).astype(np.int64)
    name = g.node("Gather", [v.name, g.ints(inverse, "feature_order")], f"{v.name}.ordered",
                  axis=1)
    return v.named(name, order=None)


def same_layout(g: Graph, values: list[Value]) -> list[Value]:
    """Values of one rank brought to one layout (channels-first if any is), feature order
    restored; for an elementwise operation between them."""
    values = [in_order(g, v) for v in values]
    if any(v.cf for v in values) and all(v.rank == values[0].rank for v in values):
        return [as_cf(g, v) for v in values]
    if len({v.rank for v in values}) > 1:
        return [as_last(g, v) for v in values]
    return values


def flatten_order(shape: tuple) -> np.ndarray:
    """For a channels-first flatten of a channels-last (N, *S, C) shape: order[j] = the
    channels-last feature index at channels-first position j."""
    *spatial, c = (int(d) for d in shape[1:])
    idx = np.arange(int(np.prod(spatial, dtype=np.int64)) * c).reshape(*spatial, c)
    return np.moveaxis(idx, -1, 0).reshape(-1)
