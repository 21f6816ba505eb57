"""What a layer build sees of its surroundings: the names handed out so far (Keras-style
``conv2d``, ``conv2d_1``, ...), the weight budget of a model being read from a file, and
shape-only builds whose weights take no memory.
"""

from __future__ import annotations

import contextvars
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import random as crandom

_name_counts: dict[str, int] = {}


_budget: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "cnnkit_weight_budget", default=None)


@contextmanager
def weight_budget(n_values: int) -> Iterator[None]:
    """Within the block, layers may create weights of at most ``n_values`` values in all (a
    model read from a file builds only what the file stores)."""
    token = _budget.set([n_values])
    try:
        yield
    finally:
        _budget.reset(token)


_shapes_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "cnnkit_shapes_only", default=False)


def building_shapes_only() -> bool:
    """Whether a :func:`shapes_only` block is active."""
    return _shapes_only.get()


@contextmanager
def shapes_only() -> Iterator[None]:
    """Within the block, layers build with weights that take no memory (one zero viewed at
    every shape) for shape inference and parameter counts of any size; the random state and
    the layer names handed out are restored afterwards, so a real build that follows is the
    one it would have been."""
    names, state = dict(_name_counts), crandom.get_state()
    token = _shapes_only.set(True)
    try:
        yield
    finally:
        _shapes_only.reset(token)
        _name_counts.clear()
        _name_counts.update(names)
        crandom.set_state(state)


def spend_budget(layer: Any, name: str, shape: tuple[int, ...]) -> None:
    """Count a new weight of ``layer`` against the active :func:`weight_budget`, if any."""
    left = _budget.get()
    if left is None:
        return
    if layer.dtype.kind not in "biuf" or layer.dtype.itemsize > 16:
        raise ValueError(f"{type(layer).__name__} '{layer.name}' has dtype {layer.dtype}; "
                         f"weights must be numbers")
    n = math.prod(shape)
    if min(shape, default=0) < 0 or n > left[0]:
        raise ValueError(f"{type(layer).__name__} '{layer.name}' would create weight '{name}' "
                         f"of shape {shape}: more values than the file stores ({left[0]} left)")
    left[0] -= n



def unique_name(base: str) -> str:
    """conv2d, conv2d_1, conv2d_2, ... as Keras names layers."""
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def snake_case(name: str) -> str:
    """Keras' default layer names: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d,
    Conv2DTranspose -> conv2d_transpose (digits stay attached to the word before them)."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()
