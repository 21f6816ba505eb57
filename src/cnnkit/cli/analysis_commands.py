"""``cnnkit calc``: the layer calculators of :mod:`cnnkit.analysis.calc`, with their steps."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .errors import UsageError


def padding_arg(text: str) -> Any:
    """--padding: 'valid', 'same' or a non-negative integer."""
    if text.lower() in ("valid", "same"):
        return text.lower()
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"--padding must be valid, same or an integer >= 0, "
                                         f"got {text!r}")
    return v


def add_calc(sub: Any, func: Callable, int_type: Callable) -> None:
    """The ``calc`` sub-commands: conv, pool, convtranspose, dense."""
    c = sub.add_parser("calc", help="output size, parameters, multiply-adds, FLOPs and memory "
                       "of one layer, with the formula's steps")
    kinds = c.add_subparsers(dest="layer", metavar="LAYER")
    kinds.required = True
    for name in ("conv", "pool", "convtranspose"):
        k = kinds.add_parser(name, help=f"a 2-D {name} layer on an H W C input")
        k.add_argument("--input", type=int_type, nargs=3, metavar=("H", "W", "C"),
                       required=True)
        k.add_argument("--kernel" if name != "pool" else "--pool", type=int_type, required=True,
                       dest="kernel")
        k.add_argument("--stride", type=int_type, default=None if name == "pool" else 1)
        k.add_argument("--padding", type=padding_arg, default=0)
        if name != "pool":
            k.add_argument("--filters", type=int_type, required=True)
            k.add_argument("--dilation", type=int_type, default=1)
            k.add_argument("--no-bias", action="store_true")
        if name == "conv":
            k.add_argument("--groups", type=int_type, default=1)
        if name == "pool":
            k.add_argument("--kind", choices=("max", "avg"), default="max")
            k.add_argument("--ceil", action="store_true", help="ceil mode (PyTorch)")
        if name == "convtranspose":
            k.add_argument("--output-padding", type=int, default=0)
        k.set_defaults(func=func)
    d = kinds.add_parser("dense", help="a fully connected layer")
    d.add_argument("--input", type=int_type, required=True, metavar="N")
    d.add_argument("--units", type=int_type, required=True)
    d.add_argument("--no-bias", action="store_true")
    d.set_defaults(func=func)


def cmd_calc(args: argparse.Namespace) -> int:
    """Print the steps of one layer's calculation (a configuration with no output: exit 2)."""
    from ..analysis import calc

    try:
        if args.layer == "conv":
            r = calc.conv(args.input, args.filters, args.kernel, args.stride, args.padding,
                          args.dilation, args.groups, not args.no_bias)
        elif args.layer == "pool":
            r = calc.pool(args.input, args.kernel, args.stride, args.padding, args.kind,
                          args.ceil)
        elif args.layer == "convtranspose":
            r = calc.conv_transpose(args.input, args.filters, args.kernel, args.stride,
                                    args.padding, args.output_padding, args.dilation,
                                    not args.no_bias)
        else:
            r = calc.dense(args.input, args.units, not args.no_bias)
    except ValueError as e:
        raise UsageError(f"calc {args.layer}: {e}") from None
    print(r)
    return 0


def add_explain(sub: Any, func: Callable, int_type: Callable) -> None:
    from ..analysis.explain import METHODS

    e = sub.add_parser("explain", help="a PNG of why a saved model classified an image: the "
                       "input, a heat map over it and the top classes")
    e.add_argument("model", help="a .cnnkit model file")
    e.add_argument("image", help="a PNG or JPEG file")
    e.add_argument("--method", choices=METHODS, default="gradcam")
    e.add_argument("--layer", help="layer whose output a CAM reads (default: the last layer "
                   "with a feature map)")
    e.add_argument("--class", dest="class_index", type=int_type_or_zero, default=None,
                   help="class to explain (default: the top class)")
    e.add_argument("--top-k", type=int_type, default=5)
    e.add_argument("--invert", action="store_true",
                   help="invert grayscale images (dark digits on white paper)")
    e.add_argument("--out", help="PNG to write (default: <image name>.<method>.png here)")
    e.set_defaults(func=func)


def int_type_or_zero(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"--class must be an integer >= 0, got {text!r}")
    return v


