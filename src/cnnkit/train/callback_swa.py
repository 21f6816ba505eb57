"""Stochastic weight averaging (Izmailov et al. 2018): the equal-weight mean of the weights at
the end of the last epochs, swapped in when training ends, with the batch-normalisation
statistics recomputed for the averaged weights (as PyTorch's ``torch.optim.swa_utils``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import no_grad
from ..layers.normalization import BatchNormalization
from .callback_base import Callback, Logs

__all__ = ["StochasticWeightAverage", "update_batch_norm"]


def _batch_norms(model: Any) -> list:
    """Every BatchNormalization in ``model``, nested models and layers held by layers
    included, each once."""
    found: list = []
    seen: set[int] = set()

    def walk(layer: Any) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if isinstance(layer, BatchNormalization):
            found.append(layer)
            return
        subs = getattr(layer, "layers", None)
        children = list(subs) if isinstance(subs, list) else []
        if hasattr(layer, "_sublayers"):
            children += layer._sublayers()
        for child in children:
            walk(child)

    walk(model)
    return found


def update_batch_norm(model: Any, batches: Iterable) -> int:
    """Recompute every BatchNormalization layer's moving statistics as the plain mean over
    ``batches`` ((x, y) pairs or arrays of x) of the batch statistics: with k = 1, 2, ...
    ``moving <- (1 - 1/k) moving + (1/k) batch_k``, the weights unchanged (torch's
    ``update_bn``, momentum None). Returns the number of batches seen."""
    norms = _batch_norms(model)
    kept = [n.momentum for n in norms]
    k = 0
    try:
        with no_grad():
            for batch in batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                k += 1
                for n in norms:
                    n.momentum = 1.0 - 1.0 / k
                model(np.asarray(x, np.float32), training=True)
    finally:
        for n, m in zip(norms, kept, strict=True):
            n.momentum = m
    return k


class StochasticWeightAverage(Callback):
    """``a_n = a_(n-1) + (w - a_(n-1)) / n`` over the weights ``w`` at the end of each epoch
    from ``start_epoch`` on (0-based; negative counts from the end: -3 averages the last
    three); when training ends the model's weights become ``a``. The moving statistics of
    batch normalisation: recomputed by :func:`update_batch_norm` over ``bn_batches`` when given
    (an iterable of (x, y) batches, e.g. the training ``BatchIterator``), else averaged too."""

    def __init__(self, start_epoch: int = -3, bn_batches: Iterable | None = None) -> None:
        super().__init__()
        self.start_epoch = int(start_epoch)
        self.bn_batches = bn_batches
        self._avg: list[tuple[np.ndarray, Any]] = []
        self.count = 0

    def on_train_begin(self, logs: Logs = None) -> None:
        self._avg, self.count = [], 0

    def _first(self) -> int:
        start = self.start_epoch
        return max(0, int(self.params.get("epochs", 0)) + start) if start < 0 else start

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if epoch < self._first():
            return
        if not self._avg:
            self._avg = [(np.array(w.data, np.float64), w) for w in self.model.weights
                         if np.issubdtype(np.asarray(w.data).dtype, np.floating)]
            self.count = 1
            return
        self.count += 1
        for avg, w in self._avg:
            avg += (w.data - avg) / self.count

    def on_train_end(self, logs: Logs = None) -> None:
        for avg, w in self._avg:
            w.data[...] = avg
        if self._avg and self.bn_batches is not None:
            update_batch_norm(self.model, self.bn_batches)
