"""The safetensors format, read and written with NumPy: an 8-byte little-endian header length,
a JSON header {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
then the raw little-endian tensor bytes. No code can be embedded.

The reader follows the reference implementation's checks: the header is at most
``MAX_HEADER`` bytes and inside the file, a JSON object of tensor entries (exactly the keys
dtype, shape, data_offsets) plus an optional ``__metadata__`` of str -> str; shapes are lists
of non-negative ints; each tensor's byte range holds exactly ``numel * itemsize`` bytes; the
ranges, sorted, tile the data buffer from its first byte to the end of the file with no gap
and no overlap. Dtypes other than those in ``_DTYPES`` and BF16 (complex, float8, strings,
unknown names) are refused, never cast. Tensors are read one by one with bounded reads, so the
memory spent is the file's data size (twice that for BF16, widened to float32). A bad file
raises :class:`~cnnkit.io.errors.CheckpointFormatError` (a ``ValueError``) naming the part
that is wrong; ``OSError`` comes only from the file system.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write
from .errors import CheckpointFormatError, short

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
           "U16": np.uint16, "U32": np.uint32, "U64": np.uint64}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
_ITEMSIZE = {**{k: np.dtype(v).itemsize for k, v in _DTYPES.items()}, "BF16": 2}
MAX_HEADER = 100_000_000  # the reference implementation's limit
MAX_DIMS = 32
_FIELDS = {"dtype", "shape", "data_offsets"}
_MAX_SPAN = 1 << 58  # elements a shape may span (zero dims aside)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return out


def _read_header(fh: Any, size: int, where: str) -> dict[str, Any]:
    """The JSON header as a dict, its length bounded by the file size and ``MAX_HEADER``."""
    if size < 8:
        raise CheckpointFormatError(f"{where}: {size} bytes, too short for a safetensors file")
    (n,) = struct.unpack("<Q", fh.read(8))
    if n > size - 8 or n > MAX_HEADER:
        raise CheckpointFormatError(f"{where}: header length {n} exceeds the file size "
                                    f"({size} bytes) or the {MAX_HEADER}-byte limit")
    raw = fh.read(n)
    if len(raw) != n:
        raise CheckpointFormatError(f"{where}: the header ended after {len(raw)} of {n} bytes")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys,
                            parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CheckpointFormatError(f"{where}: unreadable header: {short(str(e), 120)}") from None
    if not isinstance(header, dict):
        raise CheckpointFormatError(f"{where}: the header is a JSON {type(header).__name__}, "
                                    f"not an object")
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(
            isinstance(v, str) for v in meta.values())):
        raise CheckpointFormatError(f"{where}: __metadata__ must map strings to strings")
    return header


def _is_count(v: Any) -> bool:
    return type(v) is int and v >= 0


def _entry(name: str, info: Any, data_len: int, where: str) -> tuple[str, tuple, int, int]:
    """(dtype, shape, begin, end) of one header entry, its byte count checked."""
    what = f"{where}: tensor {short(name, 60)}"
    if not isinstance(info, dict) or set(info) != _FIELDS:
        raise CheckpointFormatError(f"{what}: entry must be an object with exactly the keys "
                                    f"{sorted(_FIELDS)}")
    dt, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dt, str) or dt not in _ITEMSIZE:
        raise CheckpointFormatError(f"{what} has dtype {short(dt)}, which cnnkit does not read "
                                    f"(it reads {', '.join(sorted(_ITEMSIZE))})")
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS and all(map(_is_count, shape))):
        raise CheckpointFormatError(f"{what}: shape {short(shape)} is not a list of at most "
                                    f"{MAX_DIMS} non-negative ints")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))
            and offsets[0] <= offsets[1]):
        raise CheckpointFormatError(f"{what}: data_offsets {short(offsets)} is not [begin, end] "
                                    f"with 0 <= begin <= end")
    if offsets[1] > data_len:
        raise CheckpointFormatError(f"{what} has offsets {offsets} outside the data "
                                    f"({data_len} bytes)")
    if math.prod(max(n, 1) for n in shape) > _MAX_SPAN:
        raise CheckpointFormatError(f"{what}: shape {short(shape)} is impossibly large")
    nbytes = math.prod(shape) * _ITEMSIZE[dt]
    if offsets[1] - offsets[0] != nbytes:
        raise CheckpointFormatError(f"{what}: data_offsets {offsets} hold "
                                    f"{offsets[1] - offsets[0]} bytes, its {dt} shape "
                                    f"{short(shape)} needs {nbytes}")
    return dt, tuple(shape), offsets[0], offsets[1]


def _plan(header: dict[str, Any], data_len: int, where: str) -> list[tuple]:
    """(name, dtype, shape, begin, end) sorted by begin, the ranges tiling [0, data_len)."""
    plans = sorted(((name, *_entry(name, info, data_len, where)) for name, info in header.items()),
                   key=lambda p: (p[3], p[4]))
    pos = 0
    for name, _dt, _shape, begin, end in plans:
        if begin != pos:
            kind = "overlaps the tensor before it" if begin < pos else "leaves a gap before it"
            raise CheckpointFormatError(f"{where}: tensor {short(name, 60)} starts at data "
                                        f"byte {begin}, expected {pos}: it {kind}")
        pos = end
    if pos != data_len:
        raise CheckpointFormatError(f"{where}: the tensors cover {pos} data bytes but the file "
                                    f"holds {data_len} (offsets outside the data, or trailing "
                                    f"bytes)")
    return plans


def _read_tensor(fh: Any, start: int, dt: str, shape: tuple, where: str) -> np.ndarray:
    """One tensor read straight into its array (BF16 widened to float32, BOOL as 0/1)."""
    raw_dt = np.dtype("<u2") if dt == "BF16" else np.dtype(_DTYPES[dt]).newbyteorder("<")
    if raw_dt.kind == "b":
        raw_dt = np.dtype(np.uint8)
    arr = np.empty(shape, dtype=raw_dt)
    if arr.size:
        fh.seek(start)
        got = fh.readinto(memoryview(arr).cast("B"))
        if got != arr.nbytes:
            raise CheckpointFormatError(f"{where}: the data ended early ({got} of {arr.nbytes} "
                                        f"bytes)")
    if dt == "BF16":
        wide = arr.astype(np.uint32)
        wide <<= 16
        return wide.view(np.float32)
    if dt == "BOOL":
        return arr != 0
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def load_safetensors(path: Any) -> dict[str, np.ndarray]:
    """{name: array} from a .safetensors file (BF16 is widened to float32).

    Raises CheckpointFormatError (a ValueError) naming the header part or tensor that is
    wrong, and OSError (FileNotFoundError, PermissionError, IsADirectoryError) from the file
    system."""
    path = Path(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        header = _read_header(fh, size, str(path))
        start = fh.tell()
        plans = _plan(header, size - start, str(path))
        out = {name: _read_tensor(fh, start + begin, dt, shape,
                                  f"{path}: tensor {short(name, 60)}")
               for name, dt, shape, begin, _end in plans}
    return {name: out[name] for name in header}  # in the header's order


def save_safetensors(tensors: dict[str, Any], path: Any,
                     metadata: dict[str, str] | None = None) -> None:
    """Write {name: array} as a .safetensors file (atomically: temp name, then rename)."""
    header: dict[str, Any] = {}
    chunks, offset = [], 0
    for name in sorted(tensors):
        a = np.require(np.asarray(tensors[name]), requirements="C")
        if a.dtype not in _NAMES:
            raise TypeError(f"tensor '{name}': safetensors cannot store dtype {a.dtype}")
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with atomic_write(path) as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for c in chunks:
            f.write(c)
