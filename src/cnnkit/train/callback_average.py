"""Weight averaging: an exponential moving average of the weights over the last epochs,
swapped into the model when training ends (as timm's ModelEmaV2 or Keras's ``use_ema``, and
averaging the batch-normalisation statistics too)."""

from __future__ import annotations

import numpy as np

from .callback_base import Callback, Logs

__all__ = ["WeightAverage"]


class WeightAverage(Callback):
    """``a <- a + (1 - d_t) (w - a)`` after the t-th training batch averaged (t = 1, 2, ...)
    from epoch ``start_epoch`` on (0-based; ``a`` starts as a copy of ``w`` then), with
    ``d_t = min(decay, (1 + t) / (10 + t))`` (TensorFlow's ``num_updates`` warm-up, so that
    the starting weights fade fast), for every weight ``w`` of the model (trainable ones and
    moving statistics); when training ends the model's weights become ``a``. A negative
    ``start_epoch`` counts from the end (-2: the last two epochs)."""

    def __init__(self, decay: float = 0.99, start_epoch: int = 0) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"WeightAverage: decay must lie in [0, 1), got {decay}")
        self.decay = float(decay)
        self.start_epoch = int(start_epoch)
        self._pairs: list[tuple[np.ndarray, object]] = []
        self._t = 0

    def on_train_begin(self, logs: Logs = None) -> None:
        self._pairs, self._t = [], 0

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        start = self.start_epoch
        if start < 0:
            start = max(0, int(self.params.get("epochs", 0)) + start)
        if epoch == start and not self._pairs:
            self._pairs = [(np.array(w.data, copy=True), w) for w in self.model.weights
                           if np.issubdtype(np.asarray(w.data).dtype, np.floating)]

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        if not self._pairs:
            return
        self._t += 1
        rate = 1.0 - min(self.decay, (1.0 + self._t) / (10.0 + self._t))
        for avg, w in self._pairs:
            avg += rate * (w.data - avg)

    def on_train_end(self, logs: Logs = None) -> None:
        for avg, w in self._pairs:
            w.data[...] = avg
