"""Writing files safely: to a temporary name in the same folder (``.NAME.<pid>.<random>.tmp``),
flushed to disk, then renamed over the target, so an interrupted write never leaves a broken
file. Temporaries that a killed writer left behind for the same target are removed by the
next write: those whose process is gone, and those of the older naming older than this
process."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

_STARTED = time.time()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True  # cannot probe cheaply: keep the file (removed by age only)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: the process exists
        return True
    return True


def remove_stale_temporaries(path: Any) -> list[Path]:
    """Delete the temporaries of earlier, interrupted writes to ``path``; returns them."""
    path = Path(path)
    mine = re.compile(rf"\.{re.escape(path.name)}\.(?:(\d+)\.)?[a-z0-9_]{{8}}\.tmp")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for e in entries:
        m = mine.fullmatch(e.name)
        if m is None or not e.is_file(follow_symlinks=False):
            continue
        with suppress(OSError):
            stale = (not _alive(int(m.group(1))) if m.group(1)
                     else e.stat(follow_symlinks=False).st_mtime < _STARTED)
            if stale:
                os.unlink(e.path)
                removed.append(Path(e.path))
    return removed


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    with suppress(OSError):  # some file systems cannot sync a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: Any, mode: str = "wb", make_parents: bool = False) -> Iterator[IO]:
    """``with atomic_write(p) as f: f.write(...)``: ``p`` appears whole or not at all.

    The folder must exist (FileNotFoundError, NotADirectoryError or PermissionError
    otherwise) unless ``make_parents``."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.exists():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    elif not path.parent.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {path.parent} is not a folder")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    if hasattr(os, "fchmod"):  # mkstemp makes 0600; a finished file gets what open() would
        os.fchmod(fd, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
