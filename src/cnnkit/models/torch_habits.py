"""PyTorch habits on a Model: ``train()`` / ``eval()``, ``named_parameters()``,
``named_buffers()``, ``state_dict()`` / ``load_state_dict()`` and a module-tree ``repr``.

Names are dotted paths (``block.conv2d.kernel``): a Sequential's or functional model's layers
by layer name, a subclassed model's sub-layers by attribute name (as torch, so two instances of
one class share the names); a state dict maps each name to
a NumPy array in cnnkit's own layout (channels-last kernels), trainable weights and buffers
(batch-norm moving statistics and other non-trainable weights) alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ..autograd import Tensor
from ..device import check_device
from ..layers.base import Layer
from ..layers.core import InputLayer


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(..., strict=False)`` returns, as torch's ``_IncompatibleKeys``."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _named_children(layer: Any) -> list[tuple[str, Any]]:
    """The layers directly inside ``layer`` with their names: a functional model's or a
    Sequential's layers by layer name (Input layers left out); a subclassed model's or
    layer's attributes by attribute name, ``blocks.0`` for a list item (as torch)."""
    if "_layers" in vars(layer):  # a layer graph: functional Model or Sequential
        return [(c.name, c) for c in layer.layers if not isinstance(c, InputLayer)]
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()
    for key, value in vars(layer).items():
        if key.startswith("_"):
            continue
        items = ([(f"{key}.{i}", v) for i, v in enumerate(value)]
                 if isinstance(value, (list, tuple)) else [(key, value)])
        for name, v in items:
            if isinstance(v, Layer) and id(v) not in seen:
                seen.add(id(v))
                found.append((name, v))
    return found


def _named_weights(layer: Any, prefix: str, seen: set[int]) -> Iterator[tuple[str, Tensor]]:
    for i, w in enumerate(layer._own_weights):
        if id(w) not in seen:
            seen.add(id(w))
            yield prefix + (w.name.rsplit("/", 1)[-1] if w.name else f"weight_{i}"), w
    for name, child in _named_children(layer):
        yield from _named_weights(child, f"{prefix}{name}.", seen)


def _plain(v: Any) -> bool:
    """A number, string or flat sequence of them (nested configs are left out)."""
    if isinstance(v, (list, tuple)):
        return all(isinstance(e, (int, float, str, bool)) for e in v)
    return isinstance(v, (int, float, str, bool))


def _describe(layer: Any) -> str:
    """One layer as ``Type(arg=value, ...)``: its scalar config values."""
    try:
        cfg = layer.get_config()
    except (NotImplementedError, AttributeError, TypeError):
        cfg = {}
    skip = ("name", "trainable", "dtype", "input_shape")
    args = [f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in cfg.items()
            if k not in skip and _plain(v)]
    return f"{type(layer).__name__}({', '.join(args)})"


def _tree(layer: Any, indent: str) -> str:
    children = _named_children(layer)
    if not children:
        return _describe(layer)
    inner = indent + "  "
    lines = [f"{inner}({name}): {_tree(c, inner)}" for name, c in children]
    return f"{type(layer).__name__}(\n" + "\n".join(lines) + f"\n{indent})"


class TorchHabitsMixin:
    """``train`` / ``eval`` / ``named_parameters`` / ``state_dict`` / ``load_state_dict`` and
    ``print(model)`` as in ``torch.nn.Module``."""

    def train(self, mode: bool = True) -> Any:
        """Calls without ``training=`` run in training mode (Dropout active, BatchNorm on
        batch statistics) for this model and every layer inside it. Returns the model."""
        stack = [self]
        while stack:
            layer = stack.pop()
            layer.training = bool(mode)
            stack.extend(c for _, c in _named_children(layer))
        return self

    def to(self, *args: Any, **kwargs: Any) -> Any:
        """``model.to(device)`` (torch's habit): the model itself, for the CPU."""
        for d in (*args, *kwargs.values()):
            check_device(type(self).__name__, d)
        return self

    def cpu(self) -> Any:
        return self

    def eval(self) -> Any:
        """Calls without ``training=`` run in inference mode (the default). Returns the model."""
        return self.train(False)

    def _weights_by_name(self) -> dict[str, Tensor]:
        named: dict[str, Tensor] = {}
        for name, w in _named_weights(self, "", set()):
            if name in named:
                raise ValueError(f"model '{self.name}' has two weights named {name!r}; give "
                                 f"its layers distinct names")
            named[name] = w
        return named

    def named_parameters(self) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, Tensor) for each trainable weight, as torch's ``named_parameters``."""
        trainable = {id(w) for w in self.trainable_weights}
        return ((n, w) for n, w in self._weights_by_name().items() if id(w) in trainable)

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, Tensor) for each non-trainable weight (batch-norm moving stats)."""
        trainable = {id(w) for w in self.trainable_weights}
        return ((n, w) for n, w in self._weights_by_name().items() if id(w) not in trainable)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Dotted name -> a copy of each weight's array (parameters and buffers)."""
        return {n: w.data.copy() for n, w in self._weights_by_name().items()}

    def load_state_dict(self, state_dict: Mapping[str, Any],
                        strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the weights of the same names. Missing or unexpected keys raise
        (strict) or are returned; a shape mismatch always raises; nothing is written unless
        every array fits."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict expects a mapping of name -> array, got "
                            f"{type(state_dict).__name__}")
        named = self._weights_by_name()
        missing = [k for k in named if k not in state_dict]
        unexpected = [k for k in state_dict if k not in named]
        if strict and (missing or unexpected):
            raise RuntimeError(self._key_errors(missing, unexpected))
        updates = []
        for key, w in named.items():
            if key in state_dict:
                updates.append((w, self._checked_array(key, state_dict[key], w)))
        for w, arr in updates:
            w.data[...] = arr
        return IncompatibleKeys(missing, unexpected)

    def _key_errors(self, missing: list[str], unexpected: list[str]) -> str:
        msg = f"Error(s) in loading state_dict for {type(self).__name__}:"
        if missing:
            msg += "\n\tMissing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing)
        if unexpected:
            msg += "\n\tUnexpected key(s) in state_dict: " + ", ".join(
                f'"{k}"' for k in unexpected)
        if not self.built:
            msg += "\n\t(the model is not built yet: build(input_shape) it first)"
        return msg

    @staticmethod
    def _checked_array(key: str, value: Any, w: Tensor) -> np.ndarray:
        arr = np.asarray(value.data if isinstance(value, Tensor) else value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"state_dict entry {key!r} has dtype {arr.dtype}; expected numbers")
        if arr.shape != w.shape:
            raise RuntimeError(f"size mismatch for {key}: copying an array of shape "
                               f"{arr.shape} from the state_dict, the shape in the current "
                               f"model is {w.shape}")
        return arr.astype(w.dtype, copy=False)

    def __repr__(self) -> str:
        return _tree(self, "")
