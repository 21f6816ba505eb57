"""What an ONNX value becomes while a model is built: a constant (a NumPy array), a partly
known shape vector (:class:`Partial`, from ``Shape`` of a tensor with dynamic sizes) or a
symbolic tensor of the cnnkit graph (:class:`Sym`) with its layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...layers.base import KerasTensor


@dataclass(frozen=True)
class Dim:
    """A size known only when the model runs: axis ``axis`` of the ONNX value ``source``
    (``source`` None: the result of arithmetic on unknown sizes). Axis 0 is the batch."""

    source: str | None
    axis: int

    @property
    def is_batch(self) -> bool:
        return self.source is not None and self.axis == 0


@dataclass(frozen=True)
class Partial:
    """A 1-D int64 vector (or a scalar) whose entries are ints or :class:`Dim` s."""

    values: tuple[Any, ...]
    scalar: bool = False

    @property
    def known(self) -> bool:
        return all(not isinstance(v, Dim) for v in self.values)

    def array(self) -> np.ndarray:
        a = np.asarray(self.values, dtype=np.int64)
        return a.reshape(()) if self.scalar else a


@dataclass
class Sym:
    """A tensor of the cnnkit graph. ``perm``: cnnkit's axis i holds the ONNX tensor's axis
    ``perm[i]`` (channels-last keeps ONNX's NCHW as (0, 2, 3, 1)). ``flat_order``: for a
    flattened (N, F) tensor whose features come in another order than ONNX's, feature j of
    cnnkit's tensor is ONNX's feature ``flat_order[j]``."""

    tensor: KerasTensor
    perm: tuple[int, ...]
    flat_order: np.ndarray | None = None

    @property
    def rank(self) -> int:
        return len(self.perm)

    @property
    def onnx_shape(self) -> tuple:
        phys = self.tensor.shape
        out: list[Any] = [None] * self.rank
        for i, a in enumerate(self.perm):
            out[a] = phys[i]
        return tuple(out)

    @property
    def dtype(self) -> np.dtype:
        return self.tensor.dtype


Value = Any  # np.ndarray | Partial | Sym


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def channels_last(rank: int) -> tuple[int, ...]:
    """(0, 2, ..., rank-1, 1): NCHW held as NHWC; ranks below 3 have no channel axis to move."""
    return (0, *range(2, rank), 1) if rank >= 3 else identity(rank)


def inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    out = [0] * len(perm)
    for i, p in enumerate(perm):
        out[p] = i
    return tuple(out)


def physical_constant(c: np.ndarray, sym: Sym) -> np.ndarray:
    """An ONNX constant that broadcasts against ``sym``, laid out as cnnkit holds ``sym``
    (padded to its rank with leading 1s, then permuted)."""
    c = np.asarray(c)
    while c.ndim > sym.rank and c.shape[0] == 1:
        c = c[0]
    if c.ndim > sym.rank:
        raise ValueError(f"a constant of shape {c.shape} has more axes than the tensor it "
                         f"combines with ({sym.rank})")
    c = c.reshape((1,) * (sym.rank - c.ndim) + c.shape)
    return np.ascontiguousarray(np.transpose(c, sym.perm))


def physical_axis(sym: Sym, onnx_axis: int) -> int:
    """cnnkit's axis holding ONNX axis ``onnx_axis`` (negative counts from the end)."""
    a = onnx_axis + sym.rank if onnx_axis < 0 else onnx_axis
    if not 0 <= a < sym.rank:
        raise ValueError(f"axis {onnx_axis} is out of range for a tensor of rank {sym.rank}")
    return sym.perm.index(a)
