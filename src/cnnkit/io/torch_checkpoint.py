"""Read PyTorch ``.pt``/``.pth`` checkpoints (zip format) without PyTorch and without running
code from the file.

A zip-format checkpoint holds ``<name>/data.pkl`` (a pickle describing the object) and one raw
little-endian file per tensor storage under ``<name>/data/``. The pickle is run by
:mod:`cnnkit.io._pickle_vm`, which knows four kinds of global - ``collections.OrderedDict``,
torch's tensor and parameter rebuild functions, and the ``torch.*Storage`` names - and refuses
every other global, and every object-building opcode, before anything is called.

What is accepted: tensors of the dtypes in ``STORAGE_DTYPES`` (bfloat16 widened to float32)
in dicts, OrderedDicts, lists and tuples nested at most ``MAX_DEPTH`` deep, with ints, floats,
strings, bytes, bools and None beside them. A tensor's layout (offset, size, stride) must be
one a real storage backs: offset and strides >= 0 and the furthest element inside the storage.
A stride of 0 (a broadcast, as ``expand`` saves) is read, and its array counts against the
file's memory budget like every other array (see :mod:`cnnkit.io.errors`). A storage member
must hold exactly ``numel * itemsize`` bytes as its persistent id declares, and only those
bytes are read (deflated members too). Legacy (pre-1.6), tar and plain-pickle files are
refused with a message saying so. Errors: :class:`CheckpointFormatError` (a ``ValueError``)
for a malformed file, :class:`UnsafeCheckpointError` (a subclass) for refused content,
``OSError`` from the file system.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import lzma
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ._pickle_vm import MAX_DEPTH, Global, RestrictedUnpickler
from .errors import CheckpointFormatError, MemoryBudget, UnsafeCheckpointError, short
from .torch_tensors import STORAGE_DTYPES, StorageRef, TensorSpec, build, layout

__all__ = ["load_torch_checkpoint", "load_state_dict", "UnsafeCheckpointError",
           "CheckpointFormatError", "MAX_DEPTH"]

_STORAGE_NAME = re.compile(r"[A-Za-z0-9_]{1,40}Storage")
_STORAGE_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
_MAX_SMALL_MEMBER = 64
_CHUNK = 1 << 20
# pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2): the magic number legacy torch.save writes
_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, struct.error,
               ValueError, NotImplementedError, RuntimeError, zlib.error, lzma.LZMAError,
               OverflowError, IndexError, KeyError, TypeError, AttributeError)


@contextlib.contextmanager
def _zip_step(source: str, part: str) -> Iterator[None]:
    """Turn the zip module's low-level exceptions into one CheckpointFormatError naming ``part``."""
    try:
        yield
    except CheckpointFormatError:
        raise
    except OSError as e:
        if e.errno not in (None, errno.EINVAL):  # the disk, not the archive (bad seeks: EINVAL)
            raise
        raise CheckpointFormatError(f"{source}: damaged zip archive at {part} "
                                    f"({type(e).__name__}: {short(str(e), 120)})") from None
    except _ZIP_ERRORS as e:
        raise CheckpointFormatError(f"{source}: damaged zip archive at {part} "
                                    f"({type(e).__name__}: {short(str(e), 120)})") from None


def _read_member(archive: zipfile.ZipFile, name: str, nbytes: int, source: str) -> bytearray:
    """Exactly ``nbytes`` of member ``name``, which must declare that size; nothing more is read
    (a deflated member inflates only as far as ``nbytes``), in chunks of at most 1 MiB."""
    with _zip_step(source, name):
        try:
            info = archive.getinfo(name)
        except KeyError:
            raise CheckpointFormatError(f"{source}: zip member {name} is missing") from None
        if info.file_size != nbytes:
            raise CheckpointFormatError(f"{source}: zip member {name} holds {info.file_size} "
                                        f"bytes, expected {nbytes}")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != nbytes:
            raise CheckpointFormatError(f"{source}: zip member {name} is stored in "
                                        f"{info.compress_size} bytes, expected {nbytes}")
        out = bytearray(nbytes)
        view, done = memoryview(out), 0
        with archive.open(info) as fh:
            while done < nbytes:
                chunk = fh.read(min(nbytes - done, _CHUNK))
                if not chunk:
                    raise CheckpointFormatError(f"{source}: zip member {name} ended after "
                                                f"{done} of {nbytes} bytes")
                view[done:done + len(chunk)] = chunk
                done += len(chunk)
    return out


