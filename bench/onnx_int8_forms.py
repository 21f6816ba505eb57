"""ONNX Runtime on the two int8 ONNX forms cnnkit exports (``python -m
bench.onnx_int8_forms``): ``int8_format="integer"`` (ConvInteger + a float requantize chain)
against ``int8_format="qdq"`` (QuantizeLinear / DequantizeLinear pairs that ONNX Runtime fuses
into QLinearConv / QGemm), with the float32 export of the same model for reference.

Model: the zoo's ``mnist_cnn`` (default width 16: four 3x3 "same" convolutions of 16, 16, 32
and 32 channels with batch norm and ReLU, two max pools, dense 128 and 10; 219k parameters,
4.8 M multiply-adds per image), seeded, not trained (speed does not depend on the weights),
quantized per channel with 7-bit weights and uint8 activations, calibrated on 256 mnist5k
training digits. ONNX Runtime: CPU provider, all graph optimizations, one intra-op
thread (and ``--threads``), NCHW input. Each configuration is timed alternately with the
others, median of the rounds: wall time and the calling thread's CPU time (with one thread
ONNX Runtime computes on the calling thread, so CPU time is not inflated by other jobs; with
more threads only wall time is given).

    python -m bench.onnx_int8_forms [--rounds 15] [--threads 1] [--write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np

from . import common as C

SECTION = "## int8 ONNX forms in ONNX Runtime (python -m bench.onnx_int8_forms)"
TEMPLATE = f"""{SECTION}

{C.block_markers("onnx-int8-forms")}
"""
FORMS = ("float32", "integer", "qdq")


def _models() -> tuple[dict[str, bytes], np.ndarray, Any]:
    from cnnkit import random as cnnkit_random
    from cnnkit import zoo
    from cnnkit.datasets import mnist5k
    from cnnkit.deploy import quantize
    from cnnkit.io.onnx_export import to_onnx

    cnnkit_random.seed(0)
    (xt, _), (xv, _) = mnist5k.load_data()
    xt = xt.reshape(-1, 28, 28, 1).astype(np.float32)
    xv = xv.reshape(-1, 28, 28, 1).astype(np.float32)
    m = zoo.get("mnist_cnn")
    q = quantize(m, xt[:256])
    protos = {"float32": to_onnx(m), "integer": to_onnx(q, int8_format="integer"),
              "qdq": to_onnx(q, int8_format="qdq")}
    return {k: p.SerializeToString() for k, p in protos.items()}, xv, q


def _session(data: bytes, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def _time(fns: dict[str, Any], rounds: int, sample_s: float = 0.05
          ) -> dict[str, tuple[float, float]]:
    """(median wall s, median thread CPU s) per call, the functions called alternately."""
    inner = {}
    for k, fn in fns.items():
        fn()
        t0 = time.perf_counter()
        fn()
        inner[k] = max(1, int(sample_s / max(time.perf_counter() - t0, 1e-7)))
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            fn()
            w0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(inner[k]):
                fn()
            cpu[k].append((time.thread_time() - c0) / inner[k])
            wall[k].append((time.perf_counter() - w0) / inner[k])
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}


def _ms(s: float) -> str:
    return f"{s * 1e3:.3f} ms" if s < 0.01 else f"{s * 1e3:.1f} ms"


def run(rounds: int, threads: int) -> tuple[str, dict]:
    import onnxruntime as ort

    data, xv, q = _models()
    sessions = {k: _session(v, threads) for k, v in data.items()}
    name = sessions["qdq"].get_inputs()[0].name
    feeds = {n: {name: np.moveaxis(xv[:n], -1, 1).copy()} for n in (1, 128)}
    outs = {k: s.run(None, feeds[128])[0] for k, s in sessions.items()}
    agree = float(np.mean(outs["qdq"].argmax(-1) == outs["integer"].argmax(-1)))
    same = bool(np.array_equal(outs["qdq"], outs["integer"]))
    rows, figures = [], {}
    for n in (1, 128):
        fns = {k: (lambda s=s, f=feeds[n]: s.run(None, f)) for k, s in sessions.items()}
        res = _time(fns, rounds)
        figures[n] = res
        for measure, j in (("wall", 0), ("CPU", 1))[:2 if threads == 1 else 1]:
            t = {k: res[k][j] for k in FORMS}
            rows.append(f"| {n} | {measure} | {_ms(t['float32'])} | {_ms(t['integer'])} | "
                        f"{_ms(t['qdq'])} | {t['integer'] / t['qdq']:.2f}x | "
                        f"{t['float32'] / t['qdq']:.2f}x |")
    _, model, isa = C.cpu_isa()
    load = os.getloadavg()[0]
    text = "\n".join([
        f"{time.strftime('%Y-%m-%d')}, {model} [{' '.join(isa)}, {os.cpu_count()} cores], "
        f"ONNX Runtime {ort.__version__}, "
        f"{threads} intra-op thread(s), load average {load:.1f} at the end (2 cores shared "
        f"with other jobs: the CPU-time rows are the steadier ones), {rounds} alternating "
        f"rounds, medians per call.",
        "",
        "| batch | time | float32 | int8 integer | int8 QDQ | integer / QDQ | "
        "float32 / QDQ |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"mnist_cnn (219k parameters, 4.8 M multiply-adds per image), 7-bit per-channel "
        f"weights, uint8 activations. The two "
        f"int8 files give {'identical outputs' if same else 'different outputs'} on 128 "
        f"mnist5k test digits (top-1 agreement {agree:.2%}). File sizes: float32 "
        f"{len(data['float32']) / 1e3:.0f} KB, integer {len(data['integer']) / 1e3:.0f} KB, "
        f"QDQ {len(data['qdq']) / 1e3:.0f} KB."])
    return text, figures


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = ap.parse_args(argv)
    text, _ = run(args.rounds, args.threads)
    print(text)
    if args.write:
        C.update_results(SECTION, TEMPLATE, {"onnx-int8-forms": text})


if __name__ == "__main__":
    main()
