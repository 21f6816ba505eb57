"""Reading NumPy ``.npz`` archives (zip files of ``.npy`` arrays) without trusting them.

Only the members asked for are opened. Each member's ``.npy`` header is read first (at most
64 KiB), and refused unless its dtype is a plain bool, integer or float (no objects, strings,
complex numbers, records) and its shape times the item size equals the member's declared
uncompressed size minus the header. The data is then read in 1 MiB pieces up to exactly that
size and the zip CRC checked. Members must be stored or deflated (no other compression, no
encryption), and ``max_ratio`` can bound the total inflated size by the archive's size.
Every problem with the file raises :class:`NpzError` (a ValueError) naming the member.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
import zlib
from typing import IO, Any

import numpy as np

_CHUNK = 1 << 20
_MAX_HEADER = 1 << 16
_DTYPE_KINDS = "biuf"
# what zipfile and numpy's header parser raise on a damaged archive
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError,
              OverflowError, struct.error, zlib.error, NotImplementedError, KeyError,
              IndexError, TypeError, SyntaxError, RecursionError)


class NpzError(ValueError):
    """A damaged, hostile or unsupported ``.npz`` archive (the message names the part)."""


def zip_member_problem(info: zipfile.ZipInfo, seen: Any) -> str | None:
    """Why a zip member must not be read (a name already in ``seen``, encryption, a
    compression other than stored or deflated), or None."""
    name = info.filename
    if name in seen:
        return f"member {name!r} appears twice"
    if info.flag_bits & 0x1:
        return f"member {name!r} is encrypted"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return (f"member {name!r} uses compression method {info.compress_type}; only stored "
                f"and deflated are read")
    return None


class NpzArchive:
    """``with NpzArchive(path) as a: a.header("x"); a.read("x")``.

    Opening the file may raise FileNotFoundError, PermissionError or IsADirectoryError;
    everything wrong inside it raises NpzError.

    ``max_ratio``: refuse archives whose members declare more than ``max_ratio`` times the
    archive's size in total (None: no such bound). ``max_bytes``: refuse archives whose
    members declare more than this many bytes in total.
    """

    def __init__(self, path: Any, max_ratio: float | None = None, max_bytes: int = 1 << 32):
        self.source = str(path)
        self._file: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._open(max_ratio, max_bytes)
        except BaseException:
            self._file.close()
            raise

    def _open(self, max_ratio: float | None, max_bytes: int) -> None:
        source = self.source
        try:
            size = os.fstat(self._file.fileno()).st_size
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
        except ZIP_ERRORS as e:
            raise NpzError(f"{source} is not a readable zip archive (truncated, corrupted or "
                           f"another format): {e}") from None
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            self._check_member(info)
        total = sum(i.file_size for i in infos)
        if total > max_bytes:
            raise NpzError(f"{source}: the archive's members declare {total} bytes, more than "
                           f"the limit of {max_bytes}")
        if max_ratio is not None and total > max_ratio * size + _MAX_HEADER:
            raise NpzError(f"{source}: the archive's members declare {total} bytes, more than "
                           f"{max_ratio:g} times the file's {size} bytes (a zip bomb?)")

    def _check_member(self, info: zipfile.ZipInfo) -> None:
        problem = zip_member_problem(info, self.members)
        if problem:
            raise NpzError(f"{self.source}: {problem}")
        self.members[info.filename] = info

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def names(self) -> list[str]:
        """Member names without the ``.npy`` suffix (the keys ``np.load`` would give)."""
        return [n[:-4] if n.endswith(".npy") else n for n in self.members]

    def _info(self, key: str) -> zipfile.ZipInfo:
        info = self.members.get(key + ".npy") or self.members.get(key)
        if info is None:
            raise NpzError(f"{self.source} has no array {key!r}")
        return info

    def _open_header(self, key: str) -> tuple[Any, tuple[int, ...], bool, np.dtype, bytes]:
        """The open member, its shape, Fortran order, dtype and the data bytes read so far."""
        info = self._info(key)
        f = None
        try:
            f = self._zip.open(info)
            head = f.read(min(info.file_size, _MAX_HEADER))
            bio = io.BytesIO(head)
            version = np.lib.format.read_magic(bio)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(bio)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(bio)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except BaseException as e:
            if f is not None:
                f.close()
            if isinstance(e, ZIP_ERRORS):
                raise NpzError(f"{self.source}: array {key!r} has no valid .npy header: "
                               f"{e}") from None
            raise
        dtype = np.dtype(dtype)
        if dtype.kind not in _DTYPE_KINDS or dtype.hasobject or dtype.fields is not None \
                or dtype.subdtype is not None:
            f.close()
            raise NpzError(f"{self.source}: array {key!r} has dtype {dtype}; only bool, "
                           f"integer and float arrays are read")
        expected = bio.tell() + math.prod(shape) * dtype.itemsize
        if expected != info.file_size:
            f.close()
            raise NpzError(f"{self.source}: array {key!r} declares shape {shape} of {dtype} "
                           f"({expected} bytes with its header) but the member holds "
                           f"{info.file_size}")
        return f, tuple(shape), bool(fortran), dtype, head[bio.tell():]

    def header(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) of array ``key``, reading only its header."""
        f, shape, _, dtype, _ = self._open_header(key)
        f.close()
        return shape, dtype

    def read(self, key: str) -> np.ndarray:
        """Array ``key`` (writable, native byte order), read in pieces up to its declared size."""
        f, shape, fortran, dtype, first = self._open_header(key)
        n = math.prod(shape) * dtype.itemsize
        try:
            with f:
                buf = bytearray(first)
                while len(buf) < n:
                    chunk = f.read(min(_CHUNK, n - len(buf)))
                    if not chunk:
                        break
                    buf += chunk
                extra = f.read(1)  # reaching the end checks the CRC
        except ZIP_ERRORS as e:
            raise NpzError(f"{self.source}: array {key!r} is damaged: {e}") from None
        if len(buf) != n or extra:
            raise NpzError(f"{self.source}: array {key!r} holds a different number of bytes "
                           f"than its header declares ({n})")
        arr = np.frombuffer(buf, dtype=dtype).reshape(shape, order="F" if fortran else "C")
        return arr.astype(dtype.newbyteorder("="), copy=False)