class _Checkpoint:
    """The globals and persistent ids of one checkpoint's pickle."""

    def __init__(self, source: str):
        self.source = source
        self.storages: dict[str, StorageRef] = {}

    def ordered_dict(self, args: tuple) -> collections.OrderedDict:
        if args:
            raise CheckpointFormatError(f"{self.source}: OrderedDict built from {len(args)} "
                                        f"arguments, not 0")
        return collections.OrderedDict()

    def parameter(self, args: tuple) -> TensorSpec:
        if not args or not isinstance(args[0], TensorSpec):
            raise CheckpointFormatError(f"{self.source}: a parameter rebuilt from something "
                                        f"other than a tensor")
        return args[0]

    def storage_call(self, args: tuple) -> Any:
        raise UnsafeCheckpointError(f"{self.source}: refusing to load: a storage type is called")

    def resolve(self, module: str, name: str) -> Global:
        if (module, name) == ("collections", "OrderedDict"):
            return Global(module, name, self.ordered_dict)
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return Global(module, name, TensorSpec)
        if module == "torch._utils" and name in ("_rebuild_parameter",
                                                 "_rebuild_parameter_with_state"):
            return Global(module, name, self.parameter)
        if module == "torch" and _STORAGE_NAME.fullmatch(name):
            return Global(module, name, self.storage_call)
        raise UnsafeCheckpointError(
            f"{self.source}: refusing to load {short(module + '.' + name, 120)}: a "
            f"checkpoint may only hold tensors in (ordered) dicts, lists and tuples; this file "
            f"names other code")

    def persistent(self, pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], Global) and pid[1].module == "torch"):
            raise UnsafeCheckpointError(f"{self.source}: refusing to load persistent id "
                                        f"{short(pid)} (only torch storages are read)")
        _, stype, key, _location, numel = pid
        if not isinstance(key, str) or not _STORAGE_KEY.fullmatch(key):
            raise CheckpointFormatError(f"{self.source}: storage key {short(key)} is not a "
                                        f"plain name")
        if type(numel) is not int or numel < 0:
            raise CheckpointFormatError(f"{self.source}: storage {key} declares "
                                        f"{short(numel)} elements")
        ref = self.storages.setdefault(key, StorageRef(stype.name, key, numel))
        if (ref.type_name, ref.numel) != (stype.name, numel):
            raise CheckpointFormatError(
                f"{self.source}: storage {key} is declared as {ref.numel} x {ref.type_name} "
                f"and as {numel} x {stype.name}")
        return ref


def _collect(obj: Any, path: str, seen: set[int], specs: list, source: str) -> None:
    """(path, spec) of every tensor under ``obj``, each once; refuse stray placeholders."""
    if isinstance(obj, TensorSpec):
        if id(obj) not in seen:
            seen.add(id(obj))
            specs.append((path, obj))
    elif isinstance(obj, (dict, list, tuple)):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for k, v in items:
            key = k if isinstance(k, str) else short(k, 40)
            _collect(v, f"{path}/{key}" if path else key, seen, specs, source)
    elif isinstance(obj, (StorageRef, Global)):
        raise CheckpointFormatError(f"{source}: '{path}' holds a bare storage or type; only "
                                    f"tensors are read")


def _replace(obj: Any, arrays: dict[int, np.ndarray], done: dict[int, Any]) -> Any:
    """``obj`` with every tensor placeholder swapped for its array (shared parts stay shared)."""
    if isinstance(obj, TensorSpec):
        return arrays[id(obj)]
    if not isinstance(obj, (dict, list, tuple)):
        return obj
    if id(obj) not in done:
        if isinstance(obj, dict):
            out: Any = type(obj)((k, _replace(v, arrays, done)) for k, v in obj.items())
        else:
            out = type(obj)(_replace(v, arrays, done) for v in obj)
        done[id(obj)] = out
    return done[id(obj)]


def _materialize(obj: Any, archive: zipfile.ZipFile, prefix: str, source: str,
                 budget: MemoryBudget) -> Any:
    """Check every tensor's layout, charge storages and arrays to the budget, then read."""
    specs: list[tuple[str, TensorSpec]] = []
    _collect(obj, "", set(), specs, source)
    plans, refs = [], {}
    for path, spec in specs:
        ref, offset, size, stride, numel = plan = layout(spec, f"{source}: tensor '{path}'")
        item = np.dtype(STORAGE_DTYPES[ref.type_name]).itemsize
        if ref.key not in refs:
            budget.charge(ref.numel * item, f"storage {ref.key} ({ref.numel} x {ref.type_name})")
            refs[ref.key] = ref
        bf16 = ref.type_name == "BFloat16Storage"
        budget.charge(numel * (item + 4 if bf16 else item), f"tensor '{path}' of size {size}")
        plans.append((spec, plan, bf16))
    plans.sort(key=lambda p: p[1][0].key)
    users = collections.Counter(plan[0].key for _, plan, _ in plans)
    arrays, bases = {}, {}
    for spec, (ref, off, size, stride, numel), bf16 in plans:  # grouped: a storage is freed
        if ref.key not in bases:                              # once its tensors are built
            bases.clear()
            dtype = np.dtype(STORAGE_DTYPES[ref.type_name])
            raw = _read_member(archive, f"{prefix}data/{ref.key}", ref.numel * dtype.itemsize,
                               source)
            bases[ref.key] = np.frombuffer(raw, dtype=dtype)
        arrays[id(spec)] = build(bases[ref.key], off, size, stride, numel, bf16,
                                  users[ref.key] == 1)
    return _replace(obj, arrays, {})


