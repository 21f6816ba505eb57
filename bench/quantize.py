"""int8 inference (``python -m bench.quantize``): cnnkit's int8 model against its float32
model and against PyTorch's int8 model (``torch.ao.quantization`` static post-training
quantization, FX graph mode, x86 backend, its default x86 qconfig) on the same weights, the
same inputs and the same CPU, timed alternately in one run.

Workloads: W1 SimpleCNN (28x28x1) and W3 ResNet-20 (32x32x3) at batch 128 and batch 1.
Both frameworks calibrate on the timed batch itself (random normal inputs; weights from
PyTorch's initialisation, batch norms randomised), cnnkit with ``method="minmax"``.
Printed: medians, cnnkit float32 / cnnkit int8 (the int8 speed-up), PyTorch int8 / cnnkit
int8 (above 1: cnnkit's int8 is faster), each also from the fastest run of each model (on a
machine shared with other jobs the fastest run is the least disturbed one), and the top-1
agreement of each int8 model with its float model. Results go to bench/RESULTS.md
("## int8 inference (python -m bench.quantize)").

    python -m bench.quantize [--only W1,W3] [--no-write] [--budget 15]
"""

from __future__ import annotations

import argparse
import copy
from typing import Any

import numpy as np

from . import common as C
from . import workloads as W
from .steps import load_torch, randomize_bn

SECTION = "## int8 inference (python -m bench.quantize)"
TEMPLATE = f"""{SECTION}

{C.block_markers("int8")}
"""
SHAPES = {"W1": ("simple_cnn", (28, 28, 1)), "W3": ("resnet20", (32, 32, 3))}


def torch_int8(pt: Any, xt: Any) -> Any:
    """PyTorch's static int8 model of ``pt`` (FX, x86 backend), calibrated on ``xt``."""
    torch = load_torch()
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    model = copy.deepcopy(pt).eval()
    prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), example_inputs=(xt,))
    with torch.no_grad():
        prepared(xt)
    return convert_fx(prepared)


def _case(key: str, batch: int) -> Any:
    model, shape = SHAPES[key]
    w = W.Workload(key, f"{model} batch {batch}", model, shape, batch, ("infer",))
    case = W.make_case(w, copy_weights=False)
    randomize_bn(case.pt)
    W.copy_torch_to_cnnkit(case.ck, case.pt)
    return case


def measure(key: str, batch: int, budget: float) -> dict[str, Any]:
    """Medians (seconds) of the four models on one workload, and the agreements."""
    from cnnkit.deploy import InferenceEngine, quantize

    torch = load_torch()
    case = _case(key, batch)
    calib = case.x if batch > 1 else np.random.default_rng(1).standard_normal(
        (32, *case.x.shape[1:]), dtype=np.float32)
    q = quantize(case.ck, calib, method="minmax")
    engine = InferenceEngine(case.ck)
    pt = case.pt.eval()
    xt = torch.from_numpy(np.ascontiguousarray(calib.transpose(0, 3, 1, 2)))
    pq = torch_int8(pt, xt)
    x, t = case.x, case.xt
    with torch.no_grad():
        ref_t, int_t = pt(t).numpy(), pq(t).numpy()
    ref_c, int_c = engine(x), q(x)

    def torch_run(m: Any) -> Any:
        def run() -> None:
            with torch.no_grad():
                m(t)
        return run

    times = C.alternate({"cnnkit float32": lambda: engine(x), "cnnkit int8": lambda: q(x),
                         "torch float32": torch_run(pt), "torch int8": torch_run(pq)},
                        budget_s=budget)
    med = {k: C.median(v) for k, v in times.items()}
    return {"key": key, "batch": batch, "med": med, "min": {k: min(v) for k, v in times.items()},
            "spread": {k: C.spread(v) for k, v in times.items()},
            "agree_cnnkit": float(np.mean(ref_c.argmax(-1) == int_c.argmax(-1))),
            "agree_torch": float(np.mean(ref_t.argmax(-1) == int_t.argmax(-1))),
            "float_match": float(np.abs(ref_c - ref_t).max())}


def render(rows: list[dict[str, Any]], info: dict[str, str]) -> str:
    head = ("| workload | cnnkit float32 | cnnkit int8 | torch float32 | torch int8 | "
            "int8 speed-up (cnnkit f32 / int8): medians, fastest runs | torch int8 / cnnkit "
            "int8: medians, fastest | top-1 agreement int8 vs float (cnnkit / torch) |\n"
            "|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        m = r["med"]
        lines.append(
            f"| {r['key']} batch {r['batch']} | {C.fmt_time(m['cnnkit float32'])} | "
            f"{C.fmt_time(m['cnnkit int8'])} | {C.fmt_time(m['torch float32'])} | "
            f"{C.fmt_time(m['torch int8'])} | "
            f"**{m['cnnkit float32'] / m['cnnkit int8']:.2f}**, "
            f"{r['min']['cnnkit float32'] / r['min']['cnnkit int8']:.2f} | "
            f"**{m['torch int8'] / m['cnnkit int8']:.2f}**, "
            f"{r['min']['torch int8'] / r['min']['cnnkit int8']:.2f} | "
            f"{r['agree_cnnkit']:.3f} / {r['agree_torch']:.3f} |")
    machine = ", ".join(f"{k}: {v}" for k, v in info.items())
    return "\n".join(lines) + f"\n\nMachine: {machine}.\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="W1,W3")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--budget", type=float, default=15.0, help="seconds of timing per row")
    args = ap.parse_args(argv)
    from cnnkit.kernels.native import qconv as native_q

    info = C.machine_info()
    info["cnnkit int8 kernels"] = f"C helper {native_q.variant()}" if native_q.available() \
        else "NumPy path"
    rows = []
    for key in args.only.split(","):
        for batch in (128, 1):
            r = measure(key, batch, args.budget)
            m = r["med"]
            print(f"{key} batch {batch}: " + ", ".join(f"{k} {C.fmt_time(v)}"
                                                     for k, v in m.items()) +
                  f"; int8 speed-up {m['cnnkit float32'] / m['cnnkit int8']:.2f}x "
                  f"(fastest runs {r['min']['cnnkit float32'] / r['min']['cnnkit int8']:.2f}x), "
                  f"torch int8 / cnnkit int8 {m['torch int8'] / m['cnnkit int8']:.2f}; "
                  f"agreement {r['agree_cnnkit']:.3f} / {r['agree_torch']:.3f}", flush=True)
            rows.append(r)
    if not args.no_write:
        C.update_results(SECTION, TEMPLATE, {"int8": render(rows, info)})


if __name__ == "__main__":
    main()
