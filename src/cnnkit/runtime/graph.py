"""A model's layer graph as the runtime reads it: numbered value slots and the layer calls
between them. Built from an ordered layer list (a stack) or from the functional graph's
:class:`~cnnkit.layers.base.Node` s, so the runtime needs nothing from ``models``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..layers.base import KerasTensor, Node
from ..layers.core import InputLayer


@dataclass
class GraphNode:
    """One layer call: its input slot (``args``: an int, or a list for a list input), output
    slots, whether it returns a list, its call kwargs and the rank of its output (None when
    unknown)."""

    layer: Any
    args: int | list[int]
    outs: list[int]
    multi_out: bool = False
    kwargs: dict = field(default_factory=dict)
    rank: int | None = None

    @property
    def arg_slots(self) -> list[int]:
        return self.args if isinstance(self.args, list) else [self.args]


@dataclass
class LayerGraph:
    """Layer calls in an order where each reads only earlier slots; slots 0 .. n_inputs - 1
    hold the inputs. ``stack``: a chain of layers on one input (which may be a list)."""

    nodes: list[GraphNode]
    n_inputs: int
    outputs: list[int]
    single_output: bool
    n_slots: int
    stack: bool = False

    @classmethod
    def from_layers(cls, layers: Sequence[Any], input_shape: Any = None) -> LayerGraph:
        """The graph of layers applied one after another (a Sequential)."""
        nodes = []
        shape = input_shape
        for i, layer in enumerate(layers):
            shape = _output_shape(layer, shape)
            rank = len(shape) if isinstance(shape, tuple) else None
            nodes.append(GraphNode(layer, i, [i + 1], rank=rank))
        return cls(nodes, 1, [len(nodes)], True, len(nodes) + 1, stack=True)

    @classmethod
    def from_nodes(cls, inputs: Sequence[KerasTensor], nodes: Sequence[Node],
                   outputs: Sequence[KerasTensor], single_output: bool) -> LayerGraph:
        """The graph of a functional model: its symbolic inputs, its nodes in topological
        order and its outputs."""
        slots = {id(t): i for i, t in enumerate(inputs)}

        def slot(t: KerasTensor) -> int:
            return slots.setdefault(id(t), len(slots))

        found = []
        for node in nodes:
            if isinstance(node.layer, InputLayer):
                continue
            multi_in = isinstance(node.inputs, (list, tuple))
            args: Any = [slot(t) for t in node.inputs] if multi_in else slot(node.inputs)
            outs = [slot(t) for t in node.output_tensors]
            shape = getattr(node.output_tensors[0], "shape", None)
            found.append(GraphNode(node.layer, args, outs,
                                   isinstance(node.outputs, (list, tuple)),
                                   dict(node.kwargs or {}),
                                   None if shape is None else len(shape)))
        result = [slots[id(t)] for t in outputs]
        return cls(found, len(inputs), result, bool(single_output), len(slots))


def _output_shape(layer: Any, shape: Any) -> Any:
    """The layer's output shape for ``shape`` (None when unknown or not computable)."""
    if shape is None:
        return None
    try:
        return layer.compute_output_shape(shape)
    except (ValueError, TypeError, IndexError):  # rank unknown: nothing folded on it
        return None
