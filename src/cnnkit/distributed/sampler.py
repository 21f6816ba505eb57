"""Each rank's share of an epoch.

An epoch's order (a seeded permutation, the same on every rank) is dealt out round-robin:
rank r takes positions r, r + R, r + 2R, ... So with a per-rank batch b, the ranks' k-th
batches together are exactly the k-th global batch of size b*R of one process reading the same
order. The ``n mod R`` samples left over would give ranks different step counts (and the
collectives would wait forever), so ``DistributedSampler`` leaves them out of that epoch; the
shuffle changes which ones each epoch. ``fit(distributed=True)`` instead splits every global
batch, remainder included, and weights each rank's gradient by its sample count."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .comm import init

__all__ = ["DistributedSampler", "split_batch"]


class DistributedSampler:
    """Indices of ``dataset`` for this rank, for ``DataLoader(ds, sampler=...)``; call
    ``set_epoch(e)`` before each epoch for a fresh order."""

    def __init__(self, dataset: Any, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0):
        if num_replicas is None or rank is None:
            g = init()
            num_replicas = g.size if num_replicas is None else num_replicas
            rank = g.rank if rank is None else rank
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {num_replicas}), got "
                             f"{rank}")
        self.n, self.replicas, self.rank = len(dataset), int(num_replicas), int(rank)
        self.shuffle, self.seed, self.epoch = shuffle, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n // self.replicas

    def __iter__(self) -> Iterator[int]:
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
                 if self.shuffle else np.arange(self.n))
        kept = order[:len(self) * self.replicas]
        return iter(kept[self.rank::self.replicas].tolist())


def split_batch(indices: np.ndarray, rank: int, size: int) -> np.ndarray:
    """This rank's round-robin part of one global batch (sizes differ by at most one)."""
    return indices[rank::size]
