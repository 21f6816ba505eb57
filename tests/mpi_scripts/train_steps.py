"""Trains a small CNN under MPI (or alone) and saves rank 0's weights: tests/test_distributed.py
runs it with 1, 2 and 4 processes and compares. Usage: train_steps.py MODE OUT [options]."""

import argparse
import json

import numpy as np

from cnnkit import layers, losses, models, nn
from cnnkit import random as crandom
from cnnkit.data import DataLoader, TensorDataset
from cnnkit.datasets import mnist5k
from cnnkit.train import optimizers

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["fit", "loop"])
p.add_argument("out")
p.add_argument("--n", type=int, default=100)
p.add_argument("--batch", type=int, default=25)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--sync-bn", action="store_true")
p.add_argument("--backup", default=None)
p.add_argument("--fail-rank", type=int, default=-1)
p.add_argument("--crash-at-epoch", type=int, default=-1)
p.add_argument("--hang-rank", type=int, default=-1)
args = p.parse_args()

(x, y), _ = mnist5k.load_data()
x = x[:args.n, ::2, ::2, None].astype(np.float32) / 255  # 14 x 14: quick
y = y[:args.n].astype(np.int64)


def build():
    crandom.seed(7)
    norm = (layers.SyncBatchNormalization() if args.sync_bn else layers.Activation("linear"))
    return models.Sequential([layers.Input((14, 14, 1)),
                              layers.Conv2D(6, 3, use_bias=not args.sync_bn), norm,
                              layers.Activation("relu"), layers.MaxPooling2D(2),
                              layers.Flatten(), layers.Dense(10)])


def run_fit():
    from cnnkit.distributed import init
    if args.fail_rank >= 0 and init().rank == args.fail_rank:
        raise RuntimeError(f"rank {args.fail_rank} fails on purpose")
    model = build()
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), metrics=["accuracy"],
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True), seed=3)
    cbs = []
    if args.crash_at_epoch >= 0:  # callbacks run on rank 0: the others are left waiting
        from cnnkit.callbacks import LambdaCallback

        def crash(epoch, logs):
            if epoch == args.crash_at_epoch:
                raise KeyboardInterrupt(f"interrupted at epoch {epoch}")
        cbs.append(LambdaCallback(on_epoch_begin=crash))
    if args.backup:
        from cnnkit.callbacks import BackupAndRestore
        cbs.append(BackupAndRestore(args.backup))
    h = model.fit(x, y, batch_size=args.batch, epochs=args.epochs, shuffle=True, verbose=0,
                  callbacks=cbs, distributed=True)
    return model, h.history


def run_loop():
    from cnnkit.distributed import (
        DistributedOptimizer,
        DistributedSampler,
        broadcast_parameters,
        init,
    )
    g = init()
    model = build()
    broadcast_parameters(model)
    opt = DistributedOptimizer(optimizers.SGD(model.parameters(), lr=0.1, momentum=0.9))
    ds = TensorDataset(x, y)
    sampler = DistributedSampler(ds, shuffle=True, seed=5)
    loader = DataLoader(ds, batch_size=args.batch // g.size, sampler=sampler)
    crit = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        for xb, yb in loader:
            opt.zero_grad()
            loss = crit(model(xb), yb)
            loss.backward()
            opt.step()
    return model, {}


if args.hang_rank >= 0:  # one rank stops taking part: the others must not wait forever
    import time

    from cnnkit.distributed import init
    g = init()
    if g.rank == args.hang_rank:
        time.sleep(600)
    g.allreduce_sum(np.zeros(4, np.float32))
model, history = run_fit() if args.mode == "fit" else run_loop()
from cnnkit.distributed import is_main_process  # noqa: E402

if is_main_process():
    np.savez(args.out, *[w.data for w in model.weights])
    with open(args.out + ".json", "w") as f:
        json.dump(history, f)
