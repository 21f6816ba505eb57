"""Training-time fusion: a BatchNormalization (or an Add) whose output only a plain ReLU /
ReLU6 layer reads computes that activation itself (``ops.batch_norm(..., activation=)``,
``ops.add(..., activation=)``: a pass fewer, and the layer's own output is never stored).
Results are the same bits as the two layers one after the other; inference goes through the
runtime's plan instead."""

from __future__ import annotations

from typing import Any

from ..layers.activation_layers import plain_activation
from ..layers.base import Layer, Node
from ..layers.merge import Add
from ..layers.normalization import BatchNormalization
from ..ops.activation import guided_relu_active

_FUSES = (BatchNormalization, Add)  # layers whose call takes ``activation=``


def fused_activation(norm: Layer, act: Layer) -> str | None:
    """The activation ``norm`` (a batch norm or an Add) may compute for ``act`` (None: run
    both layers)."""
    if type(norm) not in _FUSES or norm.activity_regularizer is not None \
            or guided_relu_active():
        return None
    return plain_activation(act)


def graph_pairs(nodes: list[Node], outputs: list[Any]) -> dict[int, int]:
    """{i: j}: node i is a batch norm or an Add whose one output only node j reads, as its
    one input, and is no model output; node j's layer may be an activation to fuse."""
    readers: dict[int, list[int]] = {}
    for j, node in enumerate(nodes):
        for t in node.input_tensors:
            readers.setdefault(id(t), []).append(j)
    out_ids = {id(t) for t in outputs}
    pairs: dict[int, int] = {}
    for i, node in enumerate(nodes):
        if type(node.layer) not in _FUSES or node.kwargs \
                or len(node.output_tensors) != 1:
            continue
        key = id(node.output_tensors[0])
        js = readers.get(key, [])
        if key in out_ids or len(js) != 1:
            continue
        reader = nodes[js[0]]
        if len(reader.input_tensors) == 1 and not reader.kwargs \
                and len(reader.output_tensors) == 1:
            pairs[i] = js[0]
    return pairs


def run_chain(layers: list[Layer], x: Any, training: bool, fuse: bool) -> Any:
    """Call ``layers`` one after another on x (a Sequential); with ``fuse``, a batch norm
    and the plain ReLU after it as one op."""
    i = 0
    while i < len(layers):
        act = fused_activation(layers[i], layers[i + 1]) if fuse and i + 1 < len(layers) \
            else None
        if act is not None:
            x = layers[i](x, training=training, activation=act)
            i += 2
        else:
            x = layers[i](x, training=training)
            i += 1
    return x
