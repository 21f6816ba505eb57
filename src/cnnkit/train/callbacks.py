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

The callbacks live in ``callback_list`` (CallbackList, LambdaCallback), ``callback_logging``
(History, CSVLogger), ``callback_monitor`` (EarlyStopping, ModelCheckpoint, TerminateOnNaN)
and ``callback_lr`` (ReduceLROnPlateau, LearningRateScheduler); this module re-exports them.
"""

from __future__ import annotations

from .callback_backup import BackupAndRestore
from .callback_base import HOOKS as HOOKS
from .callback_base import Callback
from .callback_base import Logs as Logs
from .callback_list import CallbackList, LambdaCallback
from .callback_logging import CSVLogger, History
from .callback_lr import LearningRateScheduler, ReduceLROnPlateau
from .callback_monitor import EarlyStopping, ModelCheckpoint, TerminateOnNaN
from .callback_tensorboard import TensorBoard
from .progress import ProgbarLogger as ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "ReduceLROnPlateau", "LearningRateScheduler", "CSVLogger", "TerminateOnNaN",
           "LambdaCallback", "TensorBoard", "BackupAndRestore"]
