"""How fast the convolution layers alone run inside a workload's step: the wall time of every
call of ``cnnkit.kernels.conv.conv_forward`` / ``conv_backward`` (what ``cnnkit.ops.conv``
and the inference runtime call) and of the runtime's fused convolution + 2x2 pooling
(``kernels.conv.inference.conv_pool``, its pooling counted as convolution time) summed
over a step, against the multiply-adds those calls did (forward, dK, and dX where the input
needs it), as GFLOP/s and as a fraction of NumPy's float32 SGEMM rate measured in the same
run. Depthwise convolutions go through other kernels and are not counted."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any


def _macs(x_shape: tuple[int, ...], w_shape: tuple[int, ...], z_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one pass: every output value sums prod(kernel) x C_in/groups."""
    return math.prod(z_shape) * math.prod(w_shape[:-1])


def conv_time(step: Callable[[], Any], steps: int = 2, warmup: int = 1) -> dict[str, float]:
    """{"seconds": conv wall time per step (median over ``steps``), "macs": conv multiply-
    adds per step, "step_s": whole step, median, "share": conv time / step time}."""
    from cnnkit.kernels import conv as K
    from cnnkit.kernels.conv import inference as KI

    fwd, bwd = K.conv_forward, K.conv_backward
    acc = {"t": 0.0, "macs": 0}

    def timed_forward(x: Any, w: Any, *a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        z, cols = fwd(x, w, *a, **k)
        acc["t"] += time.perf_counter() - t0
        acc["macs"] += _macs(x.shape, w.shape, z.shape)
        return z, cols

    def timed_backward(g: Any, x: Any, w: Any, *a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        dx, dw, db = bwd(g, x, w, *a, **k)
        acc["t"] += time.perf_counter() - t0
        acc["macs"] += _macs(x.shape, w.shape, g.shape) * ((dx is not None) + (dw is not None))
        return dx, dw, db

    pooled = KI.conv_pool

    def timed_pooled(x: Any, w: Any, b: Any, strides: Any, pads: Any, dilation: Any,
                     *a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        p = pooled(x, w, b, strides, pads, dilation, *a, **k)
        if p is not None:  # else the runtime convolves apart (conv_forward, counted there)
            acc["t"] += time.perf_counter() - t0
            out = K.conv_output_sizes(x.shape[1:-1], w.shape[:2], strides, pads, dilation)
            acc["macs"] += _macs(x.shape, w.shape, (x.shape[0], *out, w.shape[-1]))
        return p

    K.conv_forward, K.conv_backward = timed_forward, timed_backward
    KI.conv_pool = timed_pooled
    rows = []
    try:
        for i in range(warmup + steps):
            acc["t"], acc["macs"] = 0.0, 0
            t0 = time.perf_counter()
            step()
            if i >= warmup:
                rows.append((acc["t"], acc["macs"], time.perf_counter() - t0))
    finally:
        K.conv_forward, K.conv_backward = fwd, bwd
        KI.conv_pool = pooled
    sec = statistics.median(r[0] for r in rows)
    total = statistics.median(r[2] for r in rows)
    return {"seconds": sec, "macs": float(rows[-1][1]), "step_s": total,
            "share": sec / total if total else float("nan")}


def conv_rate(step: Callable[[], Any], sgemm_gflops: float, steps: int = 2) -> dict[str, float]:
    """:func:`conv_time` plus "gflops" (2 x multiply-adds / conv time) and "fraction" of
    ``sgemm_gflops``."""
    out = conv_time(step, steps)
    out["gflops"] = 2.0 * out["macs"] / out["seconds"] / 1e9 if out["seconds"] else 0.0
    out["fraction"] = out["gflops"] / sgemm_gflops if sgemm_gflops else float("nan")
    return out
