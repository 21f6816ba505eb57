"""Per-step caches of what a plan derives from the layers' weights (batch-norm folded into a
kernel, the Winograd transform of that kernel, a batch-norm's scale and shift), valid while
the source arrays stand.

A cache keeps its last value with the key it was computed from: the generation below and,
for each source Tensor, the identity of its array and its version (``Tensor.peek``). Every
write through cnnkit (training steps, optimizers, ``set_weights``, loading, quantization,
pruning) and every ``t.data`` access (so ``t.data[...] = v`` too) moves a Tensor's version
on, so the next call recomputes. The entry holds the source arrays, so no new array can take
an old one's id while the key is kept. :func:`invalidate_all` starts a new generation, for
code that wrote into a weight through an array reference kept from before the plan ran
(``t.mark_changed()`` does the same for one Tensor).

The cache swaps one tuple at a time, so threads may share it: two threads that miss together
both compute the same value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["StepCache", "invalidate_all", "read"]

_GENERATION = [0]


def invalidate_all() -> None:
    """Drop every cached derived weight (each recomputes on its next call)."""
    _GENERATION[0] += 1


def read(t: Any) -> Any:
    """The array of Tensor ``t`` (or None) without moving its version: for readers that do
    not write into it."""
    return None if t is None else t.peek()[0]


class StepCache:
    """One step's derived weights: ``get(sources, make, extra)`` is ``make()``, recomputed
    only when a source Tensor's array or version, ``extra`` (hashable: a dtype) or the
    generation changed since the last call."""

    __slots__ = ("_entry", "misses")

    def __init__(self) -> None:
        self._entry: tuple[tuple, list, Any] | None = None
        self.misses = 0

    def get(self, sources: Sequence[Any], make: Callable[[], Any], extra: Any = None) -> Any:
        key: list = [_GENERATION[0], extra]
        arrays = []
        for t in sources:
            if t is None:
                key.append(None)
                continue
            arr, version = t.peek()
            key += (id(arr), version)
            arrays.append(arr)
        k = tuple(key)
        entry = self._entry
        if entry is not None and entry[0] == k:
            return entry[2]
        value = make()
        self.misses += 1
        self._entry = (k, arrays, value)
        return value
