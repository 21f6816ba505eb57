"""``python -m bench --profile W1,W3``: cProfile of cnnkit's step, with each NumPy C call
booked to the Python function that made it (text for the terminal, markdown for RESULTS.md)."""

from __future__ import annotations

import cProfile
import pstats
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from . import common as C
from . import workloads as W
from .steps import cnnkit_infer_call, cnnkit_train_step

_POOL_FILES = ("threading.py", "thread.py", "queue.py")


def _short(key: tuple[str, int, str]) -> str:
    """A readable name of a pstats key: ``cnnkit/kernels/conv.py:12 name``, ``ndarray.copy``."""
    file, line, name = key
    if file == "~":
        m = re.match(r"<built-in method (?:[\w.]*\.)?(\w+)>", name)
        if m:
            return m.group(1)
        m = re.match(r"<method '(\w+)' of '([\w.]+)' objects>", name)
        if m:
            return f"{m.group(2).rsplit('.', 1)[-1]}.{m.group(1)}"
        return name
    path = Path(file)
    parts = path.parts
    if "cnnkit" in parts:
        rel = "/".join(parts[len(parts) - parts[::-1].index("cnnkit"):])
    elif "numpy" in parts:
        rel = "numpy/" + "/".join(parts[len(parts) - parts[::-1].index("numpy"):])
    else:
        rel = path.name
    return f"{rel}:{line} {name}"


def _run_profiled(fn: Any, steps: int) -> tuple[float, dict]:
    """(seconds per unprofiled step after 2 warm-ups, pstats table of ``steps`` more)."""
    for _ in range(2):
        fn()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    plain = (time.perf_counter() - t0) / steps
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        fn()
    prof.disable()
    return plain, pstats.Stats(prof).stats  # type: ignore[attr-defined]


def _attribute(stats: dict) -> tuple[dict[Any, float], dict[Any, dict[str, float]]]:
    """Self + direct C calls: a Python function's own time plus the time of the built-in
    (C) functions it called directly -- so a kernel's matmul counts for the kernel. Returns
    (time per Python function, {function: {C call: time}})."""
    attributed: dict[Any, float] = defaultdict(float)
    c_calls: dict[Any, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for key, (_cc, _nc, tt, _ct, callers) in stats.items():
        if key[0] != "~":
            attributed[key] += tt
            continue
        for caller, (_c2, _n2, tt2, _ct2) in callers.items():
            attributed[caller] += tt2
            c_calls[caller][_short(key)] += tt2
    return attributed, c_calls


def _by_module(attributed: dict[Any, float]) -> list[tuple[str, float]]:
    """Attributed time summed per file, largest first (the thread-pool files as one row)."""
    modules: dict[str, float] = defaultdict(float)
    for key, tt in attributed.items():
        name = _short(key).split(":", 1)[0]
        if name in _POOL_FILES:
            name = "waiting for / handing work to the kernel thread pool"
        modules[name] += tt
    return sorted(modules.items(), key=lambda kv: -kv[1])


def _module_table(mod_rows: list[tuple[str, float]], per: int, total: float) -> list[str]:
    md = ["By module (own time of its Python functions, with the NumPy ufuncs and C "
          "calls they make -- cProfile books a ufunc such as `np.matmul` to its "
          "caller):", "", "| module | time/step | share |", "|---|---|---|"]
    for name, tt in mod_rows[:10]:
        md.append(f"| `{name}` | {tt / per * 1e3:.1f} ms | {tt / total:.1%} |")
    rest = sum(tt for _, tt in mod_rows[10:])
    md.append(f"| (everything else) | {rest / per * 1e3:.1f} ms | {rest / total:.1%} |")
    return md


def profile(w: W.Workload, steps: int = 3, top: int = 20) -> tuple[str, str]:
    """cProfile of cnnkit's step (training where the workload trains, else inference):
    (text for the terminal, markdown for RESULTS.md)."""
    case = W.make_case(w, frameworks=("cnnkit",))
    mode = "train" if "train" in w.modes else "infer"
    fn = cnnkit_train_step(case) if mode == "train" else cnnkit_infer_call(case)
    plain, stats = _run_profiled(fn, steps)
    total = sum(v[2] for v in stats.values())
    attributed, c_calls = _attribute(stats)
    per = steps
    raw = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    att = sorted(attributed.items(), key=lambda kv: -kv[1])[:top]
    lines = [f"{w.key} {w.title}: cnnkit {mode} step {C.fmt_time(plain)} unprofiled, "
             f"{C.fmt_time(total / per)} under cProfile ({steps} steps profiled)", "",
             "top functions by tottime (per step):"]
    md = [f"**{w.key} {w.title}, cnnkit {mode} step** ({C.fmt_time(plain)} per step "
          f"unprofiled, {C.fmt_time(total / per)} under cProfile; {steps} steps profiled; "
          f"{time.strftime('%Y-%m-%d %H:%M')}). cProfile sees the calling thread only: the "
          f"kernel pool's worker thread runs its share of the blocks unseen, and the calling "
          f"thread's wait for it shows as the pool line.", ""]
    for i, (key, (_cc, nc, tt, _ct, _callers)) in enumerate(raw, 1):
        lines.append(f"{i:3d} {tt / per * 1e3:8.1f} ms {tt / total:6.1%} {nc // per:6d} "
                     f"{_short(key)}")
    lines += ["", "Python functions by own time + the NumPy C calls they make directly:"]
    mod_rows = _by_module(attributed)
    md += _module_table(mod_rows, per, total)
    md += ["", "Top functions (own time plus their direct C calls):", "",
           "| # | function | time/step | share | main C calls |", "|---|---|---|---|---|"]
    for i, (key, tt) in enumerate(att, 1):
        calls = sorted(c_calls[key].items(), key=lambda kv: -kv[1])[:3]
        cs = ", ".join(f"{n} {v / per * 1e3:.1f} ms" for n, v in calls if v / total > 0.002)
        lines.append(f"{i:3d} {tt / per * 1e3:8.1f} ms {tt / total:6.1%}  {_short(key)}"
                     + (f"  [{cs}]" if cs else ""))
        if i <= 15:
            md.append(f"| {i} | `{_short(key)}` | {tt / per * 1e3:.1f} ms | {tt / total:.1%} "
                      f"| {cs} |")
    lines += ["", "by module:"] + [f"{tt / per * 1e3:8.1f} ms {tt / total:6.1%}  {name}"
                                   for name, tt in mod_rows[:12]]
    return "\n".join(lines), "\n".join(md)
