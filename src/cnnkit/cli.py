"""The ``cnnkit`` command line: train, evaluate, predict, summary.

A user's mistake (missing file, not an image, unknown architecture or data set, bad option
value) prints one line ``cnnkit: error: ...`` and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class UsageError(Exception):
    """A mistake in what the user asked for; reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2
        raise UsageError(f"{self.prog}: {message}")


# ----- data sets ---------------------------------------------------------------------------
DATASETS = ("mnist5k", "fashion-mnist", "mnist")


def load_dataset(name: str, data_dir: str | None = None, image_size: Sequence[int] | None = None,
                 grayscale: bool | None = None) -> tuple[tuple, tuple, list[str]]:
    """((x_train, y_train), (x_test, y_test), class_names); images (N, H, W, C) uint8."""
    from . import datasets

    if name == "mnist5k":
        (xt, yt), (xv, yv) = datasets.mnist5k.load_data()
        names = datasets.mnist5k.CLASS_NAMES
    elif name in ("fashion-mnist", "fashion_mnist"):
        (xt, yt), (xv, yv) = _idx_load(datasets.fashion_mnist, data_dir)
        names = datasets.fashion_mnist.CLASS_NAMES
    elif name == "mnist":
        (xt, yt), (xv, yv) = _idx_load(datasets.mnist, data_dir)
        names = [str(i) for i in range(10)]
    elif Path(name).is_dir():
        from .data import image_dataset_from_directory

        mode = "grayscale" if grayscale else "rgb"
        size = tuple(image_size) if image_size else (64, 64)
        (xt, yt), (xv, yv), names = _folder_split(image_dataset_from_directory, name, size, mode)
        return (xt, yt), (xv, yv), list(names)
    else:
        raise UsageError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)} or a "
                         f"folder with one sub-folder per class")
    return (xt[..., None], yt.astype(np.int64)), (xv[..., None], yv.astype(np.int64)), list(names)


def _idx_load(module: Any, data_dir: str | None) -> Any:
    try:
        return module.load_data(data_dir=data_dir)
    except (FileNotFoundError, OSError) as e:
        raise UsageError(str(e).replace("\n", " ")) from None


