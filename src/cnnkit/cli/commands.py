"""The four commands. Each checks everything it can (options, files, shapes, output folder)
before loading data or training, so a mistake costs no time and leaves nothing on disk."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..train.callback_base import Callback
from . import checks
from .data import check_source, data_shape, load_dataset, split_validation
from .distributed import mpi_rank, relaunch
from .errors import UsageError, about
from .recipes import DEFAULTS, augmentation, check_names, schedule

CHECK_CLASSES = 10  # classes of the shape-only build made before the data is read


# ----- train -----------------------------------------------------------------------------------
def _recipe(args: argparse.Namespace, kind: str) -> dict:
    recipe = {"ema": 0.0, "weight_decay": 0.0, "swa": 0, **DEFAULTS[kind]}  # a DEFAULTS key
    for key in ("model", "epochs", "batch_size", "lr", "schedule", "augment", "label_smoothing",
                "tta", "ema", "weight_decay", "swa"):
        if getattr(args, key, None) is not None:
            recipe[key] = getattr(args, key)
    return recipe


def _out_for(args: argparse.Namespace, recipe: dict) -> Path:
    if args.out:
        return Path(args.out)
    model = "model" if Path(recipe["model"]).is_file() else recipe["model"]
    return Path("runs") / f"{Path(args.dataset).name}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def _is_model_file(spec: str) -> bool:
    return Path(spec).is_file() or Path(spec).suffix == ".cnnkit" or "/" in spec


def _saved_model_for(spec: str, shape: tuple, dataset: str) -> Any:
    """The saved model to continue training, checked against the data's image shape."""
    model = checks.load_trained(spec)
    checks.check_fits(checks.image_input(model, f"--model {spec}"), shape, model.name,
                      dataset, f"--model {spec}")
    checks.class_count(model, f"--model {spec}")
    return model


def _check_classes(model: Any, spec: str, classes: int, dataset: str) -> None:
    k = checks.class_count(model, f"--model {spec}")
    if k < classes:
        raise UsageError(f"--model {spec}: model '{model.name}' scores {k} classes, data "
                         f"set {dataset!r} has {classes}")


def _arch_check(spec: str, shape: tuple, purpose: str) -> None:
    """Shape inference alone: the architecture takes this input, classifies, fits memory."""
    dry = checks.build_arch(spec, shape, CHECK_CLASSES, purpose, allocate=False)
    checks.class_count(dry, f"--model {spec}")
    checks.check_memory(dry, purpose)


def cmd_train(args: argparse.Namespace) -> int:
    from .. import random as crandom

    status = relaunch(args)
    if status is not None:
        return status
    distributed, rank = mpi_rank()
    main = rank == 0
    kind = check_source(args.dataset, args.data_dir, args.image_size, args.grayscale)
    recipe = _recipe(args, kind)
    check_names(recipe, args.optimizer)
    out = _out_for(args, recipe)
    checks.check_out_dir(out)
    shape = data_shape(kind, args.image_size, args.grayscale)
    src = f"--image-size {shape[0]} {shape[1]}" if args.image_size else f"--dataset {args.dataset}"
    spec, purpose = recipe["model"], f"--model {recipe['model']} with {src}"
    crandom.seed(args.seed)
    saved = _saved_model_for(spec, shape, args.dataset) if _is_model_file(spec) else None
    if saved is None:
        _arch_check(spec, shape, purpose)
    (xt, yt), (xv, yv), names = load_dataset(args.dataset, args.data_dir, args.image_size,
                                             args.grayscale)
    (xt, yt), val = split_validation(xt, yt, args.val_split, args.seed)
    model = saved if saved is not None else checks.build_arch(spec, shape, len(names), purpose)
    _check_classes(model, spec, len(names), args.dataset)
    model.class_names = names
    batches = _compiled_with_batches(args, model, recipe, xt, yt)
    if not main:  # the other ranks train their shards; rank 0 prints and writes
        model.fit(batches, epochs=recipe["epochs"], verbose=0, distributed=True)
        return 0
    checks.make_out_dir(out)
    _announce(args, model, recipe, (len(xt), len(xv), len(names)), distributed, out)
    start, cpu_start = time.perf_counter(), time.process_time()
    history = model.fit(batches, epochs=recipe["epochs"], verbose=0 if args.quiet else 1,
                        validation_data=_held_out(val, xv, yv),
                        callbacks=_callbacks(recipe, out, batches),
                        distributed=distributed)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    test = _test_scores(model, xv.astype(np.float32), yv, recipe["tta"])
    tta = f"  with {recipe['tta']} TTA: {test.get('accuracy_tta', 0):.4f}"
    print(f"test accuracy: {test['accuracy']:.4f}  test loss: {test['loss']:.4f}"
          f"{tta if 'accuracy_tta' in test else ''}  ({elapsed:.1f} s training)")
    with about(f"--out {out}"):
        model.save(out / "model.cnnkit")
        _write_json(out / "metrics.json", {
            "dataset": args.dataset, "model": recipe["model"], "recipe": recipe,
            "seed": args.seed, "train_seconds": round(elapsed, 2),
            "train_cpu_seconds": round(cpu, 2),
            "test_accuracy": test["accuracy"], "test_loss": test["loss"],
            **({"test_accuracy_tta": test["accuracy_tta"]} if "accuracy_tta" in test else {}),
            **_val_scores(model, val, recipe["tta"]),
            "class_names": names, "history": history.history})
        _maybe_plot_history(history.history, out / "training_curve.png")
        profile = _write_profile(model, val[0] if val else xt, out / "model.cnnkit")
    print(f"wrote {out / 'model.cnnkit'}, {out / 'metrics.json'}, {profile}")
    return 0


