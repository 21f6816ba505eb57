"""int8 layer kernels against cnnkit's float32 kernels on one thread (``python -m
bench.quantize_layers``): depthwise 3x3 (MobileNet-like shapes), 3x3 convolutions (ResNet-20
and SimpleCNN shapes) and a dense layer, each timed alternately by CPU time
(``time.thread_time``, so other jobs' load on a shared machine does not count), medians.

The int8 side is :mod:`cnnkit.kernels.qconv` (the C helper: byte path for 7-bit weights,
``weight_bits=7``, or int16 pairs for 8-bit weights); the float side is the float inference
kernel of the same layer (Winograd for 3x3 stride-1 convolutions, the depthwise kernel, the
matmul). Prints a markdown table with the float32 / int8 time ratios (above 1: int8 is
faster). Run with ``CNNKIT_NUM_THREADS=1`` for one thread.

    CNNKIT_NUM_THREADS=1 python -m bench.quantize_layers [--repeats 9]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from . import common as C

# name, (n, h, c, cout or None for depthwise, stride)
LAYERS = [
    ("depthwise 32x32x96, batch 32", (32, 32, 96, None, 1)),
    ("depthwise 16x16x144 stride 2, batch 32", (32, 16, 144, None, 2)),
    ("depthwise 8x8x384, batch 32", (32, 8, 384, None, 1)),
    ("depthwise 32x32x96, batch 1", (1, 32, 96, None, 1)),
    ("conv 3x3 32x32x16->16 (ResNet-20), batch 128", (128, 32, 16, 16, 1)),
    ("conv 3x3 8x8x64->64 (ResNet-20), batch 128", (128, 8, 64, 64, 1)),
    ("conv 3x3 14x14x32->64 (SimpleCNN), batch 128", (128, 14, 32, 64, 1)),
    ("conv 3x3 32x32x16->16 (ResNet-20), batch 1", (1, 32, 16, 16, 1)),
]


def _cpu_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median CPU seconds of each function, called alternately."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.thread_time()
            fn()
            times[k].append(time.thread_time() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def _pair(shape: tuple, bits: int, rng: np.random.Generator) -> tuple[Callable, Callable]:
    """(int8 call, float32 call) of one layer."""
    from cnnkit.kernels import qconv
    from cnnkit.kernels.conv.convolution import conv_forward
    from cnnkit.kernels.conv.depthwise import depthwise_conv_forward

    n, h, c, cout, s = shape
    qmax = (1 << (bits - 1)) - 1
    xq = rng.integers(0, 256, (n, h, h, c)).astype(np.uint8)
    xf = rng.standard_normal((n, h, h, c)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    k = c if cout is None else cout
    wshape = (3, 3, c) if cout is None else (3, 3, c, cout)
    wq = rng.integers(-qmax, qmax + 1, wshape).astype(np.int8)
    p = qconv.QuantConvParams(wq, rng.integers(-999, 999, k).astype(np.int32),
                              np.full(k, 1e-4, np.float32), 3, 0, 0, 255,
                              None if cout is None else qconv.pack_weights(wq))
    b = np.zeros(k, np.float32)
    if cout is None:
        wf = rng.standard_normal((3, 3, c, 1)).astype(np.float32)
        return (lambda: qconv.depthwise2d(xq, p, (s, s), pads),
                lambda: depthwise_conv_forward(xf, wf, b, (s, s), pads, (1, 1)))
    wf = rng.standard_normal((3, 3, c, cout)).astype(np.float32)
    return (lambda: qconv.conv2d(xq, p, (s, s), pads),
            lambda: conv_forward(xf, wf, b, (s, s), pads, (1, 1)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    print("| layer | float32 | int8, 7-bit weights | int8, 8-bit weights | float32 / int8 "
          "(7-bit, 8-bit) |\n|---|---|---|---|---|")
    for name, shape in LAYERS:
        q7, f = _pair(shape, 7, rng)
        q8, _ = _pair(shape, 8, rng)
        med = _cpu_medians({"f": f, "q7": q7, "q8": q8}, args.repeats)
        print(f"| {name} | {C.fmt_time(med['f'])} | {C.fmt_time(med['q7'])} | "
              f"{C.fmt_time(med['q8'])} | {med['f'] / med['q7']:.2f}, "
              f"{med['f'] / med['q8']:.2f} |", flush=True)
    info = C.machine_info()
    print("\nMachine: " + ", ".join(f"{k}: {v}" for k, v in info.items()))


if __name__ == "__main__":
    main()
