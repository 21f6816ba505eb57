"""Tensors of a torch checkpoint: the storage and rebuild-call records the restricted unpickler
makes, the check that a tensor's layout (offset, size, stride) stays inside its storage, and
the copy of a checked layout into a C-ordered array."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import CheckpointFormatError, UnsafeCheckpointError, short

__all__ = ["STORAGE_DTYPES", "MAX_DIMS", "StorageRef", "TensorSpec", "layout", "build"]

STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "<u2", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "<i1", "ByteStorage": "<u1", "BoolStorage": "|b1",
}
MAX_DIMS = 32
_MAX_SPAN = 1 << 58  # elements a shape may span (zero dims aside)


class StorageRef:
    """A storage the pickle names: type, zip member key, element count (not read yet)."""

    def __init__(self, type_name: str, key: str, numel: int):
        self.type_name, self.key, self.numel = type_name, key, numel


class TensorSpec:
    """The arguments of one ``_rebuild_tensor_v2`` call, checked and read after unpickling."""

    def __init__(self, args: tuple):
        self.args = args


def _ints(values: Any) -> bool:
    return isinstance(values, tuple) and all(type(v) is int for v in values)


def layout(spec: TensorSpec, where: str) -> tuple[StorageRef, int, tuple, tuple, int]:
    """(storage, offset, size, stride, numel) after checking the bytes back every element:
    offset, strides >= 0 and ``offset + sum((size - 1) * stride) < storage numel``."""
    args = spec.args
    if not 4 <= len(args) <= 7:
        raise CheckpointFormatError(f"{where}: rebuilt from {len(args)} arguments, not 4 to 7")
    ref, offset, size, stride = args[:4]
    if not isinstance(ref, StorageRef):
        raise UnsafeCheckpointError(f"{where}: built from a {type(ref).__name__}, not a storage")
    if ref.type_name not in STORAGE_DTYPES:
        raise CheckpointFormatError(
            f"{where} has dtype {ref.type_name}, which cnnkit does not read "
            f"(it reads {', '.join(STORAGE_DTYPES)})")
    if type(offset) is not int or not _ints(size) or not _ints(stride):
        raise CheckpointFormatError(f"{where}: offset {short(offset)}, size {short(size)} and "
                                    f"stride {short(stride)} must be an int and int tuples")
    if len(size) != len(stride) or len(size) > MAX_DIMS:
        raise CheckpointFormatError(f"{where}: size {short(size)} and stride {short(stride)} "
                                    f"differ in length or pass {MAX_DIMS} dimensions")
    if offset < 0 or min(stride, default=0) < 0 or min(size, default=0) < 0:
        raise UnsafeCheckpointError(
            f"{where}: size {short(size)}, stride {short(stride)}, offset {short(offset)}: "
            f"negative values address memory before the storage")
    if math.prod(max(n, 1) for n in size) > _MAX_SPAN:
        raise CheckpointFormatError(f"{where}: size {short(size)} is impossibly large")
    numel = math.prod(size)
    if numel:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= ref.numel:
            raise UnsafeCheckpointError(
                f"{where}: size {short(size)}, stride {short(stride)}, offset {short(offset)} "
                f"reach element {short(last)} of storage {ref.key}, which holds {ref.numel}")
    return ref, offset, size, stride, numel


def _is_whole(base: np.ndarray, offset: int, size: tuple, stride: tuple, numel: int) -> bool:
    """Whether the tensor is its whole storage in C order (the usual case: no copy needed)."""
    expected = 1
    for n, s in zip(reversed(size), reversed(stride), strict=True):
        if n > 1 and s != expected:
            return False
        expected *= n
    return offset == 0 and numel == base.size and base.dtype.isnative


def build(base: np.ndarray, offset: int, size: tuple, stride: tuple, numel: int,
           bf16: bool, alone: bool) -> np.ndarray:
    """A C-ordered copy of the checked view ``base[offset + sum(i_k * stride_k)]`` (``base``
    itself, reshaped, when it is the tensor's whole storage and no other tensor's)."""
    native = base.dtype.newbyteorder("=")
    if numel == 0:
        out = np.zeros(size, dtype=native)
    elif alone and _is_whole(base, offset, size, stride, numel):
        out = base.reshape(size)
    else:  # size-1 dims get stride 0: same element, and no stride overflows a byte count
        strides = tuple(s * base.itemsize if n > 1 else 0
                        for n, s in zip(size, stride, strict=True))
        view = np.lib.stride_tricks.as_strided(base[offset:], shape=size, strides=strides,
                                               writeable=False)
        out = np.array(view, dtype=native)
    if native.kind == "b":  # bytes other than 0 and 1 read as True, as torch reads them
        out = out.view(np.uint8) != 0
    if bf16:
        wide = out.astype(np.uint32)
        wide <<= 16
        out = wide.view(np.float32)
    return out