def cmd_explain(args: argparse.Namespace) -> int:
    """Explain one image with a saved model and write the picture."""
    from pathlib import Path

    import numpy as np

    from ..analysis.explain import CAM_METHODS, default_layer, explain
    from ..analysis.pictures import plot_explanation
    from . import checks
    from .commands import _read_image
    from .errors import about

    model = checks.load_trained(args.model)
    h, w, c = checks.image_input(model, args.model)
    k = checks.class_count(model, args.model)
    if c not in (1, 3):
        raise UsageError(f"{args.model}: model '{model.name}' expects {c}-channel images")
    if args.class_index is not None and args.class_index >= k:
        raise UsageError(f"--class {args.class_index}: model '{model.name}' has {k} classes")
    out = Path(args.out) if args.out else Path(f"{Path(args.image).stem}.{args.method}.png")
    checks.check_out_dir(out.parent if str(out.parent) else Path("."), "--out")
    img = _read_image(args.image, h, w, c)
    if c == 1 and args.invert:
        img = 255 - img
    x = img[None].astype(np.float32)
    layer = args.layer or (default_layer(model) if args.method in CAM_METHODS else None)
    with about(f"explain {args.model}"):
        res = explain(model, x, args.method, layer=layer, class_index=args.class_index)
        probs = model.predict(x)[0]
    if not (np.all(probs >= 0) and abs(float(probs.sum()) - 1) < 1e-3):
        e = np.exp(probs - probs.max())
        probs = e / e.sum()
    names = getattr(model, "class_names", None)
    cls = int(res.classes[0])
    label = names[cls] if names and cls < len(names) else str(cls)
    where = f" at {layer}" if layer else ""
    with about(f"--out {out}"):
        plot_explanation(img, res.maps[0], probs, names, out,
                         f"{args.method}{where}: class {label}", args.top_k)
    print(f"{args.image}: class {label} ({probs[cls]:.3f}); wrote {out}")
    return 0


def add_report(sub: Any, func: Callable, int_type: Callable) -> None:
    r = sub.add_parser("report", help="one HTML page for a training run: curves, confusion "
                       "matrix, per-class accuracy, worst mistakes with Grad-CAM, FLOPs and "
                       "receptive fields")
    r.add_argument("run_dir", help="a folder written by `cnnkit train` (model.cnnkit, "
                   "metrics.json)")
    r.add_argument("--dataset", help="held-out data (default: the run's data set)")
    r.add_argument("--data-dir", help="the folder holding the Fashion-MNIST/MNIST IDX files")
    r.add_argument("--max-images", type=int_type, default=2000,
                   help="held-out images to evaluate (default 2000)")
    r.add_argument("--out", help="HTML file to write (default: RUN_DIR/report.html)")
    r.set_defaults(func=func)


def _run_metrics(run: Any) -> dict:
    import json

    path = run / "metrics.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{path} is not a metrics file written by cnnkit train: {e}") from None
    return data if isinstance(data, dict) else {}


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report of a training run."""
    from pathlib import Path

    from ..analysis.report import report_html, write_report
    from . import checks
    from .commands import _eval_data
    from .errors import about

    run = Path(args.run_dir)
    if not run.is_dir():
        raise UsageError(f"run folder not found: {args.run_dir}")
    model_path = run / "model.cnnkit"
    if not model_path.is_file():
        raise UsageError(f"{args.run_dir} has no model.cnnkit (a folder written by cnnkit "
                         f"train)")
    metrics = _run_metrics(run)
    model = checks.load_trained(str(model_path))
    dataset = args.dataset or metrics.get("dataset") or "mnist5k"
    out = Path(args.out) if args.out else run / "report.html"
    ns = argparse.Namespace(dataset=dataset, data_dir=args.data_dir, model=str(model_path))
    _, (xv, yv), names = _eval_data(ns, model)
    names = getattr(model, "class_names", None) or metrics.get("class_names") or names
    history = metrics.get("history") if isinstance(metrics.get("history"), dict) else {}
    title = f"{model.name} on {dataset}: {run.name}"
    with about(f"report {args.run_dir}"):
        page = report_html(model, history, xv[:args.max_images], yv[:args.max_images],
                           names, title)
    with about(f"--out {out}"):
        write_report(out, page)
    print(f"wrote {out}")
    return 0
