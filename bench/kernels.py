"""Kernel benchmarks: cnnkit against PyTorch on the same inputs, in the same run.

    python -m bench.kernels [--repeats 9] [--no-write] [--threads N]

Times ``cnnkit.ops.conv2d`` forward+backward (x, kernel and bias all requiring gradients, as
in a hidden layer) next to ``torch.nn.functional.conv2d`` for three layer shapes (kernel 3x3,
"same" padding, float32), alternating the two frameworks run by run after a warm-up, and
reports medians and the ratio cnnkit / PyTorch (cnnkit with its optional C helper when built,
and its NumPy path alone). Then profiles where cnnkit's time goes
(im2col, GEMMs, col2im) with the kernel functions themselves. Results go to
``bench/RESULTS.md``, section "Kernels: conv2d forward+backward" (other sections are kept).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import cnnkit
from cnnkit import Tensor, ops
from cnnkit.kernels import conv as K
from cnnkit.kernels import native, parallel
from cnnkit.kernels.conv import geometry as KG
from cnnkit.kernels.conv import im2col as KI

from . import common

CASES = [(128, 32, 16, 16), (128, 16, 32, 64), (128, 8, 64, 64)]  # (N, H=W, C_in, C_out)
SECTION = "## Kernels: conv2d forward+backward"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


# ----------------------------------------------------------------------------------------
# machine
# ----------------------------------------------------------------------------------------
def machine_info() -> dict[str, str]:
    """CPU model, core count, NumPy version and BLAS, PyTorch version and threads."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "unknown"
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg["Build Dependencies"]["blas"]
        blas = f"{b.get('name')} {b.get('version')}"
        if b.get("openblas configuration"):
            blas += f" ({b['openblas configuration']})"
    except Exception:  # noqa: BLE001  (older NumPy: no dict mode)
        pass
    info = {"CPU": cpu, "cores": str(os.cpu_count()), "NumPy": np.__version__, "BLAS": blas,
            "Python": platform.python_version()}
    try:
        import torch

        info["PyTorch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        info["PyTorch"] = "not installed"
    return info


# ----------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------
def alternate(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2
              ) -> dict[str, list[float]]:
    """Time the functions alternately, ``repeats`` rounds after ``warmup`` calls each, with
    the pause before every sample that lets OpenBLAS's idle threads stop spinning (see
    ``bench.common.alternate``); seconds per call, one entry per round."""
    return common.alternate(fns, warmup=warmup, min_repeats=repeats, max_repeats=repeats,
                            budget_s=0.0)


def _ms(ts: list[float]) -> float:
    return statistics.median(ts) * 1e3


# ----------------------------------------------------------------------------------------
# conv2d forward+backward: cnnkit vs PyTorch
# ----------------------------------------------------------------------------------------
def conv2d_steps(n: int, hw: int, cin: int, cout: int, seed: int = 0) -> dict[str, Callable]:
    """Closures running one forward(+backward) step of each framework on the same data."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, hw, hw, cin), dtype=np.float32)
    w = (rng.standard_normal((3, 3, cin, cout), dtype=np.float32) / np.sqrt(9 * cin)
         ).astype(np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    g = rng.standard_normal((n, hw, hw, cout), dtype=np.float32)
    tx, tw, tb = (Tensor(a, requires_grad=True) for a in (x, w, b))

    def ck_fb() -> None:
        for t in (tx, tw, tb):
            t.grad = None
        ops.conv2d(tx, tw, tb, padding="same").backward(g)

    def ck_f() -> None:
        ops.conv2d(x, w, b, padding="same")

    def numpy_path(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:  # the same op with the optional C helper switched off
            native.set_enabled(False)
            try:
                fn()
            finally:
                native.set_enabled(None)
        return run

    steps = {"cnnkit f+b": ck_fb, "cnnkit f": ck_f}
    if native.available():
        steps.update({"numpy f+b": numpy_path(ck_fb), "numpy f": numpy_path(ck_f)})
    try:
        import torch
        import torch.nn.functional as F  # noqa: N812
    except ImportError:
        return steps
    px = torch.tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), requires_grad=True)
    pw = torch.tensor(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), requires_grad=True)
    pb = torch.tensor(b, requires_grad=True)
    pg = torch.tensor(np.ascontiguousarray(g.transpose(0, 3, 1, 2)))

    def pt_fb() -> None:
        for t in (px, pw, pb):
            t.grad = None
        F.conv2d(px, pw, pb, padding=1).backward(pg)

    def pt_f() -> None:
        with torch.no_grad():
            F.conv2d(px, pw, pb, padding=1)

    # sanity: the two frameworks compute the same thing
    ck_fb()
    pt_fb()
    np.testing.assert_allclose(tx.grad, px.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-3,
                               atol=1e-3)
    steps.update({"torch f+b": pt_fb, "torch f": pt_f})
    return steps


def bench_conv2d(repeats: int) -> list[dict[str, float]]:
    rows = []
    for n, hw, cin, cout in CASES:
        steps = conv2d_steps(n, hw, cin, cout)
        t = alternate(steps, repeats)
        row = {"case": f"N={n}, {hw}x{hw}, {cin}->{cout}"}
        for k, v in t.items():
            row[k] = _ms(v)
            row[k + " min"] = min(v) * 1e3
        rows.append(row)
        msg = f"{row['case']:<24} cnnkit f+b {row['cnnkit f+b']:7.1f} ms"
        if "numpy f+b" in row:
            msg += f" (NumPy path {row['numpy f+b']:7.1f} ms)"
        if "torch f+b" in row:
            msg += (f" | torch f+b {row['torch f+b']:7.1f} ms | ratio "
                    f"{row['cnnkit f+b'] / row['torch f+b']:5.2f} | forward ratio "
                    f"{row['cnnkit f'] / row['torch f']:5.2f}")
        print(msg, flush=True)
    return rows


# ----------------------------------------------------------------------------------------
# profile: where cnnkit's conv2d time goes
# ----------------------------------------------------------------------------------------
def conv2d_stages(n: int, hw: int, cin: int, cout: int
                  ) -> tuple[dict[str, Callable], tuple[int, int]]:
    """One closure per stage of cnnkit's conv2d forward+backward (3x3, "same", stride 1),
    built from the kernel functions the op calls. The kernels work block by block over the
    batch (``K.batch_blocks``: each block's im2col matrix is about
    ``K.dispatch.THRESHOLDS.block_bytes``, so it is still in cache when the GEMM reads it);
    each stage here runs every block in turn on one thread, on one block's operands (in
    cache, as in the kernels). Also returns (number of blocks, images per block)."""
    s, d, pads = (1, 1), (1, 1), ((1, 1), (1, 1))
    fpads = ((1, 1), (1, 1))  # full-convolution pads E - 1 - P for 3x3 "same"
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, hw, hw, cin), dtype=np.float32)
    w = rng.standard_normal((3, 3, cin, cout), dtype=np.float32)
    g = rng.standard_normal((n, hw, hw, cout), dtype=np.float32)
    blocks = K.batch_blocks(n, hw * hw * 9 * cin * 4)  # the forward's and dK's blocks
    nb = max(b - a for a, b in blocks)
    rows = nb * hw * hw
    scratch = np.empty(rows * 9 * max(cin, cout), np.float32)
    pad_x = KG.pad_buffer((nb, hw, hw, cin), pads, np.float32)
    pad_g = KG.pad_buffer((nb, hw, hw, cout), fpads, np.float32)
    xb, gb = x[:nb], g[:nb]
    c3 = KI.im2col_block(xb, (3, 3), s, pads, d, (hw, hw), 1, pad_x, scratch).copy()
    g3 = KI.im2col_block(gb, (3, 3), s, fpads, d, (hw, hw), 1, pad_g, scratch).copy()
    wm, wf = KI.kernel_matrix(w, 1), KI.kernel_matrix(K.flip_kernel(w), 1)
    g2 = gb.reshape(-1, cout)
    z = np.empty((rows, cout), np.float32)
    dx = np.empty((rows, cin), np.float32)
    dcols = np.empty((rows, 1, 9 * cin), np.float32)
    dxg = np.zeros((nb, hw, hw, 1, cin), np.float32)
    boxes = KG.tap_boxes((hw, hw), (hw, hw), (3, 3), s, pads, d)
    k = len(blocks)

    def each(fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:  # BLAS held to one thread, as inside the kernels
            parallel.run_blocks(1, lambda i, ws: [fn() for _ in range(k)], blas=True)
        return run

    return {
        "fwd: im2col": each(lambda: KI.im2col_block(xb, (3, 3), s, pads, d, (hw, hw), 1,
                                                    pad_x, scratch)),
        "fwd: GEMM": each(lambda: KI.gemm_into(c3, wm, z)),
        "dK: im2col again": each(lambda: KI.im2col_block(xb, (3, 3), s, pads, d, (hw, hw), 1,
                                                         pad_x, scratch)),
        "dK: GEMM cols^T dZ": each(lambda: KI.cols_t_times_error(c3, g2, 1)),
        "db: GEMV": each(lambda: KI.bias_grad(gb)),
        "dX flip: im2col(dZ)": each(lambda: KI.im2col_block(gb, (3, 3), s, fpads, d,
                                                            (hw, hw), 1, pad_g, scratch)),
        "dX flip: GEMM": each(lambda: KI.gemm_into(g3, wf, dx)),
        "dX col2im: GEMM dZ K^T": each(lambda: KI.error_times_kernel_t_into(g2, wm, dcols)),
        "dX col2im: col2im": each(lambda: KI.col2im_into(
            dcols.reshape(nb, hw, hw, 1, 9, cin), dxg, boxes)),
    }, (k, nb)


def profile_conv2d(repeats: int) -> list[dict[str, float]]:
    """Time each stage of cnnkit's conv2d forward+backward on its own."""
    rows = []
    for n, hw, cin, cout in CASES:
        stages, (nblocks, per) = conv2d_stages(n, hw, cin, cout)
        t = alternate(stages, repeats, warmup=1)
        row: dict = {"case": f"N={n}, {hw}x{hw}, {cin}->{cout}"}
        row.update({k: _ms(v) for k, v in t.items()})
        row["blocks"] = f"{nblocks} x {per}"
        row["dX method"] = "flip" if cout <= cin else "col2im"  # conv_input_grad's "auto"
        rows.append(row)
        print(row["case"], {k: round(v, 1) for k, v in row.items()
                            if isinstance(v, float)}, "dX:", row["dX method"], flush=True)
    return rows


