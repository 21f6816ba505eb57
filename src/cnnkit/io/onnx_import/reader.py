"""Reading an ONNX file without trusting it: the protobuf is parsed by the ``onnx`` package
(which runs nothing from the file), external data is never loaded by ``onnx`` but read here,
only from files inside the model's own folder, and every tensor's bytes are checked against
its declared shape before an array is made.

Memory: the arrays made from one model may take at most ``EXPANSION * (file size + external
bytes) + FLOOR`` bytes (:class:`cnnkit.io.errors.MemoryBudget`), folded constants included.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MemoryBudget
from .errors import OnnxFormatError, UnsafeOnnxError

# TensorProto.DataType -> NumPy dtype (string, complex, bfloat16 and float8 are refused)
DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.float32), 2: np.dtype(np.uint8), 3: np.dtype(np.int8),
    4: np.dtype(np.uint16), 5: np.dtype(np.int16), 6: np.dtype(np.int32),
    7: np.dtype(np.int64), 9: np.dtype(np.bool_), 10: np.dtype(np.float16),
    11: np.dtype(np.float64), 12: np.dtype(np.uint32), 13: np.dtype(np.uint64)}
MAX_FILE = 2 << 30  # protobuf's own limit for one message


@dataclass
class Source:
    """Where the model came from: its folder (None for bytes) and the memory budget."""

    name: str
    folder: Path | None
    budget: MemoryBudget


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as e:
        raise ImportError("reading ONNX files needs the onnx package: pip install "
                          "'cnnkit[onnx]'") from e
    return onnx


def read_model(source: str | os.PathLike | bytes) -> tuple[Any, Source]:
    """(ModelProto, Source) for a path or the file's bytes; OnnxFormatError for a file that is
    not an ONNX model, OSError from the file system."""
    onnx = _onnx()
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name, folder = bytes(source), "<bytes>", None
    else:
        path = Path(source)
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE:
                raise OnnxFormatError(f"{path}: {size} bytes, more than the 2 GiB a protobuf "
                                      f"message may hold (large weights belong in external "
                                      f"data files)")
            data = f.read(size + 1)
        name, folder = str(path), path.resolve().parent
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError and its RecursionError for deep nesting
        raise OnnxFormatError(f"{name}: not an ONNX model (protobuf decoding failed: "
                              f"{type(e).__name__}: {str(e)[:120]})") from None
    if not model.HasField("graph"):
        raise OnnxFormatError(f"{name}: not an ONNX model (no graph)")
    src = Source(name, folder, MemoryBudget(len(data), name))
    src.budget = MemoryBudget(len(data) + _external_bytes(model.graph, src), name)
    return model, src


def _all_tensors(graph: Any) -> list[Any]:
    """Initializers and the tensors of Constant nodes (attributes of type TENSOR)."""
    out = list(graph.initializer)
    for node in graph.node:
        out.extend(a.t for a in node.attribute if a.type == 4)
    return out


def _external_bytes(graph: Any, src: Source) -> int:
    """Size of the distinct external data files the tensors name (the ones that are not
    refused; a refused one raises when its tensor is read)."""
    files: dict[Path, int] = {}
    for t in _all_tensors(graph):
        if t.data_location != 1 or src.folder is None:
            continue
        location = next((e.value for e in t.external_data if e.key == "location"), "")
        try:
            path = external_path(location, src, "a tensor")
            files[path] = path.stat().st_size if path.is_file() else 0
        except (OnnxFormatError, OSError):
            continue
    return sum(files.values())


def _shape(t: Any, what: str, src: Source) -> tuple[int, ...]:
    dims = tuple(int(d) for d in t.dims)
    if len(dims) > 32 or any(d < 0 for d in dims):
        raise OnnxFormatError(f"{src.name}: {what} has invalid dims {dims[:8]}")
    return dims


def tensor_array(t: Any, what: str, src: Source) -> np.ndarray:
    """The NumPy array a TensorProto holds; its bytes must match its dims and dtype."""
    dtype = DTYPES.get(int(t.data_type))
    if dtype is None:
        raise OnnxFormatError(f"{src.name}: {what} has data type {t.data_type}, which cnnkit "
                              f"does not read (it reads {sorted(DTYPES)})")
    dims = _shape(t, what, src)
    n = math.prod(dims)
    try:
        src.budget.charge(n * dtype.itemsize, what)
    except ValueError as e:
        raise UnsafeOnnxError(str(e)) from None
    if t.data_location == 1:
        raw = read_external(t, what, src, n * dtype.itemsize)
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    if t.HasField("raw_data"):
        if len(t.raw_data) != n * dtype.itemsize:
            raise OnnxFormatError(f"{src.name}: {what} holds {len(t.raw_data)} bytes, its dims "
                                  f"{dims} and dtype {dtype} need {n * dtype.itemsize}")
        return np.frombuffer(t.raw_data, dtype=dtype.newbyteorder("<")).astype(
            dtype).reshape(dims)
    return _typed_field(t, dtype, dims, n, what, src)


def _typed_field(t: Any, dtype: np.dtype, dims: tuple, n: int, what: str, src: Source
                 ) -> np.ndarray:
    """Values stored in the typed repeated fields (float_data, int32_data, ...)."""
    if dtype == np.float32:
        field = t.float_data
    elif dtype == np.float64:
        field = t.double_data
    elif dtype == np.int64:
        field = t.int64_data
    elif dtype in (np.uint32, np.uint64):
        field = t.uint64_data
    else:  # int8/16/32, uint8/16, bool, and float16 as its bit pattern
        field = t.int32_data
    if len(field) != n:
        raise OnnxFormatError(f"{src.name}: {what} holds {len(field)} values, its dims {dims} "
                              f"need {n}")
    if dtype == np.float16:
        return np.asarray(field, dtype=np.uint16).view(np.float16).reshape(dims)
    return np.asarray(field).astype(dtype).reshape(dims)


def external_path(location: str, src: Source, what: str) -> Path:
    """The external data file ``location`` names, refused unless it lies in the model's own
    folder: no absolute paths, no ``..``, no link leading out of the folder."""
    if src.folder is None:
        raise UnsafeOnnxError(f"{src.name}: {what} keeps its data in an external file "
                              f"({location[:80]!r}); a model given as bytes has no folder to "
                              f"read it from: load it from its path")
    parts = Path(location).parts
    if (not location or "\x00" in location or Path(location).is_absolute() or ".." in parts
            or location.startswith(("/", "\\")) or ":" in location or "\\" in location):
        raise UnsafeOnnxError(f"{src.name}: {what} names external data file {location[:80]!r}; "
                              f"only relative paths inside the model's folder are read")
    path = (src.folder / location).resolve()
    if not path.is_relative_to(src.folder):
        raise UnsafeOnnxError(f"{src.name}: {what}'s external data file {location[:80]!r} "
                              f"leads outside the model's folder (to {path})")
    return path


def read_external(t: Any, what: str, src: Source, nbytes: int) -> bytes:
    """The ``nbytes`` a tensor keeps at (offset, length) of its external file, bounds-checked
    against the file's size."""
    info = {e.key: e.value for e in t.external_data}
    path = external_path(info.get("location", ""), src, what)
    try:
        offset = int(info.get("offset", "0"))
        length = int(info.get("length", str(nbytes)))
    except ValueError:
        raise OnnxFormatError(f"{src.name}: {what} has a non-numeric external offset or "
                              f"length") from None
    if offset < 0 or length != nbytes:
        raise OnnxFormatError(f"{src.name}: {what} declares {length} external bytes at offset "
                              f"{offset}; its dims and dtype need {nbytes}")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if offset + length > size:
            raise OnnxFormatError(f"{src.name}: {what} reads bytes {offset}..{offset + length} "
                                  f"of {path.name}, which has {size}")
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:
        raise OnnxFormatError(f"{src.name}: {path.name} ended early reading {what}")
    return data
