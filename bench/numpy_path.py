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


def workload_of(spec: str) -> W.Workload:
    """``W1`` or ``W1:quick`` -> the workload (its quick form for ``:quick``)."""
    key, _, form = spec.partition(":")
    if key not in W.BY_KEY:
        raise ValueError(f"unknown workload {key!r} in probe spec {spec!r}")
    w = W.BY_KEY[key]
    return w.quick_form() if form == "quick" else w


def numpy_probe(spec: str) -> dict[str, Any]:
    """In the child: check the helper is off, then time cnnkit's and PyTorch's training steps
    alternately (the parent's timing rules; fewer rounds for ``:quick``)."""
    from cnnkit.kernels import native

    w = workload_of(spec)
    if native.available() or native.norm.available():
        raise RuntimeError("the C helper is still on: CNNKIT_NATIVE=0 did not reach the child")
    load_torch()
    case = W.make_case(w)
    randomize_bn(case.pt)
    W.copy_torch_to_cnnkit(case.ck, case.pt)
    case.pt.train()
    quick = spec.endswith(":quick")
    fns = {"cnnkit": cnnkit_train_step(case), "torch": torch_train_step(case)}
    t = C.alternate(fns, warmup=2, min_repeats=3 if quick else 5,
                    max_repeats=5 if quick else 15, budget_s=3.0 if quick else 10.0)
    med = {k: C.median(v) for k, v in t.items()}
    return {"spec": spec, "cnnkit_s": med["cnnkit"], "torch_s": med["torch"],
            "ratio": med["cnnkit"] / med["torch"],
            "ratio_min": min(t["cnnkit"]) / min(t["torch"]), "rounds": len(t["cnnkit"]),
            "spread_cnnkit": C.spread(t["cnnkit"]), "spread_torch": C.spread(t["torch"])}


def run_numpy_probe(w: W.Workload, quick: bool) -> dict[str, Any] | None:
    """:func:`numpy_probe` in a child with ``CNNKIT_NATIVE=0``; None when it fails."""
    env = dict(os.environ, CNNKIT_NATIVE="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(C.REPO), env.get("PYTHONPATH")]))
    spec = f"{w.key}:quick" if quick else w.key
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
