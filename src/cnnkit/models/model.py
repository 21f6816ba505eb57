"""Functional ``Model(inputs, outputs)`` and ``Sequential([...])``.

A functional model is the graph of :class:`~cnnkit.layers.base.Node` s between its symbolic
inputs and outputs, run in topological order; a Sequential runs its layers one after another.
Both are Layers, so either can be used inside another model.
"""

from __future__ import annotations

from typing import Any

from .. import runtime
from ..autograd import Tensor, is_grad_enabled
from ..layers import shape_inference
from ..layers.base import KerasTensor, Layer, Node
from ..layers.core import InputLayer
from . import fusion, serialization
from .inference import InferenceMixin
from .persistence import PersistenceMixin
from .torch_habits import TorchHabitsMixin
from .training import TrainingMixin


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _topological_nodes(outputs: list[KerasTensor]) -> list[Node]:
    """Every node between the inputs and ``outputs``, each after the nodes it reads from."""
    order: list[Node] = []
    seen: set[int] = set()
    active: set[int] = set()  # nodes whose inputs are being visited: meeting one is a cycle
    stack: list[tuple[Node, bool]] = [(t.node, False) for t in reversed(outputs)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            active.discard(id(node))
            if id(node) not in seen:
                seen.add(id(node))
                order.append(node)
            continue
        if id(node) in seen:
            continue
        if id(node) in active:
            raise ValueError(f"the graph has a cycle through layer '{node.layer.name}'")
        active.add(id(node))
        stack.append((node, True))
        for t in reversed(node.input_tensors):
            if t.node is None:
                raise ValueError(f"{t} was not made by a layer call or Input()")
            if id(t.node) in active:
                raise ValueError(f"the graph has a cycle through layer '{t.node.layer.name}'")
            if id(t.node) not in seen:
                stack.append((t.node, False))
    return order


class Model(TorchHabitsMixin, TrainingMixin, InferenceMixin, PersistenceMixin, Layer):
    """A functional model ``Model(inputs, outputs)``, or a base class for subclassed models
    whose ``call`` is written by hand (``Model()`` with no graph)."""

    def __init__(self, inputs: Any = None, outputs: Any = None, name: str | None = None,
                 **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self._init_training()
        self._functional = inputs is not None
        if not self._functional:
            return
        if outputs is None:
            raise ValueError("Model(inputs, outputs) needs outputs")
        self._inputs = _as_list(inputs)
        self._outputs = _as_list(outputs)
        self._single_input = not isinstance(inputs, (list, tuple))
        self._single_output = not isinstance(outputs, (list, tuple))
        for t in self._inputs + self._outputs:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"Model inputs and outputs must be symbolic tensors from "
                                f"Input() and layer calls, got {type(t).__name__}")
        self._nodes = _topological_nodes(self._outputs)
        sources = {id(t) for t in self._inputs}
        for node in self._nodes:
            if isinstance(node.layer, InputLayer) and id(node.outputs) not in sources:
                raise ValueError(f"output depends on input '{node.layer.name}', which is not "
                                 f"among the model's inputs")
        layers: list[Layer] = []
        for t in self._inputs:
            if t.node.layer not in layers:
                layers.append(t.node.layer)
        for node in self._nodes:
            if node.layer not in layers:
                layers.append(node.layer)
        self._layers = layers
        self.built = True
        self._build_shape = [t.shape for t in self._inputs]

    # ----- structure ---------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        if self._functional:
            return list(self._layers)
        return self._sublayers()

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r} in model '{self.name}'; layers: "
                         f"{[la.name for la in self.layers]}")

    @property
    def inputs(self) -> list[KerasTensor]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[KerasTensor]:
        return list(self._outputs)

    @property
    def input(self) -> Any:
        """Keras ``model.input``: the Input tensor (a list for several inputs)."""
        return self.__dict__["input"] if "input" in self.__dict__ else self._graph_input()

    @input.setter
    def input(self, value: Any) -> None:  # a subclass may name a sub-layer "input"
        self.__dict__["input"] = value

    @property
    def output(self) -> Any:
        """Keras ``model.output``: the output tensor (a list for several outputs)."""
        return self.__dict__["output"] if "output" in self.__dict__ else self._graph_output()

    @output.setter
    def output(self, value: Any) -> None:  # a subclass may name its head "output"
        self.__dict__["output"] = value

    def _graph_input(self) -> Any:
        if not self._functional:
            return Layer.input.fget(self)
        return self._inputs[0] if self._single_input else list(self._inputs)

    def _graph_output(self) -> Any:
        if not self._functional:
            return Layer.output.fget(self)
        return self._outputs[0] if self._single_output else list(self._outputs)

    @property
    def input_shape(self) -> Any:
        shapes = [t.shape for t in self._inputs]
        return shapes[0] if self._single_input else shapes

    @property
    def output_shape(self) -> Any:
        shapes = [t.shape for t in self._outputs]
        return shapes[0] if self._single_output else shapes

    # ----- running -----------------------------------------------------------------------
    def _input_list(self, value: Any, is_shape: bool = False) -> list:
        """The per-input list for ``value``: one input (a model made with ``Model(i, ...)`` or
        ``Model([i], ...)``) takes the value bare or as a one-element list, as Keras."""
        if is_shape:  # a list of shapes, not one shape given as a list of ints
            listed = isinstance(value, list) and bool(value) and all(
                isinstance(v, (list, tuple)) for v in value)
        else:
            listed = isinstance(value, (list, tuple))
        return list(value) if listed else [value]

    def check_input_shape(self, input_shape: Any) -> None:
        if not self._functional:
            return
        shapes = self._input_list(input_shape, is_shape=True)
        if len(shapes) != len(self._inputs):
            raise ValueError(f"model '{self.name}' expects {len(self._inputs)} inputs, got "
                             f"{len(shapes)}")
        for t, s in zip(self._inputs, shapes, strict=True):
            s = tuple(s)
            ok = len(s) == len(t.shape) and all(
                a is None or b is None or a == b for a, b in zip(t.shape, s, strict=True))
            if not ok:
                raise ValueError(f"model '{self.name}' expects input '{t.name}' of shape "
                                 f"{t.shape}, got shape {s}")

    def build(self, input_shape: Any) -> None:
        """A subclassed model builds its sub-layers by a dry run of ``call`` on zeros of
        ``input_shape`` (as Keras 3), unless it is being built by its first call."""
        if self._functional:
            return
        self.built = True
        if input_shape is None or getattr(self, "_build_by_call", False):
            return
        self._build_shape = input_shape
        shape_inference.infer_output_shape(self, input_shape)

    def _maybe_build(self, input_shape: Any) -> None:
        self._build_by_call = True  # the call that follows builds the sub-layers itself
        try:
            super()._maybe_build(input_shape)
        finally:
            self._build_by_call = False

    def _run_plan(self, inputs: Any) -> Any:
        """Inference without a graph (``training=False`` under ``no_grad``) through the
        compiled plan that ``predict`` uses (:class:`cnnkit.runtime.InferencePlan`), or None
        when the inputs or the layers' dtypes do not suit it."""
        single = len(self._inputs) == 1 if self._functional else not isinstance(inputs, list)
        if single and self._functional:
            listed = self._input_list(inputs)
            if len(listed) != 1:
                return None
            inputs = listed[0]
        if single:
            if not isinstance(inputs, Tensor):
                return None
            arrays: list[Any] = [inputs.data]
        else:
            if not isinstance(inputs, list) or not all(isinstance(t, Tensor) for t in inputs):
                return None
            arrays = [t.data for t in inputs]
            if not self._functional:
                arrays = [arrays]
        cached = getattr(self, "_engine_cache", None)
        if cached is not None and cached[0] == tuple(map(id, self._layers)):
            engine = cached[1]  # (the key of ``_inference_engine``, without copying lists)
        else:
            engine = self._inference_engine()
        if not engine.uniform_dtype:
            return None
        out = engine.run_arrays(arrays)
        return [Tensor(o) for o in out] if isinstance(out, list) else Tensor(out)

    def inference_graph(self) -> runtime.LayerGraph | None:
        """The layer graph the runtime compiles (None for a subclassed model: its own
        ``call`` runs)."""
        if not self._functional:
            return None
        return runtime.LayerGraph.from_nodes(self._inputs, self._nodes, self._outputs,
                                             self._single_output)

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        """A nested model runs as its own plan (a step whose result is never overwritten)."""
        return steps.Call(runtime.compile(self))

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not self._functional:
            raise NotImplementedError(f"subclassed model '{self.name}' must define call()")
        if not training and not is_grad_enabled():
            out = self._run_plan(inputs)
            if out is not None:
                return out
        xs = self._input_list(inputs)
        values: dict[int, Any] = {}
        for t, x in zip(self._inputs, xs, strict=True):
            values[id(t)] = x
        # without a graph to keep, each value is dropped after its last reader
        release = self._release_lists() if not is_grad_enabled() else None
        pairs = self._fusion_pairs() if training and is_grad_enabled() else {}
        skip: set[int] = set()
        for i, node in enumerate(self._nodes):
            if isinstance(node.layer, InputLayer) or i in skip:
                continue
            args = node.inputs
            if isinstance(args, (list, tuple)):
                arg_values: Any = [values[id(t)] for t in args]
            else:
                arg_values = values[id(args)]
            act_node = self._nodes[pairs[i]] if i in pairs else None
            act = None if act_node is None else fusion.fused_activation(node.layer,
                                                                        act_node.layer)
            if act is not None:  # batch norm + the ReLU reading it, one op
                out = node.layer(arg_values, training=training, activation=act)
                skip.add(pairs[i])
                node = act_node  # whose output this is
            else:
                out = node.layer(arg_values, training=training, **node.kwargs)
            del arg_values
            for t, v in zip(node.output_tensors, _as_list(out), strict=True):
                values[id(t)] = v
            if release is not None:
                for key in release[i]:
                    values.pop(key, None)
        outs = [values[id(t)] for t in self._outputs]
        return outs[0] if self._single_output else outs

    def _fusion_pairs(self) -> dict[int, int]:
        """:func:`.fusion.graph_pairs` of this graph, cached."""
        cached = getattr(self, "_fusion_cache", None)
        if cached is None or cached[0] is not self._nodes:
            cached = (self._nodes, fusion.graph_pairs(self._nodes, self._outputs))
            self._fusion_cache = cached
        return cached[1]

    def _release_lists(self) -> list[list[int]]:
        """For node i, the ids of the symbolic tensors whose last reader is node i (model
        outputs excluded)."""
        cached = getattr(self, "_release_cache", None)
        if cached is not None and cached[0] == id(self):
            return cached[1]
        last: dict[int, int] = {}
        for i, node in enumerate(self._nodes):
            for t in node.input_tensors:
                last[id(t)] = i
        for t in self._outputs:
            last.pop(id(t), None)
        lists: list[list[int]] = [[] for _ in self._nodes]
        for key, i in last.items():
            lists[i].append(key)
        self._release_cache = (id(self), lists)  # a deep copy recomputes its own
        return lists

    def compute_output_shape(self, input_shape: Any) -> Any:
        if not self._functional:
            return shape_inference.infer_output_shape(self, input_shape)
        return self.node_shapes(input_shape)[1]

    def node_shapes(self, input_shape: Any = None) -> tuple[dict[int, Any], Any]:
        """Shape of every symbolic tensor for ``input_shape`` (default: the Input shapes)."""
        shapes: dict[int, Any] = {}
        given = [t.shape for t in self._inputs] if input_shape is None else (
            self._input_list(input_shape, is_shape=True))
        for t, s in zip(self._inputs, given, strict=True):
            shapes[id(t)] = tuple(s)
        for node in self._nodes:
            if isinstance(node.layer, InputLayer):
                continue
            if isinstance(node.inputs, (list, tuple)):
                ins: Any = [shapes[id(t)] for t in node.inputs]
            else:
                ins = shapes[id(node.inputs)]
            out = node.layer.compute_output_shape(ins)
            outs = out if isinstance(node.outputs, (list, tuple)) else [out]
            for t, s in zip(node.output_tensors, outs, strict=True):
                shapes[id(t)] = tuple(s)
        result = [shapes[id(t)] for t in self._outputs]
        return shapes, (result[0] if self._single_output else result)

    def compute_macs(self, input_shape: Any, output_shape: Any) -> int:
        return sum(row[4] for row in self.layer_table(input_shape))

    def layer_table(self, input_shape: Any = None) -> list[tuple[str, str, Any, int, int]]:
        """(name, type, output shape, parameters, multiply-adds) for each layer."""
        if not self._functional:
            return self._traced_layer_table(input_shape)
        shapes, _ = self.node_shapes(input_shape)
        in_shapes = {id(t): shapes[id(t)] for t in self._inputs}
        rows = []
        for layer in self._layers:
            nodes = [n for n in self._nodes if n.layer is layer]
            macs, out_shape = 0, None
            for n in nodes:
                if isinstance(layer, InputLayer):
                    out_shape = in_shapes.get(id(n.outputs), n.outputs.shape)
                    continue
                ins = [shapes[id(t)] for t in n.input_tensors]
                ins_arg = ins if isinstance(n.inputs, (list, tuple)) else ins[0]
                outs = [shapes[id(t)] for t in n.output_tensors]
                out_shape = outs if isinstance(n.outputs, (list, tuple)) else outs[0]
                macs += layer.compute_macs(ins_arg, out_shape)
            params = layer.count_params() if layer.built else 0
            rows.append((layer.name, type(layer).__name__, out_shape, params, macs))
        return rows

    def _traced_layer_table(self, input_shape: Any) -> list[tuple[str, str, Any, int, int]]:
        """A subclassed model's table: its sub-layers, shapes seen in a dry run of ``call``."""
        shape = input_shape if input_shape is not None else self._build_shape
        if shape is None:
            raise ValueError(f"model '{self.name}' is not built yet: call it on a batch or "
                             f"build(input_shape) first")
        many = isinstance(shape, list) and bool(shape) and isinstance(shape[0], (list, tuple))
        shape = [(None, *s[1:]) for s in shape] if many else (
            None, *tuple(shape)[1:])  # any batch size, as Keras shows it
        subs = self._sublayers()
        _, calls = shape_inference.trace(lambda x: self(x, training=False), shape, self.dtype,
                                         watch=subs)
        rows = []
        for layer in subs:
            ins, out = calls.get(id(layer), (None, None))
            macs = layer.compute_macs(ins, out) if out is not None else 0
            rows.append((layer.name, type(layer).__name__, out,
                         layer.count_params() if layer.built else 0, macs))
        return rows

    # ----- config ------------------------------------------------------------------------
    def get_config(self) -> dict:
        if not self._functional:
            raise NotImplementedError(f"subclassed model '{self.name}' cannot be serialized "
                                      f"as a config; save its weights instead")
        return serialization.functional_config(self)

    @classmethod
    def from_config(cls, config: dict) -> Model:
        return serialization.functional_from_config(config, Model)