# ----------------------------------------------------------------------------------------
# RESULTS.md
# ----------------------------------------------------------------------------------------
def render(info: dict[str, str], rows: list[dict], prof: list[dict], repeats: int,
           section: str = SECTION) -> str:
    lines = [section, "",
             f"Generated by `python -m bench.kernels` on {time.strftime('%Y-%m-%d %H:%M')}.",
             "", "Machine:", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", f"conv2d, kernel 3x3, stride 1, \"same\" padding, float32, x/kernel/bias all "
              f"requiring gradients. Each step = forward + backward (dX, dK, db). The two "
              f"frameworks alternate run by run after 2 warm-up runs; median of {repeats} runs "
              f"(min in brackets). PyTorch runs NCHW on the same data with "
              f"`torch.set_num_threads({info.get('threads', '?').split()[0]})`. On a shared "
              f"machine other processes competing for the cores (see the load average) slow "
              f"PyTorch's OpenMP threads most; the ratio of the minimum times is then the "
              f"steadier figure.", "",
              "cnnkit runs with its optional C helper (`cnnkit.kernels.native`) when it is "
              "built; the *NumPy path* columns are the same op with the helper switched off.",
              "",
              "| case | cnnkit f+b ms | NumPy path f+b ms | PyTorch f+b ms | ratio f+b "
              "| ratio of mins f+b | cnnkit fwd ms | NumPy path fwd ms | PyTorch fwd ms "
              "| ratio fwd |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def cell(r: dict, k: str, mins: bool = False) -> str:
        if k not in r:
            return "-"
        return f"{r[k]:.1f} ({r[k + ' min']:.1f})" if mins else f"{r[k]:.1f}"

    for r in rows:
        has_t = "torch f+b" in r
        ratio = f"**{r['cnnkit f+b'] / r['torch f+b']:.2f}**" if has_t else "-"
        rmin = f"{r['cnnkit f+b min'] / r['torch f+b min']:.2f}" if has_t else "-"
        rf = f"{r['cnnkit f'] / r['torch f']:.2f}" if has_t else "-"
        lines.append(f"| {r['case']} | {cell(r, 'cnnkit f+b', True)} "
                     f"| {cell(r, 'numpy f+b', True)} | {cell(r, 'torch f+b', True)} "
                     f"| {ratio} | {rmin} | {cell(r, 'cnnkit f')} | {cell(r, 'numpy f')} "
                     f"| {cell(r, 'torch f')} | {rf} |")
    lines += ["", "Where the NumPy path's time goes (each stage timed alone on one thread, "
              "median ms, summed over the batch blocks the kernels cut the batch into, "
              "each block's operands in cache as in the kernels; with two threads the "
              "blocks are shared between them; the op runs the fwd, dK and db rows plus "
              "one of the two dX variants, chosen automatically):", ""]
    keys = [k for k in prof[0] if k not in ("case", "dX method", "blocks")]
    lines.append("| stage | " + " | ".join(p["case"] for p in prof) + " |")
    lines.append("| --- |" + " ---: |" * len(prof))
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(f"{p[k]:.1f}" for p in prof) + " |")
    lines.append("| batch blocks x images | " + " | ".join(p["blocks"] for p in prof) + " |")
    lines.append("| dX method used | " + " | ".join(p["dX method"] for p in prof) + " |")
    lines.append("")
    return "\n".join(lines)


