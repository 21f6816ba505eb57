"""The IDX format (MNIST's): a big-endian header, then the array.

Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a 32-bit
big-endian integer. Files ending in .gz are read and written gzip-compressed.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write

_CODES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_BY_KIND = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
            np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


MAX_BYTES = 4 << 30  # default cap on the data an IDX header may declare
_CHUNK = 1 << 20
_ERRORS = (OSError, EOFError, zlib.error)  # gzip's BadGzipFile is an OSError


def _open(path: Path) -> Any:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115


def _header(data: bytes, source: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, dims, header length) from the first 4 + 4 * ndim bytes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{source} is not an IDX file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _CODES:
        raise ValueError(f"{source}: unknown IDX type code 0x{code:02X}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{source}: truncated IDX header")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return _CODES[code], dims, header


def parse_idx(data: bytes | bytearray, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array (native byte order; a bytearray's memory is reused)."""
    dtype, dims, header = _header(data, source)
    expected = math.prod(dims) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{source}: IDX header promises shape {dims} ({expected} bytes of "
                         f"data) but the file holds {len(data) - header}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=not isinstance(data, bytearray))


def _read_exactly(f: Any, n: int, buf: bytearray, source: str) -> None:
    """Append exactly ``n`` more bytes from ``f`` to ``buf`` (read in 1 MiB pieces)."""
    goal = len(buf) + n
    while len(buf) < goal:
        chunk = f.read(min(_CHUNK, goal - len(buf)))
        if not chunk:
            raise ValueError(f"{source}: truncated IDX file: the header promises "
                             f"{goal} bytes in all, the file ends after {len(buf)}")
        buf += chunk


def read_idx_bytes(path: Any, max_bytes: int = MAX_BYTES) -> bytearray:
    """The raw IDX bytes of ``path`` (.gz decompressed), read up to the size its header
    declares: ValueError when the data is shorter or longer than that, or above
    ``max_bytes``; FileNotFoundError / PermissionError / IsADirectoryError from the file
    system."""
    path = Path(path)
    source = str(path)
    with _open(path) as f:
        try:
            buf = bytearray()
            _read_exactly(f, 4, buf, source)
            _read_exactly(f, 4 * buf[3], buf, source)
            dtype, dims, _ = _header(bytes(buf), source)
            size = math.prod(dims) * dtype.itemsize
            if size > max_bytes:
                raise ValueError(f"{source}: the IDX header declares shape {dims} ({size} "
                                 f"bytes), above the limit of {max_bytes} bytes")
            _read_exactly(f, size, buf, source)
            if f.read(1):
                raise ValueError(f"{source}: the file holds more data than its IDX header "
                                 f"promises (shape {dims}, {size} bytes)")
        except _ERRORS as e:
            raise ValueError(f"cannot read IDX file {source}: {type(e).__name__}: {e}") from None
    return buf


def read_idx(path: Any, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Read an IDX file (optionally .gz) into a NumPy array.

    The data is read up to the size the header declares, at most ``max_bytes`` (4 GiB by
    default). Raises ValueError naming the file when it is not IDX, truncated, longer than
    its header says or a damaged .gz; FileNotFoundError / PermissionError / IsADirectoryError
    from the file system."""
    path = Path(path)
    return parse_idx(read_idx_bytes(path, max_bytes), str(path))


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
