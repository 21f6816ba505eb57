"""Where a training step's time goes, layer by layer: each leaf layer's forward (its ``call``)
and backward (the autograd nodes its call recorded) timed with ``perf_counter`` over a few
steps, the rest (loss, optimizer, autograd's bookkeeping) as one line. Wall time on the
calling thread, so a layer's share includes the kernel pool's work done for it."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from . import common as C
from . import workloads as W


def _nodes_between(out: Any, inputs: Any) -> list[Any]:
    """The autograd nodes reachable from ``out`` without passing through ``inputs``."""
    stop = {id(t) for t in (inputs if isinstance(inputs, (list, tuple)) else [inputs])}
    outs = out if isinstance(out, (list, tuple)) else [out]
    found, seen = [], set()
    stack = [t for t in outs if getattr(t, "_node", None) is not None]
    while stack:
        t = stack.pop()
        if id(t) in seen or id(t) in stop or t._node is None:
            continue
        seen.add(id(t))
        found.append(t._node)
        stack += [p for p in t._node.parents if p is not None]
    return found


def _instrument(layers: list[Any], acc: dict[str, list[float]]) -> Callable[[], None]:
    """Wrap every layer's ``call`` (forward time) and the backward of the nodes it records
    (backward time) so that they add into ``acc[name] = [forward s, backward s]``; returns
    the function that undoes the wrapping."""
    claimed: set[int] = set()

    def timed_backward(fn: Callable, name: str) -> Callable:
        def run(g: Any) -> Any:
            t0 = time.perf_counter()
            out = fn(g)
            acc[name][1] += time.perf_counter() - t0
            return out
        return run

    def wrap(layer: Any) -> Callable:
        orig = layer.call

        def call(inputs: Any, *a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            out = orig(inputs, *a, **k)
            acc[layer.name][0] += time.perf_counter() - t0
            for node in _nodes_between(out, inputs):
                if id(node) not in claimed:
                    claimed.add(id(node))
                    node.backward = timed_backward(node.backward, layer.name)
            return out
        return call

    for la in layers:
        la.call = wrap(la)

    def undo() -> None:
        for la in layers:
            la.__dict__.pop("call", None)
    return undo


def layer_times(model: Any, step: Callable[[], Any], steps: int = 3
                ) -> tuple[list[tuple[str, str, float, float]], float]:
    """([(layer name, type, forward s, backward s) per step, in model order], whole step s),
    means over ``steps`` steps after one untimed warm-up."""
    layers = W._leaf_layers(model)
    step()
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    undo = _instrument(layers, acc)
    try:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        total = (time.perf_counter() - t0) / steps
    finally:
        undo()
    rows = [(la.name, type(la).__name__, acc[la.name][0] / steps, acc[la.name][1] / steps)
            for la in layers if la.name in acc]
    return rows, total


def layer_table(w: W.Workload, step: Callable[[], Any], model: Any, steps: int = 3,
                top: int = 15) -> str:
    """Markdown of the per-layer times of a training step: the ``top`` layers by forward +
    backward time, then the sums per layer type."""
    rows, total = layer_times(model, step, steps)
    rest = total - sum(f + b for _, _, f, b in rows)
    by_type: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for _, kind, f, b in rows:
        by_type[kind][0] += f
        by_type[kind][1] += b
        by_type[kind][2] += 1
    md = [f"Per layer ({w.key}, training step {C.fmt_time(total)}, mean of {steps} "
          f"instrumented steps; forward = the layer's call, backward = the autograd nodes it "
          f"recorded):", "", "| layer | type | forward | backward | share of step |",
          "|---|---|---|---|---|"]
    for name, kind, f, b in sorted(rows, key=lambda r: -(r[2] + r[3]))[:top]:
        md.append(f"| `{name}` | {kind} | {C.fmt_time(f)} | {C.fmt_time(b)} | "
                  f"{(f + b) / total:.1%} |")
    md += ["", "| layer type | layers | forward | backward | share of step |",
           "|---|---|---|---|---|"]
    for kind, (f, b, n) in sorted(by_type.items(), key=lambda kv: -(kv[1][0] + kv[1][1])):
        md.append(f"| {kind} | {n} | {C.fmt_time(f)} | {C.fmt_time(b)} | "
                  f"{(f + b) / total:.1%} |")
    md.append(f"| loss, optimizer, autograd bookkeeping | | | | {rest / total:.1%} |")
    return "\n".join(md)
