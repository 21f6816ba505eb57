"""The argument parser: every numeric option is checked as it is parsed, so a bad value is
reported (one line, naming the option) before any work starts."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from .errors import UsageError

MAX_SEED = 2**32 - 1  # NumPy's seeds are unsigned 32-bit
MAX_IMAGE_SIDE = 4096
MAX_LR = 10.0


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # one line, status 2
        # "argument --lr: --lr must be ..." -> "--lr must be ..."
        message = re.sub(r"^argument (\S+): (?=\1 )", "", message)
        raise UsageError(f"{self.prog}: error: {message}")


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            what = "a positive integer" if low == 1 else f"an integer in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < low:
            what = "a positive integer" if low == 1 else f"an integer >= {low}"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if v > high:
            raise argparse.ArgumentTypeError(f"expected at most {high:,}, got {text!r}")
        return v

    return parse


def float_in(option: str, low: float, high: float, low_open: bool, high_open: bool
             ) -> Callable[[str], float]:
    """An argparse type: a finite number between low and high (each bound open or closed)."""
    interval = (f"{'>' if low_open else '>='} {low:g} and {'<' if high_open else '<='} "
                f"{high:g}")

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        below = v < low or (low_open and v == low)
        above = v > high or (high_open and v == high)
        if not math.isfinite(v) or below or above:
            raise argparse.ArgumentTypeError(f"{option} must be {interval} (a finite number), "
                                             f"got {text!r}")
        return v

    return parse


positive_int = int_in(1, 10**9)


def _add_train(sub: Any, func: Callable) -> None:
    t = sub.add_parser("train", help="train a model (default: the embedded 5,000 MNIST digits)",
                       description="Train a CNN and write model.cnnkit, metrics.json, "
                       "history.csv and training_curve.png to an output folder.")
    t.add_argument("--model", help="zoo architecture name (see `cnnkit summary --list`) or a "
                   "saved .cnnkit model to continue from (default: the data set's recipe)")
    t.add_argument("--dataset", default="mnist5k", help="mnist5k (embedded, default), "
                   "fashion-mnist, mnist, or a folder with one sub-folder per class")
    t.add_argument("--data-dir", help="the folder holding the Fashion-MNIST/MNIST IDX files")
    t.add_argument("--epochs", type=int_in(1, 100_000))
    t.add_argument("--batch-size", type=int_in(1, 1_000_000))
    t.add_argument("--optimizer", default="adam", help="sgd, adam, adamw, rmsprop or adagrad")
    t.add_argument("--lr", type=float_in("--lr", 0.0, MAX_LR, True, False),
                   help=f"peak learning rate, in (0, {MAX_LR:g}]")
    t.add_argument("--schedule", help="none, cosine, onecycle, step or exponential")
    t.add_argument("--augment", help="none, light (affine), light-erase (affine + random "
                   "erasing), elastic (affine + elastic), strong (affine with shear), flip "
                   "(flip + crop), flip-erase (flip + crop + random erasing) or standard "
                   "(flip + affine)")
    t.add_argument("--label-smoothing", type=float_in("--label-smoothing", 0.0, 1.0, False,
                                                      True),
                   help="train against (1 - e) one-hot + e / classes, e in [0, 1)")
    t.add_argument("--ema", type=float_in("--ema", 0.0, 1.0, False, True),
                   help="decay d of an exponential moving average of the weights, the model "
                   "trained (a <- a + (1 - d)(w - a) per batch); 0: none")
    t.add_argument("--swa", type=int_in(0, 100_000), metavar="N",
                   help="stochastic weight averaging: the mean of the weights at the end of the "
                   "last N epochs, batch-norm statistics recomputed over the training images")
    t.add_argument("--weight-decay", type=float_in("--weight-decay", 0.0, 1.0, False, True),
                   help="the optimizer's weight decay (decoupled for adamw)")
    t.add_argument("--tta", help="test-time augmentation of the final test accuracy: none, "
                   "flip (mean of the image and its mirror) or shift (mean over 1-pixel shifts)")
    t.add_argument("--val-split", type=float_in("--val-split", 0.0, 1.0, False, True), default=0.0,
                   help="fraction of the training images held out for validation, in [0, 1)")
    t.add_argument("--image-size", type=int_in(1, MAX_IMAGE_SIDE), nargs=2, metavar=("H", "W"),
                   help="resize folder images to H W (default 64 64)")
    t.add_argument("--grayscale", action="store_true", help="load folder images as grayscale")
    t.add_argument("--seed", type=int_in(0, MAX_SEED), default=0,
                   help=f"random seed, in [0, {MAX_SEED}]")
    t.add_argument("--out", help="output folder (default: runs/<dataset>-<model>-<time>)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--processes", type=int_in(1, 4096), default=1,
                   help="train data-parallel on N MPI processes of this machine (needs "
                   "cnnkit[distributed]); under mpirun the job's ranks are used")
    t.set_defaults(func=func)


def add_serve(sub: Any, func: Any) -> None:
    """The ``serve`` sub-command's options."""
    s = sub.add_parser("serve", help="serve models over HTTP with dynamic batching, metrics "
                       "and drift monitoring", description="Serve .cnnkit models over HTTP: "
                       "POST /v1/models/NAME:predict, GET /v1/models, /healthz, /readyz, "
                       "/metrics, /v1/models/NAME/drift and a demo page at /.")
    s.add_argument("models", nargs="+", metavar="MODEL",
                   help="a .cnnkit file, or NAME=FILE (default name: the file's stem, or its "
                   "folder's name for model.cnnkit)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int_in(0, 65535), default=8000)
    s.add_argument("--max-batch-size", type=int_in(1, 4096), default=32)
    s.add_argument("--max-wait-ms", type=float_in("--max-wait-ms", 0.0, 10_000.0, False,
                                                  False), default=5.0)
    s.add_argument("--workers", type=int_in(1, 256), default=1,
                   help="server processes sharing the port (each loads the models)")
    s.add_argument("--queue-length", type=int_in(1, 1_000_000), default=256)
    s.add_argument("--timeout", type=float_in("--timeout", 0.0, 3600.0, True, False),
                   default=10.0, help="seconds per request")
    s.add_argument("--max-body-mb", type=float_in("--max-body-mb", 0.0, 4096.0, True, False),
                   default=8.0)
    s.add_argument("--max-image-pixels", type=int_in(1, 1 << 31), default=4096 * 4096,
                   help="pixels per decoded image (width x height)")
    s.add_argument("--reload-interval", type=float_in("--reload-interval", 0.0, 3600.0,
                                                      False, False), default=1.0,
                   help="seconds between checks for a replaced model file (0: off)")
    s.add_argument("--drift-window", type=int_in(2, 1_000_000), default=200)
    s.add_argument("--threads", type=int_in(0, 256), default=1,
                   help="kernel threads per model call (0: CNNKIT_NUM_THREADS or up to 2); "
                   "1 leaves the other cores to request handling")
    s.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    s.set_defaults(func=func)


def opset(text: str) -> int:
    """An argparse type: an ONNX opset the exporter writes."""
    from ..io.onnx_export.export import MAX_OPSET, MIN_OPSET

    return int_in(MIN_OPSET, MAX_OPSET)(text)


def _model_source(p: Any) -> None:
    p.add_argument("model", help="a model file: .cnnkit, .onnx, .keras, .h5, or .pth / "
                   ".safetensors weights with --architecture")
    p.add_argument("out", help="the file to write")
    p.add_argument("--architecture", help="the zoo architecture that .pth / .safetensors "
                   "weights belong to (torchvision module names), e.g. resnet18")
    p.add_argument("--input-shape", type=int_in(1, 1_000_000), nargs="+", metavar="D",
                   help="the architecture's input shape without the batch axis")
    p.add_argument("--classes", type=int_in(1, 1_000_000),
                   help="the architecture's number of classes")


def _onnx_flags(p: Any, default_opset: int | None, default_layout: str | None) -> None:
    p.add_argument("--opset", type=opset, default=default_opset,
                   help="ONNX opset, 9 to 23 (default 17)")
    p.add_argument("--layout", type=str.lower, choices=("nchw", "nhwc"),
                   default=default_layout, help="image interface: nchw (ONNX's, default) "
                   "or nhwc (cnnkit's)")
    p.add_argument("--training", action="store_true",
                   help="keep batch-norm and dropout nodes (for further training)")
    p.add_argument("--static-batch", action="store_true",
                   help="a fixed batch size (the model's, or 1) instead of a dynamic one")
    p.add_argument("--int8-format", choices=("integer", "qdq"), default=None,
                   help="an int8 model's operators: integer (ConvInteger, default) or qdq "
                   "(QuantizeLinear / DequantizeLinear pairs, fused by ONNX Runtime)")


def _add_interchange(sub: Any, commands: dict[str, Callable]) -> None:
    x = sub.add_parser("export", help="write a model as ONNX",
                       description="Write a model file as ONNX (checked with onnx.checker).")
    _model_source(x)
    _onnx_flags(x, 17, "nchw")
    x.set_defaults(func=commands["export"])
    c = sub.add_parser("convert", help="convert a model between .onnx, .keras, .h5, .pth, "
                       ".safetensors and .cnnkit",
                       description="Read a model in one format and write it in another, "
                       "chosen by the file suffixes.")
    _model_source(c)
    _onnx_flags(c, None, None)
    c.set_defaults(func=commands["convert"])


def _add_vision(sub: Any, detect: Callable, segment: Callable) -> None:
    """The ``detect`` and ``segment`` sub-commands."""
    d = sub.add_parser("detect", help="boxes, labels and scores of a saved grid detector on "
                       "an image, drawn into a PNG")
    d.add_argument("model", help="a .cnnkit detector (ending in GridHead)")
    d.add_argument("image", help="a PNG or JPEG file")
    d.add_argument("--out", help="the PNG to write (default: IMAGE_detections.png here)")
    d.add_argument("--score-threshold", type=float_in("--score-threshold", 0, 1, False, False),
                   default=0.3, help="smallest score drawn, in [0, 1] (default 0.3)")
    d.add_argument("--iou-threshold", type=float_in("--iou-threshold", 0, 1, False, False),
                   default=0.5, help="NMS overlap threshold, in [0, 1] (default 0.5)")
    d.add_argument("--soft-nms", action="store_true", help="Gaussian soft-NMS instead of hard")
    d.add_argument("--invert", action="store_true", help="invert grayscale images")
    d.set_defaults(func=detect)
    s = sub.add_parser("segment", help="the per-pixel classes of a saved segmenter on an "
                       "image, as a colour overlay PNG")
    s.add_argument("model", help="a .cnnkit segmenter (output N, H, W, classes)")
    s.add_argument("image", help="a PNG or JPEG file")
    s.add_argument("--out", help="the PNG to write (default: IMAGE_mask.png here)")
    s.add_argument("--alpha", type=float_in("--alpha", 0, 1, False, False), default=0.55,
                   help="opacity of the class colours, in [0, 1] (default 0.55)")
    s.add_argument("--background-below", type=float_in("--background-below", 0, 1, False,
                                                        False),
                   help="a pixel is foreground where P(class 0) is below this, taking the "
                        "likeliest other class (default: the plain argmax)")
    s.add_argument("--tta", action="store_true",
                   help="average the class probabilities over the image and its four "
                        "one-pixel shifts")
    s.set_defaults(func=segment)


def build_parser(commands: dict[str, Callable],
                 extra: Sequence[Callable[[Any], None]] = ()) -> argparse.ArgumentParser:
    """The ``cnnkit`` parser; ``commands`` maps train/evaluate/predict/summary to functions;
    each of ``extra`` adds a subcommand to the subparsers (commands whose modules import
    this one)."""
    from .. import __version__

    p = Parser(prog="cnnkit", description="Train, evaluate and run CNNs written from first "
               "principles on NumPy.")
    p.add_argument("--version", action="version", version=f"cnnkit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    _add_train(sub, commands["train"])

    e = sub.add_parser("evaluate", help="accuracy, per-class precision/recall and a "
                       "confusion-matrix PNG of a saved model on a test set")
    e.add_argument("model", help="a .cnnkit model file")
    e.add_argument("--dataset", default="mnist5k")
    e.add_argument("--data-dir", help="the folder holding the Fashion-MNIST/MNIST IDX files")
    e.add_argument("--out", help="folder for evaluation.json and confusion_matrix.png")
    e.set_defaults(func=commands["evaluate"])

    pr = sub.add_parser("predict", help="top-k classes with probabilities for image files")
    pr.add_argument("model", help="a .cnnkit model file or an ONNX model (.onnx)")
    pr.add_argument("images", nargs="+", help="PNG or JPEG files")
    pr.add_argument("--top-k", type=int_in(1, 1_000_000), default=3)
    pr.add_argument("--invert", action="store_true",
                    help="invert grayscale images (dark digits on white paper)")
    pr.set_defaults(func=commands["predict"])

    s = sub.add_parser("summary", help="the layer table of a saved model or a zoo architecture")
    s.add_argument("model", nargs="?", help="a .cnnkit or .onnx file, or an architecture name")
    s.add_argument("--input-shape", type=int_in(1, 1_000_000), nargs="+", metavar="D",
                   help="input shape without the batch axis, e.g. 224 224 3")
    s.add_argument("--classes", type=int_in(1, 1_000_000))
    s.add_argument("--list", action="store_true", help="list the zoo architectures")
    s.add_argument("--flops", action="store_true", help="add FLOPs and activation memory")
    s.add_argument("--rf", action="store_true",
                   help="add each layer's receptive field (size, jump, start)")
    s.set_defaults(func=commands["summary"])
    if "serve" in commands:
        add_serve(sub, commands["serve"])
    _add_analysis(sub, commands)
    if "export" in commands:
        _add_interchange(sub, commands)
    if "prune" in commands:
        _add_prune(sub, commands["prune"])
        _add_distill(sub, commands["distill"])
    for add in extra:  # commands defined in their own modules add their subparsers
        add(sub)
    if "detect" in commands:
        _add_vision(sub, commands["detect"], commands["segment"])
    return p


def _add_analysis(sub: Any, commands: dict[str, Callable]) -> None:
    from .analysis_commands import add_calc, add_explain, add_report

    if "calc" in commands:
        add_calc(sub, commands["calc"], positive_int)
    if "explain" in commands:
        add_explain(sub, commands["explain"], positive_int)
    if "report" in commands:
        add_report(sub, commands["report"], positive_int)


def _add_data(p: Any) -> None:
    p.add_argument("--dataset", default="mnist5k", help="mnist5k (embedded, default), "
                   "fashion-mnist, mnist, or a folder with one sub-folder per class")
    p.add_argument("--data-dir", help="the folder holding the Fashion-MNIST/MNIST IDX files")
    p.add_argument("--batch-size", type=int_in(1, 1_000_000), default=64)
    p.add_argument("--seed", type=int_in(0, MAX_SEED), default=0,
                   help=f"random seed, in [0, {MAX_SEED}]")
    p.add_argument("--train-subset", type=int_in(1, 10**9), metavar="N",
                   help="train on N images of a seeded shuffle (a quick run); default all")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_prune(sub: Any, func: Callable) -> None:
    p = sub.add_parser("prune", help="make a trained model smaller: remove channels "
                       "(--channels) or zero weights (--sparsity), then fine-tune",
                       description="Prune a saved model, fine-tune it on a data set, print "
                       "parameters, multiply-adds, file size, latency and accuracy before and "
                       "after, and save it.")
    p.add_argument("model", help="a trained .cnnkit model file")
    p.add_argument("--channels", type=float_in("--channels", 0.0, 1.0, True, True),
                   help="fraction of channels to remove, in (0, 1): rebuilds narrower layers")
    p.add_argument("--sparsity", type=float_in("--sparsity", 0.0, 1.0, True, True),
                   help="fraction of kernel weights to zero, in (0, 1): saved as a sparse file")
    p.add_argument("--importance", choices=("l1", "bn", "taylor"), default="l1",
                   help="channel importance: filter L1 norm, BatchNorm |gamma| or Taylor "
                   "|grad x weight| (default l1)")
    p.add_argument("--scope", choices=("layer", "global"), default="layer",
                   help="--sparsity per layer or over all layers at once (default layer)")
    p.add_argument("--steps", type=int_in(1, 100), default=1,
                   help="prune-and-fine-tune rounds for --channels (default 1)")
    p.add_argument("--fine-tune-epochs", type=int_in(0, 100_000), default=2,
                   help="epochs of fine-tuning after each round (default 2)")
    p.add_argument("--lr", type=float_in("--lr", 0.0, MAX_LR, True, False), default=1e-3,
                   help="fine-tuning learning rate (Adam, cosine decay; default 0.001)")
    p.add_argument("--out", required=True, help="the pruned .cnnkit file to write")
    _add_data(p)
    p.set_defaults(func=func)


def _add_distill(sub: Any, func: Callable) -> None:
    p = sub.add_parser("distill", help="train a small zoo model from a trained teacher "
                       "(knowledge distillation)",
                       description="Train --student on a data set from the logits of a saved "
                       "--teacher (loss alpha * CE + (1 - alpha) * T^2 * KL), print both "
                       "models' costs and accuracy, and save the student.")
    p.add_argument("--teacher", required=True, help="a trained .cnnkit model file")
    p.add_argument("--student", default="mnist_cnn", help="zoo architecture of the student "
                   "(default mnist_cnn)")
    p.add_argument("--student-width", type=int_in(1, 4096),
                   help="the student's width option (e.g. 4 for a quarter-width mnist_cnn)")
    p.add_argument("--epochs", type=int_in(1, 100_000), default=5)
    p.add_argument("--lr", type=float_in("--lr", 0.0, MAX_LR, True, False), default=2e-3)
    p.add_argument("--temperature", type=float_in("--temperature", 0.0, 1000.0, True, False),
                   default=4.0, help="softmax temperature T (default 4)")
    p.add_argument("--alpha", type=float_in("--alpha", 0.0, 1.0, False, False), default=0.1,
                   help="weight of the hard-label cross-entropy, in [0, 1] (default 0.1)")
    p.add_argument("--out", required=True, help="the student .cnnkit file to write")
    _add_data(p)
    p.set_defaults(func=func)
