"""Calibration of a float inference plan: every float value slot's range over calibration
batches (:class:`cnnkit.kernels.calibrate.Observer`, two passes: min / max, then the |x|
histogram the percentile, entropy and mse methods read)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..kernels.calibrate import METHODS, Observer

__all__ = ["batches_of", "run_observed", "calibrate"]

Visit = Callable[[int, np.ndarray], None]


def batches_of(data: Any, batch_size: int) -> list[np.ndarray]:
    """The calibration inputs as a list of batches: an array (N, ...) is cut into batches;
    an iterable gives arrays or (x, y) pairs (x is taken)."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
        data = data[0]
    if isinstance(data, np.ndarray):
        if data.ndim < 2 or len(data) == 0:
            raise ValueError(f"calibration data must be a non-empty batch of samples (N, ...), "
                             f"got shape {data.shape}")
        return [data[i:i + batch_size] for i in range(0, len(data), batch_size)]
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise TypeError(f"calibration data must be an array of samples or an iterable of "
                        f"batches, got {type(data).__name__}")
    out = []
    for item in data:
        x = item[0] if isinstance(item, (tuple, list)) else item
        out.append(np.asarray(x))
    if not out:
        raise ValueError("calibration data holds no batches")
    return out


def _cast(plan: Any, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != plan.dtype and (np.issubdtype(x.dtype, np.floating) or x.dtype == np.uint8):
        x = x.astype(plan.dtype)
    return x


def run_observed(plan: Any, x: np.ndarray, visit: Visit) -> Any:
    """Run a plan with one input, calling visit(slot, value) on every array a step writes
    (and on the input, slot 0) right after it is made; returns the output."""
    vals: list[Any] = [None] * plan.n_slots
    vals[0] = _cast(plan, x)
    visit(0, vals[0])
    for s in plan.steps:
        r = s.fn([vals[i] for i in s.args] if s.multi_in else vals[s.args])
        pairs: Iterator = zip(s.outs, r, strict=True) if s.multi_out else iter([(s.outs, r)])
        for slot, v in pairs:
            vals[slot] = v
            if isinstance(v, np.ndarray):
                visit(slot, v)
        for i in s.free:
            vals[i] = None
    graph = plan.graph
    return vals[graph.outputs[0]] if graph.single_output else [vals[i] for i in graph.outputs]


def calibrate(plan: Any, batches: list[np.ndarray], method: str, percentile: float,
              progress: Callable[[int], None] | None = None) -> dict[int, tuple[float, float]]:
    """slot -> (lo, hi): the chosen method's range of every floating slot of the plan."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    observers: dict[int, Observer] = {}

    def first(slot: int, v: np.ndarray) -> None:
        if np.issubdtype(v.dtype, np.floating):
            observers.setdefault(slot, Observer()).update(v)

    def second(slot: int, v: np.ndarray) -> None:
        if slot in observers:
            observers[slot].update_histogram(v)

    passes = [first] if method == "minmax" else [first, second]
    for k, visit in enumerate(passes):
        for j, xb in enumerate(batches):
            run_observed(plan, xb, visit)
            if progress is not None:
                progress(k * len(batches) + j + 1)
    return {slot: obs.range(method, percentile) for slot, obs in observers.items()}
