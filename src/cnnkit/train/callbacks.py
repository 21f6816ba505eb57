"""Keras-style training callbacks.

A callback receives the training loop's events through hooks (``on_train_begin``,
``on_epoch_end``, ``on_train_batch_end``, ...) with a ``logs`` dict of floats
(``{"loss": 0.31, "accuracy": 0.9, "val_loss": 0.4, ...}``). The loop calls
``set_model(model)`` and ``set_params({"epochs": .., "steps": .., "verbose": ..})`` first.

What callbacks rely on from the model:

* ``model.stop_training`` (bool): the loop stops after the epoch (and, if it checks, after
  the batch) in which a callback set it;
* ``model.get_weights() -> list[np.ndarray]`` / ``model.set_weights(list)``;
* ``model.save(path)`` / ``model.save_weights(path)``;
* ``model.optimizer.learning_rate`` (a float to read and set).

Semantics follow Keras 3 (``keras.callbacks``); epochs are 0-based in hooks and in
``History.epoch`` / the CSV file, 1-based in messages and in ``ModelCheckpoint`` file names.
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import numpy as np

from .callback_base import HOOKS, Callback, Logs
from .progress import ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "ReduceLROnPlateau", "LearningRateScheduler", "CSVLogger", "TerminateOnNaN",
           "LambdaCallback"]


def _scalar(value: Any) -> float:
    """A log value (float, NumPy scalar or array, Tensor) as a Python float."""
    arr = np.asarray(getattr(value, "data", value))
    if arr.size != 1:
        raise ValueError(f"expected a single number in the logs, got an array of shape "
                         f"{arr.shape}")
    return float(arr.reshape(()))


class CallbackList(Callback):
    """Calls each hook on every callback in order.

    Args:
        callbacks: the user's callbacks (a Callback, a list of them, or None).
        add_history: append a :class:`History` unless one is already there.
        add_progbar: append a :class:`~cnnkit.train.progress.ProgbarLogger` unless one is
            already there (pass ``verbose`` in ``params`` to choose its style).
        model: passed to ``set_model`` of every callback.
        **params: passed to ``set_params`` of every callback (``epochs``, ``steps``,
            ``verbose``, ...).
    """

    def __init__(self, callbacks: Callback | Iterable[Callback] | None = None,
                 add_history: bool = False, add_progbar: bool = False, model: Any = None,
                 **params: Any):
        super().__init__()
        if callbacks is None:
            cbs: list[Callback] = []
        elif isinstance(callbacks, Callback):
            cbs = [callbacks]
        else:
            cbs = list(callbacks)
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"CallbackList expects Callback objects, got {type(cb).__name__}"
                                f" ({cb!r})")
        self.callbacks: list[Callback] = cbs
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in cbs):
            self.callbacks.append(ProgbarLogger())
        if add_history and not any(isinstance(c, History) for c in cbs):
            self.callbacks.append(History())
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)
        if self.model is not None:
            callback.set_model(self.model)
        if self.params:
            callback.set_params(self.params)

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        for cb in self.callbacks:
            cb.set_params(params)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_train_begin(self, logs: Logs = None) -> None:
        self._call("on_train_begin", logs)

    def on_train_end(self, logs: Logs = None) -> None:
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._call("on_train_batch_end", batch, logs)

    def on_test_begin(self, logs: Logs = None) -> None:
        self._call("on_test_begin", logs)

    def on_test_end(self, logs: Logs = None) -> None:
        self._call("on_test_end", logs)

    def on_test_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._call("on_test_batch_end", batch, logs)

    def on_predict_begin(self, logs: Logs = None) -> None:
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs: Logs = None) -> None:
        self._call("on_predict_end", logs)

    def on_predict_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self._call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._call("on_predict_batch_end", batch, logs)


class History(Callback):
    """Records the logs of every epoch; the training loop returns it (``model.history``).

    ``history.history`` maps each log key to a list with one value per epoch;
    ``history.epoch`` lists the (0-based) epochs recorded.
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: Logs = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


# ----- monitored quantities ---------------------------------------------------------------

_MAX_WORDS = ("acc", "precision", "recall", "f1", "fbeta", "auc", "iou", "dice", "psnr",
              "ssim", "r2")


