"""The data sets the command line knows: the embedded MNIST digits, MNIST and Fashion-MNIST
from IDX files, and folders of images (one sub-folder per class). Everything about a data set
that can be checked without reading it (its name, --data-dir, the image shape) is checked
first, so a mistake is reported before any work starts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import UsageError, about

DATASETS = ("mnist5k", "fashion-mnist", "mnist")
IDX_SETS = ("fashion-mnist", "mnist")
DEFAULT_FOLDER_SIZE = (64, 64)
TEST_SPLIT = 0.2  # a folder's test images: the last 20% of a seeded shuffle


def dataset_kind(name: str) -> str:
    """'mnist5k', 'fashion-mnist', 'mnist' or 'folder'; a UsageError for anything else."""
    if name in DATASETS:
        return name
    if name == "fashion_mnist":
        return "fashion-mnist"
    p = Path(name)
    if p.is_dir():
        return "folder"
    if p.exists():
        raise UsageError(f"--dataset {name}: not a folder (a data set folder holds one "
                         f"sub-folder of images per class)")
    raise UsageError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)} or a "
                     f"folder with one sub-folder per class")


def check_source(name: str, data_dir: str | None, image_size: Sequence[int] | None = None,
                 grayscale: bool = False) -> str:
    """Check the data set options against each other; returns the data set kind."""
    kind = dataset_kind(name)
    if data_dir is not None:
        if kind not in IDX_SETS:
            raise UsageError(f"--data-dir applies to --dataset {' or '.join(IDX_SETS)}, not "
                             f"{name!r}")
        if not Path(data_dir).is_dir():
            what = "not a folder" if Path(data_dir).exists() else "no such folder"
            raise UsageError(f"--data-dir {data_dir}: {what}")
    if kind != "folder" and (image_size or grayscale):
        opt = "--image-size" if image_size else "--grayscale"
        raise UsageError(f"{opt} applies to a folder --dataset; {name!r} images are "
                         f"28x28x1")
    return kind


def data_shape(kind: str, image_size: Sequence[int] | None, grayscale: bool | None) -> tuple:
    """(H, W, C) of the images as the data set will be loaded."""
    if kind != "folder":
        return (28, 28, 1)
    h, w = tuple(image_size) if image_size else DEFAULT_FOLDER_SIZE
    return (int(h), int(w), 1 if grayscale else 3)


def load_dataset(name: str, data_dir: str | None = None, image_size: Sequence[int] | None = None,
                 grayscale: bool | None = None) -> tuple[tuple, tuple, list[str]]:
    """((x_train, y_train), (x_test, y_test), class_names); images (N, H, W, C) uint8."""
    from .. import datasets

    kind = dataset_kind(name)
    if kind == "folder":
        return _load_folder(name, data_shape(kind, image_size, grayscale))
    if kind == "mnist5k":
        with about(f"--dataset {name}"):
            (xt, yt), (xv, yv) = datasets.mnist5k.load_data()
        names = list(datasets.mnist5k.CLASS_NAMES)
    else:
        module = datasets.fashion_mnist if kind == "fashion-mnist" else datasets.mnist
        where = f"--data-dir {data_dir}" if data_dir is not None else f"--dataset {name}"
        with about(where):
            # a folder the user named is read, never replaced by a download elsewhere
            (xt, yt), (xv, yv) = module.load_data(data_dir=data_dir,
                                                  download=data_dir is None)
        names = (list(module.CLASS_NAMES) if hasattr(module, "CLASS_NAMES")
                 else [str(i) for i in range(10)])
    return (xt[..., None], yt.astype(np.int64)), (xv[..., None], yv.astype(np.int64)), names


def _load_folder(folder: str, shape: tuple) -> tuple[tuple, tuple, list[str]]:
    from ..data import image_dataset_from_directory

    mode = "grayscale" if shape[2] == 1 else "rgb"
    with about(f"--dataset {folder}"):
        (xt, yt), (xv, yv), names = image_dataset_from_directory(
            folder, image_size=shape[:2], color_mode=mode, validation_split=TEST_SPLIT,
            subset="both", seed=0)
    n = len(xt) + len(xv)
    if len(xv) == 0 or len(xt) == 0:
        need = int(np.ceil(1 / TEST_SPLIT))
        raise UsageError(f"--dataset {folder}: {n} image(s) are too few to hold out "
                         f"{TEST_SPLIT:.0%} for testing; it needs at least {need}")
    return (xt, yt), (xv, yv), list(names)


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int
                     ) -> tuple[tuple, tuple | None]:
    """((x_train, y_train), (x_val, y_val) or None): ``fraction`` of a seeded shuffle held out."""
    if not fraction:
        return (x, y), None
    n_val = int(round(len(x) * fraction))
    if n_val == 0 or n_val == len(x):
        raise UsageError(f"--val-split {fraction:g} of {len(x)} training images leaves "
                         f"{len(x) - n_val} for training and {n_val} for validation; both "
                         f"need at least one")
    order = np.random.default_rng(seed).permutation(len(x))
    val_idx, tr_idx = order[:n_val], order[n_val:]
    return (x[tr_idx], y[tr_idx]), (x[val_idx], y[val_idx])
