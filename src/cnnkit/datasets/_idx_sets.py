"""Finding, downloading and verifying the four IDX files of MNIST-style data sets.

Search order: ``data_dir`` argument, ``$CNNKIT_DATA/<name>``, the user cache
(``$XDG_CACHE_HOME/cnnkit/<name>`` or ``~/.cache/cnnkit/<name>``), then the system location
where Debian's packages install them. Otherwise the files are downloaded into the cache and
checked: the SHA-256 of each decompressed IDX payload must match (the payload, not the .gz,
so re-compressed copies such as Debian's verify too).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .idx import parse_idx, read_idx_bytes

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class IdxSet:
    name: str
    urls: tuple[str, ...]  # base URLs, tried in order
    sha256: dict[str, str]  # decompressed payload hashes, by file stem
    system_dirs: tuple[str, ...] = ()


def cache_dir(name: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnnkit" / name


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def candidate_dirs(spec: IdxSet, data_dir: Any = None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir is not None:
        dirs.append(Path(data_dir))
    env = os.environ.get("CNNKIT_DATA")
    if env:
        dirs += [Path(env) / spec.name, Path(env)]
    dirs.append(cache_dir(spec.name))
    dirs += [Path(d) for d in spec.system_dirs]
    return dirs


# every file of MNIST and Fashion-MNIST is under 48 MB once decompressed
MAX_PAYLOAD = 64 << 20


def _payload(path: Path) -> bytearray:
    """The decompressed IDX bytes, read only up to the size the header declares (ValueError
    naming the file when truncated, damaged or longer)."""
    return read_idx_bytes(path, MAX_PAYLOAD)


def _verified(spec: IdxSet, stem: str, data: bytearray, source: str) -> np.ndarray:
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256[stem]:
        raise ValueError(f"{source}: SHA-256 of the IDX data is {digest}, expected "
                         f"{spec.sha256[stem]} for {spec.name} {stem}; the file is damaged or "
                         f"not the canonical one")
    return parse_idx(data, source)


def download(spec: IdxSet, dest: Path) -> None:
    """Fetch the four .gz files into ``dest``, verifying each before it is kept."""
    dest.mkdir(parents=True, exist_ok=True)
    for stem in FILES:
        if _find(dest, stem):
            continue
        errors = []
        for base in spec.urls:
            url = f"{base.rstrip('/')}/{stem}.gz"
            fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".gz", dir=dest)
            try:
                with urllib.request.urlopen(url, timeout=30) as r, os.fdopen(fd, "wb") as f:
                    shutil.copyfileobj(r, f)
                _verified(spec, stem, _payload(Path(tmp)), url)
                os.replace(tmp, dest / f"{stem}.gz")
                break
            except Exception as e:  # try the next mirror
                errors.append(f"{url}: {e}")
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            raise OSError(f"could not download {spec.name} file {stem}.gz:\n  "
                          + "\n  ".join(errors))


def load(spec: IdxSet, data_dir: Any = None, download_missing: bool = True
         ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)) as uint8 arrays, images (N, 28, 28)."""
    dirs = candidate_dirs(spec, data_dir)
    for d in dirs:
        paths = [_find(d, stem) for stem in FILES]
        if all(paths):
            arrays = [_verified(spec, stem, _payload(p), str(p))
                      for stem, p in zip(FILES, paths, strict=True)]
            return (arrays[0], arrays[1]), (arrays[2], arrays[3])
    if data_dir is not None and not download_missing:
        raise FileNotFoundError(f"{spec.name}: the four IDX files are not in {data_dir}")
    if download_missing:
        target = cache_dir(spec.name)
        try:
            download(spec, target)
        except OSError as e:
            where = "\n  ".join(str(d) for d in dirs)
            raise FileNotFoundError(
                f"{spec.name} is not on this machine and could not be downloaded ({e}).\n"
                f"Put the four files ({', '.join(f + '.gz' for f in FILES)}) in one of:\n  "
                f"{where}\nor pass data_dir=..., or set CNNKIT_DATA.") from None
        return load(spec, target, download_missing=False)
    where = "\n  ".join(str(d) for d in dirs)
    raise FileNotFoundError(f"{spec.name} files not found; looked in:\n  {where}")
