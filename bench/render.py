"""The RESULTS.md blocks of ``python -m bench``: the workloads tables (times, ratios,
GFLOP/s, memory; agreement and load; how it is measured) and the W6 time-to-accuracy table."""

from __future__ import annotations

import time
from typing import Any

from . import common as C
from . import workloads as W

MAIN_HEADER = [
    "| workload | step | cnnkit | PyTorch | cnnkit / PyTorch | (of minima) | ONNX Runtime | "
    "cnnkit / ORT | cnnkit GFLOP/s (% of matmul) | PyTorch GFLOP/s | peak mem cnnkit (RSS / "
    "NumPy) | peak mem PyTorch (RSS) | rounds, spread cnnkit / PyTorch |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
AGREE_HEADER = [
    "Same computation? PyTorch's weights are copied into cnnkit (batch-norm "
    "statistics and affine weights randomised first so that inference exercises "
    "them). Logits: inference mode, float32. Training step (dropout switched off for "
    "the check): loss, and the conv kernel gradients as the worst relative max-abs "
    "difference over all conv layers against PyTorch in float64, for cnnkit float32, "
    "PyTorch float32 (what float32 rounding alone gives) and cnnkit float64 (the "
    "maths itself):", "",
    "| workload | model source | M multiply-adds / sample | logits max abs diff "
    "(max abs logit) | loss abs diff f32 / f64 | conv grads: cnnkit f32 | PyTorch "
    "f32 | cnnkit f64 | at start: other tasks running, 1-min load avg, 1024 matmul "
    "GFLOP/s NumPy / PyTorch |",
    "|---|---|---|---|---|---|---|---|---|"]
HOW_MEASURED = [
    "- Steps: training = forward in training mode, cross-entropy, backward, SGD "
    "(lr 0.01, momentum 0.9) update, zero_grad (cnnkit: `CrossEntropyLoss()(model(x, "
    "training=True), y)`, `loss.backward()`, `opt.step()`, `opt.zero_grad()`; PyTorch: "
    "the same with `F.cross_entropy`). Inference: cnnkit `with no_grad(): model(x)` "
    "and `model.predict(x, batch_size=N)`; PyTorch `model.eval()` under "
    "`torch.inference_mode()`. float32 throughout; inputs are a fixed random batch.",
    "- Timing: after 2 warm-up calls each, the steps run alternately (cnnkit, "
    "[cnnkit predict,] PyTorch, cnnkit, ...) for as many rounds as fit a time budget "
    "(5-21 rounds; 3-7 with `--quick`); calls under 20 ms are repeated in an inner "
    "loop and averaged. Medians are reported (and the ratio of the fastest runs, "
    "steadier when other jobs load the machine); *spread* is the interquartile range "
    "over the median; a step whose spread exceeds 25% is measured again (up to 3 "
    "attempts, each after waiting for quiet; the steadiest kept). The machine is "
    "shared (2 cores, other jobs running), so alternation keeps both frameworks "
    "under the same load. Before "
    "every sample the loop pauses 0.15 s and, for calls under 0.25 s, makes one "
    "untimed call: after a NumPy call OpenBLAS's idle threads spin for about 0.1 s, "
    "and PyTorch steps started in that window ran 20-400x slower (two thread pools "
    "on two cores in one process; a program using one framework never sees this).",
    "- Load: other jobs on the two cores slow PyTorch far more than cnnkit: each of "
    "its OpenMP parallel regions waits until its second thread gets a time slice, "
    "so with another process runnable every op costs ~8 ms (ResNet-20 inference at "
    "batch 128 went from 60 ms to 1.0 s, every op 7-8 ms in torch.profiler; a "
    "training step from 0.23 s to 2-3 s), while cnnkit's pool hands blocks out "
    "dynamically and slows about 2x. A loaded run therefore flatters cnnkit. Before "
    "every workload the script waits (up to 90 s) "
    "until fewer than 0.5 other tasks run on average, then records that figure, the "
    "load average and a 1024x1024 matmul rate of each framework (last column above); "
    "trust rows whose PyTorch matmul rate is near its quiet value (~300 GFLOP/s "
    "here). `--only W3` re-measures one workload and keeps the other rows.",
    "- GFLOP/s = 2 x multiply-adds of the conv and dense layers (cnnkit's own count, "
    "`layer_table`) x batch / time; a training step counts 3 x the forward pass. "
    "The matmul rate is the practical single-precision peak NumPy's BLAS reaches on "
    "this machine; PyTorch (MKL / oneDNN) can exceed it.",
    "- Peak memory (RSS): each framework runs its step in a *fresh* Python process "
    "(`python -m bench.run --mem-probe W:step:framework`): build the model, inputs "
    "and optimizer, reset the kernel's peak-RSS mark (`/proc/self/clear_refs` = 5), "
    "run one step, and report VmHWM - VmRSS(before). This counts every allocator "
    "alike (NumPy, OpenBLAS buffers, PyTorch's CPU allocator, oneDNN scratch) and "
    "nothing left over from earlier steps; it includes one-time costs of a first "
    "step (PyTorch's oneDNN primitives, optimizer momentum buffers on both sides). "
    "NumPy = `tracemalloc` peak of one warm cnnkit step above what was live before "
    "it (NumPy reports its array buffers to tracemalloc); PyTorch has no such CPU "
    "counter, so only the RSS figures compare the two."]


def _main_row(r: dict[str, Any], peak: float) -> str:
    """One timing row: times, ratios, GFLOP/s (share of the matmul rate), memory, noise."""
    ck_mem = f"{C.fmt_bytes(r.get('rss_cnnkit'))} / {C.fmt_bytes(r['tracemalloc'])}"
    pt_mem = C.fmt_bytes(r.get("rss_torch"))
    ort = (f"{C.fmt_time(r['ort_s'])} | **{r['ratio_ort']:.2f}**" if "ort_s" in r
           else "- | -")
    return (f"| {r['workload']} {r['title']} | {r['mode']} | {C.fmt_time(r['cnnkit_s'])} | "
            f"{C.fmt_time(r['torch_s'])} | **{r['ratio']:.2f}** | {r['ratio_min']:.2f} | {ort} | "
            f"{r['cnnkit_gflops']:.1f} ({r['cnnkit_gflops'] / peak:.0%}) | "
            f"{r['torch_gflops']:.1f} | {ck_mem} | {pt_mem} | {r['rounds']}, "
            f"{r['spread_cnnkit']:.0%} / {r['spread_torch']:.0%} |")


def _agree_row(res: dict[str, Any]) -> str:
    """One agreement row: logits, loss and gradient differences, and the load at the start."""
    a = res["agreement"]
    if "loss_diff" in a:
        rest = (f"{a['loss_diff']:.1e} / {a['loss_diff64']:.1e} | {a['grad32_ck']:.1e} | "
                f"{a['grad32_pt']:.1e} | {a['grad64']:.1e}")
    else:
        rest = "(inference only) | | |"
    ld = res.get("load", {})
    cond = (f"{ld.get('others', float('nan')):.1f}, {ld.get('load', float('nan')):.1f}, "
            f"{ld.get('numpy_gflops', 0):.0f} / {ld.get('torch_gflops', 0):.0f}")
    return (f"| {res['workload']} | {res['source']} | {res['macs'] / 1e6:.1f} | "
            f"{a['logits_max_abs_diff']:.1e} ({a['logits_max_abs']:.2f}) | {rest} | {cond} |")


def _keep_old_rows(old: str | None, main_rows: dict[str, list[str]],
                   agree_rows: dict[str, str]) -> list[str]:
    """Copy the rows of workloads not measured now from the old block (in place); returns
    their keys."""
    kept: list[str] = []
    if not old:
        return kept
    for w in W.WORKLOADS:
        if w.key in agree_rows:
            continue
        mains = [ln for ln in old.splitlines() if ln.startswith(f"| {w.key} ")
                 and not ln.startswith(f"| {w.key} |")]
        agree = [ln for ln in old.splitlines() if ln.startswith(f"| {w.key} |")]
        if mains and agree:
            main_rows[w.key], agree_rows[w.key] = mains, agree[0]
            kept.append(w.key)
    return kept


QUICK_NOTE = ("**`--quick` run: a check of the plumbing, not final figures** (few rounds; "
              "W7-W9 at reduced size and batch, named in their titles).")


def _preamble(info: dict[str, str], peak: tuple[float, float], results: list[dict],
              kept: list[str], argv: str, quick: bool) -> list[str]:
    """What ran, when, on which machine, and the reference matmul rate."""
    when = time.strftime("%Y-%m-%d %H:%M")
    ran = ", ".join(r["workload"] for r in results)
    lines = [QUICK_NOTE, ""] if quick else []
    lines += [f"Generated by `python -m bench{argv}` on {when} ({ran})"
             + (f"; rows of {', '.join(kept)} are kept from an earlier run (see their load "
                f"column)" if kept else "") + ". Machine:", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += ["", f"Reference rate: NumPy float32 2048x2048 matmul **{peak[0]:.0f} GFLOP/s** "
              f"(median; best {peak[1]:.0f}), measured at the start and the end of the run (the "
              f"quieter one).", ""]
    return lines


def render_workloads(info: dict[str, str], peak: tuple[float, float], results: list[dict],
                     quick: bool, old: str | None = None, argv: str = "") -> str:
    """The workloads block. Workloads not in ``results`` keep their rows from ``old`` (the
    block as it was), so ``--only W3`` updates W3's rows alone."""
    main_rows: dict[str, list[str]] = {}
    agree_rows: dict[str, str] = {}
    for res in results:
        for r in res["rows"]:
            main_rows.setdefault(res["workload"], []).append(_main_row(r, peak[0]))
    for res in results:
        agree_rows[res["workload"]] = _agree_row(res)
    kept = _keep_old_rows(old, main_rows, agree_rows)
    order = [w.key for w in W.WORKLOADS]
    lines = _preamble(info, peak, results, kept, argv, quick) + MAIN_HEADER
    for key in sorted(main_rows, key=order.index):
        lines += main_rows[key]
    lines += ["", *AGREE_HEADER]
    for key in sorted(agree_rows, key=order.index):
        lines.append(agree_rows[key])
    lines += ["", "How it is measured:", "", *HOW_MEASURED]
    return "\n".join(lines)


def render_w6(res: dict[str, Any]) -> str:
    """The W6 block: the recipe, then per framework the epoch and training time at the
    target, the accuracy per epoch and the total training / evaluation time."""
    r = res["recipe"]
    when = time.strftime("%Y-%m-%d %H:%M")
    lines = [f"Generated by `python -m bench --w6` on {when}. Recipe (`bench.w6.W6_RECIPE`, "
             f"the cli's Fashion-MNIST default before the recipes round): `{r['model']}`, Adam "
             f"lr {r['lr']} (eps 1e-7 on both sides) with cosine decay over {res['epochs']} "
             f"epochs x {res['steps_per_epoch']} steps, batch {r['batch_size']}, augmentation "
             f"`{r['augment']}` (NumPy, the same `BatchIterator` batches for both), target "
             f"**{res['target']:.0%}** test accuracy (10,000 test images, checked after every "
             f"epoch; evaluation time is not training time). Both start from cnnkit's initial "
             f"weights (logits max abs diff {res['init_diff']:.1e}); cnnkit trains with "
             f"`model.fit`, PyTorch with a plain loop; epochs alternate between the two (each "
             f"after waiting up to 30 s for the other jobs on the machine to go quiet).", ""]
    for n in res["notes"]:
        lines += [f"Note: {n}", ""]
    lines += ["| framework | reached at epoch | training time to target | test accuracy per "
              "epoch | total training / evaluation time |", "|---|---|---|---|---|"]
    st = res["state"]
    for fw in ("cnnkit", "torch"):
        s = st[fw]
        rc = s["reached"]
        accs = " ".join(f"{a:.3f}" for a in s["acc"])
        t_target = f"{rc['train_s']:.0f} s" if rc else "-"
        lines.append(f"| {'PyTorch' if fw == 'torch' else 'cnnkit'} | "
                     f"{rc['epoch'] if rc else 'not reached'} | {t_target} | {accs} | "
                     f"{s['train_s']:.0f} s / {s['eval_s']:.0f} s |")
    a, b = st["cnnkit"]["reached"], st["torch"]["reached"]
    if a and b:
        lines += ["", f"Time-to-accuracy ratio cnnkit / PyTorch: "
                      f"**{a['train_s'] / b['train_s']:.1f}**"]
    return "\n".join(lines)
