"""The process group that collective operations run over, for the layers that need one
(``SyncBatchNormalization``) without importing MPI: :mod:`cnnkit.distributed` registers its
communicator here; with none registered a collective is the identity (one process)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["Group", "set_group", "get_group", "allreduce_sum"]


class Group(Protocol):
    rank: int
    size: int

    def allreduce_sum(self, buf: np.ndarray) -> None:
        """Sum ``buf`` over the processes, in place (every process gets the total)."""


_group: Group | None = None


def set_group(group: Group | None) -> None:
    global _group
    _group = group


def get_group() -> Group | None:
    return _group


def allreduce_sum(buf: np.ndarray, group: Any = None) -> np.ndarray:
    """``buf`` summed over the processes of ``group`` (the registered one by default), in place;
    returned for chaining. One process: unchanged."""
    g = group if group is not None else _group
    if g is not None and g.size > 1:
        g.allreduce_sum(buf)
    return buf
