"""Shared helpers of the workload benchmark: machine description, the reference matmul rate,
alternating timing with medians, peak-memory probes and the RESULTS.md writer."""

from __future__ import annotations

import ctypes
import glob
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
REPO = Path(__file__).resolve().parent.parent  # the repository root: cwd of child probes


# ----------------------------------------------------------------------------------------
# the machine
# ----------------------------------------------------------------------------------------
def _cpuinfo() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model", "flags") and key not in out:
                out[key] = value.strip()
    except OSError:
        pass
    return out


def _openblas_runtime() -> str | None:
    """The kernel set OpenBLAS picked at run time (DYNAMIC_ARCH builds), via threadpoolctl
    when installed, else straight from the library NumPy ships."""
    try:
        from threadpoolctl import threadpool_info

        for d in threadpool_info():
            if d.get("user_api") == "blas":
                return (f"{d.get('internal_api')} {d.get('version')}, core "
                        f"{d.get('architecture')}, {d.get('num_threads')} threads")
    except ImportError:
        pass
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                  "*openblas*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                fn = getattr(lib, f"{prefix}get_corename{suffix}", None)
                nthreads = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                if fn is None:
                    continue
                fn.restype = ctypes.c_char_p
                core = fn().decode()
                threads = f", {nthreads()} threads" if nthreads is not None else ""
                return f"core {core}{threads}"
    return None


ISA_FLAGS = ("avx2", "fma", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile",
             "amx_bf16")


def cpu_isa() -> tuple[str, str, list[str]]:
    """(vendor "Intel" / "AMD" / other, model name, the ISA flags that matter for float32
    kernels), from /proc/cpuinfo."""
    cpu = _cpuinfo()
    model = cpu.get("model name", platform.processor() or "unknown")
    flags = set(cpu.get("flags", "").split())
    vendor = "Intel" if "intel" in model.lower() else "AMD" if "amd" in model.lower() \
        else model.split()[0] if model.split() else "unknown"
    return vendor, model, [f for f in ISA_FLAGS if f in flags]


def family_section(prefix: str = "Workloads") -> str:
    """The RESULTS.md heading of this machine's family: vendor, model and ISA flags, so that
    runs on Intel and on AMD (or with other vector units) keep separate tables."""
    vendor, model, isa = cpu_isa()
    return f"## {prefix}, {vendor}: {model} [{' '.join(isa) or 'no AVX2'}] (python -m bench)"


