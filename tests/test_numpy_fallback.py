"""The kernel and layer tests again with the C helpers switched off (``CNNKIT_NATIVE=0``):
the NumPy path every kernel falls back to when the helpers are not built must pass the same
PyTorch / closed-form checks. Runs the float32 tests of those files in a child pytest (float64
gradient checks and ONNX case sweeps never take the C path, so they are left out); skipped
when this run is already NumPy-only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FILES = ["test_conv.py", "test_pool.py", "test_norm.py", "test_activation.py",
         "test_kernel_blocks.py", "test_layers_conv.py", "test_layers_pooling.py",
         "test_layers_normalization.py", "test_layers_core.py"]
SELECT = "not gradcheck and not fd and not onnx"


def _native_in_use() -> bool:
    try:
        from cnnkit.kernels import native, native_norm

        return native.available() or native_norm.available()
    except (ImportError, AttributeError):  # the bindings moved: run the check anyway
        return True


def test_kernel_and_layer_tests_pass_without_native_helpers():
    if not _native_in_use():
        pytest.skip("the C helpers are not built or already switched off: this run is the "
                    "NumPy path")
    env = dict(os.environ, CNNKIT_NATIVE="0")
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-k", SELECT,
           *[f for f in FILES if (TESTS / f).exists()]]
    res = subprocess.run(cmd, cwd=TESTS, env=env, capture_output=True, text=True, timeout=1200,
                         check=False)
    tail = (res.stdout + res.stderr)[-6000:]
    assert res.returncode == 0, f"with CNNKIT_NATIVE=0: {' '.join(cmd[3:])}\n{tail}"
    assert " passed" in tail and "no tests ran" not in tail, tail
