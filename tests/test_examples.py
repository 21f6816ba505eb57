"""Every examples/*.py (the seeds' code samples ported to cnnkit) runs to completion at its
small size (CNNKIT_EXAMPLE_SMALL=1) in a fresh process; the examples check their own results
where there is an independent answer (seed004a compares cnnkit.ops with the seed's NumPy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_small(path):
    env = {**os.environ, "CNNKIT_EXAMPLE_SMALL": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(path)], cwd=path.parent, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (f"{path.name} failed:\n{done.stdout[-2000:]}\n"
                                  f"{done.stderr[-3000:]}")