def _folder_split(loader: Any, folder: str, size: tuple, mode: str) -> Any:
    try:
        out = loader(folder, image_size=size, color_mode=mode, validation_split=0.2,
                     subset="both", seed=0)
    except (ValueError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    (xt, yt), (xv, yv), names = out
    return (xt, yt), (xv, yv), names


# ----- recipes -------------------------------------------------------------------------------
DEFAULTS = {
    "mnist5k": {"model": "mnist_cnn", "epochs": 15, "batch_size": 64, "lr": 2e-3,
                "schedule": "cosine", "augment": "light"},
    "fashion-mnist": {"model": "mnist_cnn", "epochs": 10, "batch_size": 128, "lr": 2e-3,
                      "schedule": "cosine", "augment": "flip"},
    "mnist": {"model": "mnist_cnn", "epochs": 4, "batch_size": 128, "lr": 2e-3,
              "schedule": "cosine", "augment": "none"},
    "folder": {"model": "mnist_cnn", "epochs": 15, "batch_size": 32, "lr": 1e-3,
               "schedule": "cosine", "augment": "flip"},
}


def build_model(spec: str, input_shape: tuple, classes: int) -> Any:
    from . import zoo
    from .models import load_model

    if Path(spec).is_file():
        try:
            return load_model(spec, compile=False)
        except ValueError as e:
            raise UsageError(str(e)) from None
    try:
        fn = zoo.builder(spec)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return fn(input_shape=input_shape, classes=classes)


def augmentation(kind: str, image_shape: Sequence[int]) -> Any:
    """The named augmentation pipeline for images of ``image_shape`` (H, W, C)."""
    from . import data

    h, w = int(image_shape[0]), int(image_shape[1])
    if kind == "none":
        return None
    if kind == "light":
        return data.Compose([data.RandomAffine(degrees=10, translate=(0.1, 0.1),
                                               scale=(0.9, 1.1))])
    if kind == "flip":
        return data.Compose([data.RandomFlip("horizontal"),
                             data.RandomCrop(h, w, padding=2)])
    if kind == "standard":
        return data.Compose([data.RandomFlip("horizontal"),
                             data.RandomAffine(degrees=10, translate=(0.1, 0.1),
                                               scale=(0.9, 1.1))])
    raise UsageError(f"unknown --augment {kind!r}: use none, light, flip or standard")


def schedule(kind: str, lr: float, steps: int) -> Any:
    from .train import schedules

    if kind in ("none", "constant"):
        return lr
    if kind == "cosine":
        return schedules.CosineDecay(lr, steps)
    if kind == "onecycle":
        return schedules.OneCycle(lr, steps)
    if kind == "step":
        return schedules.StepDecay(lr, max(1, steps // 3), 0.1)
    if kind == "exponential":
        return schedules.ExponentialDecay(lr, max(1, steps), 0.01)
    raise UsageError(f"unknown --schedule {kind!r}: use none, cosine, onecycle, step or "
                     f"exponential")


# ----- commands ----------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from . import random as crandom
    from .data import BatchIterator
    from .train import callbacks, optimizers

    dataset = args.dataset
    recipe = dict(DEFAULTS.get(dataset if dataset in DEFAULTS else "folder"))
    for key in ("model", "epochs", "batch_size", "lr", "schedule", "augment"):
        if getattr(args, key) is not None:
            recipe[key] = getattr(args, key)
    if recipe["epochs"] < 1:
        raise UsageError(f"--epochs must be >= 1, got {recipe['epochs']}")
    if recipe["batch_size"] < 1:
        raise UsageError(f"--batch-size must be >= 1, got {recipe['batch_size']}")
    if not recipe["lr"] > 0:
        raise UsageError(f"--lr must be > 0, got {recipe['lr']}")
    if not 0 <= args.val_split < 1:
        raise UsageError(f"--val-split must be in [0, 1), got {args.val_split}")
    crandom.seed(args.seed)
    (xt, yt), (xv, yv), names = load_dataset(dataset, args.data_dir, args.image_size,
                                             args.grayscale)
    if args.val_split:
        n_val = int(round(len(xt) * args.val_split))
        order = np.random.default_rng(args.seed).permutation(len(xt))
        val_idx, tr_idx = order[:n_val], order[n_val:]
        x_val, y_val = xt[val_idx], yt[val_idx]
        xt, yt = xt[tr_idx], yt[tr_idx]
    else:
        x_val = y_val = None
    model = build_model(recipe["model"], xt.shape[1:], len(names))
    model.class_names = names
    aug = augmentation(recipe["augment"], xt.shape[1:])
    transform = (lambda xb, yb, rng: aug(xb, yb, rng=rng)) if aug is not None else None
    batches = BatchIterator(xt.astype(np.float32), yt, batch_size=recipe["batch_size"],
                            shuffle=True, seed=args.seed, transform=transform)
    steps = len(batches) * recipe["epochs"]
    try:
        opt = optimizers.get(args.optimizer, learning_rate=schedule(recipe["schedule"],
                                                                     recipe["lr"], steps))
    except ValueError as e:
        raise UsageError(str(e)) from None
    model.compile(optimizer=opt, loss=_loss_for(model), metrics=["accuracy"], seed=args.seed)
    out = Path(args.out) if args.out else Path("runs") / f"{Path(dataset).name}-" \
        f"{recipe['model'] if not Path(recipe['model']).is_file() else 'model'}-" \
        f"{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"cnnkit train: {model.name} on {dataset} ({len(xt)} train, {len(xv)} test images, "
          f"{len(names)} classes), {recipe['epochs']} epochs, batch {recipe['batch_size']}, "
          f"{args.optimizer} lr {recipe['lr']} ({recipe['schedule']}), augment "
          f"{recipe['augment']}; output in {out}")
    start = time.perf_counter()
    val = (x_val.astype(np.float32), y_val) if x_val is not None else None
    history = model.fit(batches, epochs=recipe["epochs"], validation_data=val,
                        verbose=0 if args.quiet else 1,
                        callbacks=[callbacks.CSVLogger(str(out / "history.csv"))])
    elapsed = time.perf_counter() - start
    test = model.evaluate(xv.astype(np.float32), yv, batch_size=256, verbose=0,
                          return_dict=True)
    print(f"test accuracy: {test['accuracy']:.4f}  test loss: {test['loss']:.4f}  "
          f"({elapsed:.1f} s training)")
    model.save(out / "model.cnnkit")
    metrics = {"dataset": dataset, "model": recipe["model"], "recipe": recipe,
               "seed": args.seed, "train_seconds": round(elapsed, 2),
               "test_accuracy": test["accuracy"], "test_loss": test["loss"],
               "class_names": names, "history": history.history}
    _write_json(out / "metrics.json", metrics)
    _maybe_plot_history(history.history, out / "training_curve.png")
    print(f"wrote {out / 'model.cnnkit'}, {out / 'metrics.json'}")
    return 0


def _loss_for(model: Any) -> Any:
    from .train import losses

    last = model.layers[-1] if getattr(model, "layers", None) else None
    probs = last is not None and getattr(last, "activation_name", None) == "softmax"
    return losses.SparseCategoricalCrossentropy(from_logits=not probs)


def _write_json(path: Path, obj: Any) -> None:
    from .files import atomic_write

    with atomic_write(path, "w") as f:
        f.write(json.dumps(obj, indent=2, default=float))


def _maybe_plot_history(history: dict, path: Path) -> None:
    try:
        from .analysis.plots import plot_history
    except ImportError:
        return
    try:
        plot_history(history, path)
        print(f"wrote {path}")
    except ImportError as e:
        print(f"(no training-curve PNG: {e})")


def _load_trained(path: str) -> Any:
    from .models import load_model

    if not Path(path).is_file():
        raise UsageError(f"model file not found: {path}")
    try:
        return load_model(path, compile=False)
    except ValueError as e:
        raise UsageError(str(e)) from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .train.metrics import confusion_matrix

    model = _load_trained(args.model)
    in_shape = model.input_shape
    size = in_shape[1:3] if in_shape and len(in_shape) == 4 else None
    gray = in_shape[-1] == 1 if in_shape else None
    _, (xv, yv), names = load_dataset(args.dataset, args.data_dir, size, gray)
    names = getattr(model, "class_names", None) or names
    probs = model.predict(xv.astype(np.float32), batch_size=256)
    pred = probs.argmax(-1)
    k = max(len(names), int(yv.max()) + 1, probs.shape[-1])
    cm = confusion_matrix(yv, pred, num_classes=k)
    acc = float(np.trace(cm) / cm.sum())
    print(f"accuracy: {acc:.4f} on {len(yv)} images")
    print(f"{'class':<16}{'precision':>10}{'recall':>10}{'support':>9}")
    per_class = []
    for c in range(k):
        tp = cm[c, c]
        prec = tp / cm[:, c].sum() if cm[:, c].sum() else 0.0
        rec = tp / cm[c].sum() if cm[c].sum() else 0.0
        label = names[c] if c < len(names) else str(c)
        per_class.append({"class": label, "precision": float(prec), "recall": float(rec),
                          "support": int(cm[c].sum())})
        print(f"{label:<16}{prec:>10.4f}{rec:>10.4f}{int(cm[c].sum()):>9}")
    out = Path(args.out) if args.out else Path(args.model).with_suffix("").parent
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "evaluation.json", {"accuracy": acc, "per_class": per_class,
                                          "confusion_matrix": cm.tolist()})
    try:
        from .analysis.plots import plot_confusion_matrix

        plot_confusion_matrix(cm, names, out / "confusion_matrix.png")
        print(f"wrote {out / 'confusion_matrix.png'}")
    except ImportError as e:
        print(f"(no confusion-matrix PNG: {e})")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .data import load_image
    from .ops import softmax

    model = _load_trained(args.model)
    shape = model.input_shape
    if not shape or len(shape) != 4:
        raise UsageError(f"model input shape {shape} is not an image shape (N, H, W, C)")
    _, h, w, c = shape
    names = getattr(model, "class_names", None)
    if args.top_k < 1:
        raise UsageError(f"--top-k must be >= 1, got {args.top_k}")
    for path in args.images:
        if not Path(path).is_file():
            raise UsageError(f"image not found: {path}")
        try:
            img = load_image(path, target_size=(h, w), color_mode="grayscale" if c == 1
                             else "rgb")
        except (ValueError, OSError) as e:
            raise UsageError(f"{path} is not a readable image: {e}") from None
        if c == 1 and args.invert:
            img = 255 - img
        out = model.predict(img[None].astype(np.float32))
        probs = out[0]
        if not (np.all(probs >= 0) and abs(float(probs.sum()) - 1) < 1e-3):
            probs = softmax(out).data[0]
        top = np.argsort(-probs)[: args.top_k]
        parts = [f"{names[i] if names and i < len(names) else i}: {probs[i]:.3f}" for i in top]
        print(f"{path}: " + ", ".join(parts))
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from . import zoo

    if Path(args.model).is_file():
        model = _load_trained(args.model)
    else:
        kwargs: dict[str, Any] = {}
        if args.input_shape:
            kwargs["input_shape"] = tuple(args.input_shape)
        if args.classes:
            kwargs["classes"] = args.classes
        try:
            model = zoo.get(args.model, **kwargs)
        except ValueError as e:
            raise UsageError(str(e)) from None
    model.summary()
    return 0


# ----- parser ------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cnnkit", description="Train, evaluate and run CNNs written from first "
                "principles on NumPy.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", help="train a model (default: the embedded 5,000 MNIST digits)",
                       description="Train a CNN and write model.cnnkit, metrics.json, "
                       "history.csv and training_curve.png to an output folder.")
    t.add_argument("--model", help="zoo architecture name (see `cnnkit summary --list`) or a "
                   "saved .cnnkit model to continue from (default: mnist_cnn)")
    t.add_argument("--dataset", default="mnist5k", help="mnist5k (embedded, default), "
                   "fashion-mnist, mnist, or a folder with one sub-folder per class")
    t.add_argument("--data-dir", help="where the Fashion-MNIST/MNIST IDX files are")
    t.add_argument("--epochs", type=_positive_int)
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--optimizer", default="adam", help="sgd, adam, adamw, rmsprop or adagrad")
    t.add_argument("--lr", type=float, help="peak learning rate")
    t.add_argument("--schedule", help="none, cosine, onecycle, step or exponential")
    t.add_argument("--augment", help="none, light (affine), flip (flip + crop) or standard")
    t.add_argument("--val-split", type=float, default=0.0,
                   help="fraction of the training images held out for validation")
    t.add_argument("--image-size", type=_positive_int, nargs=2, metavar=("H", "W"),
                   help="resize folder images to H W (default 64 64)")
    t.add_argument("--grayscale", action="store_true", help="load folder images as grayscale")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", help="output folder (default: runs/<dataset>-<model>-<time>)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="accuracy, per-class precision/recall and a "
                       "confusion-matrix PNG of a saved model on a test set")
    e.add_argument("model", help="a .cnnkit model file")
    e.add_argument("--dataset", default="mnist5k")
    e.add_argument("--data-dir")
    e.add_argument("--out", help="folder for evaluation.json and confusion_matrix.png")
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="top-k classes with probabilities for image files")
    pr.add_argument("model", help="a .cnnkit model file")
    pr.add_argument("images", nargs="+", help="PNG or JPEG files")
    pr.add_argument("--top-k", type=int, default=3)
    pr.add_argument("--invert", action="store_true",
                    help="invert grayscale images (dark digits on white paper)")
    pr.set_defaults(func=cmd_predict)

    s = sub.add_parser("summary", help="the layer table of a saved model or a zoo architecture")
    s.add_argument("model", nargs="?", help="a .cnnkit file or an architecture name")
    s.add_argument("--input-shape", type=_positive_int, nargs="+", metavar="D",
                   help="input shape without the batch axis, e.g. 224 224 3")
    s.add_argument("--classes", type=_positive_int)
    s.add_argument("--list", action="store_true", help="list the zoo architectures")
    s.set_defaults(func=cmd_summary_or_list)
    return p


def cmd_summary_or_list(args: argparse.Namespace) -> int:
    from . import zoo

    if args.list or not args.model:
        print("\n".join(zoo.list()))
        return 0
    return cmd_summary(args)


def _version() -> str:
    from . import __version__

    return f"cnnkit {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except UsageError as e:
        msg = str(e).replace("\n", " ")
        print(f"cnnkit: error: {msg}" if not msg.startswith("cnnkit") else f"{msg}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
