"""Shape operations: each moves elements without changing them, so each backward moves the
gradient back to where the element came from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def transpose_backward(g: np.ndarray, axes: Sequence[int] | None) -> np.ndarray:
    """z = a.transpose(axes): dL/da = g.transpose(argsort(axes))."""
    if axes is None:
        return g.transpose()
    return g.transpose(np.argsort(axes))


def getitem_backward(g: np.ndarray, shape: tuple[int, ...], index: Any) -> np.ndarray:
    """z = a[index]: scatter-add g into zeros shaped like a (repeated indices accumulate)."""
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, index, g)
    return out


def concatenate_backward(g: np.ndarray, sizes: Sequence[int], axis: int) -> list[np.ndarray]:
    """z = concat(a_1..a_n, axis): dL/da_i is the slice of g that a_i filled."""
    return np.split(g, np.cumsum(sizes)[:-1], axis=axis)


def stack_backward(g: np.ndarray, n: int, axis: int) -> list[np.ndarray]:
    """z = stack(a_1..a_n, axis): dL/da_i = g taken at index i along ``axis``."""
    return [np.take(g, i, axis=axis) for i in range(n)]


def pad_forward(x: np.ndarray, pads: Sequence[tuple[int, int]], mode: str = "constant",
                value: float = 0.0) -> np.ndarray:
    """Pad every axis by (before, after); modes: constant, reflect, edge (replicate)."""
    pads = [tuple(p) for p in pads]
    if any(v < 0 for p in pads for v in p):
        raise ValueError(f"pad widths must be >= 0, got {pads}")
    if mode == "constant":
        return np.pad(x, pads, mode="constant", constant_values=value)
    if mode in ("reflect", "edge"):
        return np.pad(x, pads, mode=mode)
    raise ValueError(f"pad mode must be 'constant', 'reflect' or 'edge', got {mode!r}")


def pad_backward(g: np.ndarray, shape: tuple[int, ...], pads: Sequence[tuple[int, int]],
                 mode: str = "constant") -> np.ndarray:
    """Constant padding: the gradient is the un-padded centre. Reflect/edge: the centre plus
    the gradient of every padded copy added back onto the element it copied."""
    centre = tuple(slice(b, b + n) for (b, _), n in zip(pads, shape, strict=True))
    if mode == "constant":
        return g[centre].copy()
    # Route each padded cell back through the same index map np.pad used.
    index = np.arange(int(np.prod(shape))).reshape(shape)
    src = np.pad(index, [tuple(p) for p in pads], mode=mode)
    out = np.zeros(int(np.prod(shape)), dtype=g.dtype)
    np.add.at(out, src.ravel(), g.ravel())
    return out.reshape(shape)
