"""Reading your own data: image folders and single images (via Pillow), NumPy .npz archives
and CSV tables. Nothing here unpickles (``.npz`` is opened with ``allow_pickle=False``)."""

from __future__ import annotations

import gzip
import io
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["image_dataset_from_directory", "load_image", "decode_image", "load_npz",
           "load_csv", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_MODES = {"rgb": "RGB", "grayscale": "L", "rgba": "RGBA"}


def _pillow() -> Any:
    """``PIL.Image``, imported on first use (Pillow is an optional dependency)."""
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - exercised only without Pillow
        raise ImportError("reading image files needs Pillow: pip install pillow "
                          "(or pip install cnnkit[images])") from e
    return Image


def _size_arg(image_size: Any, name: str) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if np.ndim(image_size) == 0:
        image_size = (image_size, image_size)
    h, w = (int(v) for v in image_size)
    if h < 1 or w < 1:
        raise ValueError(f"{name} must be (height, width) with positive sizes, got "
                         f"{tuple(image_size)}")
    return h, w


_NOT_IMAGE = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError,
              struct.error, zlib.error, ZeroDivisionError, RecursionError)


class ImageTooLarge(ValueError):
    """An image with more pixels than the caller's limit."""


def _read(path: Path, size: tuple[int, int] | None, color_mode: str) -> np.ndarray:
    """Decode one image file (see :func:`decode_image`); file-system errors pass through."""
    return decode_image(path.read_bytes(), size, color_mode, name=str(path))


def decode_image(data: bytes, target_size: Any = None, color_mode: str = "rgb",
                 max_pixels: int | None = None, name: str = "the data") -> np.ndarray:
    """Image bytes (PNG, JPEG, ...) as uint8 (H, W, C), resized to ``target_size`` (height,
    width) with Pillow's bilinear filter. Any decoder failure, a truncated image, more pixels
    than ``max_pixels`` (checked on the header, before decoding) or than Pillow's
    ``Image.MAX_IMAGE_PIXELS`` (a decompression bomb) is a ValueError naming ``name``."""
    if color_mode not in _MODES:
        raise ValueError(f"decode_image: color_mode must be one of {', '.join(_MODES)}, got "
                         f"{color_mode!r}")
    size = _size_arg(target_size, "target_size")
    Image = _pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # from memory: a damaged chunk length then reads at most the data's bytes
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if max_pixels is not None and w * h > max_pixels:
                    raise ImageTooLarge(f"{name} is a {w}x{h} image ({w * h:,} pixels), more "
                                     f"than the limit of {max_pixels:,}")
                if im.mode != _MODES[color_mode]:
                    im = im.convert(_MODES[color_mode])
                else:  # convert() to the same mode would only copy (~45 us for a digit)
                    im.load()
                if size is not None and im.size != (size[1], size[0]):
                    im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(f"cannot read {name} as an image: {e} (the limit is Pillow's "
                         f"Image.MAX_IMAGE_PIXELS; a decompression bomb?)") from None
    except Image.UnidentifiedImageError:
        raise ValueError(f"cannot read {name} as an image: not an image file Pillow "
                         f"knows") from None
    except ImageTooLarge:
        raise
    except _NOT_IMAGE as e:  # Pillow's errors for damaged or truncated images
        raise ValueError(f"cannot read {name} as an image: {type(e).__name__}: {e}") from None
    return arr[..., None] if arr.ndim == 2 else arr


