"""Workload benchmark: cnnkit against PyTorch on the same CPU, the same models, the same
weights and the same inputs.

    python -m bench [--quick] [--only W1,W3] [--no-write] [--no-mem] [--no-ort]
                    [--no-numpy-path]
    python -m bench --profile W1,W2,W3     # cProfile and per-layer times of the training step
    python -m bench --w6 [--only W6]       # time to 91% test accuracy on Fashion-MNIST (long)

For each workload the cnnkit model (channels-last, float32) and its PyTorch twin (NCHW,
``torch.set_num_threads(os.cpu_count())``) get the same weights; their logits (and, for models
without dropout, training loss and first-layer gradient) are compared first, so that the
same computation is timed. Then the steps are timed alternately (cnnkit, PyTorch, cnnkit,
PyTorch, ...) after a warm-up, and medians are reported with the ratio cnnkit / PyTorch,
the achieved GFLOP/s (2 x multiply-adds of the conv and dense layers; a training step counts
3 x the forward pass) next to NumPy's float32 2048x2048 matmul rate measured in the same run,
and the peak memory of one step. Inference is also timed against ONNX Runtime (bench.ort),
the conv layers' rate is set against the SGEMM rate (bench.convrate), the NumPy path alone is
timed in a child (bench.numpy_path), and the issue's targets are tabled (bench.targets).
Results go to the section of this machine's CPU family, "## Workloads, <vendor>: <model>
[<flags>] (python -m bench)", of bench/RESULTS.md (only the marked blocks; other sections
and hand-written text are kept), so Intel and AMD runs keep separate tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from . import common as C
from . import ort
from . import workloads as W
from .agreement import agreement
from .convrate import conv_rate
from .layer_profile import layer_table
from .memory import mem_probe, run_mem_probe
from .numpy_path import numpy_probe, run_numpy_probe
from .profiling import profile
from .render import render_w6, render_workloads
from .steps import (
    cnnkit_infer_call,
    cnnkit_infer_predict,
    cnnkit_train_step,
    load_torch,
    randomize_bn,
    torch_infer,
    torch_train_step,
)
from .targets import print_targets, render_targets
from .w6 import w6


def _template(section: str) -> str:
    """A new family section of RESULTS.md: its blocks, empty."""
    return f"""{section}

{C.block_markers("targets")}

{C.block_markers("workloads")}

### Time to accuracy: Fashion-MNIST recipe (python -m bench --w6)

{C.block_markers("w6")}

### Where the time goes (python -m bench --profile W1,W2,W3)

{C.block_markers("profile-W1")}

{C.block_markers("profile-W2")}

{C.block_markers("profile-W3")}
"""


def _write(blocks: dict[str, str]) -> None:
    """The blocks into this machine family's section of RESULTS.md."""
    section = C.family_section()
    C.update_results(section, _template(section), blocks)
    print(f"wrote {C.RESULTS} ({section[3:]})")


# ----------------------------------------------------------------------------------------
# one workload
# ----------------------------------------------------------------------------------------
def _load_before(opts: argparse.Namespace) -> dict[str, float]:
    """Wait for quiet (``--wait-quiet``), then how busy the machine is (see C.load_probe)."""
    others = None
    if opts.wait_quiet > 0:
        others = C.wait_quiet(0.5, opts.wait_quiet)
    load = C.load_probe()
    if others is not None:
        load["others"] = others
    return load


def _print_case(w: W.Workload, case: W.Case, agree: dict[str, Any],
                load: dict[str, float]) -> None:
    msg = (f"{w.key} {w.title} [{case.source}; {case.macs / 1e6:.1f} M multiply-adds/sample]\n"
           f"  agreement: logits max |diff| {agree['logits_max_abs_diff']:.2e} (max |logit| "
           f"{agree['logits_max_abs']:.2f})")
    if "loss_diff" in agree:
        msg += (f"\n  training step: loss |diff| {agree['loss_diff']:.1e}; conv kernel grads, "
                f"worst rel diff vs PyTorch float64: cnnkit f32 {agree['grad32_ck']:.1e}, "
                f"PyTorch f32 {agree['grad32_pt']:.1e}, cnnkit f64 {agree['grad64']:.1e}")
    msg += (f"\n  load: {load.get('others', float('nan')):.1f} other tasks running, 1-min "
            f"average {load.get('load', float('nan')):.2f}; 1024 matmul NumPy "
            f"{load['numpy_gflops']:.0f}, PyTorch {load.get('torch_gflops', 0):.0f} GFLOP/s")
    print(msg, flush=True)


