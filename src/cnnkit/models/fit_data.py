"""The data side of ``fit`` (Keras' data adapter + EpochIterator): argument checks, the
validation split, sample / class weights, and each epoch's batches.

Shuffling draws one permutation per epoch from ``cnnkit.random.get_rng()``, at the moment the
epoch's batches are asked for (after ``on_epoch_begin``), which the training loop has seeded
with (model seed, epoch): a seeded run draws exactly the same numbers as before the split.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .. import random as crandom
from ..autograd import Tensor

Batch = tuple[list[np.ndarray], list[np.ndarray], np.ndarray | None, np.ndarray | None]


def as_array_list(x: Any) -> list[np.ndarray]:
    """x (an array, a Tensor, or a list / tuple of them) as a list of arrays."""
    if isinstance(x, (list, tuple)):
        return [np.asarray(v.data if isinstance(v, Tensor) else v) for v in x]
    return [np.asarray(x.data if isinstance(x, Tensor) else x)]


def is_batch_iterator(x: Any) -> bool:
    """True for an iterable that yields batches (not an array, Tensor, list, tuple or dict)."""
    if x is None or isinstance(x, (np.ndarray, Tensor, list, tuple, dict)):
        return False
    return isinstance(x, Iterable)


def float_inputs(xs: list[np.ndarray], dtype: np.dtype) -> list[np.ndarray]:
    """Images arrive as uint8 or float64: compute in the model's float dtype; ints stay ints
    only where a layer (Embedding) needs ids, which it converts itself."""
    out = []
    for a in xs:
        if np.issubdtype(a.dtype, np.floating) and a.dtype != dtype:
            a = a.astype(dtype)
        elif a.dtype == np.uint8:
            a = a.astype(dtype)
        out.append(a)
    return out


def index_batches(n: int, batch_size: int, order: np.ndarray | None = None
                  ) -> Iterator[np.ndarray]:
    """Consecutive slices of ``order`` (default 0..n-1) of ``batch_size`` indices."""
    idx = order if order is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield idx[start:start + batch_size]


class EpochIterator:
    """The training data of one ``fit`` call and the batches of each of its epochs.

    Array data: ``xs``, ``ys`` and ``sample_weight`` (sample x class weights, or None), the
    last ``validation_split`` of the samples moved to ``validation_data``. A batch iterator
    ``x`` is iterated afresh each epoch. ``steps`` is batches per epoch (None if unknown).
    """

    def __init__(self, model: Any, x: Any, y: Any, batch_size: int | None,
                 sample_weight: Any, class_weight: dict | None, validation_split: float,
                 validation_data: Any, shuffle: bool, steps_per_epoch: int | None):
        self.model, self.shuffle, self.steps_per_epoch = model, shuffle, steps_per_epoch
        self.batch_size = batch_size or 32
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.validation_data = validation_data
        self.source: Any = None
        self.xs: list[np.ndarray] = []
        self.ys: list[np.ndarray] = []
        self.sample_weight: np.ndarray | None = None
        self.n: int | None = None
        if is_batch_iterator(x):
            if y is not None:
                raise ValueError("when x is a batch iterator, y must be None (the iterator "
                                 "yields (x, y) pairs)")
            self.source = x
        else:
            self._arrays(x, y, sample_weight, class_weight, validation_split)
        self.steps = steps_per_epoch or (math.ceil(self.n / self.batch_size) if self.n is not None
                                         else (len(x) if hasattr(x, "__len__") else None))

    def _arrays(self, x: Any, y: Any, sample_weight: Any, class_weight: dict | None,
                validation_split: float) -> None:
        if x is None or y is None:
            raise ValueError("fit() needs x and y (or a batch iterator as x)")
        xs, ys = as_array_list(x), as_array_list(y)
        self.model._check_batch(xs, ys)
        sw = self.model._sample_weights(ys, sample_weight, class_weight)
        n = len(xs[0])
        if self.validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            cut = int(round(n * (1 - validation_split)))
            self.validation_data = ([a[cut:] for a in xs], [a[cut:] for a in ys])
            xs, ys = [a[:cut] for a in xs], [a[:cut] for a in ys]
            sw = None if sw is None else sw[:cut]
            n = cut
        if n == 0:
            raise ValueError("fit() got no training samples")
        self.xs, self.ys, self.sample_weight, self.n = xs, ys, sw, n

    def named_arrays(self) -> dict[str, np.ndarray]:
        """The training arrays by the names an error message gives them (x, y[1], ...)."""
        def names(stem: str, arrays: list[np.ndarray]) -> list[str]:
            return [stem] if len(arrays) == 1 else [f"{stem}[{i}]" for i in range(len(arrays))]

        out = dict(zip(names("x", self.xs), self.xs, strict=True))
        out.update(zip(names("y", self.ys), self.ys, strict=True))
        if self.sample_weight is not None:
            out["sample_weight"] = self.sample_weight
        return out

    def epoch(self) -> Iterator[tuple[int, Batch]]:
        """(step, (xs, ys, sample_weight, indices)) for one epoch, at most steps_per_epoch of
        them; indices are the batch's rows in the data set (None for a batch iterator)."""
        if self.source is not None:
            batches: Iterator[Batch] = ((*self.model._unpack_batch(b), None)
                                        for b in self.source)
        else:
            assert self.n is not None
            order = crandom.get_rng().permutation(self.n) if self.shuffle else None
            sw = self.sample_weight
            batches = (([a[i] for a in self.xs], [a[i] for a in self.ys],
                        None if sw is None else sw[i], i)
                       for i in index_batches(self.n, self.batch_size, order))
        # islice: a generator shared across epochs loses no batch to the step limit
        return enumerate(itertools.islice(batches, self.steps_per_epoch))
