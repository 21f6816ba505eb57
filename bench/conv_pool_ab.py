"""The fused conv -> max pool inference step (``runtime.steps.ConvPool``) against the same plan
with its steps apart (``plan.with_nodes(plan.node_list(), ...)``: conv, then pool), timed
alternately in one process on a zoo model's batch; prints medians and minima of wall time,
CPU time (process, all threads) and each fused step's share.

    python -m bench.conv_pool_ab [--model simple_cnn] [--batch 128] [--rounds 40]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np


def _time(fn: Any, x: np.ndarray) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn(x)
    return time.perf_counter() - w0, time.process_time() - c0


def _per_step(plan: Any, x: np.ndarray, rounds: int) -> list[tuple[str, float]]:
    """(step kind, median ms) of each step of a chain plan."""
    times: list[list[float]] = [[] for _ in plan.steps]
    for _ in range(rounds):
        a = x
        for i, s in enumerate(plan.steps):
            t0 = time.perf_counter()
            a = s.fn(a)
            times[i].append(time.perf_counter() - t0)
    return [(type(s.step).__name__, 1e3 * float(np.median(t)))
            for s, t in zip(plan.steps, times, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="simple_cnn")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    import cnnkit
    from cnnkit import runtime, zoo

    cnnkit.tune_malloc()
    model = zoo.get(args.model)
    shape = tuple(model.input_shape[1:])
    x = np.random.default_rng(0).uniform(0, 255, (args.batch, *shape)).astype(np.float32)
    fused = runtime.compile(model)
    apart = fused.with_nodes(fused.node_list(), fused.n_slots)
    assert np.array_equal(fused(x), apart(x)), "fused and unfused plans differ"
    plans = {"unfused": apart, "fused": fused}
    res: dict[str, list[tuple[float, float]]] = {k: [] for k in plans}
    for _ in range(3):
        for p in plans.values():
            p(x)
    load0 = os.getloadavg()[0]
    for _ in range(args.rounds):
        for k, p in plans.items():
            res[k].append(_time(p, x))
    load1 = os.getloadavg()[0]
    print(f"{args.model}, batch {args.batch}, {args.rounds} alternating rounds, "
          f"load average {load0:.2f} -> {load1:.2f}")
    for k, r in res.items():
        wall, cpu = np.array(r).T * 1e3
        print(f"  {k:8s} wall median {np.median(wall):7.2f} ms  min {wall.min():7.2f}  "
              f"CPU median {np.median(cpu):7.2f} ms")
    for k, p in plans.items():
        steps = ", ".join(f"{name} {ms:.2f}" for name, ms in _per_step(p, x, 20))
        print(f"  {k} per step (median ms): {steps}")


if __name__ == "__main__":
    main()
