"""The :class:`Callback` base class and the ``logs`` type shared by every callback module.

Its own module so that ``callbacks`` (which builds a ``ProgbarLogger`` in ``CallbackList``)
and ``progress`` (which defines ``ProgbarLogger``) both import downward and not each other.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Callback", "Logs", "HOOKS"]

Logs = dict[str, Any] | None


class Callback:
    """Base class: every hook does nothing.

    Attributes ``model`` and ``params`` are set by the training loop through ``set_model``
    and ``set_params`` before ``on_train_begin``.
    """

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = dict(params)

    # training
    def on_train_begin(self, logs: Logs = None) -> None:
        """Called once before the first epoch."""

    def on_train_end(self, logs: Logs = None) -> None:
        """Called once after the last epoch (also after an early stop)."""

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        """Called at the start of each epoch (``epoch`` is 0-based)."""

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """Called at the end of each epoch with the epoch's training and validation logs."""

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Called before each training batch (``batch`` is 0-based within the epoch)."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Called after each training batch with the running logs of the epoch."""
        self.on_batch_end(batch, logs)

    # Keras 2 names of the training-batch hooks (called by the two above).
    def on_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Keras 2 name of ``on_train_batch_begin``."""

    def on_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Keras 2 name of ``on_train_batch_end``."""

    # evaluation
    def on_test_begin(self, logs: Logs = None) -> None:
        """Called at the start of evaluation (``evaluate`` or validation inside ``fit``)."""

    def on_test_end(self, logs: Logs = None) -> None:
        """Called at the end of evaluation."""

    def on_test_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Called before each evaluation batch."""

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Called after each evaluation batch."""

    # prediction
    def on_predict_begin(self, logs: Logs = None) -> None:
        """Called at the start of ``predict``."""

    def on_predict_end(self, logs: Logs = None) -> None:
        """Called at the end of ``predict``."""

    def on_predict_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Called before each prediction batch."""

    def on_predict_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Called after each prediction batch."""


HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
         "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
         "on_predict_batch_begin", "on_predict_batch_end")