def write_section(text: str, path: Path = RESULTS) -> None:
    """Replace the section of RESULTS.md headed by the first line of ``text`` (up to the next
    '## ' heading), keeping the rest; write to a temporary file and rename."""
    heading = text.splitlines()[0]
    old = path.read_text() if path.exists() else "# Benchmark results\n\n"
    start = old.find(heading + "\n")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + len(heading))
        new = old[:start] + text.rstrip("\n") + "\n\n" + ("" if end < 0 else old[end + 1:])
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new.rstrip("\n") + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9, help="timed runs per case (>= 5)")
    ap.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for both frameworks (default: os.cpu_count()); sets "
                         "OPENBLAS_NUM_THREADS/OMP_NUM_THREADS and restarts the script")
    args = ap.parse_args(argv)
    if os.environ.get("CNNKIT_MALLOC_TUNE") != "0":  # the figures assume the opt-in settings
        cnnkit.tune_malloc()
    repeats = max(5, args.repeats)
    threads = args.threads or os.cpu_count() or 1
    if args.threads and os.environ.get("OPENBLAS_NUM_THREADS") != str(threads):
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(threads)
        os.environ["CNNKIT_NUM_THREADS"] = str(threads)
        os.execv(sys.executable, [sys.executable, "-m", "bench.kernels",
                                  *(sys.argv[1:] if argv is None else argv)])
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        print("PyTorch not installed: timing cnnkit only")
    info = machine_info()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    info["threads"] = (f"{threads} (cnnkit's kernel threads, each GEMM on one BLAS thread; "
                       f"PyTorch)")
    for k, v in info.items():
        print(f"{k}: {v}")
    rows = bench_conv2d(repeats)
    prof = profile_conv2d(repeats)
    if hasattr(os, "getloadavg"):
        info["load average (1 min) before / after"] = f"{load:.2f} / {os.getloadavg()[0]:.2f}"
    if not args.no_write:
        section = SECTION
        if threads != (os.cpu_count() or 1):
            section += f" ({threads} thread{'s' if threads > 1 else ''})"
        write_section(render(info, rows, prof, repeats, section))
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
