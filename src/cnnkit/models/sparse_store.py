"""Sparse weights in model files: a bit per value saying whether it is non-zero, and the
non-zero values in order (row-major). A 90%-zero float32 weight of n values takes
n / 8 + 0.4 n bytes instead of 4 n.

Reading checks that the mask holds exactly ceil(n / 8) bytes for the shape the metadata
declares, that no bit is set beyond the n-th and that the number of set bits equals the number
of stored values, before anything is allocated; so a weight's memory is at most 8 values per
mask byte present in the file.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ..npz import NpzArchive, NpzError

MAX_RANK = 16


def mask_key(i: int) -> str:
    return f"sparse/{i:05d}/mask"


def values_key(i: int) -> str:
    return f"sparse/{i:05d}/values"


def encode(w: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(packed bit mask, non-zero values), or None when that is not smaller than ``w``."""
    flat = np.ascontiguousarray(w).reshape(-1)
    nz = flat != 0
    values = flat[nz]
    if (flat.size + 7) // 8 + values.nbytes >= flat.nbytes:
        return None
    return np.packbits(nz), values


def _fail(source: str, i: int, what: str) -> NpzError:
    return NpzError(f"{source}: sparse weight {i}: {what}")


def declared(meta: dict, source: str) -> dict[int, tuple[int, ...]]:
    """The ``"sparse"`` entry of the metadata: weight index -> shape, type-checked."""
    table = meta.get("sparse", {})
    if not isinstance(table, dict):
        raise NpzError(f"{source}: invalid metadata: 'sparse' must be an object")
    out: dict[int, tuple[int, ...]] = {}
    for key, shape in table.items():
        if not (isinstance(key, str) and re.fullmatch(r"[0-9]{1,9}", key)):
            raise NpzError(f"{source}: invalid metadata: sparse weight index {key[:20]!r}")
        if not (isinstance(shape, list) and len(shape) <= MAX_RANK and all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40
                for d in shape)):
            raise NpzError(f"{source}: invalid metadata: sparse weight {key} needs a shape "
                           f"list of at most {MAX_RANK} sizes >= 0")
        out[int(key)] = tuple(shape)
    return out


def check_headers(archive: NpzArchive, i: int, shape: tuple[int, ...]) -> np.dtype:
    """The values' dtype, once both members' headers fit ``shape``."""
    n = math.prod(shape)
    mshape, mdtype = archive.header(mask_key(i))
    if mdtype != np.uint8 or mshape != ((n + 7) // 8,):
        raise _fail(archive.source, i, f"the mask must be {(n + 7) // 8} bytes of uint8 for "
                                       f"shape {shape}, got shape {mshape} of {mdtype}")
    vshape, vdtype = archive.header(values_key(i))
    if vdtype.kind != "f" or len(vshape) != 1 or vshape[0] > n:
        raise _fail(archive.source, i, f"the values must be at most {n} floats in one axis, "
                                       f"got shape {vshape} of {vdtype}")
    return vdtype


def decode(archive: NpzArchive, i: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """The dense weight (``dtype``) from its mask and values."""
    n = math.prod(shape)
    check_headers(archive, i, shape)
    bits = np.unpackbits(archive.read(mask_key(i)))
    if bits[n:].any():
        raise _fail(archive.source, i, "mask bits are set beyond the weight's size")
    nz = bits[:n].astype(bool)
    values = archive.read(values_key(i))
    if int(nz.sum()) != values.size:
        raise _fail(archive.source, i, f"the mask marks {int(nz.sum())} non-zero values but "
                                       f"{values.size} are stored")
    out = np.zeros(n, dtype=dtype)
    out[nz] = values
    return out.reshape(shape)
