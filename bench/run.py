"""Workload benchmark: cnnkit against PyTorch on the same CPU, the same models, the same
weights and the same inputs.

    python -m bench [--quick] [--only W1,W3] [--no-write] [--no-mem]
    python -m bench --profile W1,W3        # cProfile of cnnkit's training step
    python -m bench --w6 [--only W6]       # time to 91% test accuracy on Fashion-MNIST (long)

For each workload the cnnkit model (channels-last, float32) and its PyTorch twin (NCHW,
``torch.set_num_threads(os.cpu_count())``) get the same weights; their logits (and, for models
without dropout, training loss and first-layer gradient) are compared first, so that the
same computation is timed. Then the steps are timed alternately (cnnkit, PyTorch, cnnkit,
PyTorch, ...) after a warm-up, and medians are reported with the ratio cnnkit / PyTorch,
the achieved GFLOP/s (2 x multiply-adds of the conv and dense layers; a training step counts
3 x the forward pass) next to NumPy's float32 2048x2048 matmul rate measured in the same run,
and the peak memory of one step. Results go to the section "## Workloads (python -m bench)"
of bench/RESULTS.md (only the marked blocks; other sections and hand-written text are kept).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import common as C
from . import workloads as W

SECTION = "## Workloads (python -m bench)"
REPO = Path(__file__).resolve().parent.parent
FASHION_DIR = REPO.parent / "shared" / "datasets" / "fashion-mnist"
TEMPLATE = f"""{SECTION}

{C.block_markers("workloads")}

### Time to accuracy: Fashion-MNIST recipe (python -m bench --w6)

{C.block_markers("w6")}

### Where the time goes (python -m bench --profile W1,W3)

{C.block_markers("profile-W1")}

{C.block_markers("profile-W3")}
"""


def _torch() -> Any:
    """torch, with ``os.cpu_count()`` threads (or ``--torch-threads``, passed on to the
    memory-probe subprocesses as BENCH_TORCH_THREADS)."""
    import torch

    n = int(os.environ.get("BENCH_TORCH_THREADS") or os.cpu_count() or 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch


# ----------------------------------------------------------------------------------------
# the timed steps
# ----------------------------------------------------------------------------------------
def cnnkit_train_step(case: W.Case) -> Callable[[], None]:
    """forward (training mode), cross-entropy, backward, SGD(lr 0.01, momentum 0.9) update."""
    from cnnkit.train.losses import CrossEntropyLoss
    from cnnkit.train.optimizers import SGD

    model, x, y = case.ck, case.x, case.y
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = CrossEntropyLoss()

    def step() -> None:
        loss = criterion(model(x, training=True), y)
        loss.backward()
        opt.step()
        opt.zero_grad()

    return step


def cnnkit_infer_call(case: W.Case) -> Callable[[], Any]:
    import cnnkit

    model, x = case.ck, case.x

    def infer() -> Any:
        with cnnkit.no_grad():
            return model(x, training=False)

    return infer


def cnnkit_infer_predict(case: W.Case) -> Callable[[], Any]:
    model, x, n = case.ck, case.x, case.batch
    return lambda: model.predict(x, batch_size=n)


def torch_train_step(case: W.Case) -> Callable[[], None]:
    torch = _torch()
    import torch.nn.functional as F  # noqa: N812

    model, x, y = case.pt, case.xt, case.yt
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()

    return step


def torch_infer(case: W.Case) -> Callable[[], Any]:
    torch = _torch()
    model, x = case.pt, case.xt

    def infer() -> Any:
        with torch.inference_mode():
            return model(x)

    return infer


def randomize_bn(pt: Any, seed: int = 1) -> None:
    """Give every BatchNorm2d non-trivial statistics and affine weights, so that the logits
    compared in inference mode exercise them (fresh ones are 0/1, nearly the identity)."""
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in pt.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)


# ----------------------------------------------------------------------------------------
# agreement
# ----------------------------------------------------------------------------------------
def _conv_pairs(ck: Any, pt: Any) -> list[tuple[Any, Any]]:
    """(cnnkit Conv2D layer, PyTorch Conv2d module) pairs: by name where PyTorch has a module
    of the layer's name (functional models), else in order (sequential ones)."""
    import torch

    convs = [la for la in W._leaf_layers(ck) if type(la).__name__ == "Conv2D"]
    named = dict(pt.named_modules())
    if all(la.name in named for la in convs):
        return [(la, named[la.name]) for la in convs]
    mods = [m for m in pt.modules() if isinstance(m, torch.nn.Conv2d)]
    return list(zip(convs, mods, strict=True))


