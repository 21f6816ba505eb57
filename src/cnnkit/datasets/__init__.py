"""Data sets with ``load_data()`` as in ``keras.datasets``: the embedded ``mnist5k``,
``fashion_mnist`` and ``mnist`` (IDX files found locally or downloaded and verified); and
torchvision-style datasets ``MNIST``, ``FashionMNIST``, ``MNIST5k`` for ``data.DataLoader``."""

from . import fashion_mnist, idx, langid_words, mnist, mnist5k
from .vision import MNIST, FashionMNIST, MNIST5k

__all__ = ["mnist5k", "langid_words", "fashion_mnist", "mnist", "idx", "MNIST", "FashionMNIST",
           "MNIST5k"]
