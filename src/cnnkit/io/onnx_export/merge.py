"""Merges, pass-through layers and Embedding.

- Add / Subtract / Multiply / Average / Maximum / Minimum: Add (Sum for more than two), Sub,
  Mul, Mean, Max, Min, with ONNX's NumPy broadcasting; an input of lower rank gets its
  length-1 axes just after the batch axis first (Keras's rule);
- Concatenate: Concat on the ONNX axis that holds cnnkit's axis;
- Dropout, SpatialDropout*, the Random* augmentation layers and InputLayer: nothing at
  inference (a Dropout node in a training export);
- Embedding: Gather of the table rows (ids cast to int64).
"""

from __future__ import annotations

import numpy as np

from ... import layers
from .graph import Value, onnx_axis
from .layout import as_cf, same_layout
from .registry import Call, exports

_OPS = {layers.Add: "Add", layers.Subtract: "Sub", layers.Multiply: "Mul",
        layers.Average: "Mean", layers.Maximum: "Max", layers.Minimum: "Min"}


def _op_of(layer: object) -> str:
    for cls, op in _OPS.items():
        if isinstance(layer, cls):
            return op
    raise AssertionError(type(layer))  # only registered classes come here


@exports(*_OPS)
def merge(c: Call) -> Value:
    g = c.g
    xs = same_layout(g, list(c.inputs))
    rank = max(v.rank for v in xs)
    xs = [v if v.rank == rank else v.named(g.unsqueeze(v.name, list(range(1, 1 + rank - v.rank)),
                                                       f"{v.name}.expanded"))
          for v in xs]
    op = _op_of(c.layer)
    if len(xs) == 1:
        return c.out(g.node("Identity", [xs[0].name], c.name), cf=xs[0].cf)
    if op in ("Add", "Mul") and len(xs) > 2:
        y = xs[0].name
        for i, v in enumerate(xs[1:]):
            y = g.node(op, [y, v.name], c.name if i == len(xs) - 2 else f"{c.name}/{i}")
    else:
        y = g.node(op, [v.name for v in xs], c.name)
    return Value(y, tuple(c.out_shape), xs[0].cf, xs[0].dtype)


@exports(layers.Concatenate)
def concatenate(c: Call) -> Value:
    xs = same_layout(c.g, list(c.inputs))
    if any(v.cf for v in xs):
        xs = [as_cf(c.g, v) for v in xs]
    axis = onnx_axis(c.layer.axis, xs[0])
    y = c.g.node("Concat", [v.name for v in xs], c.name, axis=axis)
    return Value(y, tuple(c.out_shape), xs[0].cf, xs[0].dtype)


_PASS = (layers.InputLayer, layers.RandomFlip, layers.RandomRotation, layers.RandomZoom,
         layers.RandomTranslation, layers.RandomContrast, layers.RandomBrightness)


@exports(*_PASS, keeps_order=True)
def passthrough(c: Call) -> Value:
    """The identity at inference: no node."""
    return c.x


@exports(layers.Dropout, layers.SpatialDropout1D, layers.SpatialDropout2D,
         layers.SpatialDropout3D, keeps_order=True)
def dropout(c: Call) -> Value:
    """No node at inference; a Dropout node (run in inference mode) in a training export, so
    a trainer that reads the file finds the layer."""
    if not c.training or not c.layer.rate:
        return c.x
    return c.x.named(c.g.dropout(c.x.name, c.layer.rate, c.x.dtype, c.name))


@exports(layers.Embedding)
def embedding(c: Call) -> Value:
    g, x = c.g, c.x
    ids = x.name
    if np.dtype(x.dtype) != np.int64:
        ids = g.node("Cast", [ids], f"{c.name}/ids", to=g.onnx.TensorProto.INT64)
    table = c.weight("embeddings", c.layer.embeddings.data)
    y = g.node("Gather", [table, ids], c.name, axis=0)
    return Value(y, tuple(c.out_shape), False, np.dtype(c.layer.dtype))