def _train_grads(ck: Any, pt: Any, x: np.ndarray, xt: Any, y: np.ndarray, yt: Any
                 ) -> tuple[float, float, list[np.ndarray], list[np.ndarray]]:
    """One training-mode forward + backward in both frameworks (dropout off): (cnnkit loss,
    PyTorch loss, cnnkit conv kernel grads, PyTorch's in cnnkit layout)."""
    import torch.nn.functional as F  # noqa: N812

    from cnnkit.train.losses import CrossEntropyLoss

    torch = _torch()
    drops = [la for la in W._leaf_layers(ck) if type(la).__name__ == "Dropout"]
    rates = [la.rate for la in drops]
    for la in drops:
        la.rate = 0.0
    pt.train()
    tdrops = [m for m in pt.modules() if isinstance(m, torch.nn.Dropout)]
    for m in tdrops:
        m.eval()
    try:
        loss_c = CrossEntropyLoss()(ck(x, training=True), y)
        loss_c.backward()
        loss_t = F.cross_entropy(pt(xt), yt)
        loss_t.backward()
        pairs = _conv_pairs(ck, pt)
        gc = [np.asarray(la.weights[0].grad, np.float64) for la, _ in pairs]
        gt = [m.weight.grad.double().numpy().transpose(2, 3, 1, 0) for _, m in pairs]
    finally:
        for la, r in zip(drops, rates, strict=True):
            la.rate = r
        for p in ck.parameters():
            p.grad = None
        pt.zero_grad()
    return float(loss_c.data), float(loss_t.item()), gc, gt


def _worst_rel(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(u - v).max() / max(np.abs(v).max(), 1e-300))
               for u, v in zip(a, b, strict=True))


def _to_float64(ck: Any) -> None:
    """Make every layer of a cnnkit model compute in float64 (weights cast)."""
    for la in W._leaf_layers(ck):
        la.dtype = np.dtype(np.float64)
        for w in la.weights:
            w.data = w.data.astype(np.float64)


def agreement(case: W.Case, w: W.Workload) -> dict[str, Any]:
    """The same computation? Max abs difference of the logits in inference mode (float32),
    and for a training step (dropout switched off) the loss and the conv kernel gradients:
    cnnkit float32 and PyTorch float32 each against PyTorch float64 (float32 rounding alone),
    and cnnkit float64 against PyTorch float64 (the maths itself)."""
    import copy

    import cnnkit

    torch = _torch()
    case.pt.eval()
    with cnnkit.no_grad():
        a = np.asarray(case.ck(case.x, training=False).data)
    with torch.inference_mode():
        b = case.pt(case.xt).numpy()
    out: dict[str, Any] = {"logits_max_abs_diff": float(np.abs(a - b).max()),
                           "logits_max_abs": float(np.abs(b).max())}
    if "train" not in w.modes:
        return out
    pt64 = copy.deepcopy(case.pt).double()
    xt64 = case.xt.double()
    lc, lt, gc, gt = _train_grads(case.ck, case.pt, case.x, case.xt, case.y, case.yt)
    _, l64, _, g64 = _train_grads(case.ck, pt64, case.x, xt64, case.y, case.yt)
    out["loss_diff"] = abs(lc - lt)
    out["grad32_ck"] = _worst_rel(gc, g64)
    out["grad32_pt"] = _worst_rel(gt, g64)
    fresh = W.make_case(w, frameworks=("cnnkit",))  # a float64 copy of the same cnnkit model
    W.copy_torch_to_cnnkit(fresh.ck, case.pt)
    _to_float64(fresh.ck)
    lc64, _, gc64, _ = _train_grads(fresh.ck, pt64, case.x.astype(np.float64), xt64, case.y,
                                    case.yt)
    out["loss_diff64"] = abs(lc64 - l64)
    out["grad64"] = _worst_rel(gc64, g64)
    return out


