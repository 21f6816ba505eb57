"""The safetensors format, read and written with NumPy: an 8-byte little-endian header length,
a JSON header {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
then the raw little-endian tensor bytes. No code can be embedded."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
           "U16": np.uint16, "U32": np.uint32, "U64": np.uint64}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


def load_safetensors(path: Any) -> dict[str, np.ndarray]:
    """{name: array} from a .safetensors file (BF16 is widened to float32)."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError(f"{path} is too short to be a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file size")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable safetensors header: {e}") from None
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, shape, (b, e) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        if not 0 <= b <= e <= len(body):
            raise ValueError(f"{path}: tensor '{name}' has offsets [{b}, {e}] outside the data")
        if dt == "BF16":
            raw = np.frombuffer(body[b:e], dtype="<u2")
            arr = (raw.astype(np.uint32) << 16).view(np.float32)
        elif dt in _DTYPES:
            arr = np.frombuffer(body[b:e], dtype=np.dtype(_DTYPES[dt]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {dt}")
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: tensor '{name}' has {arr.size} values for shape {shape}")
        out[name] = arr.reshape(shape).astype(arr.dtype.newbyteorder("="))
    return out


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
