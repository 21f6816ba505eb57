"""W6, time to accuracy (``python -m bench --w6``): the README's Fashion-MNIST recipe trained
by cnnkit and by PyTorch from the same initial weights on the same batches, epochs alternating,
until a target test accuracy."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from . import common as C
from . import workloads as W
from .steps import load_torch

FASHION_DIR = C.REPO.parent / "shared" / "datasets" / "fashion-mnist"
# the cli's Fashion-MNIST default before the recipes round, pinned so that W6 keeps timing the
# same recipe (its PyTorch twin is mnist_cnn's; the cli's default recipe has moved on)
W6_RECIPE = {"model": "mnist_cnn", "epochs": 10, "batch_size": 128, "lr": 2e-3,
             "schedule": "cosine", "augment": "flip"}


def _fashion_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST (train images, labels, test images, labels): NHWC float32, int64."""
    from cnnkit import datasets

    (xt, yt), (xv, yv) = datasets.fashion_mnist.load_data(data_dir=str(FASHION_DIR))
    xt = xt[..., None].astype(np.float32)
    xv = xv[..., None].astype(np.float32)
    return xt, yt.astype(np.int64), xv, yv.astype(np.int64)


def _augmentation(recipe: dict[str, Any]) -> tuple[Any, list[str]]:
    """The recipe's augmentation from the cli, or the same spelled out (with a note) when the
    cli cannot build it."""
    from cnnkit import cli, data

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
    return aug, notes


def _same_start(recipe: dict[str, Any], seed: int, xv: np.ndarray) -> tuple[Any, Any, float]:
    """(cnnkit model, PyTorch twin with its weights, logits max abs diff on 64 test images in
    inference mode)."""
    import cnnkit
    from cnnkit import random as crandom
    from cnnkit import zoo

    torch = load_torch()
    crandom.seed(seed)
    ck = zoo.get(recipe["model"], input_shape=(28, 28, 1), classes=10)
    pt = W.torch_model(recipe["model"])
    W.cnnkit_to_torch(ck, pt)
    pt.eval()
    with cnnkit.no_grad():
        a = np.asarray(ck(xv[:64], training=False).data)
    with torch.inference_mode():
        b = pt(torch.from_numpy(xv[:64].transpose(0, 3, 1, 2).copy())).numpy()
    return ck, pt, float(np.abs(a - b).max())


def _torch_epoch(pt: Any, opt: Any, batches: Any, sched: Any, epoch: int) -> None:
    """One PyTorch training epoch, the learning rate set from cnnkit's schedule every step."""
    torch = load_torch()
    import torch.nn.functional as F  # noqa: N812

    pt.train()
    it = epoch * len(batches)
    for xb, yb in batches:
        for g in opt.param_groups:
            g["lr"] = sched(it)
        xb_t = torch.from_numpy(np.ascontiguousarray(xb.transpose(0, 3, 1, 2)))
        loss = F.cross_entropy(pt(xb_t), torch.from_numpy(yb))
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1


def _torch_accuracy(pt: Any, xv_t: Any, yv: np.ndarray) -> float:
    """Test accuracy of the PyTorch model on NCHW test images, in batches of 256."""
    torch = load_torch()
    pt.eval()
    with torch.inference_mode():
        p = torch.cat([pt(xv_t[i:i + 256]) for i in range(0, len(xv_t), 256)])
    return float((p.argmax(1).numpy() == yv).mean())


def _alternate_epochs(train: dict[str, Any], evaluate: dict[str, Any], epochs: int,
                      target: float, opts: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Epochs alternating cnnkit / PyTorch (``train[fw](epoch)``), test accuracy after each
    (``evaluate[fw]()``, timed apart); a framework stops at ``target`` unless --w6-full."""
    state = {fw: {"train_s": 0.0, "eval_s": 0.0, "acc": [], "reached": None}
             for fw in ("cnnkit", "torch")}
    for epoch in range(epochs):
        for fw, s in state.items():
            if s["reached"] is not None and not opts.w6_full:
                continue
            if opts.wait_quiet > 0:
                C.wait_quiet(0.5, min(opts.wait_quiet, 30.0))
            t0 = time.perf_counter()
            train[fw](epoch)
            s["train_s"] += time.perf_counter() - t0
            t1 = time.perf_counter()
            acc = evaluate[fw]()
            s["eval_s"] += time.perf_counter() - t1
            s["acc"].append(acc)
            if s["reached"] is None and acc >= target:
                s["reached"] = {"epoch": epoch + 1, "train_s": s["train_s"]}
            print(f"  epoch {epoch + 1:2d} {fw:<7} test acc {acc:.4f}  train "
                  f"{s['train_s']:7.1f} s  eval {s['eval_s']:5.1f} s", flush=True)
        if all(s["reached"] is not None for s in state.values()) and not opts.w6_full:
            break
    return state


def w6(opts: argparse.Namespace) -> dict[str, Any]:
    """The W6 recipe (``W6_RECIPE``: mnist_cnn, Adam lr 2e-3 with cosine decay over all steps,
    batch 128, 10 epochs, flip + pad-2 crop) in cnnkit
    (``model.fit``) and in PyTorch (a plain loop), from the same initial weights and the same
    NumPy batches, epochs alternating; test accuracy after every epoch (evaluation time kept
    out of the training time). Reports the training time until 91% test accuracy."""
    torch = load_torch()
    from cnnkit.data import BatchIterator
    from cnnkit.train import losses, optimizers, schedules

    recipe = dict(W6_RECIPE)
    epochs = opts.w6_epochs or recipe["epochs"]
    target, seed, bs = opts.w6_target, 0, recipe["batch_size"]
    xt, yt, xv, yv = _fashion_data()
    aug, notes = _augmentation(recipe)

    def transform(xb: np.ndarray, yb: np.ndarray, rng: np.random.Generator) -> Any:
        return aug(xb, yb, rng=rng)

    batches_ck, batches_pt = (BatchIterator(xt, yt, batch_size=bs, shuffle=True, seed=seed,
                                            transform=transform) for _ in range(2))
    ck, pt, init_diff = _same_start(recipe, seed, xv)
    print(f"W6 Fashion-MNIST recipe {recipe}, target {target:.0%}, up to {epochs} epochs; "
          f"initial logits max |diff| {init_diff:.1e}", flush=True)
    for n in notes:
        print("  note:", n)
    sched = schedules.CosineDecay(recipe["lr"], len(batches_ck) * epochs)
    ck.compile(optimizer=optimizers.Adam(learning_rate=sched, formula="torch"),  # as PyTorch
               loss=losses.SparseCategoricalCrossentropy(from_logits=True),
               metrics=["accuracy"], seed=seed)
    opt_t = torch.optim.Adam(pt.parameters(), lr=recipe["lr"], betas=(0.9, 0.999), eps=1e-7)
    xv_t = torch.from_numpy(np.ascontiguousarray(xv.transpose(0, 3, 1, 2)))
    train = {"cnnkit": lambda e: ck.fit(batches_ck, epochs=e + 1, initial_epoch=e, verbose=0),
             "torch": lambda e: _torch_epoch(pt, opt_t, batches_pt, sched, e)}
    evaluate = {"cnnkit": lambda: float((ck.predict(xv, batch_size=256).argmax(-1) == yv).mean()),
                "torch": lambda: _torch_accuracy(pt, xv_t, yv)}
    state = _alternate_epochs(train, evaluate, epochs, target, opts)
    return {"recipe": recipe, "target": target, "epochs": epochs, "init_diff": init_diff,
            "notes": notes, "state": state, "steps_per_epoch": len(batches_ck)}