def _callbacks(recipe: dict, out: Path, batches: Any) -> list:
    """The learning-rate log, the CSV history and the recipe's weight averages (SWA's
    batch-norm statistics recomputed over one more pass of the training batches)."""
    from ..train import callback_average, callback_swa, callbacks

    cbs = [_LearningRateLog(), callbacks.CSVLogger(str(out / "history.csv"))]
    swa = [callback_swa.StochasticWeightAverage(-recipe["swa"], batches)] if recipe["swa"] else []
    return cbs + swa + ([callback_average.WeightAverage(recipe["ema"])] if recipe["ema"] else [])


def _announce(args: argparse.Namespace, model: Any, recipe: dict, counts: tuple,
              distributed: bool, out: Path) -> None:
    """The recipe line printed before training; counts: (train, test images, classes)."""
    procs = f", {init_group_size()} processes" if distributed else ""
    print(f"cnnkit train: {model.name} on {args.dataset} ({counts[0]} train, {counts[1]} test "
          f"images, {counts[2]} classes), {recipe['epochs']} epochs, batch "
          f"{recipe['batch_size']}, {args.optimizer} lr {recipe['lr']} ({recipe['schedule']}), "
          f"augment {recipe['augment']}, label smoothing {recipe['label_smoothing']:g}, "
          f"test-time augmentation {recipe['tta']}"
          + (f", weight decay {recipe['weight_decay']:g}" if recipe["weight_decay"] else "")
          + (f", weight average {recipe['ema']:g}" if recipe["ema"] else "")
          + (f", SWA over the last {recipe['swa']} epochs" if recipe["swa"] else "")
          + f"{procs}; output in {out}")


def _compiled_with_batches(args: argparse.Namespace, model: Any, recipe: dict,
                           xt: np.ndarray, yt: np.ndarray) -> Any:
    """Compile ``model`` for the recipe; the seeded, augmented training batches."""
    from ..data import BatchIterator
    from ..train import optimizers

    aug = augmentation(recipe["augment"], xt.shape[1:])
    transform = (lambda xb, yb, rng: aug(xb, yb, rng=rng)) if aug is not None else None
    batches = BatchIterator(xt.astype(np.float32), yt, batch_size=recipe["batch_size"],
                            shuffle=True, seed=args.seed, transform=transform)
    lr = schedule(recipe["schedule"], recipe["lr"], len(batches) * recipe["epochs"])
    # the recipes were measured with torch's epsilon placement (formula="auto" would pick
    # Keras's for an optimizer built without parameters)
    extra = {"formula": "torch"} if args.optimizer.lower() != "sgd" else {}
    if recipe["weight_decay"]:
        extra["weight_decay"] = recipe["weight_decay"]
    model.compile(optimizer=optimizers.get(args.optimizer, learning_rate=lr, **extra),
                  loss=_loss_for(model, recipe["label_smoothing"]), metrics=["accuracy"],
                  seed=args.seed)
    return batches


