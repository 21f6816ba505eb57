"""Fashion-MNIST (Zalando Research, MIT): 60,000 + 10,000 28x28 grayscale clothing images."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._idx_sets import IdxSet, load

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]

SPEC = IdxSet(
    name="fashion-mnist",
    urls=("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
          "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"),
    sha256={
        "train-images-idx3-ubyte":
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte":
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte":
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte":
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    system_dirs=("/usr/share/datasets/fashion-mnist",),
)


def load_data(data_dir: Any = None, download: bool = True
              ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)): uint8 images (N, 28, 28), uint8 labels."""
    return load(SPEC, data_dir, download)
