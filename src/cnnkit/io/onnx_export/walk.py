"""The walk over a model's layer graph (the runtime's :class:`~cnnkit.runtime.LayerGraph`),
writing each layer call with the writer registered for its class, and nested models inline.

Before writing, one pass per graph decides the folds, as the runtime's passes do: in an
inference export a channel batch norm whose input is read by it alone, and made without an
activation by a layer whose writer absorbs batch norms, goes into that layer's weights; a
zero padding read only by a layer whose writer absorbs pads goes into its pads. The
absorbing layers are known by their writers' flags (:class:`~.registry.Entry`), not by
class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import OnnxExportError
from .graph import Graph, Value
from .layout import in_order
from .registry import Call, lookup


@dataclass
class Folds:
    """Node index -> the batch-norm layer it absorbs / the pads it absorbs; the indices of
    the nodes so absorbed (written as nothing: their output is their input's value)."""

    bn: dict[int, Any] = field(default_factory=dict)
    pads: dict[int, Any] = field(default_factory=dict)
    skip: set[int] = field(default_factory=set)
    pad_reader: dict[int, int] = field(default_factory=dict)


def _is_bn(layer: Any, rank: int | None) -> bool:
    """A batch norm over the channel (last) axis, the one a layer before it can absorb."""
    from .norm import batch_norm

    entry = lookup(layer)
    if entry is None or entry.fn is not batch_norm or rank is None:
        return False
    axes = (layer.axis,) if isinstance(layer.axis, int) else tuple(layer.axis)
    return len(axes) == 1 and axes[0] % rank == rank - 1


def _is_zero_pad(layer: Any) -> bool:
    from ...layers import ZeroPadding1D, ZeroPadding2D, ZeroPadding3D

    return type(layer) in (ZeroPadding1D, ZeroPadding2D, ZeroPadding3D)


def plan_folds(graph: Any, training: bool) -> Folds:
    """Which nodes absorb which (see the module docstring)."""
    folds = Folds()
    producer: dict[int, int] = {}
    readers: dict[int, list[int]] = {}
    for i, nd in enumerate(graph.nodes):
        for s in nd.outs:
            producer[s] = i
        for s in nd.arg_slots:
            readers.setdefault(s, []).append(i)
    outputs = set(graph.outputs)

    def sole_reader(slot: int) -> int | None:
        r = readers.get(slot, [])
        return r[0] if len(r) == 1 and slot not in outputs else None

    for i, nd in enumerate(graph.nodes):
        if not isinstance(nd.args, int):
            continue
        if not training and _is_bn(nd.layer, nd.rank) and sole_reader(nd.args) == i:
            p = producer.get(nd.args)
            if p is not None and p not in folds.bn and _takes_bn(graph.nodes[p], nd.layer):
                folds.bn[p] = nd.layer
                folds.skip.add(i)
        j = sole_reader(nd.outs[0]) if _is_zero_pad(nd.layer) else None
        if j is not None and j not in folds.pads and _takes_pads(graph.nodes[j], nd.layer):
            folds.pads[j] = tuple(tuple(p) for p in nd.layer.padding)
            folds.skip.add(i)
            folds.pad_reader[i] = j
    return folds


def _takes_bn(src: Any, bn: Any) -> bool:
    """``src`` (one output, plain call, no activation, bn's dtype) absorbs batch norms."""
    entry = lookup(src.layer)
    act = getattr(src.layer, "activation", None)
    return (entry is not None and entry.absorbs_bn and not src.multi_out and not src.kwargs
            and (act is None or act is _linear()) and bn.dtype == src.layer.dtype)


def _takes_pads(reader: Any, pad: Any) -> bool:
    """``reader`` (one input, plain call, of the padding's rank) absorbs zero paddings."""
    entry = lookup(reader.layer)
    return (entry is not None and entry.absorbs_pads and isinstance(reader.args, int)
            and not reader.kwargs and getattr(reader.layer, "rank", None) == len(pad.padding))


def _linear() -> Any:
    from ... import ops

    return ops.get_activation("linear")


@dataclass
class Walker:
    """Writes layer graphs into ``g``."""

    g: Graph
    training: bool
    prefix: str = ""

    def write_model(self, model: Any, inputs: list[Value]) -> list[Value]:
        graph = model.inference_graph()
        if graph is None:
            raise OnnxExportError(
                f"{type(model).__name__} '{model.name}' is a subclassed model (its call() is "
                f"Python code), so it has no layer graph to export; build it as a functional "
                f"Model or a Sequential")
        return self.write_graph(graph, inputs)

    def write_graph(self, graph: Any, inputs: list[Value]) -> list[Value]:
        folds = plan_folds(graph, self.training)
        slots: dict[int, Value] = dict(enumerate(inputs))
        for i, nd in enumerate(graph.nodes):
            args = [slots[s] for s in nd.arg_slots]
            if i in folds.pad_reader and _same_of_unknown(graph.nodes[folds.pad_reader[i]],
                                                          args[0]):
                folds.skip.discard(i)  # "same" pads of an unknown size: SAME_UPPER, no extra
                folds.pads.pop(folds.pad_reader[i])
            if i in folds.skip:
                slots[nd.outs[0]] = args[0]
                continue
            result = self.write_node(nd, args, folds.bn.get(i), folds.pads.get(i))
            outs = result if isinstance(result, list) else [result]
            if len(outs) != len(nd.outs):
                raise OnnxExportError(f"layer '{nd.layer.name}' gave {len(outs)} outputs, the "
                                      f"graph expects {len(nd.outs)}")
            for s, v in zip(nd.outs, outs, strict=True):
                slots[s] = v
        return [slots[s] for s in graph.outputs]

    def write_node(self, nd: Any, args: list[Value], bn: Any, pads: Any) -> Any:
        layer = nd.layer
        kwargs = {k: v for k, v in (nd.kwargs or {}).items() if k != "training"}
        if kwargs:
            raise OnnxExportError(f"{type(layer).__name__} '{layer.name}' is called with "
                                  f"{sorted(kwargs)}; only plain calls are exported")
        if _is_model(layer):
            inner = Walker(self.g, self.training, f"{self.prefix}{layer.name}.")
            outs = inner.write_model(layer, args)
            return outs if nd.multi_out or len(outs) > 1 else outs[0]
        entry = lookup(layer)
        if entry is None:
            raise OnnxExportError(unsupported(layer))
        if not entry.keeps_order:
            args = [in_order(self.g, v) for v in args]
        shapes: Any = [v.shape for v in args] if isinstance(nd.args, list) else args[0].shape
        if pads:
            shapes = (shapes[0], *[None if d is None else d + b + a for d, (b, a) in
                                   zip(shapes[1:-1], pads, strict=True)], shapes[-1])
        out_shape = layer.compute_output_shape(shapes)
        call = Call(self.g, layer, args, out_shape, f"{self.prefix}{layer.name}",
                    self.training, bn, pads)
        return entry.fn(call)


def _same_of_unknown(reader: Any, x: Value) -> bool:
    return reader.layer.padding == "same" and any(d is None for d in x.shape[1:-1])


def _is_model(layer: Any) -> bool:
    from ...models import Model

    return isinstance(layer, Model)


def unsupported(layer: Any) -> str:
    from .registry import exported_classes

    cls = type(layer)
    known = sorted({c.__name__ for c in exported_classes()})
    why = " (its function is Python code)" if cls.__name__ == "Lambda" else ""
    return (f"layer '{layer.name}' of class {cls.__module__}.{cls.__qualname__} has no ONNX "
            f"exporter{why}; layers that export: {', '.join(known)}")