def _step_fns(case: W.Case, mode: str, ort_fn: Callable[[], Any] | None = None
              ) -> tuple[dict[str, Callable[[], Any]], int]:
    """The steps timed against each other in ``mode`` (ONNX Runtime's too for inference when
    given), and FLOPs per step in forward passes."""
    if mode == "train":
        case.pt.train()
        return {"cnnkit": cnnkit_train_step(case), "torch": torch_train_step(case)}, 3
    case.pt.eval()
    fns = {"cnnkit": cnnkit_infer_call(case), "cnnkit predict": cnnkit_infer_predict(case),
           "torch": torch_infer(case)}
    if ort_fn is not None:
        fns["onnxruntime"] = ort_fn
    return fns, 1


def _steadiest(fns: dict[str, Callable[[], Any]], mode: str, opts: argparse.Namespace
               ) -> dict[str, list[float]]:
    """Alternating times per step; a spread over 25% is measured again (3 attempts at most,
    1 with --quick), keeping the steadiest attempt."""
    timing = dict(warmup=2, min_repeats=3 if opts.quick else 5,
                  max_repeats=7 if opts.quick else 21, budget_s=4.0 if opts.quick else 12.0)
    times: dict[str, list[float]] = {}
    worst = float("inf")
    for attempt in range(1 if opts.quick else 3):
        if attempt and opts.wait_quiet > 0:
            C.wait_quiet(0.5, opts.wait_quiet)
        t = C.alternate(fns, **timing)
        noise = max(C.spread(v) for v in t.values())
        if noise < worst:
            times, worst = t, noise
        if noise < 0.25:
            break
        print(f"  ({mode}: noisy, spread {noise:.0%} -- another jobs' load? "
              f"{'measuring again' if attempt < 2 else 'keeping the steadiest attempt'})",
              flush=True)
    return times


def _time_mode(w: W.Workload, case: W.Case, mode: str, opts: argparse.Namespace,
               peak: float, ort_fn: Callable[[], Any] | None = None) -> list[dict[str, Any]]:
    """The result rows of one mode (train / infer) of a workload, printed as they come."""
    fns, passes = _step_fns(case, mode, ort_fn)
    flop = passes * (2.0 * case.macs * w.batch)
    times = _steadiest(fns, mode, opts)
    med = {k: C.median(v) for k, v in times.items()}
    variants = [("cnnkit", "train" if mode == "train" else "infer: no_grad call")]
    if mode != "train":
        variants.append(("cnnkit predict", "infer: model.predict"))
    tms = {name: C.tracemalloc_peak(fns[name]) for name, _ in variants}
    rows = []
    for name, label in variants:
        row = {"workload": w.key, "title": w.title, "mode": label, "batch": w.batch,
               "cnnkit_s": med[name], "torch_s": med["torch"],
               "ratio": med[name] / med["torch"],
               "ratio_min": min(times[name]) / min(times["torch"]),
               "cnnkit_gflops": flop / med[name] / 1e9,
               "torch_gflops": flop / med["torch"] / 1e9, "peak": peak,
               "spread_cnnkit": C.spread(times[name]), "spread_torch": C.spread(times["torch"]),
               "rounds": len(times[name]), "tracemalloc": tms[name],
               "mode_key": mode, "variant": name}
        if "onnxruntime" in med:
            row["ort_s"] = med["onnxruntime"]
            row["ratio_ort"] = med[name] / med["onnxruntime"]
            row["spread_ort"] = C.spread(times["onnxruntime"])
        rows.append(row)
        print(f"  {label:<22} cnnkit {C.fmt_time(row['cnnkit_s']):>9} | PyTorch "
              f"{C.fmt_time(row['torch_s']):>9} | ratio {row['ratio']:6.2f} (of minima "
              f"{row['ratio_min']:.2f}) | GFLOP/s "
              f"{row['cnnkit_gflops']:6.1f} vs {row['torch_gflops']:6.1f} "
              f"(matmul {peak:.0f}) | {row['rounds']} rounds, spread "
              f"{row['spread_cnnkit']:.0%}/{row['spread_torch']:.0%}", flush=True)
        if "ratio_ort" in row:
            print(f"  {'':<22} vs ONNX Runtime {C.fmt_time(row['ort_s']):>9}: ratio "
                  f"{row['ratio_ort']:6.2f} (spread {row['spread_ort']:.0%})", flush=True)
    return rows