def machine_info() -> dict[str, str]:
    """CPU model, ISA, cores, memory, NumPy and its BLAS, PyTorch and its threads."""
    cpu = _cpuinfo()
    _, _, isa = cpu_isa()
    info = {"CPU": f"{cpu.get('model name', platform.processor() or 'unknown')} (family "
                   f"{cpu.get('cpu family', '?')}, model {cpu.get('model', '?')}; "
                   f"{' '.join(isa) or 'no AVX2'})",
            "cores": str(os.cpu_count())}
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        info["memory"] = f"{mem_kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    info["Python"] = platform.python_version()
    info["NumPy"] = np.__version__
    blas = "unknown"
    try:
        b = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{b.get('name')} {b.get('version')}"
    except Exception:  # noqa: BLE001  (older NumPy: no dict mode)
        pass
    rt = _openblas_runtime()
    info["BLAS"] = blas + (f" ({rt})" if rt else "")
    try:
        import torch

        backend = "MKL" if torch.backends.mkl.is_available() else "no MKL"
        if torch.backends.mkldnn.is_available():
            backend += " + oneDNN"
        info["PyTorch"] = (f"{torch.__version__} ({backend}, {torch.get_num_threads()} "
                           f"threads)")
    except ImportError:
        info["PyTorch"] = "not installed"
    try:
        info["load average at start"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    return info


def matmul_gflops(n: int = 2048, repeats: int = 7) -> tuple[float, float]:
    """NumPy float32 ``(n, n) @ (n, n)`` rate in GFLOP/s: (median, best) over ``repeats``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    np.matmul(a, b, out=out)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        ts.append(time.perf_counter() - t0)
    flop = 2.0 * n**3
    return flop / statistics.median(ts) / 1e9, flop / min(ts) / 1e9


def busy_others(seconds: float = 2.0) -> float | None:
    """Average number of OTHER runnable tasks on the machine over ``seconds`` (sampled from
    /proc/loadavg's running count, minus this process), or None off Linux."""
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        try:
            running = Path("/proc/loadavg").read_text().split()[3].split("/")[0]
        except (OSError, IndexError):
            return None
        samples.append(int(running) - 1)
        time.sleep(0.05)
    return max(0.0, float(np.mean(samples)))


def wait_quiet(threshold: float = 0.5, timeout_s: float = 90.0) -> float | None:
    """Wait (at most ``timeout_s``) until fewer than ``threshold`` other tasks run on
    average; returns the last measurement."""
    end = time.perf_counter() + timeout_s
    others = busy_others()
    while others is not None and others >= threshold and time.perf_counter() < end:
        others = busy_others()
    return others


def load_probe() -> dict[str, float]:
    """How busy the machine is right now: the 1-minute load average and the float32
    1024x1024 matmul rate of NumPy and of PyTorch (best of 3, GFLOP/s). Other jobs on the
    cores slow PyTorch's OpenMP threads far more than NumPy (its parallel regions wait for
    a descheduled thread), so a PyTorch rate well below its quiet value flags a loaded run."""
    out: dict[str, float] = {}
    try:
        out["load"] = os.getloadavg()[0]
    except OSError:
        pass
    n = 1024
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    flop = 2.0 * n**3
    ts = []
    for _ in range(3):
        t0 = time.perf_counter()
        a @ a
        ts.append(time.perf_counter() - t0)
    out["numpy_gflops"] = flop / min(ts) / 1e9
    try:
        import torch

        ta = torch.from_numpy(a)
        ts = []
        for _ in range(3):
            time.sleep(0.15)  # let NumPy's BLAS threads stop spinning (see alternate)
            t0 = time.perf_counter()
            ta @ ta
            ts.append(time.perf_counter() - t0)
        out["torch_gflops"] = flop / min(ts) / 1e9
    except ImportError:
        pass
    return out


# ----------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------
def calibrate(fn: Callable[[], object], target_s: float) -> tuple[int, float]:
    """Inner-loop count so that one timed sample of ``fn`` lasts at least ``target_s``
    (tiny functions are timed in batches of calls); returns (count, seconds of one call)."""
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    return max(1, int(np.ceil(target_s / one))), one


def alternate(fns: dict[str, Callable[[], object]], *, warmup: int = 2, min_repeats: int = 5,
              max_repeats: int = 25, budget_s: float = 20.0, sample_s: float = 0.02,
              gap_s: float = 0.15, rewarm_below_s: float = 0.25) -> dict[str, list[float]]:
    """Time the functions ALTERNATELY (a, b, c, a, b, c, ...) so that load from other
    processes falls on all of them alike; returns seconds per call, one entry per round.

    Each function is first run ``warmup`` times (caches, lazy builds, allocator pools). Calls
    shorter than ``sample_s`` are repeated in an inner loop and averaged. Before every sample
    the loop pauses ``gap_s`` seconds and, for calls shorter than ``rewarm_below_s``, makes one
    untimed call: after a call, OpenBLAS's idle threads spin for about 0.1 s (and OpenMP's
    for a while), and PyTorch's parallel regions started in that window ran many times
    slower -- an artefact of sharing two cores between two thread pools that a program using
    one framework never sees. The number of rounds is what fits ``budget_s``, clamped to
    [min_repeats, max_repeats].
    """
    inner: dict[str, int] = {}
    rewarm: dict[str, bool] = {}
    per_round = 0.0
    for _ in range(max(warmup - 1, 0)):
        for fn in fns.values():
            time.sleep(gap_s)
            fn()
    for name, fn in fns.items():
        time.sleep(gap_s)
        fn()
        inner[name], one = calibrate(fn, sample_s)
        rewarm[name] = one < rewarm_below_s
        per_round += (inner[name] + rewarm[name]) * one + gap_s
    rounds = int(np.clip(budget_s / max(per_round, 1e-9), min_repeats, max_repeats))
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(gap_s)
            if rewarm[name]:
                fn()
            k = inner[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            times[name].append((time.perf_counter() - t0) / k)
    return times


def median(ts: list[float]) -> float:
    return statistics.median(ts)


def spread(ts: list[float]) -> float:
    """Interquartile range relative to the median (0.1 = the middle half of the runs lies
    within 10% of the median's size)."""
    if len(ts) < 4:
        return (max(ts) - min(ts)) / statistics.median(ts)
    q = statistics.quantiles(ts, n=4)
    return (q[2] - q[0]) / statistics.median(ts)


def fmt_time(s: float) -> str:
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} us"


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "n/a"
    return f"{b / 2**20:.0f} MiB" if b >= 2**20 else f"{b / 2**10:.0f} KiB"


# ----------------------------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------------------------
def tracemalloc_peak(fn: Callable[[], object]) -> int:
    """Bytes allocated through Python's allocators (NumPy reports its array buffers to
    tracemalloc) at the peak of one call of ``fn``, above what was live when it started."""
    was = tracemalloc.is_tracing()
    if not was:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    if not was:
        tracemalloc.stop()
    return peak - base


def proc_status_kb(field: str) -> int | None:
    """A field of /proc/self/status in kB (VmRSS, VmHWM), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_step_peak(fn: Callable[[], object]) -> int | None:
    """Peak resident memory of one call of ``fn`` above the resident memory before it, in
    bytes, from the kernel's counters (every allocator counts: NumPy, PyTorch, BLAS, oneDNN).
    Meant for a fresh process, where no earlier step left freed memory in the allocators."""
    if not reset_peak_rss():
        return None
    before = proc_status_kb("VmRSS")
    fn()
    peak = proc_status_kb("VmHWM")
    if before is None or peak is None:
        return None
    return (peak - before) * 1024


# ----------------------------------------------------------------------------------------
# RESULTS.md
# ----------------------------------------------------------------------------------------
def _block(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"


def update_results(section: str, template: str, blocks: dict[str, str],
                   path: Path = RESULTS) -> None:
    """Replace the marked blocks ``<!-- bench:NAME:begin -->...<!-- bench:NAME:end -->`` of
    ``section`` (a '## ' heading) in RESULTS.md with new text, keeping everything else
    (other sections, hand-written text of this one). A missing section is appended from
    ``template`` (which holds the markers); a missing block is appended to the section."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find(section)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + template.rstrip("\n") + "\n"
        start = text.find(section)
    end = text.find("\n## ", start + len(section))
    end = len(text) if end < 0 else end + 1
    body = text[start:end]
    for name, content in blocks.items():
        begin, finish = _block(name)
        new = f"{begin}\n{content.rstrip()}\n{finish}"
        i = body.find(begin)
        j = body.find(finish, i) if i >= 0 else -1
        if i >= 0 and j >= 0:
            body = body[:i] + new + body[j + len(finish):]
        else:
            body = body.rstrip("\n") + "\n\n" + new + "\n"
    if not body.endswith("\n\n") and end < len(text):
        body = body.rstrip("\n") + "\n\n"
    text = text[:start] + body + text[end:]
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_block(section: str, name: str, path: Path = RESULTS) -> str | None:
    """The current text of a marked block of ``section`` in RESULTS.md, or None."""
    if not path.exists():
        return None
    text = path.read_text()
    start = text.find(section)
    if start < 0:
        return None
    end = text.find("\n## ", start + len(section))
    body = text[start:] if end < 0 else text[start:end]
    begin, finish = _block(name)
    i = body.find(begin)
    j = body.find(finish, i) if i >= 0 else -1
    if i < 0 or j < 0:
        return None
    return body[i + len(begin):j].strip("\n")


def block_markers(name: str) -> str:
    """An empty marked block, for section templates."""
    begin, finish = _block(name)
    return f"{begin}\n(not run yet)\n{finish}"
