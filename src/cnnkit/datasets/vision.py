"""``torchvision.datasets``'s habits: ``MNIST`` and ``FashionMNIST`` as indexable datasets
(``ds[i] = (image, label)``, the image an (28, 28) uint8 array passed through ``transform``),
read from the same verified IDX files as :func:`cnnkit.datasets.mnist.load_data`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import fashion_mnist, mnist, mnist5k
from ._idx_sets import IdxSet, load

__all__ = ["MNIST", "FashionMNIST", "MNIST5k"]


class MNIST:
    """``MNIST(root, train=True, download=False, transform=None, target_transform=None)``:
    the IDX files are looked for in ``root`` (and cnnkit's usual places), and downloaded and
    checked against their SHA-256 when ``download`` is true and they are missing."""

    spec: IdxSet = mnist.SPEC
    classes = [str(d) for d in range(10)]

    def __init__(self, root: Any = None, train: bool = True, download: bool = False,
                 transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None):
        (xt, yt), (xv, yv) = self._load(root, download)
        self.data, self.targets = (xt, yt) if train else (xv, yv)
        self.train, self.transform, self.target_transform = train, transform, target_transform

    def _load(self, root: Any, download: bool) -> tuple:
        if root is not None:  # torchvision keeps the files in ROOT/MNIST/raw
            raw = Path(root) / type(self).__name__ / "raw"
            root = raw if raw.is_dir() else root
        return load(self.spec, root, download)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        img: Any = self.data[i]
        target: Any = int(self.targets[i])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    @property
    def arrays(self) -> list[np.ndarray] | None:
        """The whole set at once, for DataLoader's fast path (None when transforms apply)."""
        if self.transform is None and self.target_transform is None:
            return [self.data, self.targets.astype(np.int64)]
        return None


class FashionMNIST(MNIST):
    spec = fashion_mnist.SPEC
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]


class MNIST5k(MNIST):
    """The embedded 4,000 + 1,000 real MNIST digits (no files, no download)."""

    def _load(self, root: Any, download: bool) -> tuple:
        return mnist5k.load_data()