def load_image(path: str | os.PathLike, target_size: Any = None,
               color_mode: str = "rgb") -> np.ndarray:
    """One image file as uint8 (H, W, C): C = 3 ("rgb"), 1 ("grayscale") or 4 ("rgba");
    ``target_size`` (height, width) resizes with Pillow's bilinear filter.

    Raises FileNotFoundError / PermissionError for the file system and ValueError naming the
    file when it is not an image, is truncated or damaged, or declares more pixels than
    Pillow's ``Image.MAX_IMAGE_PIXELS`` (about 89 million: a decompression bomb)."""
    if color_mode not in _MODES:
        raise ValueError(f"load_image: color_mode must be one of {', '.join(_MODES)}, got "
                         f"{color_mode!r}")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"load_image: no such file: {p}")
    if p.is_dir():
        raise ValueError(f"load_image: {p} is a directory, not an image file")
    return _read(p, _size_arg(target_size, "target_size"), color_mode)


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _class_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), in sorted path order."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        out.extend(Path(root) / f for f in sorted(files) if _is_image_name(f))
    return out


def image_dataset_from_directory(
        directory: str | os.PathLike, image_size: Any = None, color_mode: str = "rgb",
        class_names: list[str] | None = None, validation_split: float | None = None,
        subset: str | None = None, seed: int | None = None, shuffle: bool = True) -> tuple:
    """Images in ``directory/<class name>/...`` as arrays, one sub-folder per class.

    Files ending in .png, .jpg, .jpeg, .bmp or .gif (in the class folder or below it) are read
    with Pillow; hidden files and other extensions are skipped, and a file with an image
    extension that Pillow cannot decode raises ValueError naming it. Classes are the
    sub-folders in alphabetical order, or ``class_names`` (which picks and orders them).
    Without ``image_size`` every image must already have the same size; with it, images are
    resized with Pillow's bilinear filter.

    ``validation_split`` with ``subset`` ("training", "validation" or "both") holds out the
    last ``int(validation_split * N)`` files of an order shuffled with ``seed`` (required, so
    the two subsets are complementary across calls). ``shuffle`` then shuffles each returned
    subset (with ``seed``); with ``shuffle=False`` samples stay in class-then-file order.

    Returns:
        ``(x, y, class_names)`` with x uint8 (N, H, W, C) and y int64 (N,) class indices; for
        ``subset="both"``: ``((x_train, y_train), (x_val, y_val), class_names)``.
    """
    root = Path(directory)
    _check_dataset_args(root, color_mode, validation_split, subset, seed)
    size = _size_arg(image_size, "image_size")
    class_names = _pick_classes(root, class_names)
    paths: list[Path] = []
    labels: list[int] = []
    for k, name in enumerate(class_names):
        files = _class_files(root / name)
        paths += files
        labels += [k] * len(files)
    if not paths:
        raise ValueError(f"image_dataset_from_directory: no image files "
                         f"({', '.join(IMAGE_EXTENSIONS)}) found in the class folders of "
                         f"{root}")
    x = _read_same_size(paths, size, color_mode)
    y = np.asarray(labels, dtype=np.int64)
    return _subsets(x, y, class_names, validation_split, subset, seed, shuffle)


def _check_dataset_args(root: Path, color_mode: str, validation_split: float | None,
                        subset: str | None, seed: int | None) -> None:
    """The arguments of :func:`image_dataset_from_directory` that need no file read."""
    if not root.is_dir():
        raise FileNotFoundError(f"image_dataset_from_directory: no such directory: {root}")
    if color_mode not in _MODES:
        raise ValueError(f"image_dataset_from_directory: color_mode must be one of "
                         f"{', '.join(_MODES)}, got {color_mode!r}")
    if subset not in (None, "training", "validation", "both"):
        raise ValueError(f"image_dataset_from_directory: subset must be None, 'training', "
                         f"'validation' or 'both', got {subset!r}")
    if (subset is None) != (validation_split is None):
        raise ValueError("image_dataset_from_directory: validation_split and subset go "
                         "together (give both or neither)")
    if validation_split is not None:
        if not 0 < validation_split < 1:
            raise ValueError(f"image_dataset_from_directory: validation_split must be in "
                             f"(0, 1), got {validation_split}")
        if seed is None:
            raise ValueError("image_dataset_from_directory: a seed is required with "
                             "validation_split so that training and validation do not overlap")


