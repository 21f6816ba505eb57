"""The argument parser: every numeric option is checked as it is parsed, so a bad value is
reported (one line, naming the option) before any work starts."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
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
                   "saved .cnnkit model to continue from (default: mnist_cnn)")
    t.add_argument("--dataset", default="mnist5k", help="mnist5k (embedded, default), "
                   "fashion-mnist, mnist, or a folder with one sub-folder per class")
    t.add_argument("--data-dir", help="the folder holding the Fashion-MNIST/MNIST IDX files")
    t.add_argument("--epochs", type=int_in(1, 100_000))
    t.add_argument("--batch-size", type=int_in(1, 1_000_000))
    t.add_argument("--optimizer", default="adam", help="sgd, adam, adamw, rmsprop or adagrad")
    t.add_argument("--lr", type=float_in("--lr", 0.0, MAX_LR, True, False),
                   help=f"peak learning rate, in (0, {MAX_LR:g}]")
    t.add_argument("--schedule", help="none, cosine, onecycle, step or exponential")
    t.add_argument("--augment", help="none, light (affine), flip (flip + crop) or standard")
    t.add_argument("--val-split", type=float_in("--val-split", 0.0, 1.0, False, True), default=0.0,
                   help="fraction of the training images held out for validation, in [0, 1)")
    t.add_argument("--image-size", type=int_in(1, MAX_IMAGE_SIDE), nargs=2, metavar=("H", "W"),
                   help="resize folder images to H W (default 64 64)")
    t.add_argument("--grayscale", action="store_true", help="load folder images as grayscale")
    t.add_argument("--seed", type=int_in(0, MAX_SEED), default=0,
                   help=f"random seed, in [0, {MAX_SEED}]")
    t.add_argument("--out", help="output folder (default: runs/<dataset>-<model>-<time>)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=func)


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
    s.set_defaults(func=segment)


def build_parser(commands: dict[str, Callable]) -> argparse.ArgumentParser:
    """The ``cnnkit`` parser; ``commands`` maps train/evaluate/predict/summary to functions."""
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
    pr.add_argument("model", help="a .cnnkit model file")
    pr.add_argument("images", nargs="+", help="PNG or JPEG files")
    pr.add_argument("--top-k", type=int_in(1, 1_000_000), default=3)
    pr.add_argument("--invert", action="store_true",
                    help="invert grayscale images (dark digits on white paper)")
    pr.set_defaults(func=commands["predict"])

    s = sub.add_parser("summary", help="the layer table of a saved model or a zoo architecture")
    s.add_argument("model", nargs="?", help="a .cnnkit file or an architecture name")
    s.add_argument("--input-shape", type=int_in(1, 1_000_000), nargs="+", metavar="D",
                   help="input shape without the batch axis, e.g. 224 224 3")
    s.add_argument("--classes", type=int_in(1, 1_000_000))
    s.add_argument("--list", action="store_true", help="list the zoo architectures")
    s.set_defaults(func=commands["summary"])
    if "detect" in commands:
        _add_vision(sub, commands["detect"], commands["segment"])
    return p