def _check_kind(fh: Any, size: int, source: str) -> None:
    """Refuse, by their first bytes, the files this reader does not read."""
    head = fh.read(512)
    fh.seek(0)
    if size == 0:
        raise CheckpointFormatError(f"{source} is empty, not a PyTorch checkpoint")
    if head.startswith(_LEGACY_MAGIC):
        raise CheckpointFormatError(
            f"{source} is a legacy (pre-1.6) torch.save file, which is not read: load it with "
            f"PyTorch and save it again (torch.save writes the zip format since 1.6)")
    if head[257:262] == b"ustar":
        raise CheckpointFormatError(f"{source} is a tar archive (torch's oldest format), which "
                                    f"is not read: re-save it with a current torch.save")
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise CheckpointFormatError(f"{source} is a plain pickle, not a zip-format PyTorch "
                                    f"checkpoint; plain pickles are not read")
    with _zip_step(source, "the end-of-archive record"):
        is_zip = zipfile.is_zipfile(fh)
        fh.seek(0)
    if not is_zip:
        raise CheckpointFormatError(f"{source} is not a zip-format PyTorch checkpoint")


def _open_pickle(archive: zipfile.ZipFile, source: str, budget: MemoryBudget) -> tuple:
    """(prefix, data.pkl bytes) after checking the archive's layout and byte order."""
    with _zip_step(source, "the member list"):
        names = archive.namelist()
    pkls = [n for n in names if n.count("/") <= 1 and (n == "data.pkl" or n.endswith("/data.pkl"))]
    if len(pkls) != 1:
        raise CheckpointFormatError(f"{source}: expected one data.pkl in the archive, found "
                                    f"{len(pkls)}")
    prefix = pkls[0][: -len("data.pkl")]
    if prefix + "byteorder" in names:
        with _zip_step(source, prefix + "byteorder"):
            size = archive.getinfo(prefix + "byteorder").file_size
        if size > _MAX_SMALL_MEMBER or _read_member(
                archive, prefix + "byteorder", size, source).strip() != b"little":
            raise CheckpointFormatError(f"{source}: {prefix}byteorder is not 'little' "
                                        f"(big-endian checkpoints are not read)")
    with _zip_step(source, pkls[0]):
        size = archive.getinfo(pkls[0]).file_size
    budget.charge(size, f"{pkls[0]} ({size} bytes)")
    return prefix, bytes(_read_member(archive, pkls[0], size, source))


def load_torch_checkpoint(path: Any) -> Any:
    """The object saved with ``torch.save`` (typically a state dict), tensors as ndarrays.

    Raises CheckpointFormatError (a ValueError) naming the zip member, pickle byte or tensor
    key for a malformed file, UnsafeCheckpointError (a CheckpointFormatError) for refused
    content (code, a layout outside its storage, more memory than the file size justifies),
    and OSError (FileNotFoundError, PermissionError, IsADirectoryError) from the file system."""
    path = Path(path)
    source = str(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        _check_kind(fh, size, source)
        budget = MemoryBudget(size, source)
        with _zip_step(source, "the central directory"):
            archive = zipfile.ZipFile(fh)
        with archive:
            prefix, data = _open_pickle(archive, source, budget)
            ckpt = _Checkpoint(source)
            try:
                obj = RestrictedUnpickler(data, f"{source}: {prefix}data.pkl", ckpt.resolve,
                                          ckpt.persistent, budget).load()
                return _materialize(obj, archive, prefix, source, budget)
            except RecursionError:  # not expected: nesting is bounded by MAX_DEPTH
                raise CheckpointFormatError(f"{source}: objects nested too deeply") from None


def load_state_dict(path: Any) -> dict[str, np.ndarray]:
    """A checkpoint's state dict as {name: ndarray}; a ``{"state_dict": ...}`` wrapper or a
    ``module.`` prefix (DataParallel) is unwrapped. Raises what
    :func:`load_torch_checkpoint` raises, and CheckpointFormatError when the file holds no
    dict of tensors with string keys."""
    obj = load_torch_checkpoint(path)
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise CheckpointFormatError(f"{path} holds a {type(obj).__name__}, not a state dict")
    out: dict[str, np.ndarray] = {}
    for k, v in obj.items():
        if not isinstance(v, np.ndarray):
            continue
        if not isinstance(k, str):
            raise CheckpointFormatError(f"{path}: tensor under the non-string key {short(k)}")
        name = k[7:] if k.startswith("module.") else k
        if name in out:
            raise CheckpointFormatError(f"{path}: tensor '{name}' appears twice (with and "
                                        f"without the 'module.' prefix)")
        out[name] = v
    return out