def _pick_classes(root: Path, class_names: list[str] | None) -> list[str]:
    """The visible sub-folders of ``root`` in sorted order, or ``class_names`` checked
    against them."""
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if class_names is None:
        class_names = found
    else:
        class_names = list(class_names)
        missing = [c for c in class_names if c not in found]
        if missing:
            raise ValueError(f"image_dataset_from_directory: class_names {missing} have no "
                             f"sub-folder in {root} (found: {found})")
    if not class_names:
        raise ValueError(f"image_dataset_from_directory: {root} has no class sub-folders "
                         f"(expected {root}/<class name>/<image files>)")
    return class_names


def _read_same_size(paths: list[Path], size: tuple[int, int] | None,
                    color_mode: str) -> np.ndarray:
    """The images stacked to (N, H, W, C); without ``size`` they must all match the first."""
    images = [_read(p, size, color_mode) for p in paths]
    if size is None:
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            first = images[0].shape
            odd = next(i for i, im in enumerate(images) if im.shape != first)
            raise ValueError(f"image_dataset_from_directory: images differ in size ({paths[0]} "
                             f"is {first[:2]}, {paths[odd]} is {images[odd].shape[:2]}); pass "
                             f"image_size=(height, width) to resize them")
    return np.stack(images)


def _subsets(x: np.ndarray, y: np.ndarray, class_names: list[str],
             validation_split: float | None, subset: str | None, seed: int | None,
             shuffle: bool) -> tuple:
    """The return value of :func:`image_dataset_from_directory`: the last
    ``int(validation_split * N)`` of a seeded permutation are the validation samples."""
    rng = np.random.default_rng(seed)

    def finish(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if shuffle:
            idx = idx[rng.permutation(len(idx))]
        return x[idx], y[idx]

    n = len(x)
    if validation_split is None:
        xs, ys = finish(np.arange(n))
        return xs, ys, class_names
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(validation_split * n)
    train_idx, val_idx = np.sort(order[:n - n_val]), np.sort(order[n - n_val:])
    if subset == "training":
        return (*finish(train_idx), class_names)
    if subset == "validation":
        return (*finish(val_idx), class_names)
    return finish(train_idx), finish(val_idx), class_names


def load_npz(path: str | os.PathLike, x_key: str = "x",
             y_key: str | None = "y") -> tuple[np.ndarray, np.ndarray | None]:
    """(x, y) from a NumPy .npz archive; ``y_key=None`` returns (x, None).

    Only the two arrays asked for are read, each after its .npy header is checked (bool,
    integer or float dtype only: object arrays, which would need pickle, strings, complex
    numbers and records are refused) and only up to the size it declares (all members at most
    4 GiB). Raises FileNotFoundError / PermissionError / IsADirectoryError from the file
    system, KeyError when a key is missing, ValueError naming the file for anything else."""
    from ..npz import NpzArchive, NpzError

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"load_npz: no such file: {p}")
    with open(p, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            raise ValueError(f"load_npz: {p} is a single .npy array, not an .npz archive")
    try:
        with NpzArchive(p) as archive:
            keys = archive.names()
            for k in (x_key, y_key):
                if k is not None and k not in keys:
                    raise KeyError(f"load_npz: {p} has no array {k!r} (it has: "
                                   f"{', '.join(keys) or 'nothing'})")
            x = archive.read(x_key)
            y = None if y_key is None else archive.read(y_key)
    except NpzError as e:
        raise ValueError(f"load_npz: cannot read {p} as a NumPy .npz archive without "
                         f"pickle: {e}") from None
    for k, a in ((x_key, x), (y_key, y)):
        if a is not None and a.ndim == 0:
            raise ValueError(f"load_npz: {p}: {k!r} is a single number, not an array of "
                             f"samples")
    if y is not None and len(y) != len(x):
        raise ValueError(f"load_npz: {p}: {x_key!r} has {len(x)} samples but {y_key!r} has "
                         f"{len(y)}")
    return x, y


# a damaged .gz (gzip.BadGzipFile is an OSError) or bytes that are not text
_TEXT_ERRORS = (EOFError, zlib.error, UnicodeDecodeError, gzip.BadGzipFile)


def _open_text(p: Path):
    return gzip.open(p, "rt") if p.suffix == ".gz" else open(p)  # noqa: SIM115


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def load_csv(path: str | os.PathLike, label_column: int | str | None = -1,
             image_shape: tuple[int, ...] | None = None, skip_header: bool | str = "auto",
             delimiter: str = ",") -> tuple[np.ndarray, np.ndarray | None]:
    """(x, y) from a numeric CSV table (``.gz`` is decompressed), one sample per row.

    ``label_column`` is the index (negative counts from the end) or, with a header row, the
    name of the label column; None means no labels. ``skip_header="auto"`` skips the first
    row when any of its fields is not a number. ``image_shape`` (e.g. (28, 28, 1)) reshapes
    each row's features. x is float32; y is int64 when every label is a whole number, else
    float32. Raises FileNotFoundError / PermissionError / IsADirectoryError from the file
    system and ValueError naming the file for a damaged .gz, non-text or non-numeric data.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"load_csv: no such file: {p}")
    fields = _first_row(p, delimiter)
    header = (not all(_is_number(s) for s in fields)) if skip_header == "auto" \
        else bool(skip_header)
    if isinstance(label_column, str):
        label_column = _column_index(p, fields, header, label_column)
    try:
        with _open_text(p) as f:
            data = np.loadtxt(f, delimiter=delimiter, skiprows=1 if header else 0, ndmin=2,
                              dtype=np.float64)
    except ValueError as e:
        raise ValueError(f"load_csv: {p} is not a numeric table: {e}") from None
    except _TEXT_ERRORS as e:
        raise ValueError(f"load_csv: cannot read {p}: {type(e).__name__}: {e}") from None
    if data.shape[0] == 0:
        raise ValueError(f"load_csv: {p} has no data rows")
    x, y = _split_labels(data, label_column)
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if int(np.prod(shape)) != x.shape[1]:
            raise ValueError(f"load_csv: rows have {x.shape[1]} feature values, which cannot "
                             f"be reshaped to image_shape {shape}")
        x = x.reshape(len(x), *shape)
    return x, y


def _first_row(p: Path, delimiter: str) -> list[str]:
    """The first line's fields, stripped (at most 2**24 characters of it are read)."""
    with _open_text(p) as f:
        try:
            first = f.readline(1 << 24).rstrip("\r\n")
        except _TEXT_ERRORS as e:
            raise ValueError(f"load_csv: cannot read {p}: {type(e).__name__}: {e}") from None
    if not first:
        raise ValueError(f"load_csv: {p} is empty")
    return [s.strip() for s in first.split(delimiter)]


def _column_index(p: Path, fields: list[str], header: bool, name: str) -> int:
    """The index of the header column called ``name`` (quotes around names ignored)."""
    if not header:
        raise ValueError(f"load_csv: label_column {name!r} is a name but {p} has "
                         f"no header row")
    names = [s.strip('"') for s in fields]
    if name not in names:
        raise ValueError(f"load_csv: {p} has no column {name!r} (columns: "
                         f"{', '.join(names[:10])}{', ...' if len(names) > 10 else ''})")
    return names.index(name)


def _split_labels(data: np.ndarray, label_column: int | None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """(features as float32, labels: int64 when all whole numbers, else float32)."""
    ncol = data.shape[1]
    if label_column is None:
        return data.astype(np.float32), None
    col = int(label_column)
    if not -ncol <= col < ncol:
        raise ValueError(f"load_csv: label_column {col} is out of range for {ncol} columns")
    col %= ncol
    y = data[:, col]
    x = np.delete(data, col, axis=1)
    y = y.astype(np.int64) if np.all(y == np.round(y)) else y.astype(np.float32)
    return x.astype(np.float32), y
