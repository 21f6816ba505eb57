"""The one kind of error the weight-file readers raise, and the memory bound they keep.

``load_state_dict``, ``load_torch_checkpoint`` and ``load_safetensors`` raise, for a bad file,
only :class:`CheckpointFormatError` (a ``ValueError``) or its subclass
:class:`UnsafeCheckpointError` (also a ``pickle.UnpicklingError``), so one ``except ValueError``
catches every malformed or hostile file; ``OSError`` (``FileNotFoundError``,
``PermissionError``, ``IsADirectoryError``) means the file system refused. Every message names
the file and the part of it that is wrong (zip member, pickle byte offset, tensor key).

Memory: reading a file of F bytes allocates at most ``EXPANSION * F + FLOOR`` bytes for what
the file asks for (storages read, arrays built, pickle objects, inflated zip members); a file
asking for more is refused before the allocation happens.
"""

from __future__ import annotations

import pickle

EXPANSION = 8
FLOOR = 16 << 20


class CheckpointFormatError(ValueError):
    """A weights file (PyTorch checkpoint or safetensors) is malformed; the message names the
    file and the part that is wrong."""


class UnsafeCheckpointError(CheckpointFormatError, pickle.UnpicklingError):
    """The file asks for something the readers refuse: code (a global other than the tensor
    rebuild functions), an object-building pickle opcode, a tensor layout its bytes do not
    back, or more memory than its size justifies."""


def short(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (huge ints and nested tuples stay short)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # ints over the str-digits limit, deep nesting
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


class MemoryBudget:
    """Bytes one file may make the reader allocate: ``EXPANSION * file size + FLOOR``."""

    def __init__(self, file_size: int, source: str):
        self.limit = EXPANSION * int(file_size) + FLOOR
        self.used = 0
        self.file_size = int(file_size)
        self.source = source

    def charge(self, nbytes: int, what: str) -> None:
        """Count ``nbytes`` (before allocating them); refuse once the total passes the limit."""
        self.used += int(nbytes)
        if self.used > self.limit:
            raise UnsafeCheckpointError(
                f"{self.source}: {what} would take the memory spent on this file to "
                f"{self.used} bytes, over the {self.limit} bytes a {self.file_size}-byte file "
                f"justifies ({EXPANSION} x file size + {FLOOR >> 20} MiB)")
