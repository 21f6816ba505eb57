"""The Layer lifecycle (Keras): ``__init__`` stores config, ``build`` creates weights from the
first input shape, ``call`` computes, ``compute_output_shape`` answers without computing,
``get_config``/``from_config`` round-trip.

Calling a layer on a symbolic :class:`KerasTensor` (from ``Input``) records a graph node for
the functional ``Model``; calling it on arrays or Tensors computes.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .. import constraints, initializers, regularizers
from .. import random as crandom
from ..autograd import Tensor
from . import shape_inference
from .build_context import building_shapes_only, snake_case, spend_budget, unique_name

Shape = tuple[int | None, ...]

# the training flag of the innermost layer call: a layer called without ``training`` inside
# another layer's call inherits it (as Keras 3 does), so a hand-written call needn't pass it
_call_training: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "cnnkit_call_training", default=None)


class KerasTensor:
    """A symbolic tensor: a shape (batch axis None), a dtype and the node that made it."""

    def __init__(self, shape: Shape, dtype: Any = "float32", node: Node | None = None,
                 index: int = 0, name: str | None = None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}>"


class Node:
    """One call of a layer in a functional graph: its symbolic inputs and outputs."""

    def __init__(self, layer: Layer, inputs: Any, outputs: Any, kwargs: dict):
        self.layer = layer
        # a KerasTensor or a list of them, copied so later appends by the caller cannot
        # change the graph
        self.inputs = list(inputs) if isinstance(inputs, (list, tuple)) else inputs
        self.outputs = outputs
        self.kwargs = kwargs

    @property
    def input_tensors(self) -> list[KerasTensor]:
        return list(self.inputs) if isinstance(self.inputs, (list, tuple)) else [self.inputs]

    @property
    def output_tensors(self) -> list[KerasTensor]:
        return list(self.outputs) if isinstance(self.outputs, (list, tuple)) else [self.outputs]


def _is_symbolic(x: Any) -> bool:
    if isinstance(x, KerasTensor):
        return True
    return isinstance(x, (list, tuple)) and any(isinstance(v, KerasTensor) for v in x)


def _shape_of(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return [_shape_of(v) for v in x]
    return tuple(x.shape)


class UnbuiltParameters(list):
    """The parameters of a layer or model not built yet: empty, and iterating over it (as an
    optimizer's constructor does) raises a ValueError saying what to do."""

    def __init__(self, layer: Layer):
        super().__init__()
        self.message = (f"{type(layer).__name__} '{layer.name}' is not built yet, so it has no "
                        f"parameters: build it first (model.build(input_shape) or call it on a "
                        f"batch, model(x)), then pass model.parameters() to the optimizer")

    def __iter__(self) -> Iterator[Tensor]:
        raise ValueError(self.message)


class Layer:
    """Base class of every layer and model.

    Args:
        name: unique name (default: the class name in snake case, numbered).
        trainable: whether the optimizer updates this layer's trainable weights.
        dtype: weight and compute dtype, "float32" by default.
        input_shape: shape without the batch axis, for the first layer of a Sequential.

    ``training`` (set by a model's PyTorch-style ``train()`` / ``eval()``) is the mode a call
    without ``training=`` runs in.
    """

    training = False

    def __init__(self, name: str | None = None, trainable: bool = True,
                 dtype: Any = "float32", input_shape: Sequence[int] | None = None,
                 **kwargs: Any):
        if "batch_input_shape" in kwargs:
            input_shape = tuple(kwargs.pop("batch_input_shape"))[1:]
        if "input_dim" in kwargs:
            input_shape = (kwargs.pop("input_dim"),)
        self.activity_regularizer = regularizers.get(kwargs.pop("activity_regularizer", None))
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments: {sorted(kwargs)}")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        self.dtype = np.dtype(dtype)
        self.built = False
        self.input_shape_arg = tuple(input_shape) if input_shape is not None else None
        self._own_weights: list[Tensor] = []
        self._weight_trainable: list[bool] = []
        self._regularized: list[tuple[Tensor, Any]] = []
        self._activity_losses: list[Tensor] = []
        self._build_shape: Any = None
        self.inbound_nodes: list[Node] = []

    # ----- sub-layer tracking --------------------------------------------------------------
    def _sublayers(self) -> list[Layer]:
        """Layers held in attributes (or lists of them), in assignment order."""
        found: list[Layer] = []
        seen: set[int] = set()
        for key, value in vars(self).items():
            if key.startswith("_") and key not in ("_layers",):
                continue
            items = value if isinstance(value, (list, tuple)) else [value]
            for v in items:
                if isinstance(v, Layer) and id(v) not in seen:
                    seen.add(id(v))
                    found.append(v)
        return found

    # ----- weights -----------------------------------------------------------------------
    def add_weight(self, name: str, shape: Sequence[int], initializer: Any = "glorot_uniform",
                   regularizer: Any = None, trainable: bool = True,
                   constraint: Any = None) -> Tensor:
        """Create a weight Tensor (requires_grad when trainable) and register it;
        ``constraint`` projects it after every optimizer step."""
        init = initializers.get(initializer)
        shape = tuple(int(s) for s in shape)
        spend_budget(self, name, shape)
        if building_shapes_only():
            data = np.lib.stride_tricks.as_strided(np.zeros(1, self.dtype), shape,
                                                   (0,) * len(shape))
        else:
            data = init(shape, self.dtype, crandom.get_rng())
        w = Tensor(np.asarray(data, dtype=self.dtype), name=f"{self.name}/{name}")
        w.requires_grad = trainable and self._trainable
        self._own_weights.append(w)
        self._weight_trainable.append(trainable)
        reg = regularizers.get(regularizer)
        if reg is not None:
            self._regularized.append((w, reg))
        constraints.attach(w, constraints.get(constraint))
        return w

    @property
    def weights(self) -> list[Tensor]:
        out, seen = [], set()
        for w in self._own_weights + [w for s in self._sublayers() for w in s.weights]:
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
        return out

    @property
    def trainable_weights(self) -> list[Tensor]:
        if not self._trainable:
            return []
        own = [w for w, t in zip(self._own_weights, self._weight_trainable, strict=True) if t]
        out, seen = [], set()
        for w in own + [w for s in self._sublayers() for w in s.trainable_weights]:
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
        return out

    @property
    def non_trainable_weights(self) -> list[Tensor]:
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, flag: bool) -> None:
        self._trainable = bool(flag)
        for w, t in zip(self._own_weights, self._weight_trainable, strict=True):
            w.requires_grad = bool(flag) and t
        for s in self._sublayers():
            s.trainable = flag

    def parameters(self) -> list[Tensor]:
        """Trainable weights, as PyTorch spells it: ``Adam(model.parameters())``; before the
        layer is built, an :class:`UnbuiltParameters` that an optimizer refuses."""
        params = self.trainable_weights
        if not self.built and not params:
            return UnbuiltParameters(self)
        return params

    @property
    def losses(self) -> list[Tensor]:
        """Regularisation penalties of this layer and its sub-layers, as scalar Tensors:
        weight penalties, and activity penalties of the last call."""
        own = [reg(w) for w, reg in self._regularized] + list(self._activity_losses)
        return own + [loss for s in self._sublayers() for loss in s.losses]

    def get_weights(self) -> list[np.ndarray]:
        return [w.data.copy() for w in self.weights]

    def set_weights(self, values: Sequence[Any]) -> None:
        ws = self.weights
        if len(values) != len(ws):
            raise ValueError(f"layer '{self.name}' has {len(ws)} weights, got {len(values)} "
                             f"arrays")
        for w, v in zip(ws, values, strict=True):
            v = np.asarray(v)
            if v.shape != w.shape:
                raise ValueError(f"layer '{self.name}': weight '{w.name}' has shape {w.shape}, "
                                 f"got an array of shape {v.shape}")
            w.data[...] = v.astype(w.dtype)

    def count_params(self) -> int:
        """Number of scalars in all weights (trainable and not)."""
        if not self.built:
            raise ValueError(f"layer '{self.name}' is not built yet: call it on an input or "
                             f"build(input_shape) first")
        return int(sum(w.size for w in self.weights))

    # ----- lifecycle -----------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        """Create weights for ``input_shape`` (batch axis included, may be None)."""
        self.built = True

    def call(self, inputs: Any, training: bool = False) -> Any:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Any) -> Any:
        """The input shape (shape-preserving layers), or, for a user's layer whose ``call``
        has no matching ``compute_output_shape``, the shape a dry run gives (as Keras 3)."""
        if shape_inference.writes_own_call(type(self)):
            return shape_inference.infer_output_shape(self, input_shape)
        return input_shape

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        """This layer's inference form for the runtime, built from ``steps`` (the module
        :mod:`cnnkit.runtime.steps`, handed in so that layers import nothing above them):
        a step saying what it computes and what it can absorb, or None to run ``call``
        under ``no_grad``. ``rank``: the rank of the layer's output, None when unknown."""
        return None

    def compute_macs(self, input_shape: Any, output_shape: Any) -> int:
        """Multiply-adds for one sample, given the built shapes (0 for shape-only layers)."""
        return 0

    def check_input_shape(self, input_shape: Any) -> None:
        """Raise a ValueError naming the layer if ``input_shape`` cannot be taken."""

    def _maybe_build(self, input_shape: Any) -> None:
        if not self.built:
            self.check_input_shape(input_shape)
            self._build_shape = input_shape
            self.build(input_shape)
            self.built = True
        else:
            self.check_input_shape(input_shape)

    def __call__(self, inputs: Any, training: bool | None = None, **kwargs: Any) -> Any:
        if _is_symbolic(inputs):
            return self._call_symbolic(inputs, kwargs)
        if isinstance(inputs, (list, tuple)):
            inputs = [self._cast_input(v) for v in inputs]
        else:
            inputs = self._cast_input(inputs)
        self._maybe_build(_shape_of(inputs))
        flag = bool(training if training is not None else
                    self._inherited_training())
        token = _call_training.set(flag)
        try:
            out = self.call(inputs, training=flag, **kwargs)
        finally:
            _call_training.reset(token)
        if self.activity_regularizer is not None:
            self._activity_losses = self._activity_penalties(out)
        return out

    def _inherited_training(self) -> bool:
        """No ``training`` given: the enclosing layer call's flag (Keras 3), or outside any
        call this layer's ``train()`` / ``eval()`` mode (PyTorch)."""
        outer = _call_training.get()
        return self.training if outer is None else outer

    def _activity_penalties(self, out: Any) -> list[Tensor]:
        """Keras: activity_regularizer(output) / batch size, for each output."""
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [self.activity_regularizer(o) * (1.0 / max(o.shape[0], 1)) if o.ndim else
                self.activity_regularizer(o) for o in outs if isinstance(o, Tensor)]

    def _cast_input(self, x: Any) -> Tensor:
        """Floating arrays are cast to the layer's dtype (as Keras); Tensors that record a
        graph and non-floating arrays pass unchanged."""
        if isinstance(x, Tensor):
            if x.requires_grad or x.dtype == self.dtype or not np.issubdtype(x.dtype,
                                                                             np.floating):
                return x
            return Tensor(x.data.astype(self.dtype))
        arr = np.asarray(x)
        if np.issubdtype(arr.dtype, np.floating) and arr.dtype != self.dtype:
            arr = arr.astype(self.dtype)
        return Tensor(arr)

    def _call_symbolic(self, inputs: Any, kwargs: dict) -> Any:
        shapes = _shape_of(inputs)
        self._maybe_build(shapes)
        out_shape = self.compute_output_shape(shapes)
        first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        if isinstance(out_shape, list):
            outs: Any = [KerasTensor(s, first.dtype, None, i) for i, s in enumerate(out_shape)]
        else:
            outs = KerasTensor(out_shape, self.output_dtype(first.dtype))
        node = Node(self, inputs, outs, kwargs)
        for t in node.output_tensors:
            t.node = node
        self.inbound_nodes.append(node)
        return outs

    def output_dtype(self, input_dtype: Any) -> Any:
        return self.dtype if np.issubdtype(np.dtype(input_dtype), np.floating) else input_dtype

    # ----- symbolic inputs and outputs (Keras layer.input / layer.output) -------------------
    def _only_node(self, what: str) -> Node:
        if len(self.inbound_nodes) != 1:
            state = "has not been called" if not self.inbound_nodes else \
                f"was called {len(self.inbound_nodes)} times"
            raise AttributeError(f"layer '{self.name}' {state} on a symbolic input, so it has "
                                 f"no single {what}; use inbound_nodes[i] instead")
        return self.inbound_nodes[0]

    @property
    def input(self) -> Any:
        """The symbolic input of this layer's one call in a functional graph."""
        if "input" in self.__dict__:  # an attribute named input (a sub-layer, say) wins
            return self.__dict__["input"]
        return self._only_node("input").inputs

    @input.setter
    def input(self, value: Any) -> None:
        self.__dict__["input"] = value

    @property
    def output(self) -> Any:
        """The symbolic output of this layer's one call in a functional graph."""
        if "output" in self.__dict__:  # e.g. InputLayer's tensor, or self.output = Dense(..)
            return self.__dict__["output"]
        return self._only_node("output").outputs

    @output.setter
    def output(self, value: Any) -> None:
        self.__dict__["output"] = value

    # ----- config ------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The constructor arguments, JSON-ready."""
        cfg: dict[str, Any] = {"name": self.name, "trainable": self._trainable,
                               "dtype": self.dtype.name}
        if self.input_shape_arg is not None:
            cfg["input_shape"] = list(self.input_shape_arg)
        if self.activity_regularizer is not None:
            cfg["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"
