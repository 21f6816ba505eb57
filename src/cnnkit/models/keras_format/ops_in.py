"""Keras 3 operations in a functional graph (``x + 3.0``, ``x * (1 / 6)`` in Keras's own
MobileNetV3): an op with one tensor and one number becomes a cnnkit ``Rescaling``
(x * scale + offset), which Keras reads back as a layer. Any other op is refused by name.
Ops hold no weights, so they take no place in Keras's weight paths."""

from __future__ import annotations

import math
from typing import Any

from ...layers.core import Rescaling
from .errors import KerasFileError
from .tree import OP, Entry

# op class -> (scale, offset) for op(x, c) and for op(c, x)
_SCALAR = {"Add": (lambda c: (1.0, c), lambda c: (1.0, c)),
           "Subtract": (lambda c: (1.0, -c), lambda c: (-1.0, c)),
           "Multiply": (lambda c: (c, 0.0), lambda c: (c, 0.0)),
           "TrueDivide": (lambda c: (1.0 / c, 0.0), None),
           "Divide": (lambda c: (1.0 / c, 0.0), None)}


def is_op(entry: dict) -> bool:
    """An op's module is keras.src.ops.*; Keras's legacy .h5 writer drops modules, but an op
    call has two arguments where a layer call has one."""
    module = entry.get("module")
    if isinstance(module, str):
        return module.startswith("keras.") and ".ops." in module
    nodes = entry.get("inbound_nodes")
    first = nodes[0] if isinstance(nodes, list) and nodes else None
    return isinstance(first, dict) and isinstance(first.get("args"), list) and len(
        first["args"]) == 2 and entry.get("class_name") in _SCALAR


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def op_entry(entry: dict, where: str) -> tuple[Entry, list]:
    """(a Rescaling standing for the op, its one inbound node with the tensor alone)."""
    name, lname = entry.get("class_name"), entry.get("name")
    label = f"{where}: operation {str(name)[:40]!r} named {str(lname)[:80]!r}"
    nodes = entry.get("inbound_nodes")
    args = nodes[0].get("args") if isinstance(nodes, list) and len(nodes) == 1 and \
        isinstance(nodes[0], dict) else None
    if name not in _SCALAR or not isinstance(args, list) or len(args) != 2 or \
            sum(map(_number, args)) != 1 or nodes[0].get("kwargs"):
        raise KerasFileError(f"{label} is not supported: cnnkit reads ops between one tensor "
                             f"and one number ({sorted(_SCALAR)}); rebuild that part with "
                             f"layers")
    first = 0 if _number(args[1]) else 1
    make = _SCALAR[name][first]
    if make is None or (name in ("TrueDivide", "Divide") and args[1] == 0):
        raise KerasFileError(f"{label}: a number divided by a tensor is not supported")
    scale, offset = make(float(args[1 - first]))
    layer = Rescaling(scale, offset, name=lname if isinstance(lname, str) else None)
    return Entry(layer, OP), [{"args": [args[first]], "kwargs": {}}]
