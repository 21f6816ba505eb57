"""New training scenes every epoch: a ``fit()`` data source that paints a fresh set of
``make_scenes`` scenes for each pass, so that the network never sees the same scene twice (the
digits repeat, their positions, sizes, colours and photo crops do not).

``model.fit(SceneEpochs(4000, seed=0, batch_size=16, backgrounds=bg), epochs=8)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from ..data import BatchIterator
from .data import make_scenes

__all__ = ["SceneEpochs", "epoch_seed"]


def epoch_seed(seed: int, epoch: int) -> Any:
    """The scene seed of an epoch: ``seed`` itself for epoch 0 (the scenes
    ``make_scenes(n, seed)`` gives), ``[seed, epoch]`` after it."""
    return seed if epoch == 0 else [seed, epoch]


class SceneEpochs:
    """Iterable of ``(images, masks)`` batches, ``n`` new scenes per pass (epoch ``e`` paints
    ``make_scenes(n, epoch_seed(seed, e), split, size, backgrounds, max_digits)``), shuffled
    and transformed by a ``BatchIterator`` seeded with ``seed * 1_000_003 + e``. While one
    epoch trains, the next one's scenes are painted in a background thread (none after
    ``epochs`` passes, when given). ``len()`` is batches per epoch.
    """

    def __init__(self, n: int, seed: int, batch_size: int,
                 transform: Callable[[np.ndarray, Any, np.random.Generator], tuple] | None = None,
                 backgrounds: list[np.ndarray] | None = None, split: str = "train",
                 size: int = 64, max_digits: int = 3, epochs: int | None = None):
        if int(n) < 1 or int(batch_size) < 1:
            raise ValueError(f"SceneEpochs expects n >= 1 and batch_size >= 1, got n={n}, "
                             f"batch_size={batch_size}")
        self.n, self.seed, self.batch_size = int(n), int(seed), int(batch_size)
        self.transform, self.backgrounds, self.split = transform, backgrounds, split
        self.size, self.max_digits = int(size), int(max_digits)
        self.epoch, self.epochs = 0, epochs
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: tuple[int, Future] | None = None
        self._last: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def scenes(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The scenes of ``epoch`` (images uint8 (n, size, size, 3), masks uint8); the last
        epoch's are kept, so asking again costs nothing."""
        if self._last is not None and self._last[0] == epoch:
            return self._last[1]
        if self._ahead is not None and self._ahead[0] == epoch:
            future, self._ahead = self._ahead[1], None
            scenes = future.result()
        else:
            scenes = self._paint(epoch)
        self._last = (epoch, scenes)
        return scenes

    def paint_ahead(self, epoch: int) -> None:
        """Start painting the scenes of ``epoch`` in the background thread (``scenes(epoch)``
        or the pass of that epoch then takes them)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="cnnkit-scenes")
        self._ahead = (epoch, self._pool.submit(self._paint, epoch))

    def _paint(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        return make_scenes(self.n, epoch_seed(self.seed, epoch), self.split, self.size,
                           self.backgrounds, self.max_digits)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        x, m = self.scenes(epoch)
        if self.epochs is None or epoch + 1 < self.epochs:
            self.paint_ahead(epoch + 1)
        return iter(BatchIterator(x, m, batch_size=self.batch_size, shuffle=True,
                                  seed=self.seed * 1_000_003 + epoch, transform=self.transform))

    def close(self) -> None:
        """Stop painting ahead (a pending epoch is finished and dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._ahead = None, None
