"""Importing cnnkit leaves the process's malloc settings alone; ``cnnkit.tune_malloc()`` or
``CNNKIT_MALLOC_TUNE=1`` opts in. Checked in a fresh interpreter that records every lookup of
libc's ``mallopt`` through ctypes before cnnkit is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SPY = """
import ctypes, json, sys
calls = []
_orig = ctypes.CDLL.__getattr__
def _spy(self, name):
    if name == "mallopt":
        calls.append(name)
    return _orig(self, name)
ctypes.CDLL.__getattr__ = _spy
import cnnkit, cnnkit.layers, cnnkit.models, cnnkit.kernels.parallel
imported = len(calls)
applied = cnnkit.tune_malloc() if sys.argv[1] == "call" else None
print(json.dumps({"on_import": imported, "after": len(calls), "applied": applied}))
"""


def _run(mode: str, env_value: str | None) -> dict:
    env = dict(os.environ)
    env.pop("CNNKIT_MALLOC_TUNE", None)
    if env_value is not None:
        env["CNNKIT_MALLOC_TUNE"] = env_value
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p])
    out = subprocess.run([sys.executable, "-c", SPY, mode], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_import_does_not_touch_malloc_and_opt_ins_do():
    assert _run("import", None)["on_import"] == 0
    called = _run("call", None)
    assert called["on_import"] == 0 and called["after"] == 1 and called["applied"] is True
    assert _run("import", "1")["on_import"] == 1
    assert _run("import", "0")["on_import"] == 0
