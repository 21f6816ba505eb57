"""Shape operations on Tensors: reshape, flatten, transpose, indexing, concatenate, pad."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..kernels import shape as K
from ._core import Tensor, as_tensor, record, same_dtype

__all__ = ["reshape", "flatten", "transpose", "getitem", "concatenate", "stack", "pad",
           "expand_dims", "squeeze"]


def reshape(x: Any, newshape: Sequence[int]) -> Tensor:
    """x with a new shape of the same size (one entry may be -1)."""
    x = as_tensor(x)
    shape = tuple(int(s) for s in newshape)
    try:
        z = x.data.reshape(shape)
    except ValueError:
        raise ValueError(f"cannot reshape an array of shape {x.shape} (size {x.size}) "
                         f"into shape {shape}") from None
    return record(z, (x,), lambda g: (g.reshape(x.shape),), "reshape")


def flatten(x: Any) -> Tensor:
    """(N, ...) -> (N, prod(...)), keeping the batch axis (channels-last order)."""
    x = as_tensor(x)
    if x.ndim < 1:
        raise ValueError("flatten expects at least a batch axis, got a scalar")
    return reshape(x, (x.shape[0], -1))


def expand_dims(x: Any, axis: int) -> Tensor:
    """Insert a length-1 axis at ``axis``."""
    x = as_tensor(x)
    return reshape(x, np.expand_dims(x.data, axis).shape)


def squeeze(x: Any, axis: Any = None) -> Tensor:
    """Remove length-1 axes (all, or those given)."""
    x = as_tensor(x)
    return reshape(x, np.squeeze(x.data, axis=axis).shape)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:
    """Permute axes (reverse them when ``axes`` is None)."""
    x = as_tensor(x)
    if axes is not None:
        axes = tuple(int(a) for a in axes)
        if sorted(a % x.ndim for a in axes) != list(range(x.ndim)):
            raise ValueError(f"transpose axes {axes} are not a permutation of the "
                             f"{x.ndim} axes of shape {x.shape}")
    return record(np.transpose(x.data, axes), (x,),
                  lambda g: (K.transpose_backward(g, axes),), "transpose")


def getitem(x: Any, index: Any) -> Tensor:
    """x[index]: basic and advanced NumPy indexing."""
    x = as_tensor(x)
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    z = x.data[index]
    return record(np.asarray(z), (x,), lambda g: (K.getitem_backward(g, x.shape, index),),
                  "getitem")


def concatenate(xs: Sequence[Any], axis: int = 0) -> Tensor:
    """Join Tensors along ``axis`` (0 by default, as keras.ops); other axes must agree."""
    ts = [as_tensor(x) for x in xs]
    if not ts:
        raise ValueError("concatenate needs at least one input")
    same_dtype("concatenate", **{f"input {i}": t for i, t in enumerate(ts)})
    nd = ts[0].ndim
    ax = axis % nd
    rest = ts[0].shape[:ax] + ts[0].shape[ax + 1:]
    for i, t in enumerate(ts):
        if t.ndim != nd or t.shape[:ax] + t.shape[ax + 1:] != rest:
            raise ValueError(f"concatenate along axis {axis}: input {i} has shape {t.shape}, "
                             f"which does not match input 0's shape {ts[0].shape} "
                             f"outside that axis")
    sizes = [t.shape[ax] for t in ts]
    return record(np.concatenate([t.data for t in ts], axis=ax), ts,
                  lambda g: K.concatenate_backward(g, sizes, ax), "concatenate")


def stack(x: Sequence[Any], axis: int = 0) -> Tensor:
    """Stack equally shaped Tensors along a new axis."""
    ts = [as_tensor(t) for t in x]
    same_dtype("stack", **{f"input {i}": t for i, t in enumerate(ts)})
    z = np.stack([t.data for t in ts], axis=axis)
    ax = axis % z.ndim
    return record(z, ts, lambda g: K.stack_backward(g, len(ts), ax), "stack")


def pad(x: Any, pad_width: Sequence[Any], mode: str = "constant",
        constant_values: float | None = None) -> Tensor:
    """Pad each axis by (before, after), like ``numpy.pad``; constant_values None means 0."""
    x = as_tensor(x)
    constant_values = 0.0 if constant_values is None else constant_values
    if len(pad_width) != x.ndim:
        raise ValueError(f"pad needs one (before, after) pair per axis: {x.ndim} for shape "
                         f"{x.shape}, got {len(pad_width)}")
    pads = [(p, p) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in pad_width]
    z = K.pad_forward(x.data, pads, mode, constant_values)
    return record(z, (x,), lambda g: (K.pad_backward(g, x.shape, pads, mode),), "pad")