def _test_scores(model: Any, x: np.ndarray, y: np.ndarray, tta: str) -> dict:
    """Test loss and accuracy, plus the accuracy of the mean softmax over the recipe's
    test-time views (``tta`` not "none")."""
    from ..data import tta_predict
    from .recipes import tta_views

    test = model.evaluate(x, y, batch_size=256, verbose=0, return_dict=True)
    if tta == "none":
        return test

    def probs(v: np.ndarray) -> np.ndarray:
        z = np.asarray(model.predict(v, batch_size=256), np.float64)
        if _loss_for(model).from_logits:
            z = np.exp(z - z.max(-1, keepdims=True))
        return z / z.sum(-1, keepdims=True)

    mean = tta_predict(probs, x, tta_views(tta))
    return {**test, "accuracy_tta": float((mean.argmax(-1) == np.asarray(y)).mean())}


def _val_scores(model: Any, val: Any, tta: str) -> dict:
    """The saved model's scores on the --val-split images (the figures to choose a recipe by,
    keeping the test set for confirming); none without a split."""
    if not val:
        return {}
    scores = _test_scores(model, val[0].astype(np.float32), val[1], tta)
    return {f"val_{k}": v for k, v in scores.items()}


def _held_out(val: Any, xv: np.ndarray, yv: np.ndarray) -> tuple:
    """The curves' held-out data: the validation split, else the test set (watched each
    epoch, never trained on)."""
    return (val[0].astype(np.float32), val[1]) if val else (xv.astype(np.float32), yv)


class _LearningRateLog(Callback):
    """Adds the optimizer's learning rate at each epoch end to the logs (history, CSV)."""

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        opt = getattr(self.model, "optimizer", None)
        if logs is not None and opt is not None and "learning_rate" not in logs:
            logs["learning_rate"] = float(opt.learning_rate)


def init_group_size() -> int:
    from ..distributed import world

    group = world()
    return group.size if group is not None else 1


def _write_profile(model: Any, images: np.ndarray, model_path: Path) -> Path:
    """The drift-monitoring reference profile beside the model (validation images when held
    out, else the training images)."""
    from ..monitor import build_profile, profile_path

    path = profile_path(model_path)
    build_profile(model, images.astype(np.float32)).save(path)
    return path


def _loss_for(model: Any, label_smoothing: float = 0.0) -> Any:
    from ..train import losses

    last = model.layers[-1] if getattr(model, "layers", None) else None
    probs = last is not None and getattr(last, "activation_name", None) == "softmax"
    return losses.SparseCategoricalCrossentropy(from_logits=not probs,
                                                label_smoothing=label_smoothing)


def _write_json(path: Path, obj: Any) -> None:
    from ..files import atomic_write

    with atomic_write(path, "w") as f:
        f.write(json.dumps(obj, indent=2, default=float))


def _maybe_plot_history(history: dict, path: Path) -> None:
    try:
        from ..analysis.plots import plot_history
    except ImportError:
        return
    try:
        plot_history(history, path)
        print(f"wrote {path}")
    except ImportError as e:
        print(f"(no training-curve PNG: {e})")


# ----- evaluate --------------------------------------------------------------------------------
def _eval_data(args: argparse.Namespace, model: Any) -> tuple:
    """The test images for ``model``: folder images resized to its input size (64x64 when it
    takes any size), in its colour mode; the shape checked against the model's."""
    kind = check_source(args.dataset, args.data_dir)
    h, w, c = checks.image_input(model, args.model)
    size = None
    if kind == "folder":
        if c not in (1, 3):
            raise UsageError(f"{args.model}: model '{model.name}' expects {c}-channel images; "
                             f"image folders load as grayscale (1) or RGB (3)")
        size = (h or 64, w or 64)
    shape = data_shape(kind, size, c == 1)
    checks.check_fits((h, w, c), shape, model.name, args.dataset, args.model)
    return load_dataset(args.dataset, args.data_dir, size, c == 1 if size else None)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..train.metrics import confusion_matrix

    model = checks.load_trained(args.model)
    out = Path(args.out) if args.out else Path(args.model).parent
    checks.check_out_dir(out)
    checks.class_count(model, args.model)
    _, (xv, yv), names = _eval_data(args, model)
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
    checks.make_out_dir(out)
    with about(f"--out {out}"):
        _write_json(out / "evaluation.json", {"accuracy": acc, "per_class": per_class,
                                              "confusion_matrix": cm.tolist()})
        _plot_confusion(cm, names, out / "confusion_matrix.png")
    return 0


