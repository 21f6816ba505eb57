"""Data-parallel scaling on this machine (1 and 2 MPI processes) and a model of it on paper.

    python -m bench.distributed [--epochs 3] [--processes 1 2]

Part 1 runs ``fit(distributed=True)`` of the README's mnist5k model (mnist_cnn, global batch
64, 4,000 images) under mpirun with each process count and prints the median time per epoch
(first epoch dropped), the speed-up and the efficiency, and the time one gradient allreduce
takes. Part 2 models N machines: ring all-reduce moves 2 (N - 1) / N of the gradient bytes
through each link, plus 2 (N - 1) latency hops, against the compute time of one step, for the
zoo's parameter counts."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SRC = str(Path(__file__).resolve().parents[1] / "src")


def worker(epochs: int, out: str) -> None:
    """One rank's run (under mpirun): times each epoch and one gradient allreduce."""
    from cnnkit import callbacks, zoo
    from cnnkit.datasets import mnist5k
    from cnnkit.distributed import init
    from cnnkit.distributed.gradients import GradientReducer

    g = init()
    (x, y), _ = mnist5k.load_data()
    x = x[..., None].astype(np.float32) / 255
    model = zoo.get("mnist_cnn", input_shape=(28, 28, 1), classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", seed=0)
    times: list[float] = []

    class EpochTimer(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    cb = EpochTimer()
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, callbacks=[cb], distributed=True)
    params = model.trainable_weights
    for p in params:
        p.grad = np.ones_like(p.data)
    reducer = GradientReducer(g, params)
    reducer.reduce(0.0)
    start = time.perf_counter()
    for _ in range(20):
        reducer.reduce(0.0)
    allreduce = (time.perf_counter() - start) / 20
    if g.rank == 0:
        Path(out).write_text(json.dumps({"epochs": times, "allreduce": allreduce,
                                         "params": int(sum(p.data.size for p in params))}))


def measure(processes: list[int], epochs: int) -> dict[int, dict]:
    from cnnkit.distributed import launch

    results = {}
    for n in processes:
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.json")
            cmd, env = launch.mpirun_command(n, [sys.executable, "-m", "bench.distributed",
                                                 "--worker", out, "--epochs", str(epochs)])
            env["PYTHONPATH"] = SRC + os.pathsep + str(Path(SRC).parent)
            subprocess.run(cmd, env=env, check=True, cwd=str(Path(SRC).parent))
            results[n] = json.loads(Path(out).read_text())
    return results


# (name, parameters, multiply-adds per image at its usual input): `cnnkit summary NAME`
ZOO = [("mnist_cnn", 218_778, 4.87e6), ("resnet20 (CIFAR)", 271_098, 40.74e6),
       ("mobilenet_v2", 3_538_984, 307.45e6), ("resnet50", 25_610_152, 4.100e9),
       ("vgg16", 138_357_544, 15.47e9)]


def paper_model(gflops: float, batch: int) -> None:
    """Weak scaling: each machine computes ``batch`` images per step at ``gflops``."""
    links = [("10 Gb/s Ethernet", 1.25e9, 20e-6), ("100 Gb/s InfiniBand", 12.5e9, 2e-6)]
    print(f"\nOn paper: per-machine batch {batch}, {gflops:.0f} GFLOP/s sustained, step compute "
          f"= 3 x 2 x MACs x batch (forward + two backward products), ring all-reduce "
          f"2 (N-1)/N x 4 x params / bandwidth + 2 (N-1) x latency, no overlap")
    for link, bw, lat in links:
        print(f"\n{link}: efficiency at N machines")
        print("| model | params | compute/step | N=2 | N=8 | N=32 | N=128 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, params, macs in ZOO:
            comp = 6 * macs * batch / (gflops * 1e9)
            cells = []
            for n in (2, 8, 32, 128):
                comm = 2 * (n - 1) / n * 4 * params / bw + 2 * (n - 1) * lat
                cells.append(f"{comp / (comp + comm):.0%}")
            print(f"| {name} | {params / 1e6:.2f} M | {comp * 1e3:.1f} ms | " + " | ".join(cells)
                  + " |")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--gflops", type=float, default=100.0)
    args = p.parse_args()
    if args.worker:
        worker(args.epochs, args.worker)
        return
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name'"], capture_output=True,
                         text=True).stdout.strip()
    print(f"{cpu}; {os.cpu_count()} cores; mnist_cnn, global batch 64, 4,000 images")
    res = measure(args.processes, args.epochs)
    base = float(np.median(res[args.processes[0]]["epochs"][1:]))
    print("| processes | s / epoch | speed-up | efficiency | one allreduce |")
    print("|---:|---:|---:|---:|---:|")
    for n, r in res.items():
        t = float(np.median(r["epochs"][1:]))
        print(f"| {n} | {t:.2f} | {base / t:.2f}x | {base / t / n * args.processes[0]:.0%} | "
              f"{r['allreduce'] * 1e3:.2f} ms ({r['params'] * 4 / 1e6:.2f} MB) |")
    paper_model(args.gflops, 32)


if __name__ == "__main__":
    main()
