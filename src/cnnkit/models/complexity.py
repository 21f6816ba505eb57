"""Per-layer complexity and receptive field of a whole model, from its graph.

For every layer: multiply-adds (``Layer.compute_macs``), FLOPs (conventions in
:mod:`cnnkit.layers.costs`), activation memory of its output for one sample, and the
receptive field of its output along each spatial axis as (size r, jump j, start s), in input
pixels (Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019). From input (1, 1, 0), a window of effective kernel k, stride t and
padding p before gives::

    r' = r + (k - 1) * j      j' = j * t      s' = s + ((k - 1) / 2 - p) * j

``s`` is the centre of the first output cell's field. Where paths join (Add, Concatenate),
the field is the union of the incoming fields: from the smallest left edge
``s - (r - 1)/2`` to the largest right edge; the jumps agree in a well-formed network (the
largest is kept otherwise). Dense, Flatten and global pooling read the whole input ("all").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..layers import shape_inference
from ..layers.core import InputLayer
from ..layers.costs import GLOBAL, Window, layer_flops, layer_windows

RF = tuple[tuple[float, float, float], ...]  # per spatial axis: (size, jump, start)


@dataclass
class LayerCost:
    """One row of the complexity table."""

    name: str
    kind: str
    output_shape: Any
    params: int
    macs: int
    flops: int | None  # None: a layer the counter does not know (named in the table)
    memory: int  # bytes of the output, one sample
    rf: RF | str | None  # GLOBAL ("all"), or None when not known


def _memory(layer: Any, shape: Any) -> int:
    if shape is None:
        return 0
    if isinstance(shape, list):
        return sum(_memory(layer, s) for s in shape)
    if any(d is None for d in shape[1:]):
        return 0
    size = np.dtype(getattr(layer, "dtype", None) or "float32").itemsize
    return int(np.prod([int(d) for d in shape[1:]], dtype=np.int64)) * size


def _flops(layer: Any, ins: Any, out: Any) -> int | None:
    if hasattr(layer, "inference_graph") and hasattr(layer, "layer_table"):  # a nested model
        rows = complexity_rows(layer, ins)
        return None if any(r.flops is None for r in rows) else sum(r.flops for r in rows)
    return layer_flops(layer, ins, out)


def union(fields: list[Any]) -> Any:
    """The receptive field of a join of paths: the union per axis (see module doc)."""
    if any(f is None for f in fields):
        return None
    if any(f == GLOBAL for f in fields):
        return GLOBAL
    if len({len(f) for f in fields}) != 1:
        return None
    out = []
    for axis in zip(*fields, strict=True):
        lo = min(s - (r - 1) / 2 for r, _, s in axis)
        hi = max(s + (r - 1) / 2 for r, _, s in axis)
        out.append((hi - lo + 1, max(j for _, j, _ in axis), (lo + hi) / 2))
    return tuple(out)


def apply_windows(field: Any, windows: list[Window] | str | None) -> Any:
    """The field after one layer's windows (see module doc)."""
    if field is None or windows is None:
        return None
    if field == GLOBAL or windows == GLOBAL:
        return GLOBAL
    if not windows:
        return field
    if len(windows) != len(field):
        return None
    return tuple((r + (w.kernel - 1) * j, j * w.stride, s + ((w.kernel - 1) / 2 - w.pad_before) * j)
                 for (r, j, s), w in zip(field, windows, strict=True))


def _input_field(shape: Any) -> Any:
    return tuple((1.0, 1.0, 0.0) for _ in shape[1:-1]) if shape is not None else None


def complexity_rows(model: Any, input_shape: Any = None) -> list[LayerCost]:
    """One :class:`LayerCost` per layer of a Sequential, functional or subclassed model."""
    if hasattr(model, "_nodes") and getattr(model, "_functional", False):
        return _functional_rows(model, input_shape)
    if hasattr(model, "_input_spec"):
        return _sequential_rows(model, input_shape)
    return _traced_rows(model, input_shape)


def _row(layer: Any, ins: Any, out: Any, field: Any) -> LayerCost:
    return LayerCost(layer.name, type(layer).__name__, out,
                     layer.count_params() if layer.built else 0,
                     layer.compute_macs(ins, out) if out is not None else 0,
                     _flops(layer, ins, out) if out is not None else 0,
                     _memory(layer, out), field)


def _sequential_rows(model: Any, input_shape: Any) -> list[LayerCost]:
    shape = input_shape or model._input_spec
    if shape is None:
        raise ValueError(f"Sequential '{model.name}' has no input shape yet: give "
                         f"input_shape= to the first layer or start with Input(...)")
    field, rows = _input_field(shape), []
    for layer in model.layers:
        out = layer.compute_output_shape(shape)
        field = apply_windows(field, _windows(layer, shape))
        rows.append(_row(layer, shape, out, field))
        shape = out
    return rows


def _windows(layer: Any, shape: Any) -> Any:
    if hasattr(layer, "inference_graph") and hasattr(layer, "layer_table"):
        return None  # the field through a nested model is not composed here
    return layer_windows(layer, shape)


def _functional_rows(model: Any, input_shape: Any) -> list[LayerCost]:
    shapes, _ = model.node_shapes(input_shape)
    fields = {id(t): _input_field(shapes[id(t)]) for t in model._inputs}
    rows: dict[int, LayerCost] = {}
    for node in model._nodes:
        layer = node.layer
        if isinstance(layer, InputLayer):
            t = node.output_tensors[0]
            rows.setdefault(id(layer), _row(layer, None, shapes.get(id(t), t.shape),
                                            fields.get(id(t))))
            continue
        ins = [shapes[id(t)] for t in node.input_tensors]
        ins_arg = ins if isinstance(node.inputs, (list, tuple)) else ins[0]
        outs = [shapes[id(t)] for t in node.output_tensors]
        out = outs if isinstance(node.outputs, (list, tuple)) else outs[0]
        field = apply_windows(union([fields.get(id(t)) for t in node.input_tensors]),
                              _windows(layer, ins_arg))
        for t in node.output_tensors:
            fields[id(t)] = field
        row = _row(layer, ins_arg, out, field)
        if id(layer) in rows:  # a shared layer: costs add up, the last call's field is shown
            prev = rows[id(layer)]
            row.macs += prev.macs
            row.flops = None if prev.flops is None or row.flops is None else \
                row.flops + prev.flops
            row.memory += prev.memory
        rows[id(layer)] = row
    return [rows[id(layer)] for layer in model.layers if id(layer) in rows]


def _traced_rows(model: Any, input_shape: Any) -> list[LayerCost]:
    """A subclassed model: shapes from a dry run of ``call``; no receptive fields (its
    wiring is code, not a graph)."""
    shape = input_shape if input_shape is not None else getattr(model, "_build_shape", None)
    if shape is None:
        raise ValueError(f"model '{model.name}' is not built yet: call it on a batch or "
                         f"build(input_shape) first")
    subs = model._sublayers()
    _, calls = shape_inference.trace(lambda x: model(x, training=False),
                                     (None, *tuple(shape)[1:]), model.dtype, watch=subs)
    rows = []
    for layer in subs:
        ins, out = calls.get(id(layer), (None, None))
        rows.append(_row(layer, ins, out, None))
    return rows
