"""TensorBoard (Keras): scalar logs as TensorBoard event files, readable by ``tensorboard``.

``log_dir/train`` gets ``epoch_<name>`` for each training log (loss, metrics, learning rate)
and ``log_dir/validation`` gets the ``val_`` logs under the same tags, as Keras writes them;
``update_freq`` as an int also writes ``batch_<name>`` every that many batches.
"""

from __future__ import annotations

import os
from typing import Any

from .callback_base import Callback, Logs
from .event_file import EventFileWriter

__all__ = ["TensorBoard"]


class TensorBoard(Callback):
    """Write scalar summaries for TensorBoard.

    Args:
        log_dir: folder of the run (``train`` and ``validation`` sub-folders are made).
        update_freq: "epoch" (default), "batch" or a number of batches.
    Other Keras arguments (histogram_freq, write_graph, write_images, profile_batch, ...)
    are accepted and ignored: only scalars are written.
    """

    def __init__(self, log_dir: str | os.PathLike = "logs", update_freq: Any = "epoch",
                 **ignored: Any):
        super().__init__()
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (not isinstance(update_freq, int) or update_freq < 1):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive "
                             f"int, got {update_freq!r}")
        self.log_dir, self.update_freq = os.fspath(log_dir), update_freq
        self._writers: dict[str, EventFileWriter] = {}
        self._batches = 0

    def _writer(self, kind: str) -> EventFileWriter:
        if kind not in self._writers:
            self._writers[kind] = EventFileWriter(os.path.join(self.log_dir, kind))
        return self._writers[kind]

    def on_train_begin(self, logs: Logs = None) -> None:
        self._batches = 0

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._batches += 1
        if self.update_freq == "epoch" or self._batches % self.update_freq:
            return
        for k, v in (logs or {}).items():
            if _is_number(v):
                self._writer("train").scalar(f"batch_{k}", float(v), self._batches)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        logs = dict(logs or {})
        opt = getattr(self.model, "optimizer", None)
        if opt is not None and "learning_rate" not in logs:
            logs["learning_rate"] = float(opt.learning_rate)
        for k, v in logs.items():
            if not _is_number(v):
                continue
            kind, name = ("validation", k[4:]) if k.startswith("val_") else ("train", k)
            self._writer(kind).scalar(f"epoch_{name}", float(v), epoch)
        for w in self._writers.values():
            w.flush()

    def on_train_end(self, logs: Logs = None) -> None:
        for w in self._writers.values():
            w.close()
        self._writers = {}


def _is_number(v: Any) -> bool:
    """A real number (NaN and Inf included: TensorBoard shows them), not a bool."""
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return not isinstance(v, bool)
