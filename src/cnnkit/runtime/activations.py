"""Activations as the runtime applies them, and elementwise passes over flat pieces.

An :class:`Act` is either a piecewise-linear ``piece(out, x)`` that may write into its own
input (ReLU, ReLU6, a capped ReLU), which lets a step apply it in place on the buffer it just
wrote, or a function ``fn(x)`` of a kernel that returns a new array (sigmoid, tanh, softmax).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops
from ..kernels import activation as activation_kernels
from ..kernels import parallel
from ..ops import activation as activation_ops

Fn = Callable[[Any], Any]
Piece = Callable[..., Any]  # piece(out, *inputs): writes its result into out

# Elementwise passes over outputs smaller than this run in one call: they are memory-bound,
# and splitting them over the kernel threads measured slower up to ~2.5 MB (0.16 vs 0.12 ms
# for an add + ReLU over 8x56x56x24 float32) and only ~10% faster at 8 MB.
ELEMENTWISE_PARALLEL_BYTES = 4 << 20


def elementwise(out: np.ndarray, piece: Piece, *arrays: np.ndarray) -> np.ndarray:
    """out = piece(*arrays) elementwise, over flat pieces spread on the kernel threads when
    the arrays are large and contiguous (one call otherwise); ``out`` may be one of them."""
    if not (out.flags.c_contiguous and all(a.flags.c_contiguous and a.shape == out.shape
                                           for a in arrays)):
        piece(out, *arrays)
        return out
    flats = [a.reshape(-1) for a in (out, *arrays)]
    width = sum(a.itemsize for a in flats)
    if out.nbytes < ELEMENTWISE_PARALLEL_BYTES:
        piece(*flats)
        return out
    parallel.for_rows(flats[0].size, width, lambda r0, r1: piece(*(f[r0:r1] for f in flats)))
    return out


class Act:
    """An activation: ``piece(out, x)`` for the piecewise-linear ones that can run in place,
    else ``fn(x)`` (a kernel making a new array). ``bounds`` = (lo, hi) when the activation
    is the clamp min(max(x, lo), hi) (hi None: no upper bound), which int8 steps apply as a
    clamp of their integer output."""

    __slots__ = ("piece", "fn", "bounds")

    def __init__(self, piece: Piece | None = None, fn: Fn | None = None,
                 bounds: tuple[float, float | None] | None = None):
        self.piece, self.fn, self.bounds = piece, fn, bounds

    @property
    def in_place(self) -> bool:
        """Whether the activation can write into its input (and so join the step before)."""
        return self.piece is not None

    def apply(self, z: np.ndarray, inplace: bool) -> np.ndarray:
        """act(z), written into z when ``inplace`` and the activation allows it."""
        if self.piece is not None:
            out = z if inplace else np.empty_like(z)
            if z.nbytes < ELEMENTWISE_PARALLEL_BYTES:
                self.piece(out, z)
                return out
            return elementwise(out, self.piece, z)
        assert self.fn is not None
        return self.fn(z)


def _relu6_piece(o: np.ndarray, a: np.ndarray) -> None:
    np.clip(a, 0, 6, out=o)


def _capped_piece(cap: float) -> Piece:
    def piece(o: np.ndarray, a: np.ndarray) -> None:
        np.clip(a, 0, cap, out=o)  # = min(max(a, 0), cap)

    return piece


RELU = Act(activation_kernels.relu_into, bounds=(0.0, None))
RELU6 = Act(_relu6_piece, bounds=(0.0, 6.0))


class Unsupported:
    """The answer for an activation the runtime has no form for (the layer then runs its own
    ``call``)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNSUPPORTED"


UNSUPPORTED = Unsupported()


def activation(fn: Any) -> Act | None | Unsupported:
    """The Act for an activation function of ``cnnkit.ops`` (a layer's ``activation``): None
    for the identity, UNSUPPORTED when the runtime has no form for it."""
    if fn is None or fn is activation_ops._linear:
        return None
    table = {ops.relu: RELU, ops.relu6: RELU6,
             ops.sigmoid: Act(fn=activation_kernels.sigmoid_forward),
             ops.tanh: Act(fn=activation_kernels.tanh_forward),
             ops.softmax: Act(fn=lambda z: activation_kernels.softmax_forward(z, -1))}
    return table.get(fn, UNSUPPORTED)


def clipped_relu(max_value: float | None) -> Act:
    """min(max(x, 0), max_value) (plain ReLU when max_value is None)."""
    if max_value is None:
        return RELU
    if max_value == 6:
        return RELU6
    return Act(_capped_piece(float(max_value)), bounds=(0.0, float(max_value)))


def finish(z: np.ndarray, act: Act | None, inplace: bool = True) -> np.ndarray:
    """act(z) (z itself without an activation)."""
    return z if act is None else act.apply(z, inplace)
