"""``cnnkit quantize MODEL --calibrate DATASET [--method entropy] --out q.cnnkit``: int8
post-training quantization of a saved model, calibrated on the data set's first training
images, with a progress bar and a before / after table (file size: the float model saved
without optimizer state against the int8 file; test accuracy; batch-1 latency and batch-128
time per image, float32 and int8 timed alternately)."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import checks
from .data import check_source, data_shape, load_dataset
from .errors import UsageError, about
from .options import int_in

METHODS = ("minmax", "percentile", "entropy", "mse")


def add_parser(sub: Any, func: Any) -> None:
    """The ``quantize`` subcommand's options."""
    q = sub.add_parser("quantize", help="int8 post-training quantization of a saved model, "
                       "calibrated on a data set")
    q.add_argument("model", help="a .cnnkit model file")
    q.add_argument("--calibrate", required=True, metavar="DATASET",
                   help="data set whose first training images calibrate the ranges "
                        "(mnist5k, fashion-mnist, mnist or an image folder)")
    q.add_argument("--data-dir", help="the folder holding the Fashion-MNIST/MNIST IDX files")
    q.add_argument("--method", choices=METHODS, default="percentile")
    q.add_argument("--samples", type=int_in(1, 1_000_000), default=512,
                   help="calibration images (default 512)")
    q.add_argument("--per-tensor", action="store_true",
                   help="one weight scale per layer instead of per output channel")
    q.add_argument("--activations", choices=("uint8", "int8"), default="uint8")
    q.add_argument("--weight-bits", type=int, choices=(7, 8), default=7,
                   help="weight codes -63..63 (7, default: exact in the AVX2 byte kernel) or "
                        "-127..127 (8)")
    q.add_argument("--keep-float", nargs="+", default=[], metavar="LAYER",
                   help="layers to keep in float32")
    q.add_argument("--out", required=True, help="the int8 model file to write")
    q.set_defaults(func=func)


def _latencies(fa: Any, fb: Any, x: np.ndarray, repeats: int) -> tuple[float, float]:
    """Median seconds of fa(x) and fb(x), timed alternately (load falls on both alike)."""
    fa(x)
    fb(x)
    ta, tb = [], []
    for _ in range(repeats):
        for fn, ts in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            fn(x)
            ts.append(time.perf_counter() - t0)
    return float(np.median(ta)), float(np.median(tb))


def _measure(model: Any, q: Any, xv: np.ndarray, yv: np.ndarray) -> tuple[dict, dict]:
    """(float32, int8): test accuracy, batch-1 latency, batch-128 time per image."""
    from ..deploy import InferenceEngine

    before = {"accuracy": float(np.mean(model.predict(xv, batch_size=256).argmax(-1) == yv))}
    after = {"accuracy": float(np.mean(q.predict(xv, batch_size=256).argmax(-1) == yv))}
    engine = InferenceEngine(model)  # the float model's own plan, as q runs its int8 plan
    before["batch1"], after["batch1"] = _latencies(engine, q, xv[:1], 21)
    n = min(128, len(xv))
    t_f, t_q = _latencies(engine, q, xv[:n], 5)
    before["batch128"], after["batch128"] = t_f / n, t_q / n
    return before, after


def _table(before: dict, after: dict, sizes: tuple[int, int], n_test: int) -> str:
    rows = [("file size (weights)", f"{sizes[0] / 1024:.0f} KiB", f"{sizes[1] / 1024:.0f} KiB",
             f"{sizes[0] / sizes[1]:.2f}x smaller"),
            (f"test accuracy ({n_test} images)", f"{before['accuracy']:.2%}",
             f"{after['accuracy']:.2%}",
             f"{100 * (after['accuracy'] - before['accuracy']):+.2f} points"),
            ("latency, batch 1", f"{before['batch1'] * 1e3:.2f} ms",
             f"{after['batch1'] * 1e3:.2f} ms", f"{before['batch1'] / after['batch1']:.2f}x"),
            ("time per image, batch 128", f"{before['batch128'] * 1e6:.0f} us",
             f"{after['batch128'] * 1e6:.0f} us",
             f"{before['batch128'] / after['batch128']:.2f}x")]
    lines = [f"{'':<28}{'float32':>12}{'int8':>12}   change"]
    lines += [f"{a:<28}{b:>12}{c:>12}   {d}" for a, b, c, d in rows]
    return "\n".join(lines)


def cmd_quantize(args: argparse.Namespace) -> int:
    from ..deploy import quantize
    from ..train.progress import Progbar

    model = checks.load_trained(args.model)
    out = Path(args.out)
    checks.check_out_dir(out.parent if str(out.parent) else Path("."))
    kind = check_source(args.calibrate, args.data_dir)
    h, w, c = checks.image_input(model, args.model)
    checks.check_fits((h, w, c), data_shape(kind, None, None), model.name, args.calibrate,
                      args.model)
    names = {la.name for la in model.layers}
    unknown = [n for n in args.keep_float if n not in names]
    if unknown:
        raise UsageError(f"--keep-float: model '{model.name}' has no layer {unknown[0]!r}")
    (xt, _), (xv, yv), _ = load_dataset(args.calibrate, args.data_dir)
    calib = xt[:args.samples].astype(np.float32)
    bar = Progbar(None, unit_name="batch")
    print(f"calibrating {model.name} on {len(calib)} {args.calibrate} images "
          f"({args.method}), then converting to int8")

    def progress(done: int, total: int) -> None:
        bar.target = total
        bar.update(done)

    q = quantize(model, calib, method=args.method, per_channel=not args.per_tensor,
                 activations=args.activations, keep_float=args.keep_float, batch_size=128,
                 progress=progress, weight_bits=args.weight_bits)
    with about(f"--out {out}"):
        q.save(out)
    xv = xv.astype(np.float32)
    before, after = _measure(model, q, xv, yv)
    with tempfile.TemporaryDirectory() as tmp:  # float32 weights alone: no optimizer state
        model.save(Path(tmp) / "float.cnnkit")
        sizes = (os.path.getsize(Path(tmp) / "float.cnnkit"), os.path.getsize(out))
    print(_table(before, after, sizes, len(yv)))
    print(f"{len(q.int_layers)} layers run in int8; wrote {out}")
    return 0
