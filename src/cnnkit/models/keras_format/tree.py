"""A model as Keras sees it for saving: its layers in Keras's order, each with the class name
Keras files under, and nested models as sub-trees. Reading a file builds the tree from the
file's config order; writing computes the order Keras's functional graph will have when it
loads the file (deepest first, ties by first visit from the outputs), so the weight paths
Keras derives from that order (``layers/conv2d_1/vars/0``) match the ones cnnkit writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...layers.base import Layer
from ...layers.build_context import snake_case

OP = "__op__"  # a Keras operation read as a layer: Keras keeps no weights for it


@dataclass
class Entry:
    """One layer of a model: the cnnkit layer, its Keras class name and, for a nested model,
    its own entries."""

    layer: Layer
    class_name: str
    children: list[Entry] | None = None
    extra: dict = field(default_factory=dict)


def weight_key(class_name: str) -> str:
    """Keras's path element for a layer of this class (Functional for any functional model)."""
    return snake_case("Functional" if class_name == "Model" else class_name)


def keyed(entries: list[Entry]) -> list[tuple[str, Entry]]:
    """(path element, entry): ``conv2d``, ``conv2d_1``, ... counted per class, as Keras."""
    used: dict[str, int] = {}
    out = []
    for e in entries:
        if e.class_name == OP:
            continue
        key = weight_key(e.class_name)
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        out.append((key, e))
    return out


def keras_weight_order(layer: Layer) -> list[Any]:
    """A layer's own weights in Keras's order: created-trainable first, then the rest."""
    pairs = list(zip(layer._own_weights, layer._weight_trainable, strict=True))
    return [w for w, t in pairs if t] + [w for w, t in pairs if not t]


def _walk_nodes(model: Any) -> tuple[list[Any], dict[int, int]]:
    """Keras's depth-first walk from the outputs: nodes inputs-first, and each layer's index
    of first visit (ops/function.py ``_build_map``), without recursion."""
    from ...layers.core import InputLayer

    input_ids = {id(t) for t in model._inputs}
    finished: set[int] = set()
    order: list[Any] = []
    first: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(t, False) for t in reversed(model._outputs)]
    while stack:
        t, expanded = stack.pop()
        node = t.node
        if expanded:
            if id(node) not in finished:
                finished.add(id(node))
                order.append(node)
            continue
        if id(node) in finished:
            continue
        is_input = isinstance(node.layer, InputLayer)
        if not is_input and id(t) in input_ids:
            finished.add(id(node))
            continue
        first.setdefault(id(node.layer), len(first))
        stack.append((t, True))
        if not is_input:
            stack.extend((s, False) for s in reversed(node.input_tensors))
    return order, first


def keras_layer_order(model: Any) -> list[Layer]:
    """A functional model's layers in the order Keras 3 lists them (``map_graph``)."""
    nodes, first = _walk_nodes(model)
    in_graph = {id(n) for n in nodes}
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    layers: dict[int, Layer] = {}
    for node in reversed(nodes):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth
        layers[id(node.layer)] = node.layer
        node_depth[id(node)] = depth
        for t in node.input_tensors:  # (an InputLayer's node has none)
            if id(t.node) in in_graph:
                node_depth[id(t.node)] = max(depth + 1, node_depth.get(id(t.node), 0))
    for t in model._inputs:  # inputs the outputs do not use
        if id(t.node.layer) not in layer_depth:
            layer_depth[id(t.node.layer)], first[id(t.node.layer)] = 0, -1
            layers[id(t.node.layer)] = t.node.layer
    return sorted(layers.values(), key=lambda la: (-layer_depth[id(la)], first[id(la)]))


def model_tree(model: Any) -> list[Entry]:
    """The entries of a cnnkit model as Keras will hold them (Sequential: no InputLayer)."""
    from ..serialization import layer_class

    Model, Sequential = layer_class("Model"), layer_class("Sequential")

    if isinstance(model, Sequential):
        layers = model.layers
    elif isinstance(model, Model) and model._functional:
        layers = keras_layer_order(model)
    else:
        raise ValueError(f"model '{model.name}' is a subclassed model: Keras files hold "
                         f"Sequential and functional models only")
    out = []
    for la in layers:
        if isinstance(la, Sequential):
            out.append(Entry(la, "Sequential", model_tree(la)))
        elif isinstance(la, Model):
            out.append(Entry(la, "Functional", model_tree(la)))
        else:
            out.append(Entry(la, type(la).__name__))
    return out