# ----------------------------------------------------------------------------------------
# memory, in a fresh process per framework and step
# ----------------------------------------------------------------------------------------
def mem_probe(spec: str) -> dict[str, Any]:
    """Run in a fresh process: build one framework's model for workload:mode, then measure
    the peak RSS of its first step above the RSS before it."""
    key, mode, fw = spec.split(":")
    w = W.BY_KEY[key]
    if fw == "torch":
        _torch()
    case = W.make_case(w, frameworks=(fw,))
    if fw == "torch":
        (case.pt.train if mode == "train" else case.pt.eval)()
        fn = torch_train_step(case) if mode == "train" else torch_infer(case)
    else:
        fn = {"train": cnnkit_train_step, "infer": cnnkit_infer_call,
              "predict": cnnkit_infer_predict}[mode](case)
    return {"spec": spec, "rss_peak": C.rss_step_peak(fn)}


def run_mem_probe(spec: str) -> int | None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    try:
        res = subprocess.run([sys.executable, "-m", "bench.run", "--mem-probe", spec],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
                             check=False)
    except subprocess.TimeoutExpired:
        return None
    for line in res.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line).get("rss_peak")
    print(f"  (memory probe {spec} failed: {res.stderr.strip().splitlines()[-1:]})")
    return None


# ----------------------------------------------------------------------------------------
# one workload
# ----------------------------------------------------------------------------------------
def bench_workload(w: W.Workload, opts: argparse.Namespace, peak: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    others = None
    if opts.wait_quiet > 0:
        others = C.wait_quiet(0.5, opts.wait_quiet)
    load = C.load_probe()
    if others is not None:
        load["others"] = others
    case = W.make_case(w)
    randomize_bn(case.pt)
    W.copy_torch_to_cnnkit(case.ck, case.pt)
    agree = agreement(case, w)
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
    timing = dict(warmup=2, min_repeats=3 if opts.quick else 5,
                  max_repeats=7 if opts.quick else 21, budget_s=4.0 if opts.quick else 12.0)
    rows = []
    fwd_flop = 2.0 * case.macs * w.batch
    for mode in w.modes:
        if mode == "train":
            case.pt.train()
            fns = {"cnnkit": cnnkit_train_step(case), "torch": torch_train_step(case)}
            flop = 3 * fwd_flop
        else:
            case.pt.eval()
            fns = {"cnnkit": cnnkit_infer_call(case),
                   "cnnkit predict": cnnkit_infer_predict(case), "torch": torch_infer(case)}
            flop = fwd_flop
        times, worst = {}, float("inf")
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
        med = {k: C.median(v) for k, v in times.items()}
        variants = [("cnnkit", "train" if mode == "train" else "infer: no_grad call")]
        if mode != "train":
            variants.append(("cnnkit predict", "infer: model.predict"))
        tms = {name: C.tracemalloc_peak(fns[name]) for name, _ in variants}
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
            rows.append(row)
            print(f"  {label:<22} cnnkit {C.fmt_time(row['cnnkit_s']):>9} | PyTorch "
                  f"{C.fmt_time(row['torch_s']):>9} | ratio {row['ratio']:6.2f} (of minima "
                  f"{row['ratio_min']:.2f}) | GFLOP/s "
                  f"{row['cnnkit_gflops']:6.1f} vs {row['torch_gflops']:6.1f} "
                  f"(matmul {peak:.0f}) | {row['rounds']} rounds, spread "
                  f"{row['spread_cnnkit']:.0%}/{row['spread_torch']:.0%}", flush=True)
        if not opts.no_mem:
            pt_mem = run_mem_probe(f"{w.key}:{mode}:torch")
            for row in rows:
                if row["mode_key"] != mode:
                    continue
                probe = "predict" if row["variant"] == "cnnkit predict" else mode
                row["rss_cnnkit"] = run_mem_probe(f"{w.key}:{probe}:cnnkit")
                row["rss_torch"] = pt_mem
                print(f"  peak memory of one step, {row['mode']}: cnnkit "
                      f"{C.fmt_bytes(row['rss_cnnkit'])} RSS ({C.fmt_bytes(row['tracemalloc'])} "
                      f"NumPy, tracemalloc) | PyTorch {C.fmt_bytes(pt_mem)} RSS", flush=True)
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return {"workload": w.key, "title": w.title, "source": case.source, "macs": case.macs,
            "agreement": agree, "rows": rows, "load": load}


# ----------------------------------------------------------------------------------------
# profile
# ----------------------------------------------------------------------------------------
def _short(key: tuple[str, int, str]) -> str:
    file, line, name = key
    if file == "~":
        m = re.match(r"<built-in method (?:[\w.]*\.)?(\w+)>", name)
        if m:
            return m.group(1)
        m = re.match(r"<method '(\w+)' of '([\w.]+)' objects>", name)
        if m:
            return f"{m.group(2).rsplit('.', 1)[-1]}.{m.group(1)}"
        return name
    path = Path(file)
    parts = path.parts
    if "cnnkit" in parts:
        rel = "/".join(parts[len(parts) - parts[::-1].index("cnnkit"):])
    elif "numpy" in parts:
        rel = "numpy/" + "/".join(parts[len(parts) - parts[::-1].index("numpy"):])
    else:
        rel = path.name
    return f"{rel}:{line} {name}"


def profile(w: W.Workload, steps: int = 3, top: int = 20) -> tuple[str, str]:
    """cProfile of cnnkit's step (training where the workload trains, else inference):
    (text for the terminal, markdown for RESULTS.md)."""
    case = W.make_case(w, frameworks=("cnnkit",))
    mode = "train" if "train" in w.modes else "infer"
    fn = cnnkit_train_step(case) if mode == "train" else cnnkit_infer_call(case)
    for _ in range(2):
        fn()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    plain = (time.perf_counter() - t0) / steps
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        fn()
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    # "self + direct C calls": a Python function's own time plus the time of the built-in
    # (C) functions it called directly -- so a kernel's matmul counts for the kernel.
    attributed: dict[Any, float] = defaultdict(float)
    c_calls: dict[Any, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for key, (_cc, _nc, tt, _ct, callers) in stats.items():
        if key[0] != "~":
            attributed[key] += tt
            continue
        for caller, (_c2, _n2, tt2, _ct2) in callers.items():
            attributed[caller] += tt2
            c_calls[caller][_short(key)] += tt2
    per = steps
    raw = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    att = sorted(attributed.items(), key=lambda kv: -kv[1])[:top]
    head = (f"{w.key} {w.title}: cnnkit {mode} step {C.fmt_time(plain)} unprofiled, "
            f"{C.fmt_time(total / per)} under cProfile ({steps} steps profiled)")
    lines = [head, "", "top functions by tottime (per step):"]
    md = [f"**{w.key} {w.title}, cnnkit {mode} step** ({C.fmt_time(plain)} per step "
          f"unprofiled, {C.fmt_time(total / per)} under cProfile; {steps} steps profiled; "
          f"{time.strftime('%Y-%m-%d %H:%M')}). cProfile sees the calling thread only: the "
          f"kernel pool's worker thread runs its share of the blocks unseen, and the calling "
          f"thread's wait for it shows as the pool line.", ""]
    for i, (key, (_cc, nc, tt, _ct, _callers)) in enumerate(raw, 1):
        lines.append(f"{i:3d} {tt / per * 1e3:8.1f} ms {tt / total:6.1%} {nc // per:6d} "
                     f"{_short(key)}")
    lines += ["", "Python functions by own time + the NumPy C calls they make directly:"]
    md += ["By module (own time of its Python functions, with the NumPy ufuncs and C "
                   "calls they make -- cProfile books a ufunc such as `np.matmul` to its "
                   "caller):", "", "| module | time/step | share |", "|---|---|---|"]
    modules: dict[str, float] = defaultdict(float)
    for key, tt in attributed.items():
        name = _short(key).split(":", 1)[0]
        if name in ("threading.py", "thread.py", "queue.py"):
            name = "waiting for / handing work to the kernel thread pool"
        modules[name] += tt
    mod_rows = sorted(modules.items(), key=lambda kv: -kv[1])
    for name, tt in mod_rows[:10]:
        md.append(f"| `{name}` | {tt / per * 1e3:.1f} ms | {tt / total:.1%} |")
    rest = sum(tt for _, tt in mod_rows[10:])
    md.append(f"| (everything else) | {rest / per * 1e3:.1f} ms | {rest / total:.1%} |")
    md += ["", "Top functions (own time plus their direct C calls):", "",
           "| # | function | time/step | share | main C calls |", "|---|---|---|---|---|"]
    for i, (key, tt) in enumerate(att, 1):
        calls = sorted(c_calls[key].items(), key=lambda kv: -kv[1])[:3]
        cs = ", ".join(f"{n} {v / per * 1e3:.1f} ms" for n, v in calls if v / total > 0.002)
        lines.append(f"{i:3d} {tt / per * 1e3:8.1f} ms {tt / total:6.1%}  {_short(key)}"
                     + (f"  [{cs}]" if cs else ""))
        if i <= 15:
            md.append(f"| {i} | `{_short(key)}` | {tt / per * 1e3:.1f} ms | {tt / total:.1%} "
                      f"| {cs} |")
    lines += ["", "by module:"] + [f"{tt / per * 1e3:8.1f} ms {tt / total:6.1%}  {name}"
                                   for name, tt in mod_rows[:12]]
    return "\n".join(lines), "\n".join(md)


# ----------------------------------------------------------------------------------------
# W6: time to accuracy
# ----------------------------------------------------------------------------------------
def w6(opts: argparse.Namespace) -> dict[str, Any]:
    """The README's Fashion-MNIST recipe (cli DEFAULTS["fashion-mnist"]: mnist_cnn, Adam lr
    2e-3 with cosine decay over all steps, batch 128, 10 epochs, flip + pad-2 crop) in cnnkit
    (``model.fit``) and in PyTorch (a plain loop), from the same initial weights and the same
    NumPy batches, epochs alternating; test accuracy after every epoch (evaluation time kept
    out of the training time). Reports the training time until 91% test accuracy."""
    torch = _torch()
    import torch.nn.functional as F  # noqa: N812

    from cnnkit import cli, data, datasets, zoo
    from cnnkit import random as crandom
    from cnnkit.data import BatchIterator
    from cnnkit.train import losses, optimizers, schedules

    recipe = dict(cli.DEFAULTS["fashion-mnist"])
    epochs = opts.w6_epochs or recipe["epochs"]
    target, seed, bs = opts.w6_target, 0, recipe["batch_size"]
    (xt, yt), (xv, yv) = datasets.fashion_mnist.load_data(data_dir=str(FASHION_DIR))
    xt = xt[..., None].astype(np.float32)
    xv = xv[..., None].astype(np.float32)
    yt, yv = yt.astype(np.int64), yv.astype(np.int64)
    notes = []
    try:
        try:
            aug = cli.augmentation(recipe["augment"], (28, 28, 1))
        except TypeError:  # older signature augmentation(kind)
            aug = cli.augmentation(recipe["augment"])
    except (TypeError, ValueError) as e:
        # cli's "flip" recipe builds RandomCrop(None, None, padding=2) (keep the size), which
        # RandomCrop does not accept at present; the same augmentation spelled out:
        notes.append(f"cli.augmentation({recipe['augment']!r}) failed ({type(e).__name__}: "
                     f"{e}); used RandomFlip('horizontal') + RandomCrop(28, 28, padding=2)")
        aug = data.Compose([data.RandomFlip("horizontal"), data.RandomCrop(28, 28, padding=2)])

    def transform(xb: np.ndarray, yb: np.ndarray, rng: np.random.Generator) -> Any:
        return aug(xb, yb, rng=rng)

    batches_ck = BatchIterator(xt, yt, batch_size=bs, shuffle=True, seed=seed,
                               transform=transform)
    batches_pt = BatchIterator(xt, yt, batch_size=bs, shuffle=True, seed=seed,
                               transform=transform)
    steps = len(batches_ck) * epochs
    crandom.seed(seed)
    ck = zoo.get(recipe["model"], input_shape=(28, 28, 1), classes=10)
    pt = W.torch_model(recipe["model"])
    W.cnnkit_to_torch(ck, pt)
    # same initial weights: check on a batch (inference mode)
    import cnnkit

    pt.eval()
    with cnnkit.no_grad():
        a = np.asarray(ck(xv[:64], training=False).data)
    with torch.inference_mode():
        b = pt(torch.from_numpy(xv[:64].transpose(0, 3, 1, 2).copy())).numpy()
    init_diff = float(np.abs(a - b).max())
    print(f"W6 Fashion-MNIST recipe {recipe}, target {target:.0%}, up to {epochs} epochs; "
          f"initial logits max |diff| {init_diff:.1e}", flush=True)
    for n in notes:
        print("  note:", n)
    sched = schedules.CosineDecay(recipe["lr"], steps)
    ck.compile(optimizer=optimizers.Adam(learning_rate=sched),
               loss=losses.SparseCategoricalCrossentropy(from_logits=True),
               metrics=["accuracy"], seed=seed)
    opt_t = torch.optim.Adam(pt.parameters(), lr=recipe["lr"], betas=(0.9, 0.999), eps=1e-7)
    xv_t = torch.from_numpy(np.ascontiguousarray(xv.transpose(0, 3, 1, 2)))

    def eval_ck() -> float:
        p = ck.predict(xv, batch_size=256)
        return float((p.argmax(-1) == yv).mean())

    def eval_pt() -> float:
        pt.eval()
        with torch.inference_mode():
            p = torch.cat([pt(xv_t[i:i + 256]) for i in range(0, len(xv_t), 256)])
        return float((p.argmax(1).numpy() == yv).mean())

    state = {"cnnkit": {"train_s": 0.0, "eval_s": 0.0, "acc": [], "reached": None},
             "torch": {"train_s": 0.0, "eval_s": 0.0, "acc": [], "reached": None}}
    it = 0
    for epoch in range(epochs):
        for fw in ("cnnkit", "torch"):
            s = state[fw]
            if s["reached"] is not None and not opts.w6_full:
                continue
            if opts.wait_quiet > 0:
                C.wait_quiet(0.5, min(opts.wait_quiet, 30.0))
            t0 = time.perf_counter()
            if fw == "cnnkit":
                ck.fit(batches_ck, epochs=epoch + 1, initial_epoch=epoch, verbose=0)
            else:
                pt.train()
                it = epoch * len(batches_pt)
                for xb, yb in batches_pt:
                    for g in opt_t.param_groups:
                        g["lr"] = sched(it)
                    xb_t = torch.from_numpy(np.ascontiguousarray(xb.transpose(0, 3, 1, 2)))
                    loss = F.cross_entropy(pt(xb_t), torch.from_numpy(yb))
                    opt_t.zero_grad()
                    loss.backward()
                    opt_t.step()
                    it += 1
            s["train_s"] += time.perf_counter() - t0
            t1 = time.perf_counter()
            acc = eval_ck() if fw == "cnnkit" else eval_pt()
            s["eval_s"] += time.perf_counter() - t1
            s["acc"].append(acc)
            if s["reached"] is None and acc >= target:
                s["reached"] = {"epoch": epoch + 1, "train_s": s["train_s"]}
            print(f"  epoch {epoch + 1:2d} {fw:<7} test acc {acc:.4f}  train "
                  f"{s['train_s']:7.1f} s  eval {s['eval_s']:5.1f} s", flush=True)
        if all(s["reached"] is not None for s in state.values()) and not opts.w6_full:
            break
    return {"recipe": recipe, "target": target, "epochs": epochs, "init_diff": init_diff,
            "notes": notes, "state": state, "steps_per_epoch": len(batches_ck)}


# ----------------------------------------------------------------------------------------
# RESULTS.md
# ----------------------------------------------------------------------------------------
def render_workloads(info: dict[str, str], peak: tuple[float, float], results: list[dict],
                     quick: bool, old: str | None = None, argv: str = "") -> str:
    """The workloads block. Workloads not in ``results`` keep their rows from ``old`` (the
    block as it was), so ``--only W3`` updates W3's rows alone."""
    main_rows: dict[str, list[str]] = {}
    agree_rows: dict[str, str] = {}
    for res in results:
        for r in res["rows"]:
            ck_mem = f"{C.fmt_bytes(r.get('rss_cnnkit'))} / {C.fmt_bytes(r['tracemalloc'])}"
            pt_mem = C.fmt_bytes(r.get("rss_torch"))
            main_rows.setdefault(res["workload"], []).append(
                f"| {r['workload']} {r['title']} | {r['mode']} | {C.fmt_time(r['cnnkit_s'])} | "
                f"{C.fmt_time(r['torch_s'])} | **{r['ratio']:.2f}** | {r['ratio_min']:.2f} | "
                f"{r['cnnkit_gflops']:.1f} ({r['cnnkit_gflops'] / peak[0]:.0%}) | "
                f"{r['torch_gflops']:.1f} | {ck_mem} | {pt_mem} | {r['rounds']}, "
                f"{r['spread_cnnkit']:.0%} / {r['spread_torch']:.0%} |")
    for res in results:
        a = res["agreement"]
        if "loss_diff" in a:
            rest = (f"{a['loss_diff']:.1e} / {a['loss_diff64']:.1e} | {a['grad32_ck']:.1e} | "
                    f"{a['grad32_pt']:.1e} | {a['grad64']:.1e}")
        else:
            rest = "(inference only) | | |"
        ld = res.get("load", {})
        cond = (f"{ld.get('others', float('nan')):.1f}, {ld.get('load', float('nan')):.1f}, "
                f"{ld.get('numpy_gflops', 0):.0f} / {ld.get('torch_gflops', 0):.0f}")
        agree_rows[res["workload"]] = (
            f"| {res['workload']} | {res['source']} | {res['macs'] / 1e6:.1f} | "
            f"{a['logits_max_abs_diff']:.1e} ({a['logits_max_abs']:.2f}) | {rest} | {cond} |")
    kept = []
    if old:
        for w in W.WORKLOADS:
            if w.key in agree_rows:
                continue
            mains = [ln for ln in old.splitlines() if ln.startswith(f"| {w.key} ")
                     and not ln.startswith(f"| {w.key} |")]
            agree = [ln for ln in old.splitlines() if ln.startswith(f"| {w.key} |")]
            if mains and agree:
                main_rows[w.key], agree_rows[w.key] = mains, agree[0]
                kept.append(w.key)
    when = time.strftime("%Y-%m-%d %H:%M")
    ran = ", ".join(r["workload"] for r in results)
    lines = [f"Generated by `python -m bench{argv}` on {when} ({ran})"
             + (f"; rows of {', '.join(kept)} are kept from an earlier run (see their load "
                f"column)" if kept else "") + ". Machine:", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += ["", f"Reference rate: NumPy float32 2048x2048 matmul **{peak[0]:.0f} GFLOP/s** "
              f"(median; best {peak[1]:.0f}), measured at the start and the end of the run (the "
              f"quieter one).", "",
              "| workload | step | cnnkit | PyTorch | cnnkit / PyTorch | (of minima) | cnnkit "
              "GFLOP/s (% of matmul) | PyTorch GFLOP/s | peak mem cnnkit (RSS / NumPy) | peak mem "
              "PyTorch (RSS) | rounds, spread cnnkit / PyTorch |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    order = [w.key for w in W.WORKLOADS]
    for key in sorted(main_rows, key=order.index):
        lines += main_rows[key]
    lines += ["", "Same computation? PyTorch's weights are copied into cnnkit (batch-norm "
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
    for key in sorted(agree_rows, key=order.index):
        lines.append(agree_rows[key])
    lines += ["", "How it is measured:", "",
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
    return "\n".join(lines)


def render_w6(res: dict[str, Any]) -> str:
    r = res["recipe"]
    when = time.strftime("%Y-%m-%d %H:%M")
    lines = [f"Generated by `python -m bench --w6` on {when}. Recipe (cli `DEFAULTS"
             f"[\"fashion-mnist\"]`): `{r['model']}`, Adam lr {r['lr']} (eps 1e-7 on both "
             f"sides) with cosine decay over {res['epochs']} epochs x {res['steps_per_epoch']} "
             f"steps, batch {r['batch_size']}, augmentation `{r['augment']}` (NumPy, the same "
             f"`BatchIterator` batches for both), target **{res['target']:.0%}** test accuracy "
             f"(10,000 test images, checked after every epoch; evaluation time is not training "
             f"time). Both start from cnnkit's initial weights (logits max abs diff "
             f"{res['init_diff']:.1e}); cnnkit trains with `model.fit`, PyTorch with a plain "
             f"loop; epochs alternate between the two (each after waiting up to 30 s for the "
             f"other jobs on the machine to go quiet).", ""]
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


def main(argv: list[str] | None = None) -> int:
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
    ap.add_argument("--mem-probe", help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    _tune_malloc()
    if opts.wait_quiet is None:
        opts.wait_quiet = 0.0 if opts.quick else 90.0
    if opts.torch_threads:
        os.environ["BENCH_TORCH_THREADS"] = str(opts.torch_threads)

    if opts.mem_probe:
        print(json.dumps(mem_probe(opts.mem_probe)))
        return 0
    write = not opts.no_write
    if opts.profile:
        chosen, _ = _select(opts.profile)
        blocks = {}
        for w in chosen:
            text, md = profile(w)
            print(text + "\n", flush=True)
            blocks[f"profile-{w.key}"] = md
        if write:
            C.update_results(SECTION, TEMPLATE, blocks)
            print(f"wrote {C.RESULTS}")
        return 0

    chosen, want_w6 = _select(opts.only)
    want_w6 = want_w6 or opts.w6
    if opts.only and not chosen and not want_w6:
        raise SystemExit("bench: nothing to run")
    _torch()
    info = C.machine_info()
    for k, v in info.items():
        print(f"{k:>22}: {v}")
    t_start = time.perf_counter()
    results = []
    peak = (0.0, 0.0)
    if chosen:
        peak = C.matmul_gflops()
        print(f"{'NumPy f32 matmul 2048':>22}: {peak[0]:.0f} GFLOP/s (best {peak[1]:.0f})\n",
              flush=True)
        for w in chosen:
            results.append(bench_workload(w, opts, peak[0]))
        end = C.matmul_gflops()
        print(f"NumPy f32 matmul at the end: {end[0]:.0f} GFLOP/s (start {peak[0]:.0f})")
        peak = max(peak, end)  # the quieter of the two measurements
    blocks = {}
    full = len(chosen) == len(W.WORKLOADS)
    if results:
        print("\nsummary (cnnkit / PyTorch, median time ratio):")
        for res in results:
            for r in res["rows"]:
                print(f"  {r['workload']:<4} {r['mode']:<22} {r['ratio']:6.2f}  (of minima "
                      f"{r['ratio_min']:.2f})")
        argv_s = "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
        blocks["workloads"] = render_workloads(
            info, peak, results, opts.quick, None if full else
            C.read_block(SECTION, "workloads"), argv_s)
    if want_w6:
        res6 = w6(opts)
        blocks["w6"] = render_w6(res6)
        print(blocks["w6"])
    print(f"total {time.perf_counter() - t_start:.0f} s")
    if write and blocks:
        C.update_results(SECTION, TEMPLATE, blocks)
        print(f"wrote {C.RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
