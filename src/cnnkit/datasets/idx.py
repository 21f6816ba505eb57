"""The IDX format (MNIST's): a big-endian header, then the array.

Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a 32-bit
big-endian integer. Files ending in .gz are read and written gzip-compressed.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write

_CODES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_BY_KIND = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
            np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def _open(path: Path) -> Any:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array (native byte order)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{source} is not an IDX file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _CODES:
        raise ValueError(f"{source}: unknown IDX type code 0x{code:02X}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{source}: truncated IDX header")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _CODES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{source}: IDX header promises shape {dims} ({expected} bytes of "
                         f"data) but the file holds {len(data) - header}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def read_idx(path: Any) -> np.ndarray:
    """Read an IDX file (optionally .gz) into a NumPy array."""
    path = Path(path)
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"cannot read IDX file {path}: {e}") from None
    return parse_idx(data, str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes."""
    a = np.asarray(array)
    code = _BY_KIND.get(a.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX cannot store dtype {a.dtype}; use uint8, int8, int16, int32, "
                        f"float32 or float64")
    header = bytes([0, 0, code, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return header + a.astype(_CODES[code]).tobytes()


def write_idx(path: Any, array: np.ndarray) -> None:
    """Write an array as an IDX file (gzip-compressed when the name ends in .gz), atomically."""
    path = Path(path)
    data = idx_bytes(array)
    with atomic_write(path) as raw:
        if path.suffix == ".gz":
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
                f.write(data)
        else:
            raw.write(data)
