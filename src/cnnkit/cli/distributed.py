"""``cnnkit train`` across processes: ``--processes N`` starts the MPI job itself, and a
command started by ``mpirun -n N cnnkit train ...`` trains data-parallel with rank 0 printing
and writing."""

from __future__ import annotations

import argparse
import sys

from .errors import UsageError

__all__ = ["relaunch", "mpi_rank"]


def _without_processes(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--processes":
            skip = True
        elif not a.startswith("--processes="):
            out.append(a)
    return out


def relaunch(args: argparse.Namespace) -> int | None:
    """The exit status of this command re-run as ``--processes`` MPI ranks; None when it
    should run here (one process, or already inside an MPI job)."""
    from ..distributed import launch, launched_under_mpi

    if args.processes <= 1 or launched_under_mpi():
        return None
    argv = _without_processes(list(getattr(args, "raw_argv", sys.argv[1:])))
    try:
        return launch.run(args.processes, [sys.executable, "-m", "cnnkit.cli", *argv])
    except FileNotFoundError as e:
        raise UsageError(f"--processes {args.processes}: {e}") from None


def mpi_rank() -> tuple[bool, int]:
    """(inside an MPI job of several ranks, this rank)."""
    from ..distributed import init, launched_under_mpi

    if not launched_under_mpi():
        return False, 0
    try:
        return True, init().rank
    except ImportError as e:
        raise UsageError(str(e)) from None
