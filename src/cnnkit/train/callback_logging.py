"""Callbacks that record the epochs' logs: :class:`History` (in memory) and
:class:`CSVLogger` (one CSV row per epoch)."""

from __future__ import annotations

import csv
import os
from typing import Any, TextIO

import numpy as np

from .callback_base import Callback, Logs

__all__ = ["History", "CSVLogger"]


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
