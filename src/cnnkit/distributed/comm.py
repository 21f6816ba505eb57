"""The MPI process group, through mpi4py's buffer calls (``Iallreduce``, ``Bcast``) only: never
the pickle-based lowercase ones. Every collective waits with a deadline
(``CNNKIT_COLLECTIVE_TIMEOUT`` seconds, 300 by default): a rank that died or went astray makes
the others print why and abort the whole job instead of hanging."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np

from .. import collective

__all__ = ["MPIGroup", "init", "world", "launched_under_mpi", "require_mpi", "is_main_process",
           "abort"]

# environment variables the common launchers set in every rank
_LAUNCH_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS",
                "SLURM_NTASKS")
_INSTALL = "pip install 'cnnkit[distributed]' (mpi4py and an MPI library)"


def launched_under_mpi() -> bool:
    """True in a process started by mpirun / mpiexec / srun with more than one rank."""
    for var in _LAUNCH_VARS:
        value = os.environ.get(var)
        if value is not None and (var == "PMIX_RANK" or value.isdigit() and int(value) > 1):
            return True
    return False


def require_mpi() -> Any:
    """The ``mpi4py.MPI`` module; an ImportError that says what to install when it is absent."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"cnnkit.distributed needs MPI: {_INSTALL}; importing mpi4py "
                          f"failed: {e}") from None
    return MPI


class MPIGroup:
    """All the ranks of ``MPI.COMM_WORLD`` (or ``comm``)."""

    def __init__(self, comm: Any = None, timeout: float | None = None):
        self.MPI = require_mpi()
        self.comm = comm if comm is not None else self.MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        env = os.environ.get("CNNKIT_COLLECTIVE_TIMEOUT", "300")
        self.timeout = float(timeout if timeout is not None else env)

    def _wait(self, request: Any, what: str) -> None:
        deadline, pause = time.monotonic() + self.timeout, 1e-5
        while not request.Test():
            if time.monotonic() > deadline:
                sys.stderr.write(f"cnnkit.distributed: rank {self.rank} waited {self.timeout:g} s "
                                 f"for {what} across {self.size} processes; another rank has "
                                 f"died or stopped taking part; aborting the job\n")
                sys.stderr.flush()
                self.comm.Abort(1)
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)  # poll fast for short collectives, gently for long

    def allreduce_sum(self, buf: np.ndarray) -> None:
        """Sum a contiguous array over the ranks, in place."""
        if not buf.flags.c_contiguous:
            raise ValueError("allreduce_sum needs a C-contiguous buffer")
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM), "allreduce")

    def broadcast(self, buf: np.ndarray, root: int = 0) -> None:
        """Copy rank ``root``'s array into every rank's ``buf``, in place."""
        if not buf.flags.c_contiguous:
            raise ValueError("broadcast needs a C-contiguous buffer")
        self._wait(self.comm.Ibcast(buf, root=root), "broadcast")

    def barrier(self) -> None:
        self._wait(self.comm.Ibarrier(), "barrier")


_world: MPIGroup | None = None


def init(timeout: float | None = None) -> MPIGroup:
    """The world group (made once), registered for the layers' collectives."""
    global _world
    if _world is None:
        _world = MPIGroup(timeout=timeout)
        collective.set_group(_world)
        _share_cores(_world)
        if _world.size > 1:
            _abort_on_uncaught(_world)
    return _world


def _abort_on_uncaught(group: MPIGroup) -> None:
    """An uncaught exception on one rank aborts the job: exiting normally would enter
    MPI_Finalize, which waits for ranks that are themselves waiting in a collective."""
    previous = sys.excepthook

    def hook(kind: Any, value: Any, tb: Any) -> None:
        previous(kind, value, tb)
        sys.stderr.write(f"cnnkit.distributed: rank {group.rank} failed; aborting the job\n")
        sys.stderr.flush()
        group.comm.Abort(1)
    sys.excepthook = hook


def abort(status: int = 1) -> None:
    """End every rank of the job now with ``status`` (after an error on this rank)."""
    if _world is not None and _world.size > 1:
        _world.comm.Abort(status)


def _share_cores(group: MPIGroup) -> None:
    """Kernel threads per rank = cores / ranks on this machine, unless the user chose."""
    if "CNNKIT_NUM_THREADS" in os.environ or group.size == 1:
        return
    from ..kernels.parallel import set_num_threads

    local = group.comm.Split_type(group.MPI.COMM_TYPE_SHARED).Get_size()
    set_num_threads(max(1, (os.cpu_count() or 1) // local))


def world() -> MPIGroup | None:
    """The world group if :func:`init` ran, else None (one process)."""
    return _world


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that logs, saves and prints."""
    return _world is None or _world.rank == 0
