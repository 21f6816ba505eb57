"""``Sequential([...])``: a Model whose layers run one after another."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import runtime
from ..autograd import is_grad_enabled
from ..layers.base import KerasTensor, Layer
from ..layers.core import Input, InputLayer
from . import fusion, serialization
from .model import Model


class Sequential(Model):
    """A stack of layers, each taking the previous one's output.

    The input shape comes from an ``Input(...)`` first element or ``input_shape=`` on the first
    layer; the model is built as soon as it is known (else on the first call).
    """

    def __init__(self, layers: Sequence[Any] | None = None, name: str | None = None,
                 **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self._layers: list[Layer] = []
        self._input_spec: tuple | None = None
        self._input_layer_name: str | None = None
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    def add(self, layer: Any) -> None:
        """Append a layer (or an ``Input`` as the first element)."""
        if isinstance(layer, KerasTensor):
            if self._layers or self._input_spec is not None:
                raise ValueError("an Input can only be the first element of a Sequential")
            self._input_spec = tuple(layer.shape)
            self._input_layer_name = layer.node.layer.name if layer.node else None
            return
        if isinstance(layer, InputLayer):
            self._input_spec = (layer.batch_size, *layer.shape)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if not self._layers and self._input_spec is None and layer.input_shape_arg is not None:
            self._input_spec = (None, *layer.input_shape_arg)
        self._layers.append(layer)
        if self._input_spec is not None:
            self._build_chain(self._input_spec)

    def pop(self) -> Layer:
        layer = self._layers.pop()
        return layer

    def _build_chain(self, shape: Any) -> Any:
        for layer in self._layers:
            layer._maybe_build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True
        self._build_shape = self._input_spec
        return shape

    def build(self, input_shape: Any) -> None:
        if self._input_spec is None:
            self._input_spec = (None, *tuple(input_shape)[1:])
        self._build_chain(self._input_spec)

    def check_input_shape(self, input_shape: Any) -> None:
        if self._input_spec is None or isinstance(input_shape, list):
            return
        s = tuple(input_shape)
        spec = self._input_spec
        ok = len(s) == len(spec) and all(a is None or a == b for a, b in zip(spec, s,
                                                                              strict=True))
        if not ok:
            raise ValueError(f"Sequential '{self.name}' expects inputs of shape {spec}, got "
                             f"shape {s}")

    def inference_graph(self) -> runtime.LayerGraph:
        return runtime.LayerGraph.from_layers(self._layers, self._input_spec)

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training and not is_grad_enabled() and self._layers:
            out = self._run_plan(inputs)
            if out is not None:
                return out
        return fusion.run_chain(self._layers, inputs, training, training and is_grad_enabled())

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = input_shape
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    @property
    def input_shape(self) -> Any:
        return self._input_spec

    def _graph_io(self) -> tuple[KerasTensor, Any]:
        """(Input, output) of the stack called once on a symbolic input (as Keras builds a
        Sequential's graph), so ``model.input``, ``model.output`` and ``layer.output`` work."""
        cached = self.__dict__.get("_symbolic_io")
        if cached is not None and cached[2] == len(self._layers):
            return cached[0], cached[1]
        if self._input_spec is None:
            raise AttributeError(f"Sequential '{self.name}' has no input shape yet, so no "
                                 f"input/output tensors: start it with Input(...) or give "
                                 f"input_shape= to its first layer")
        x = inp = Input(self._input_spec[1:], batch_size=self._input_spec[0])
        for layer in self._layers:
            x = layer(x)
        self.__dict__["_symbolic_io"] = (inp, x, len(self._layers))
        return inp, x

    def _graph_input(self) -> Any:
        return self._graph_io()[0]

    def _graph_output(self) -> Any:
        return self._graph_io()[1]

    @property
    def output_shape(self) -> Any:
        return self.compute_output_shape(self._input_spec)

    def layer_table(self, input_shape: Any = None) -> list[tuple[str, str, Any, int, int]]:
        shape = input_shape or self._input_spec
        if shape is None:
            raise ValueError(f"Sequential '{self.name}' has no input shape yet: give "
                             f"input_shape= to the first layer, start with Input(...), or "
                             f"call build(input_shape)")
        rows = []
        for layer in self._layers:
            out = layer.compute_output_shape(shape)
            rows.append((layer.name, type(layer).__name__, out,
                         layer.count_params() if layer.built else 0,
                         layer.compute_macs(shape, out)))
            shape = out
        return rows

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self._trainable,
                "input_shape": list(self._input_spec) if self._input_spec else None,
                "layers": [serialization.serialize(la) for la in self._layers]}

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        model = cls(name=config.get("name"))
        if config.get("input_shape"):
            model._input_spec = tuple(config["input_shape"])
        for lc in config["layers"]:
            model.add(serialization.deserialize(lc))
        model.trainable = config.get("trainable", True)
        return model


serialization.register_model_classes(Model, Sequential)
