"""cnnkit's NumPy path alone (the C helper switched off with ``CNNKIT_NATIVE=0``, what an
install without a compiler runs) against PyTorch on a training step, timed in a child process
(``python -m bench.run --numpy-probe W1[:quick]``) because the helper is chosen when cnnkit
loads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from . import common as C
from . import workloads as W
from .steps import cnnkit_train_step, load_torch, randomize_bn, torch_train_step

# timing per spec form: (warm-up calls, min rounds, max rounds, budget seconds); "smoke"
# checks the plumbing only (the tests)
TIMING = {"": (2, 5, 15, 10.0), "quick": (2, 3, 5, 3.0), "smoke": (1, 1, 1, 0.0)}


def workload_of(spec: str) -> tuple[W.Workload, str]:
    """``W1``, ``W1:quick`` or ``W1:smoke`` -> (the workload, its quick form for the last
    two; the form)."""
    key, _, form = spec.partition(":")
    if key not in W.BY_KEY or form not in TIMING:
        raise ValueError(f"probe spec must be W<n>[:quick|:smoke] of {list(W.BY_KEY)}, got "
                         f"{spec!r}")
    w = W.BY_KEY[key]
    return (w.quick_form() if form else w), form


def numpy_probe(spec: str) -> dict[str, Any]:
    """In the child: check the helper is off, then time cnnkit's and PyTorch's training steps
    alternately (the parent's timing rules; fewer rounds for ``:quick``)."""
    from cnnkit.kernels import native

    w, form = workload_of(spec)
    if native.available() or native.norm.available():
        raise RuntimeError("the C helper is still on: CNNKIT_NATIVE=0 did not reach the child")
    load_torch()
    case = W.make_case(w)
    randomize_bn(case.pt)
    W.copy_torch_to_cnnkit(case.ck, case.pt)
    case.pt.train()
    warmup, lo, hi, budget = TIMING[form]
    fns = {"cnnkit": cnnkit_train_step(case), "torch": torch_train_step(case)}
    t = C.alternate(fns, warmup=warmup, min_repeats=lo, max_repeats=hi, budget_s=budget)
    med = {k: C.median(v) for k, v in t.items()}
    return {"spec": spec, "cnnkit_s": med["cnnkit"], "torch_s": med["torch"],
            "ratio": med["cnnkit"] / med["torch"],
            "ratio_min": min(t["cnnkit"]) / min(t["torch"]), "rounds": len(t["cnnkit"]),
            "spread_cnnkit": C.spread(t["cnnkit"]), "spread_torch": C.spread(t["torch"])}


def run_numpy_probe(w: W.Workload, form: str = "") -> dict[str, Any] | None:
    """:func:`numpy_probe` in a child with ``CNNKIT_NATIVE=0`` (``form``: "", "quick" or
    "smoke"); None when it fails."""
    env = dict(os.environ, CNNKIT_NATIVE="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(C.REPO), env.get("PYTHONPATH")]))
    spec = f"{w.key}:{form}" if form else w.key
    try:
        res = subprocess.run([sys.executable, "-m", "bench.run", "--numpy-probe", spec],
                             cwd=C.REPO, env=env, capture_output=True, text=True, timeout=900,
                             check=False)
    except subprocess.TimeoutExpired:
        print(f"  (NumPy-path probe {spec} ran over 15 minutes)")
        return None
    for line in res.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)
    print(f"  (NumPy-path probe {spec} failed: {res.stderr.strip().splitlines()[-1:]})")
    return None