def _add_memory(w: W.Workload, mode: str, rows: list[dict[str, Any]], quick: bool) -> None:
    """Peak RSS of one step of each framework, each in a fresh process, into ``rows``."""
    form = ":quick" if quick and W.BY_KEY[w.key].quick is not None else ""
    pt_mem = run_mem_probe(f"{w.key}:{mode}:torch{form}")
    for row in rows:
        if row["mode_key"] != mode:
            continue
        probe = "predict" if row["variant"] == "cnnkit predict" else mode
        row["rss_cnnkit"] = run_mem_probe(f"{w.key}:{probe}:cnnkit{form}")
        row["rss_torch"] = pt_mem
        print(f"  peak memory of one step, {row['mode']}: cnnkit "
              f"{C.fmt_bytes(row['rss_cnnkit'])} RSS ({C.fmt_bytes(row['tracemalloc'])} "
              f"NumPy, tracemalloc) | PyTorch {C.fmt_bytes(pt_mem)} RSS", flush=True)


def _ort_for(case: W.Case, w: W.Workload, opts: argparse.Namespace
             ) -> tuple[Callable[[], Any] | None, dict[str, Any] | None]:
    """ONNX Runtime's inference call and its facts, or (None, None) when not wanted."""
    if "infer" not in w.modes or opts.no_ort or not ort.available():
        return None, None
    fn, meta = ort.ort_infer(case)
    print(f"  ONNX Runtime: model from {meta['source']}, {meta['threads']} threads, logits "
          f"max |diff| vs PyTorch {meta['diff']:.1e}", flush=True)
    return fn, meta


def _conv_rates(w: W.Workload, case: W.Case, peak: float, quick: bool
                ) -> dict[str, dict[str, float]]:
    """The conv layers' GFLOP/s and fraction of the SGEMM rate in each mode, printed."""
    out = {}
    for mode in w.modes:
        fns, _ = _step_fns(case, mode)
        r = conv_rate(fns["cnnkit"], peak, steps=1 if quick else 3)
        out[mode] = r
        print(f"  conv layers, {mode}: {r['gflops']:.1f} GFLOP/s = {r['fraction']:.0%} of the "
              f"SGEMM rate ({peak:.0f}); {r['share']:.0%} of the step "
              f"({C.fmt_time(r['seconds'])} of {C.fmt_time(r['step_s'])})", flush=True)
    return out


def bench_workload(w: W.Workload, opts: argparse.Namespace, peak: float) -> dict[str, Any]:
    """Agreement, then alternating timing and memory of every mode of one workload."""
    t0 = time.perf_counter()
    load = _load_before(opts)
    case = W.make_case(w)
    randomize_bn(case.pt)
    W.copy_torch_to_cnnkit(case.ck, case.pt)
    agree = agreement(case, w)
    # the check's training passes moved the batch-norm running statistics (cnnkit's twice,
    # PyTorch's once): the same weights again for the timing and the ONNX export
    W.copy_torch_to_cnnkit(case.ck, case.pt)
    _print_case(w, case, agree, load)
    ort_fn, ort_meta = _ort_for(case, w, opts)
    rows: list[dict[str, Any]] = []
    for mode in w.modes:
        rows += _time_mode(w, case, mode, opts, peak, ort_fn)
        if not opts.no_mem:
            _add_memory(w, mode, rows, opts.quick)
    conv = _conv_rates(w, case, peak, opts.quick) if w.conv_rate else {}
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return {"workload": w.key, "title": w.title, "source": case.source, "macs": case.macs,
            "agreement": agree, "rows": rows, "load": load, "ort": ort_meta, "conv": conv}


