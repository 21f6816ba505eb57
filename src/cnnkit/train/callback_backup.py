"""BackupAndRestore (Keras): resume an interrupted ``fit`` where it stopped.

At the end of every epoch the model's weights, the optimizer's state and the epoch number go
into ``backup_dir`` (weights and state first, the small JSON naming the epoch last, each
written atomically, so a crash mid-backup leaves the previous complete backup). When ``fit``
starts and a backup exists, it is loaded and training continues with the next epoch; since
``fit`` seeds shuffling and dropout per epoch, the resumed run ends with the same weights as
an uninterrupted one. A ``fit`` that finishes deletes the backup (``delete_checkpoint``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import files
from ..npz import NpzArchive
from .callback_base import Callback, Logs

__all__ = ["BackupAndRestore"]


class BackupAndRestore(Callback):
    """Args: backup_dir (a folder for this run only), save_freq ("epoch" only),
    delete_checkpoint (remove the backup when training finishes)."""

    def __init__(self, backup_dir: str | os.PathLike, save_freq: Any = "epoch",
                 delete_checkpoint: bool = True):
        super().__init__()
        if save_freq != "epoch":
            raise ValueError(f"BackupAndRestore: only save_freq='epoch' is supported, got "
                             f"{save_freq!r}")
        self.backup_dir = Path(backup_dir)
        self.delete_checkpoint = bool(delete_checkpoint)

    @property
    def _paths(self) -> tuple[Path, Path, Path]:
        d = self.backup_dir
        return d / "weights.npz", d / "optimizer.npz", d / "backup.json"

    def on_train_begin(self, logs: Logs = None) -> None:
        weights, opt_path, meta = self._paths
        if not meta.exists():
            return
        info = json.loads(meta.read_text())
        epoch = info.get("epoch") if isinstance(info, dict) else None
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"BackupAndRestore: {meta} does not name an epoch (got {info!r})")
        self.model.load_weights(weights)
        opt = getattr(self.model, "optimizer", None)
        if opt is not None and opt_path.exists():
            with NpzArchive(opt_path) as archive:
                opt.build(self.model.trainable_weights)
                opt.set_state({k: archive.read(k) for k in archive.names()})
        self.model._resume_epoch = epoch + 1  # fit starts from the epoch after the backup

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        weights, opt_path, meta = self._paths
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(weights)
        opt = getattr(self.model, "optimizer", None)
        if opt is not None:
            with files.atomic_write(opt_path) as f:
                np.savez(f, **opt.get_state())
        with files.atomic_write(meta, "w") as f:
            f.write(json.dumps({"epoch": int(epoch)}))

    def on_train_end(self, logs: Logs = None) -> None:
        if self.delete_checkpoint:
            for p in self._paths:
                p.unlink(missing_ok=True)
