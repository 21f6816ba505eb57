"""The issue's targets in one table per run ("targets" block of RESULTS.md): cnnkit / PyTorch
per workload and step, cnnkit / ONNX Runtime for inference, the conv layers' share of the
SGEMM rate, the NumPy path's training ratio and the training peak-memory ratio."""

from __future__ import annotations

from typing import Any

from . import workloads as W

# (what, limit, lower is better): the bounds
LIMITS = {"train": 0.9, "infer": 0.9, "ort": 1.0, "conv": 0.6, "numpy": 2.0, "mem": 1.2}

HOW = [
    "- ONNX Runtime: the cnnkit model exported by cnnkit's own exporter "
    "(`cnnkit.io.onnx_export.to_onnx`, NCHW, batch norm folded; the PyTorch twin through "
    "`torch.onnx.export(dynamo=False)` only where that raises), `InferenceSession` on the "
    "CPU provider, all optimisations, as many intra-op threads as PyTorch; it gets the NCHW "
    "batch PyTorch gets and is timed in the same alternation. cnnkit / ORT uses cnnkit's "
    "`no_grad` call.",
    "- Conv layers: the wall time of every `cnnkit.kernels.conv.conv_forward` / "
    "`conv_backward` call of a step (what the training ops and the inference runtime call) "
    "and of the runtime's fused convolution + 2x2 pooling (`conv_pool`, pooling "
    "included), "
    "against the multiply-adds those calls did (forward, dK, and dX where the input needs "
    "it; counted as direct convolution, so Winograd's saving shows as a higher rate), as "
    "GFLOP/s and as a fraction of NumPy's float32 2048x2048 SGEMM rate of the same run "
    "(median of 3 steps after one warm-up, separately from the alternating timing).",
    "- NumPy path: the same training step with the C helper off (`CNNKIT_NATIVE=0`, what an "
    "install without a compiler runs), timed alternately against PyTorch in a child process "
    "(`python -m bench.run --numpy-probe W1`), because the helper is chosen when it loads.",
    "- Memory: peak RSS of one training step above the RSS before it, each framework in its "
    "own fresh process (`python -m bench.run --mem-probe W3:train:torch`). Fair because the "
    "kernel's counter (VmHWM, reset through `/proc/self/clear_refs`) sees every allocator "
    "alike -- NumPy, OpenBLAS, PyTorch's CPU allocator, oneDNN scratch -- while tracemalloc "
    "sees NumPy only and PyTorch has no CPU-side peak counter; the model, its weights and "
    "the batch exist before the mark on both sides, and both first steps create their "
    "momentum buffers. Neither process imports the other framework.",
]


def _cell(value: float | None, kind: str) -> str:
    """A measured value with 'ok' or 'MISS' against the issue's limit."""
    if value is None:
        return "-"
    limit = LIMITS[kind]
    ok = value >= limit if kind == "conv" else value <= limit
    text = f"{value:.0%}" if kind == "conv" else f"{value:.2f}"
    return f"{text} {'ok' if ok else '**MISS**'}"


def _row_of(res: dict[str, Any], mode: str, variant: str = "cnnkit") -> dict[str, Any] | None:
    for r in res["rows"]:
        if r["mode_key"] == mode and r["variant"] == variant:
            return r
    return None


def _mem_ratio(row: dict[str, Any] | None) -> float | None:
    if not row or not row.get("rss_cnnkit") or not row.get("rss_torch"):
        return None
    return row["rss_cnnkit"] / row["rss_torch"]


def target_row(res: dict[str, Any], sgemm: float | None = None) -> str:
    """One workload's line of the targets table; conv shares against ``sgemm`` GFLOP/s (the
    run's reported, quieter SGEMM rate) when given, else against the rate of the workload's
    own start."""
    train, infer = _row_of(res, "train"), _row_of(res, "infer")
    conv = res.get("conv", {})
    frac = {m: conv[m]["gflops"] / sgemm if sgemm else conv[m]["fraction"] for m in conv}
    conv_s = " / ".join(f"{m}: {_cell(frac[m], 'conv')} "
                        f"({conv[m]['gflops']:.0f} GFLOP/s)" for m in conv) or "-"
    npath = res.get("numpy_path")
    return (f"| {res['workload']} {res['title']} | "
            f"{_cell(train['ratio'] if train else None, 'train')} | "
            f"{_cell(infer['ratio'] if infer else None, 'infer')} | "
            f"{_cell(infer.get('ratio_ort') if infer else None, 'ort')} | {conv_s} | "
            f"{_cell(npath['ratio'] if npath else None, 'numpy')} | "
            f"{_cell(_mem_ratio(train), 'mem')} |")


KEPT = " (kept from an earlier run)"


def _old_rows(old: str | None, measured: set[str]) -> dict[str, str]:
    """{workload: its line} from the old block for workloads not measured now."""
    rows: dict[str, str] = {}
    for line in (old or "").splitlines():
        key = line[2:].split(" ", 1)[0] if line.startswith("| W") else ""
        if key and key not in measured and key in W.BY_KEY:
            first, sep, rest = line[2:].partition(" | ")
            mark = "" if first.endswith(KEPT) else KEPT
            rows[key] = f"| {first}{mark}{sep}{rest}"
    return rows


def render_targets(results: list[dict[str, Any]], peak: tuple[float, float], quick: bool,
                   info: dict[str, str], old: str | None = None) -> str:
    """The targets block: one line per workload measured in this run (lines of the others
    kept from ``old``, the block as it was), and how each figure is measured."""
    lines = (["**`--quick` run: a check of the plumbing, not final figures.**", ""]
             if quick else [])
    lines += [f"Targets of issue 19 on {info.get('CPU', '?')}, load average at start "
              f"{info.get('load average at start', '?')}, at end "
              f"{info.get('load average at end', '?')}; SGEMM (NumPy float32 2048) "
              f"{peak[0]:.0f} GFLOP/s. Medians; limits: training and inference <= 0.9 of "
              f"PyTorch, <= 1.0 of ONNX Runtime, conv layers >= 60% of SGEMM, NumPy path "
              f"<= 2.0 of PyTorch, training peak memory <= 1.2 of PyTorch's.", "",
              "| workload | train cnnkit / PyTorch | infer cnnkit / PyTorch | infer cnnkit / "
              "ORT | conv layers, share of SGEMM | NumPy path train / PyTorch | train peak "
              "memory cnnkit / PyTorch |", "|---|---|---|---|---|---|---|"]
    rows = {res["workload"]: target_row(res, peak[0]) for res in results}
    rows.update(_old_rows(old, set(rows)))
    lines += [rows[w.key] for w in W.WORKLOADS if w.key in rows]
    onnx = [f"{res['workload']} {res['ort']['source']}, {res['ort']['diff']:.1e}"
            for res in results if res.get("ort")]
    if onnx:
        lines += ["", "ONNX models (where from; ORT's logits max abs diff against PyTorch's): "
                  + "; ".join(onnx) + "."]
    lines += ["", *HOW]
    return "\n".join(lines)


def print_targets(results: list[dict[str, Any]]) -> None:
    """The targets table on the terminal (the markdown rows)."""
    print("\ntargets (issue 19): workload | train | infer | infer vs ORT | conv share of "
          "SGEMM | NumPy path train | train peak memory")
    for res in results:
        print("  " + target_row(res))