def _direction(owner: str, monitor: str, mode: str) -> str:
    """'min' or 'max' for ``mode`` ("min", "max", or "auto": max for accuracy-like names)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.lower()
    if name.endswith("loss"):
        return "min"
    return "max" if any(w in name for w in _MAX_WORDS) else "min"


def _monitor_value(owner: str, monitor: str, logs: Logs) -> float | None:
    logs = logs or {}
    if monitor not in logs:
        warnings.warn(f"{owner}: the monitored quantity '{monitor}' is not in the logs "
                      f"(available: {', '.join(sorted(logs)) or 'none'}); skipping this epoch",
                      stacklevel=3)
        return None
    return _scalar(logs[monitor])


def _say(message: str, stream: TextIO | None = None) -> None:
    out = sys.stdout if stream is None else stream
    out.write(message + "\n")
    out.flush()


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


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when a monitored quantity stops improving.

    Keras semantics: an epoch improves if the value beats the best by more than
    ``min_delta``; after ``patience`` epochs without improvement the rate becomes
    ``max(lr * factor, min_lr)`` (only if it is above ``min_lr``), then ``cooldown`` epochs
    pass in which the patience counter stays at 0. The current rate is written to
    ``logs["learning_rate"]`` at each epoch end.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0):
        super().__init__()
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau expects 0 < factor < 1, got factor={factor}")
        if patience < 0 or cooldown < 0 or min_lr < 0:
            raise ValueError(f"ReduceLROnPlateau expects patience, cooldown and min_lr >= 0, "
                             f"got patience={patience}, cooldown={cooldown}, min_lr={min_lr}")
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = int(patience)
        self.verbose = verbose
        self.mode = _direction("ReduceLROnPlateau", monitor, mode)
        self.min_delta = abs(float(min_delta))
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _improves(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs: Logs = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        optimizer = self.model.optimizer
        if logs is not None:
            logs["learning_rate"] = float(optimizer.learning_rate)
        current = _monitor_value("ReduceLROnPlateau", self.monitor, logs)
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improves(current):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(optimizer.learning_rate)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        _say(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                             f"to {new_lr:g}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch from ``schedule``.

    ``schedule(epoch, lr) -> new_lr`` (``epoch`` 0-based, ``lr`` the current rate); a schedule
    taking only ``epoch`` also works. The rate is written to ``logs["learning_rate"]`` at
    each epoch end.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler expects a callable schedule, got "
                            f"{schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._two_args = _accepts_two_args(schedule)

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        optimizer = self.model.optimizer
        if self._two_args:
            lr = self.schedule(epoch, float(optimizer.learning_rate))
        else:
            lr = self.schedule(epoch)
        if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, (int, float, np.number)):
            raise ValueError(f"LearningRateScheduler: the schedule must return a number, got "
                             f"{lr!r} at epoch {epoch}")
        if not math.isfinite(float(lr)):
            raise ValueError(f"LearningRateScheduler: the schedule returned {lr!r} at epoch "
                             f"{epoch}")
        optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            _say(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                 f"{float(lr):g}.")

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


def _accepts_two_args(fn: Callable[..., Any]) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()):
        return True
    return len(positional) >= 2


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` (0-based) then the log keys in sorted order.

    The columns are fixed by the first epoch's logs (keys that appear later are left out;
    missing ones are written as ``NA``). ``append=True`` continues an existing file without
    repeating its header.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",",
                 append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = append
        self.keys: list[str] | None = None
        self._file: TextIO | None = None
        self._writer: csv.DictWriter | None = None
        self._header = True

    def on_train_begin(self, logs: Logs = None) -> None:
        self._header = True
        if self.append and os.path.exists(self.filename):
            self._header = os.path.getsize(self.filename) == 0
        self.keys = None
        self._writer = None
        self._file = open(self.filename, "a" if self.append else "w", newline="",  # noqa: SIM115
                          encoding="utf-8")

    @staticmethod
    def _cell(value: Any) -> Any:
        if isinstance(value, str):
            return value
        data = getattr(value, "data", value)
        if np.ndim(data) == 0:
            return float(np.asarray(data)) if not isinstance(data, (int, np.integer)) else data
        return "[" + ", ".join(str(v) for v in np.asarray(data).ravel().tolist()) + "]"

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        logs = logs or {}
        if self._file is None:  # used without on_train_begin
            self.on_train_begin()
        if self.keys is None:
            self.keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *self.keys],
                                          delimiter=self.separator, extrasaction="ignore",
                                          lineterminator="\n")
            if self._header:
                self._writer.writeheader()
        row: dict[str, Any] = {"epoch": epoch}
        row.update({k: self._cell(logs[k]) if k in logs else "NA" for k in self.keys})
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs: Logs = None) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None


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


class LambdaCallback(Callback):
    """A callback made of functions given by hook name.

    ``LambdaCallback(on_epoch_end=lambda epoch, logs: ..., on_train_begin=lambda logs: ...)``;
    any hook of :class:`Callback` may be given (``on_batch_begin``/``on_batch_end`` mean the
    training-batch hooks).
    """

    def __init__(self, **hooks: Callable[..., Any]):
        super().__init__()
        aliases = {"on_batch_begin": "on_train_batch_begin", "on_batch_end": "on_train_batch_end"}
        for name, fn in hooks.items():
            target = aliases.get(name, name)
            if target not in HOOKS:
                raise ValueError(f"LambdaCallback: unknown hook {name!r}; known hooks: "
                                 f"{', '.join(HOOKS)}")
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be callable, got {fn!r}")
            setattr(self, target, fn)

