"""Callbacks that watch a monitored quantity or the loss: :class:`EarlyStopping`,
:class:`ModelCheckpoint` (save every epoch, or only the best) and :class:`TerminateOnNaN`."""

from __future__ import annotations

import math
import os
from typing import TextIO

import numpy as np

from .callback_base import Callback, Logs
from .callback_utils import _direction, _monitor_value, _say, _scalar

__all__ = ["EarlyStopping", "ModelCheckpoint", "TerminateOnNaN"]


class EarlyStopping(Callback):
    """Stop training when a monitored quantity has stopped improving (Keras semantics).

    An epoch improves if it beats the best so far by more than ``min_delta``
    (``current + min_delta < best`` for mode "min", ``current - min_delta > best`` for
    "max"). After ``patience`` epochs without improvement, ``model.stop_training`` is set.
    With ``baseline``, the patience counter restarts only for values that also beat the
    baseline. Epochs before ``start_from_epoch`` are ignored. With
    ``restore_best_weights``, the weights of the best epoch are put back at the end of
    training (also when training ends without an early stop).

    Attributes after training: ``stopped_epoch`` (0-based; 0 if it never stopped),
    ``best``, ``best_epoch``, ``wait``.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__()
        if patience < 0:
            raise ValueError(f"EarlyStopping expects patience >= 0, got {patience}")
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        self.patience = int(patience)
        self.verbose = verbose
        self.mode = _direction("EarlyStopping", monitor, mode)
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = int(start_from_epoch)
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.best_epoch = 0

    def _improves(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs: Logs = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        current = _monitor_value("EarlyStopping", self.monitor, logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            _say(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                _say("Restoring model weights from the end of the best epoch: "
                     f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) after every epoch or every ``save_freq`` batches.

    ``filepath`` may hold format fields: ``{epoch}`` (1-based), ``{batch}`` (1-based, when
    saving by batch) and any log key, e.g. ``"ckpt-{epoch:02d}-{val_loss:.2f}.cnnkit"``.
    With ``save_best_only``, a file is written only when the monitored value beats the best
    seen so far (or ``initial_value_threshold``); epochs where the value is missing are
    skipped with a warning. ``save_weights_only`` calls ``model.save_weights(path)``, else
    ``model.save(path)``. Missing parent folders are created.
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq: str | int = "epoch",
                 initial_value_threshold: float | None = None):
        super().__init__()
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"ModelCheckpoint expects save_freq 'epoch' or a positive number "
                             f"of batches, got {save_freq!r}")
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = _direction("ModelCheckpoint", monitor, mode)
        self.save_freq = save_freq
        self.best: float | None = initial_value_threshold
        self.saved: list[str] = []  # paths written, in order
        self._epoch = 0
        self._batches_seen = 0

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def _path(self, epoch: int, batch: int | None, logs: Logs) -> str:
        fields = {k: _scalar(v) if not isinstance(v, str) else v for k, v in (logs or {}).items()}
        fields["epoch"] = epoch + 1
        if batch is not None:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(
                f"ModelCheckpoint could not format filepath {self.filepath!r}: {e!r}; "
                f"available fields: {', '.join(sorted(fields))}") from e

    def _save(self, epoch: int, batch: int | None, logs: Logs) -> None:
        path = self._path(epoch, batch, logs)
        where = f"Epoch {epoch + 1}" + ("" if batch is None else f", batch {batch + 1}")
        if self.save_best_only:
            current = _monitor_value("ModelCheckpoint", self.monitor, logs)
            if current is None:
                return
            if not self._better(current):
                if self.verbose > 0:
                    _say(f"{where}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                previous = "inf" if self.best is None and self.mode == "min" else (
                    "-inf" if self.best is None else f"{self.best:.5f}")
                _say(f"{where}: {self.monitor} improved from {previous} to {current:.5f}, "
                     f"saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            _say(f"{where}: saving model to {path}")
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        self.saved.append(path)

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        if self.save_freq == "epoch":
            return
        self._batches_seen += 1
        if self._batches_seen % self.save_freq == 0:
            self._save(self._epoch, batch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite, and say so.

    Sets ``model.stop_training`` (the loop stops after that batch if it checks the flag per
    batch, else after the epoch) and prints ``Batch N: invalid loss nan, terminating
    training`` to ``stream`` (default ``sys.stdout``).
    """

    def __init__(self, stream: TextIO | None = None):
        super().__init__()
        self.stream = stream
        self.terminated_batch: int | None = None

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = _scalar(loss)
        if not math.isfinite(value):
            self.terminated_batch = batch
            _say(f"Batch {batch}: invalid loss {value}, terminating training", self.stream)
            self.model.stop_training = True
