"""``torch.utils.data``'s habits: ``TensorDataset`` and ``DataLoader`` over any dataset with
``len(ds)`` and ``ds[i] -> (x, y)``, yielding batches as :class:`~cnnkit.Tensor` objects
stacked on a new first axis (images (N, H, W, C))."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .. import random as crandom
from ..autograd import Tensor

__all__ = ["TensorDataset", "Subset", "DataLoader", "default_collate"]


class TensorDataset:
    """Samples ``i`` of equal-length arrays or Tensors: ``ds[i] = (a[i], b[i], ...)``."""

    def __init__(self, *arrays: Any):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = [a.data if isinstance(a, Tensor) else np.asarray(a) for a in arrays]
        sizes = {len(a) for a in self.arrays}
        if len(sizes) != 1:
            raise ValueError(f"TensorDataset: arrays must have the same length, got "
                             f"{[len(a) for a in self.arrays]}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, i: Any) -> tuple[Any, ...]:
        return tuple(a[i] for a in self.arrays)


class Subset:
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Any, indices: Sequence[int]):
        self.dataset, self.indices = dataset, [int(i) for i in indices]
        n = len(dataset)
        bad = [i for i in self.indices if not -n <= i < n]
        if bad:
            raise IndexError(f"Subset: indices {bad[:3]} are outside a dataset of {n} samples")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[self.indices[i]]


def default_collate(items: Sequence[Any]) -> Any:
    """Stack a list of samples: tuples field by field; arrays, Tensors and numbers into one
    Tensor (float data as float32, integers as int64)."""
    first = items[0]
    if isinstance(first, (tuple, list)):
        return type(first)(default_collate([it[k] for it in items]) for k in range(len(first)))
    if isinstance(first, dict):
        return {k: default_collate([it[k] for it in items]) for k in first}
    return _stacked(np.stack([it.data if isinstance(it, Tensor) else np.asarray(it)
                              for it in items]))


def _stacked(a: np.ndarray) -> Tensor:
    if np.issubdtype(a.dtype, np.floating):
        return Tensor(a.astype(np.float32, copy=False))
    if np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
        return Tensor(a.astype(np.int64, copy=False))
    raise TypeError(f"default_collate: cannot batch samples of dtype {a.dtype}")


class DataLoader:
    """Mini-batches of ``dataset`` in order, in a fresh random order each pass when
    ``shuffle``, or in the order a ``sampler`` gives; ``len(loader)`` = ceil(n / batch_size)
    (floor with ``drop_last``)."""

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn: Callable[[list], Any] | None = None,
                 generator: np.random.Generator | None = None, sampler: Any = None,
                 **ignored: Any):
        # num_workers / pin_memory and friends have no meaning on one NumPy process
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got "
                             f"{batch_size!r}")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader expects a dataset with __len__ and __getitem__, got "
                            f"{type(dataset).__name__}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.collate_fn = collate_fn or default_collate
        self.generator = generator
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: give shuffle=True or a sampler, not both")
        self.sampler = sampler

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        if self.sampler is not None:  # e.g. a DistributedSampler: this rank's indices
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
        else:
            order = (crandom.get_rng(self.generator).permutation(n) if self.shuffle
                     else np.arange(n))
        arrays = getattr(self.dataset, "arrays", None)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            if arrays is not None and self.collate_fn is default_collate:
                yield tuple(_stacked(a[idx]) for a in arrays)  # one gather, not n lookups
            else:
                yield self.collate_fn([self.dataset[int(i)] for i in idx])
