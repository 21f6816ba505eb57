"""The training recipes' figures: ``cnnkit train`` run for several seeds, the test accuracy
(plain and with the recipe's test-time augmentation) as mean and spread, and the training
time (wall and CPU) per run.

    python -m bench.recipes                          # the default (mnist5k), seeds 0 1 2
    python -m bench.recipes --dataset fashion-mnist  # the Fashion-MNIST default
    python -m bench.recipes --seeds 0 --extra --epochs 3     # any other cnnkit train options
    python -m bench.recipes --extra --val-split 0.25 --tta shift  # choose on held-out images

Each run is a fresh ``cnnkit train`` process (2 kernel threads, as a user gets it); nothing
else should run meanwhile when the times matter.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import common as C

FASHION_DIR = C.REPO.parent / "shared" / "datasets" / "fashion-mnist"


def _run(dataset: str, seed: int, extra: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "cnnkit.cli", "train", "--dataset", dataset, "--seed",
           str(seed), "--quiet", "--out", str(out), *extra]
    if dataset == "fashion-mnist":
        cmd += ["--data-dir", str(FASHION_DIR)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["command_seconds"] = time.perf_counter() - t0
    return metrics


def _spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return (f"{100 * mean:.2f}% (min {100 * min(values):.1f}, max {100 * max(values):.1f}, "
            f"n={len(values)})")


def _val_line(m: dict) -> str:
    """The --val-split scores of one run: accuracy (with the recipe's TTA) and loss."""
    tta = f", with TTA {m['val_accuracy_tta']:.4f}" if "val_accuracy_tta" in m else ""
    return f"validation accuracy {m['val_accuracy']:.4f}{tta} (loss {m['val_loss']:.4f}), "


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--keep", help="write the runs (seed0, seed1, ...) under this folder")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                    help="further cnnkit train options (last on the line)")
    opts = ap.parse_args(argv)
    extra = opts.extra
    print(f"cnnkit train --dataset {opts.dataset} {' '.join(extra)}; {C.machine_info()['CPU']}")
    runs, held_out = [], "--val-split" in extra
    with tempfile.TemporaryDirectory() as tmp:
        for seed in opts.seeds:
            m = _run(opts.dataset, seed, extra, Path(opts.keep or tmp) / f"seed{seed}")
            runs.append(m)
            tta = m.get("test_accuracy_tta")
            val = _val_line(m) if held_out else ""
            print(f"  seed {seed}: {val}"
                  + f"test accuracy {m['test_accuracy']:.4f}"
                  + (f", with {m['recipe']['tta']} TTA {tta:.4f}" if tta is not None else "")
                  + f"; training {m['train_seconds']:.1f} s wall, "
                  f"{m['train_cpu_seconds']:.1f} s CPU; command {m['command_seconds']:.1f} s",
                  flush=True)
    print(f"recipe: {json.dumps(runs[0]['recipe'])}")
    if held_out:  # the figures to choose a recipe by (the test set stays for confirming)
        print(f"validation:    {_spread([m['val_accuracy'] for m in runs])}; loss "
              f"{statistics.fmean(m['val_loss'] for m in runs):.4f}")
        if all("val_accuracy_tta" in m for m in runs):
            print(f"val with TTA:  {_spread([m['val_accuracy_tta'] for m in runs])}")
    print(f"test accuracy: {_spread([m['test_accuracy'] for m in runs])}")
    if all("test_accuracy_tta" in m for m in runs):
        print(f"with TTA:      {_spread([m['test_accuracy_tta'] for m in runs])}")
    print(f"training wall: {statistics.fmean(m['train_seconds'] for m in runs):.1f} s mean; "
          f"CPU {statistics.fmean(m['train_cpu_seconds'] for m in runs):.1f} s mean")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
