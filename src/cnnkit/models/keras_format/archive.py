"""The ``.keras`` archive: a zip of ``metadata.json``, ``config.json`` and
``model.weights.h5`` (Keras 3's own layout; an ``assets/`` folder is allowed and ignored).

Reading checks every member's declared size before inflating it: the members together may
declare at most ``EXPANSION`` times the archive's size (zip bombs are refused), each is read up
to its declared size and no further, and its CRC is checked. Writing goes to a temporary name
and is renamed into place.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any

from ...files import atomic_write
from ...npz import ZIP_ERRORS, zip_member_problem
from .errors import EXPANSION, FLOOR, KerasFileError

CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
MAX_JSON = 64 << 20
KERAS_VERSION = "3.15.1"  # the Keras whose layout cnnkit writes
_CHUNK = 1 << 20


def _check_members(infos: list[zipfile.ZipInfo], label: str, size: int) -> dict:
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        problem = zip_member_problem(info, members)
        if problem:
            raise KerasFileError(f"{label}: {problem}")
        if name not in (CONFIG, METADATA, WEIGHTS) and not name.startswith("assets/"):
            raise KerasFileError(f"{label}: unexpected member {name[:80]!r} (a .keras archive "
                                 f"holds {CONFIG}, {METADATA}, {WEIGHTS} and assets/)")
        members[name] = info
    total = sum(i.file_size for i in infos)
    if total > EXPANSION * size + FLOOR:
        raise KerasFileError(f"{label}: the archive's members declare {total} bytes, more "
                             f"than {EXPANSION} times the file's {size} bytes (a zip bomb?)")
    for need in (CONFIG, WEIGHTS):
        if need not in members:
            raise KerasFileError(f"{label} is not a Keras 3 archive: it has no {need}")
    if members[CONFIG].file_size > MAX_JSON:
        raise KerasFileError(f"{label}: {CONFIG} declares {members[CONFIG].file_size} bytes, "
                             f"more than {MAX_JSON}")
    return members


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    try:
        with zf.open(info) as f:
            buf = bytearray()
            while len(buf) < info.file_size:
                chunk = f.read(min(_CHUNK, info.file_size - len(buf)))
                if not chunk:
                    break
                buf += chunk
            extra = f.read(1)  # reaching the end checks the CRC
    except ZIP_ERRORS as e:
        raise KerasFileError(f"{label}: member {info.filename!r} is damaged: {e}") from None
    if len(buf) != info.file_size or extra:
        raise KerasFileError(f"{label}: member {info.filename!r} holds a different number of "
                             f"bytes than it declares ({info.file_size})")
    return bytes(buf)


def read_archive(path: Any) -> tuple[dict, bytes]:
    """(parsed config.json, bytes of model.weights.h5) of a .keras file."""
    label = str(path)
    with open(path, "rb") as raw:
        size = os.fstat(raw.fileno()).st_size
        try:
            zf = zipfile.ZipFile(raw)
            infos = zf.infolist()
        except ZIP_ERRORS as e:
            raise KerasFileError(f"{label} is not a readable .keras archive (a zip file): "
                                 f"{e}") from None
        with zf:
            members = _check_members(infos, label, size)
            config = parse_json(_read_member(zf, members[CONFIG], label), f"{label}: {CONFIG}")
            weights = _read_member(zf, members[WEIGHTS], label)
    if not isinstance(config, dict):
        raise KerasFileError(f"{label}: {CONFIG} must hold an object")
    return config, weights


def parse_json(raw: bytes | str, where: str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise KerasFileError(f"{where} is not valid JSON: {type(e).__name__}: "
                             f"{str(e)[:200]}") from None


def write_archive(path: Any, config: dict, weights_h5: bytes) -> None:
    """Write a .keras archive atomically (the members in the order Keras writes them)."""
    meta = {"keras_version": KERAS_VERSION, "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S"),
            "producer": "cnnkit"}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(METADATA, json.dumps(meta))
        zf.writestr(CONFIG, json.dumps(config))
        zf.writestr(WEIGHTS, weights_h5)
    with atomic_write(Path(path)) as f:
        f.write(buf.getvalue())
