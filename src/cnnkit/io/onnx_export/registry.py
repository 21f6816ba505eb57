"""Which function writes which layer class, and what it hands each one (:class:`Call`).

Each layer family has one module in this package; its functions are registered for the
layer classes they write with :func:`exports`, together with what they can absorb: a
following batch normalization folded into their weights, a preceding zero padding folded
into their pads, a permuted feature order passed through (elementwise layers). The graph
walk (:mod:`.walk`) asks these flags and knows no layer class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .graph import Graph, Value

Pads = tuple[tuple[int, int], ...]


@dataclass
class Call:
    """One layer call to write: the graph, the layer, its input values (one, or a list for a
    list input), its cnnkit output shape and the base name of what it writes."""

    g: Graph
    layer: Any
    inputs: list[Value]
    out_shape: Any
    name: str
    training: bool = False
    bn: Any = None
    extra_pads: Pads | None = None
    options: dict = field(default_factory=dict)

    @property
    def x(self) -> Value:
        return self.inputs[0]

    @property
    def dtype(self) -> Any:
        return self.x.dtype

    def weight(self, what: str, array: np.ndarray) -> str:
        """An initializer for the layer's ``what``, shared between calls of the same layer
        with the same folding."""
        key = (id(self.layer), what, id(self.bn) if self.bn is not None else None)
        return self.g.weight(key, array, f"{self.name}.{what}")

    def out(self, name: str, shape: tuple | None = None, cf: bool | None = None,
            **changes: Any) -> Value:
        """The Value of ONNX tensor ``name``: the output shape, the input's layout."""
        shape = self.out_shape if shape is None else shape
        return Value(name, tuple(shape), self.x.cf if cf is None else cf,
                     changes.pop("dtype", self.dtype), **changes)


Writer = Callable[[Call], Any]


@dataclass(frozen=True)
class Entry:
    fn: Writer
    absorbs_bn: bool = False  # a following batch norm folds into its weights
    absorbs_pads: bool = False  # a preceding zero padding folds into its pads
    keeps_order: bool = False  # elementwise on features: a permuted feature order passes


_ENTRIES: dict[type, Entry] = {}


def exports(*classes: type, absorbs_bn: bool = False, absorbs_pads: bool = False,
            keeps_order: bool = False) -> Callable[[Writer], Writer]:
    """Decorator: ``fn`` writes layers of ``classes``."""

    def deco(fn: Writer) -> Writer:
        for cls in classes:
            _ENTRIES[cls] = Entry(fn, absorbs_bn, absorbs_pads, keeps_order)
        return fn

    return deco


def lookup(layer: Any) -> Entry | None:
    """The entry of the layer's class, or of the nearest registered base class whose
    ``call`` the layer's class does not override (a subclass computing the same thing)."""
    cls = type(layer)
    if cls in _ENTRIES:
        return _ENTRIES[cls]
    for base in cls.__mro__[1:]:
        if base in _ENTRIES:
            return _ENTRIES[base] if cls.call is base.call else None
    return None


def exported_classes() -> list[type]:
    """Every layer class with a writer."""
    return list(_ENTRIES)
