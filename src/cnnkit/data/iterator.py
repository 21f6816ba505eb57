"""BatchIterator: mini-batches of NumPy arrays, reshuffled and augmented every epoch, with
optional background prefetching."""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import random as crandom

__all__ = ["BatchIterator"]

_END = object()


class BatchIterator:
    """Iterable of ``(xb, yb)`` batches over arrays ``x`` (and ``y``), one pass per ``iter()``.

    Every pass is an epoch: its order and its augmentation randomness come from
    ``numpy.random.default_rng([seed, epoch, stream])``, so the same ``seed`` gives the same
    batches epoch by epoch, while each epoch differs. Without a seed one is drawn from
    ``cnnkit.random`` when the iterator is made (so ``cnnkit.random.seed`` reproduces it).

    Args:
        x: samples, shape (N, ...). y: labels/targets with N rows, or None (then yb is None).
        batch_size: samples per batch; ``len()`` is the number of batches per epoch.
        shuffle: new random order every epoch (else the stored order).
        drop_last: drop a final batch smaller than ``batch_size``.
        transform: ``transform(xb, yb, rng) -> (xb, yb)`` applied to every batch (an
            ``Augmentation`` or ``Compose`` fits), with the epoch's generator.
        prefetch: prepare up to this many batches ahead in a daemon thread (0: none). The
            thread stops as soon as the pass ends or is abandoned (``break``, garbage
            collection or ``close()`` of the iterator), and exceptions in it are re-raised in
            the consumer.

    ``model.fit(BatchIterator(x, y, batch_size=64, transform=aug, seed=0), epochs=5)``.
    """

    def __init__(self, x: Any, y: Any = None, batch_size: int = 32, shuffle: bool = True,
                 seed: int | None = None, drop_last: bool = False,
                 transform: Callable[[np.ndarray, Any, np.random.Generator], tuple] | None = None,
                 prefetch: int = 0):
        self.x = np.asarray(x)
        if self.x.ndim == 0:
            raise ValueError("BatchIterator expects x with a sample axis, got a scalar")
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"BatchIterator: x has {len(self.x)} samples but y has "
                             f"{len(self.y)}")
        if int(batch_size) < 1:
            raise ValueError(f"BatchIterator: batch_size must be >= 1, got {batch_size}")
        if int(prefetch) < 0:
            raise ValueError(f"BatchIterator: prefetch must be >= 0, got {prefetch}")
        if transform is not None and not callable(transform):
            raise TypeError(f"BatchIterator: transform must be callable "
                            f"(xb, yb, rng) -> (xb, yb), got {type(transform).__name__}")
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), bool(shuffle), \
            bool(drop_last)
        self.transform, self.prefetch = transform, int(prefetch)
        self.seed = int(crandom.get_rng().integers(2**63)) if seed is None else int(seed)
        self.epoch = 0

    @property
    def num_samples(self) -> int:
        return len(self.x)

    def __len__(self) -> int:
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else math.ceil(n / b)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch`` (e.g. when resuming training)."""
        self.epoch = int(epoch)

    def _generate(self, epoch: int) -> Iterator[tuple[np.ndarray, Any]]:
        n = len(self.x)
        order = (np.random.default_rng([self.seed, epoch, 0]).permutation(n) if self.shuffle
                 else np.arange(n))
        aug_rng = np.random.default_rng([self.seed, epoch, 1])
        for k in range(len(self)):
            idx = order[k * self.batch_size:(k + 1) * self.batch_size]
            xb = self.x[idx]
            yb = None if self.y is None else self.y[idx]
            if self.transform is not None:
                xb, yb = self.transform(xb, yb, aug_rng)
            yield xb, yb

    def __iter__(self) -> Iterator[tuple[np.ndarray, Any]]:
        epoch = self.epoch
        self.epoch += 1
        if self.prefetch == 0:
            return self._generate(epoch)
        return self._prefetching(epoch)

    def _prefetching(self, epoch: int) -> Iterator[tuple[np.ndarray, Any]]:
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for batch in self._generate(epoch):
                    if not put(batch):
                        return
                put(_END)
            except BaseException as e:  # handed to the consumer
                put(e)

        worker = threading.Thread(target=produce, name="cnnkit-BatchIterator-prefetch",
                                  daemon=True)
        worker.start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while True:  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
            worker.join(timeout=10)

    def __repr__(self) -> str:
        return (f"BatchIterator(num_samples={len(self.x)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, prefetch={self.prefetch})")
