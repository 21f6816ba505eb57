"""``cnnkit prune`` and ``cnnkit distill``: make a trained model smaller, and report what it
costs before and after. Options, files and shapes are checked before any data is read."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import checks
from .data import check_source, data_shape, load_dataset
from .errors import UsageError, about


def check_out_file(path: Path, option: str = "--out") -> None:
    """``path`` can be written: not a folder, inside an existing writable folder."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name such as "
                         f"{path / 'model.cnnkit'}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{option} {path}: folder {parent} is not writable")


def _data_for(model: Any, args: argparse.Namespace, where: str) -> tuple:
    """Train and test data that fit ``model``'s input, checked before reading."""
    kind = check_source(args.dataset, args.data_dir)
    h, w, c = checks.image_input(model, where)
    size = (h or 64, w or 64) if kind == "folder" else None
    shape = data_shape(kind, size, c == 1)
    checks.check_fits((h, w, c), shape, model.name, args.dataset, where)
    (xt, yt), test, names = load_dataset(args.dataset, args.data_dir, size,
                                         c == 1 if size else None)
    if args.train_subset and args.train_subset < len(xt):
        pick = np.random.default_rng(args.seed).permutation(len(xt))[:args.train_subset]
        xt, yt = xt[pick], yt[pick]
    return (xt, yt), test, names


def _accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(x.astype(np.float32), batch_size=256).argmax(-1) == y).mean())


def _fit(model: Any, x: np.ndarray, y: np.ndarray, args: argparse.Namespace, epochs: int,
         callbacks: list | None = None) -> None:
    from ..data import BatchIterator
    from ..train import optimizers, schedules
    from .commands import _loss_for

    batches = BatchIterator(x.astype(np.float32), y, batch_size=args.batch_size, shuffle=True,
                            seed=args.seed)
    lr = schedules.CosineDecay(args.lr, max(1, len(batches) * epochs))
    model.compile(optimizer=optimizers.Adam(lr), loss=_loss_for(model), metrics=["accuracy"],
                  seed=args.seed)
    model.fit(batches, epochs=epochs, verbose=0 if args.quiet else 1, callbacks=callbacks)


def _taylor_batches(x: np.ndarray, y: np.ndarray, seed: int) -> list:
    pick = np.random.default_rng(seed).permutation(len(x))[:256]
    return [(x[pick[i:i + 64]].astype(np.float32), y[pick[i:i + 64]]) for i in
            range(0, len(pick), 64)]


def _prune_structured(model: Any, args: argparse.Namespace, xt: np.ndarray,
                      yt: np.ndarray) -> Any:
    from ..deploy import prune

    per_step = 1.0 - (1.0 - args.channels) ** (1.0 / args.steps)
    for step in range(args.steps):
        batches = _taylor_batches(xt, yt, args.seed + step) if args.importance == "taylor" \
            else None
        model = prune.prune_channels(model, per_step, args.importance, batches)
        print(f"step {step + 1}/{args.steps}: {model.count_params():,} parameters")
        if args.fine_tune_epochs:
            _fit(model, xt, yt, args, args.fine_tune_epochs)
    return model


def _prune_sparse(model: Any, args: argparse.Namespace, xt: np.ndarray, yt: np.ndarray) -> Any:
    from ..deploy import prune

    if not args.fine_tune_epochs:
        prune.prune_magnitude(model, args.sparsity, args.scope)
        return model
    steps = args.fine_tune_epochs * -(-len(xt) // args.batch_size)
    schedule = prune.PolynomialDecay(0.0, args.sparsity, 0, max(1, int(steps * 0.6)),
                                     frequency=max(1, steps // 50))
    _fit(model, xt, yt, args, args.fine_tune_epochs,
         [prune.MagnitudePruning(schedule, args.scope)])
    return model


def cmd_prune(args: argparse.Namespace) -> int:
    """Structured (--channels) or magnitude (--sparsity) pruning with fine-tuning."""
    from ..deploy import prune
    from ..models.saving import save_model

    if (args.channels is None) == (args.sparsity is None):
        raise UsageError("prune: give exactly one of --channels (structured: fraction of "
                         "channels to remove) or --sparsity (fraction of weights to zero)")
    out = Path(args.out)
    check_out_file(out)
    model = checks.load_trained(args.model)
    checks.class_count(model, args.model)
    if args.channels is not None:
        with about(f"prune {args.model}"):
            if not prune.analyse(model).prunable_roots():
                raise UsageError(f"prune {args.model}: model '{model.name}' has no channel "
                                 f"that can be removed")
    (xt, yt), (xv, yv), _ = _data_for(model, args, args.model)
    x128 = xv[:128].astype(np.float32)
    acc0, before = _accuracy(model, xv, yv), prune.figures(model, x128)
    if args.channels is not None:
        model = _prune_structured(model, args, xt, yt)
    else:
        model = _prune_sparse(model, args, xt, yt)
    sparse = args.sparsity is not None
    acc1, after = _accuracy(model, xv, yv), prune.figures(model, x128, sparse=sparse)
    print(prune.table(before, after, (acc0, acc1)))
    with about(f"--out {out}"):
        save_model(model, out, sparse=sparse, include_optimizer=False)
    print(f"wrote {out}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    """Train a zoo architecture from a saved teacher's logits (Distiller)."""
    from ..deploy import Distiller, prune
    from ..models.saving import save_model
    from ..train import optimizers, schedules

    out = Path(args.out)
    check_out_file(out)
    teacher = checks.load_trained(args.teacher)
    classes = checks.class_count(teacher, f"--teacher {args.teacher}")
    shape = checks.image_input(teacher, f"--teacher {args.teacher}")
    extra = {"width": args.student_width} if args.student_width else None
    purpose = f"--student {args.student}"
    student = checks.build_arch(args.student, tuple(d or 64 for d in shape), classes, purpose,
                                extra=extra)
    (xt, yt), (xv, yv), names = _data_for(teacher, args, f"--teacher {args.teacher}")
    if int(yt.max()) >= classes:
        raise UsageError(f"--teacher {args.teacher}: model '{teacher.name}' scores {classes} "
                         f"classes, data set {args.dataset!r} has {len(names)}")
    from ..data import BatchIterator

    batches = BatchIterator(xt.astype(np.float32), yt, batch_size=args.batch_size,
                            shuffle=True, seed=args.seed)
    distiller = Distiller(student, teacher)
    lr = schedules.CosineDecay(args.lr, max(1, len(batches) * args.epochs))
    distiller.compile(optimizer=optimizers.Adam(lr), metrics=["accuracy"], alpha=args.alpha,
                      temperature=args.temperature, seed=args.seed)
    distiller.fit(batches, epochs=args.epochs, verbose=0 if args.quiet else 1)
    x128 = xv[:128].astype(np.float32)
    print(prune.table(prune.figures(teacher, x128), prune.figures(student, x128),
                      (_accuracy(teacher, xv, yv), _accuracy(student, xv, yv)),
                      labels=("teacher", "student")))
    student.class_names = names
    with about(f"--out {out}"):
        save_model(student, out, include_optimizer=False)
    print(f"wrote {out}")
    return 0
