"""Read PyTorch ``.pt``/``.pth`` checkpoints (zip format) without PyTorch and without running
code from the file.

A zip-format checkpoint holds ``<name>/data.pkl`` (a pickle describing the object) and one raw
little-endian file per tensor storage under ``<name>/data/``. The pickle is read by an
unpickler that knows exactly four kinds of global - ``collections.OrderedDict``, torch's
tensor and parameter rebuild functions, and the typed storage names - and refuses every other
class or function before anything is called, so a crafted file cannot run code.
"""

from __future__ import annotations

import collections
import io as _io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The checkpoint names something other than tensors and plain containers."""


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A flat array standing in for a torch storage (bfloat16 kept as raw uint16)."""

    def __init__(self, array: np.ndarray, bfloat16: bool):
        self.array = array
        self.bfloat16 = bfloat16


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _rebuild_tensor_v2(storage: _Storage, offset: int, size: tuple, stride: tuple,
                       requires_grad: bool = False, hooks: Any = None,
                       metadata: Any = None) -> np.ndarray:
    """A tensor of ``size`` viewing ``storage`` from ``offset`` with element ``stride``."""
    if not isinstance(storage, _Storage):
        raise UnsafeCheckpointError("tensor rebuild received something other than a storage")
    base = storage.array
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) if all(
            size) else offset
        if last >= base.size and all(size):
            raise ValueError(f"tensor of size {size} and stride {stride} runs past its storage "
                             f"of {base.size} elements")
    item = base.itemsize
    view = np.lib.stride_tricks.as_strided(base[offset:] if base.size else base, shape=size,
                                           strides=tuple(s * item for s in stride),
                                           writeable=False)
    out = np.array(view, copy=True)
    return _bf16_to_f32(out) if storage.bfloat16 else out


def _rebuild_parameter(data: Any, requires_grad: bool = False, hooks: Any = None) -> Any:
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str, source: str):
        super().__init__(file)
        self.archive, self.prefix, self.source = archive, prefix, source
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{self.source}: refusing to load '{module}.{name}': a checkpoint may only hold "
            f"tensors in (ordered) dicts, lists and tuples; this file names other code")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise UnsafeCheckpointError(f"{self.source}: unexpected persistent id {pid!r:.80}")
        _, stype, key, _location, numel = pid
        key = str(key)
        if key not in self.storages:
            entry = f"{self.prefix}data/{key}"
            try:
                raw = self.archive.read(entry)
            except KeyError:
                raise ValueError(f"{self.source}: storage {entry} is missing") from None
            arr = np.frombuffer(raw, dtype=stype.dtype.newbyteorder("<"))
            if arr.size < int(numel):
                raise ValueError(f"{self.source}: storage {key} holds {arr.size} elements, "
                                 f"expected {numel}")
            self.storages[key] = _Storage(arr.astype(stype.dtype), stype.name == "BFloat16Storage")
        return self.storages[key]


def load_torch_checkpoint(path: Any) -> Any:
    """The object saved with ``torch.save`` (typically a state dict), tensors as ndarrays."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a zip-format PyTorch checkpoint (the legacy pre-1.6 "
                         f"format and plain pickles are not read: re-save it with torch.save)")
    with zipfile.ZipFile(path) as archive:
        pkls = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pkls) != 1:
            raise ValueError(f"{path}: expected one data.pkl in the archive, found {len(pkls)}")
        prefix = pkls[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise ValueError(f"{path}: big-endian checkpoints are not supported")
        data = archive.read(pkls[0])
        unpickler = _RestrictedUnpickler(_io.BytesIO(data), archive, prefix, str(path))
        return unpickler.load()


def load_state_dict(path: Any) -> dict[str, np.ndarray]:
    """A checkpoint's state dict as {name: ndarray}; a ``{"state_dict": ...}`` wrapper or a
    ``module.`` prefix (DataParallel) is unwrapped."""
    obj = load_torch_checkpoint(path)
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict")
    out = {}
    for k, v in obj.items():
        if isinstance(v, np.ndarray):
            out[k[7:] if k.startswith("module.") else k] = v
    return out