# ----------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------
def _select(only: str | None) -> tuple[list[W.Workload], bool]:
    """Workloads named in ``only`` (case-insensitive; "W5" = W5a and W5b), and whether W6
    was named."""
    if not only:
        return list(W.WORKLOADS), False
    keys = [k.strip().upper() for k in only.split(",") if k.strip()]

    def hit(w: W.Workload, k: str) -> bool:
        key = w.key.upper()
        return key == k or (key.startswith(k) and key[len(k):].isalpha())

    chosen = [w for w in W.WORKLOADS if any(hit(w, k) for k in keys)]
    unknown = [k for k in keys if k != "W6" and not any(hit(w, k) for w in W.WORKLOADS)]
    if unknown:
        raise SystemExit(f"bench: unknown workload(s) {unknown}; known: "
                         f"{', '.join(w.key for w in W.WORKLOADS)}, W6")
    return chosen, "W6" in keys


def _tune_malloc() -> None:
    """The measured figures assume cnnkit's opt-in malloc settings (``cnnkit.tune_malloc``),
    in every process (timing and memory probes, both frameworks); CNNKIT_MALLOC_TUNE=0 skips
    them."""
    if os.environ.get("CNNKIT_MALLOC_TUNE") != "0":
        import cnnkit

        cnnkit.tune_malloc()


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (3-7, 4 s a step)")
    ap.add_argument("--only", help="comma-separated workloads, e.g. W1,W3 (W5 = W5a,W5b; W6 "
                                   "= the time-to-accuracy run)")
    ap.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    ap.add_argument("--no-mem", action="store_true", help="skip the fresh-process memory probes")
    ap.add_argument("--profile", metavar="WORKLOADS",
                    help="cProfile cnnkit's step of these workloads (e.g. W1,W3) instead of "
                         "timing; the tables go to RESULTS.md unless --no-write")
    ap.add_argument("--w6", action="store_true",
                    help="also run W6: Fashion-MNIST time to 91%% test accuracy (minutes)")
    ap.add_argument("--w6-epochs", type=int, default=None, help="W6 epochs (default recipe's)")
    ap.add_argument("--w6-target", type=float, default=0.91)
    ap.add_argument("--w6-full", action="store_true",
                    help="W6: train all epochs even after the target is reached")
    ap.add_argument("--wait-quiet", type=float, default=None, metavar="SECONDS",
                    help="before each workload wait up to SECONDS for the other jobs on the "
                         "machine to go quiet (default 90, 0 with --quick)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="PyTorch threads (default os.cpu_count())")
    ap.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime")
    ap.add_argument("--no-numpy-path", action="store_true",
                    help="skip the NumPy-path (CNNKIT_NATIVE=0) training probes of W1-W3")
    ap.add_argument("--mem-probe", help=argparse.SUPPRESS)
    ap.add_argument("--numpy-probe", help=argparse.SUPPRESS)
    return ap


def _run_profile(opts: argparse.Namespace, write: bool) -> int:
    """``--profile W1,W3``: print each profile, write their blocks unless --no-write."""
    chosen, _ = _select(opts.profile)
    blocks = {}
    for w in chosen:
        text, md = profile(w)
        print(text + "\n", flush=True)
        if "train" in w.modes:
            case = W.make_case(w, frameworks=("cnnkit",))
            layers_md = layer_table(w, cnnkit_train_step(case), case.ck)
            print(layers_md + "\n", flush=True)
            md += "\n\n" + layers_md
        blocks[f"profile-{w.key}"] = md
    if write:
        _write(blocks)
    return 0


def _run_workloads(chosen: list[W.Workload], opts: argparse.Namespace
                   ) -> tuple[list[dict[str, Any]], tuple[float, float]]:
    """Every chosen workload between two matmul-rate measurements: (results, the quieter
    (median, best) matmul rate)."""
    peak = C.matmul_gflops()
    print(f"{'NumPy f32 matmul 2048':>22}: {peak[0]:.0f} GFLOP/s (best {peak[1]:.0f})\n",
          flush=True)
    results = [bench_workload(w, opts, peak[0]) for w in chosen]
    if not opts.no_numpy_path:
        _add_numpy_path(results, chosen, opts.quick)
    end = C.matmul_gflops()
    print(f"NumPy f32 matmul at the end: {end[0]:.0f} GFLOP/s (start {peak[0]:.0f})")
    return results, max(peak, end)  # the quieter of the two measurements


def _add_numpy_path(results: list[dict[str, Any]], chosen: list[W.Workload],
                    quick: bool) -> None:
    """The NumPy path's training ratio to PyTorch for W1-W3, each probed in a child."""
    for res, w in zip(results, chosen, strict=True):
        if w.key not in NUMPY_PATH_WORKLOADS:
            continue
        probe = run_numpy_probe(w, "quick" if quick else "")
        res["numpy_path"] = probe
        if probe:
            print(f"{w.key} NumPy path (CNNKIT_NATIVE=0) train: cnnkit "
                  f"{C.fmt_time(probe['cnnkit_s'])} | PyTorch {C.fmt_time(probe['torch_s'])} | "
                  f"ratio {probe['ratio']:.2f} (of minima {probe['ratio_min']:.2f})", flush=True)


NUMPY_PATH_WORKLOADS = ("W1", "W2", "W3")


def _print_summary(results: list[dict[str, Any]]) -> None:
    print("\nsummary (cnnkit / PyTorch, median time ratio):")
    for res in results:
        for r in res["rows"]:
            print(f"  {r['workload']:<4} {r['mode']:<22} {r['ratio']:6.2f}  (of minima "
                  f"{r['ratio_min']:.2f})")


def _bench(opts: argparse.Namespace, argv: list[str] | None, write: bool) -> int:
    """The timed workloads and / or W6; their blocks written unless --no-write."""
    chosen, want_w6 = _select(opts.only)
    if opts.quick:
        chosen = [w.quick_form() for w in chosen]
    want_w6 = want_w6 or opts.w6
    if opts.only and not chosen and not want_w6:
        raise SystemExit("bench: nothing to run")
    load_torch()
    info = C.machine_info()
    for k, v in info.items():
        print(f"{k:>22}: {v}")
    t_start = time.perf_counter()
    results, peak = _run_workloads(chosen, opts) if chosen else ([], (0.0, 0.0))
    blocks = {}
    full = len(chosen) == len(W.WORKLOADS)
    if results:
        _print_summary(results)
        print_targets(results)
        info["load average at end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
        argv_s = "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
        blocks["workloads"] = render_workloads(
            info, peak, results, opts.quick, None if full else
            C.read_block(C.family_section(), "workloads"), argv_s)
        blocks["targets"] = render_targets(results, peak, opts.quick, info, None if full
                                           else C.read_block(C.family_section(), "targets"))
    if want_w6:
        blocks["w6"] = render_w6(w6(opts))
        print(blocks["w6"])
    print(f"total {time.perf_counter() - t_start:.0f} s")
    if write and blocks:
        _write(blocks)
    return 0


def main(argv: list[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    _tune_malloc()
    if opts.wait_quiet is None:
        opts.wait_quiet = 0.0 if opts.quick else 90.0
    if opts.torch_threads:
        os.environ["BENCH_TORCH_THREADS"] = str(opts.torch_threads)
    if opts.mem_probe:
        print(json.dumps(mem_probe(opts.mem_probe)))
        return 0
    if opts.numpy_probe:
        print(json.dumps(numpy_probe(opts.numpy_probe)))
        return 0
    if opts.profile:
        return _run_profile(opts, not opts.no_write)
    return _bench(opts, argv, not opts.no_write)


if __name__ == "__main__":
    raise SystemExit(main())
