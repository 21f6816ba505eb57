"""MNIST (LeCun, Cortes, Burges): 60,000 + 10,000 28x28 grayscale handwritten digits."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._idx_sets import IdxSet, load

SPEC = IdxSet(
    name="mnist",
    urls=("https://storage.googleapis.com/cvdf-datasets/mnist",
          "https://ossci-datasets.s3.amazonaws.com/mnist"),
    sha256={
        "train-images-idx3-ubyte":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    system_dirs=("/usr/share/datasets/mnist",),
)


def load_data(data_dir: Any = None, download: bool = True
              ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)): uint8 images (N, 28, 28), uint8 labels."""
    return load(SPEC, data_dir, download)