def _plot_confusion(cm: np.ndarray, names: list, path: Path) -> None:
    try:
        from ..analysis.plots import plot_confusion_matrix

        plot_confusion_matrix(cm, names, path)
        print(f"wrote {path}")
    except ImportError as e:
        print(f"(no confusion-matrix PNG: {e})")


# ----- predict ---------------------------------------------------------------------------------
def _read_image(path: str, h: int | None, w: int | None, c: int) -> np.ndarray:
    """One image as (H, W, C) uint8: resized to the model's size, or kept at its own size
    along an axis the model leaves free (a fully convolutional model)."""
    from ..data import load_image

    p = Path(path)
    if not p.exists():
        raise UsageError(f"image not found: {path}")
    if p.is_dir():
        raise UsageError(f"image {path} is a directory, not an image file")
    mode = "grayscale" if c == 1 else "rgb"
    try:
        img = load_image(p, color_mode=mode)
        if h is not None or w is not None:
            img = load_image(p, target_size=(h or img.shape[0], w or img.shape[1]),
                             color_mode=mode)
    except (ValueError, OSError) as e:
        raise UsageError(f"{path} is not a readable image: {e}") from None
    return img


def cmd_predict(args: argparse.Namespace) -> int:
    from ..ops import softmax

    model = checks.load_trained(args.model)
    h, w, c = checks.image_input(model, args.model)
    if c not in (1, 3):
        raise UsageError(f"{args.model}: model '{model.name}' expects {c}-channel images; "
                         f"predict reads images as grayscale (1) or RGB (3)")
    checks.class_count(model, args.model)
    names = getattr(model, "class_names", None)
    for path in args.images:
        img = _read_image(path, h, w, c)
        if c == 1 and args.invert:
            img = 255 - img
        batch = img[None].astype(np.float32)
        if checks.channels_first(model):  # an NCHW ONNX model takes (1, C, H, W)
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        with about(f"{path} ({fmt(img.shape)} image) in model '{model.name}'"):
            out = model.predict(batch)
        probs = out[0]
        if not (np.all(probs >= 0) and abs(float(probs.sum()) - 1) < 1e-3):
            probs = softmax(out).data[0]
        top = np.argsort(-probs)[: args.top_k]
        parts = [f"{names[i] if names and i < len(names) else i}: {probs[i]:.3f}" for i in top]
        print(f"{path}: " + ", ".join(parts))
    return 0


def fmt(shape: tuple) -> str:
    return checks.fmt_shape(shape)


# ----- summary ---------------------------------------------------------------------------------
def cmd_summary(args: argparse.Namespace) -> int:
    """The layer table; a zoo architecture is built by shape inference alone, so its summary
    costs no weight memory at any input size."""
    from .. import zoo

    if args.list or not args.model:
        if args.input_shape or args.classes:
            raise UsageError("summary: --input-shape and --classes need an architecture name")
        print("\n".join(zoo.list()))
        return 0
    if Path(args.model).is_file() or Path(args.model).suffix == ".cnnkit":
        if args.input_shape or args.classes:
            raise UsageError(f"summary {args.model}: --input-shape and --classes apply to an "
                             f"architecture name, not a saved model file")
        model = checks.load_trained(args.model)
    else:
        shape = tuple(args.input_shape) if args.input_shape else None
        purpose = " ".join([f"summary {args.model}",
                            *([f"--input-shape {' '.join(map(str, shape))}"] if shape else []),
                            *([f"--classes {args.classes}"] if args.classes else [])])
        model = checks.build_arch(args.model, shape, args.classes, purpose, allocate=False)
    with about(f"summary {args.model}"):
        model.summary(flops=args.flops, receptive_field=args.rf)
    return 0
