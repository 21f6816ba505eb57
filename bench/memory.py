"""Peak memory of one step, measured in a fresh process per framework and step
(``python -m bench.run --mem-probe W:step:framework[:quick]``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from . import common as C
from . import workloads as W
from .steps import (
    cnnkit_infer_call,
    cnnkit_infer_predict,
    cnnkit_train_step,
    load_torch,
    torch_infer,
    torch_train_step,
)


def mem_probe(spec: str) -> dict[str, Any]:
    """Run in a fresh process: build one framework's model for workload:mode, then measure
    the peak RSS of its first step above the RSS before it."""
    key, mode, fw, *form = spec.split(":")
    w = W.BY_KEY[key].quick_form() if form == ["quick"] else W.BY_KEY[key]
    if fw == "torch":
        load_torch()
    case = W.make_case(w, frameworks=(fw,))
    if fw == "torch":
        (case.pt.train if mode == "train" else case.pt.eval)()
        fn = torch_train_step(case) if mode == "train" else torch_infer(case)
    else:
        fn = {"train": cnnkit_train_step, "infer": cnnkit_infer_call,
              "predict": cnnkit_infer_predict}[mode](case)
    return {"spec": spec, "rss_peak": C.rss_step_peak(fn)}


def run_mem_probe(spec: str) -> int | None:
    """``mem_probe(spec)`` in a child ``python -m bench.run --mem-probe spec``: peak RSS bytes,
    or None when the child fails or runs over 10 minutes."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(C.REPO), env.get("PYTHONPATH")]))
    try:
        res = subprocess.run([sys.executable, "-m", "bench.run", "--mem-probe", spec],
                             cwd=C.REPO, env=env, capture_output=True, text=True, timeout=600,
                             check=False)
    except subprocess.TimeoutExpired:
        return None
    for line in res.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line).get("rss_peak")
    print(f"  (memory probe {spec} failed: {res.stderr.strip().splitlines()[-1:]})")
    return None
