"""Reading HDF5 files without trusting them (h5py underneath).

Only hard links are followed: a soft link, an external link (a path into another file) or a
user-defined link is refused, and so is a dataset whose data lives outside the file (external
storage, a virtual dataset) or passes through a filter other than deflate, shuffle, Fletcher-32
and LZF. Datasets must be plain bool, integer or float arrays; their size is checked against
the bytes left in the reader's budget (a multiple of the file's size) before anything is read.
String attributes are capped in count and length. Every problem raises :class:`KerasFileError`.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any

import numpy as np

from .errors import EXPANSION, FLOOR, KerasFileError

MAX_NAMES = 100_000  # entries in one list-of-names attribute (layer_names, weight_names)
MAX_TEXT = 64 << 20  # bytes in one text attribute (model_config)
_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 32000: "lzf"}


def h5py_module() -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError("reading and writing Keras .keras / .h5 files needs h5py: "
                          "pip install 'cnnkit[keras]'") from None
    return h5py


class H5Reader:
    """An open HDF5 file (path or bytes) and the bytes its reads may still allocate."""

    def __init__(self, source: Any, label: str, data: bytes | None = None):
        h5py = h5py_module()
        self.label = label
        self._raw = io.BytesIO(data) if data is not None else open(source, "rb")  # noqa: SIM115
        try:
            size = len(data) if data is not None else os.fstat(self._raw.fileno()).st_size
            self.budget = EXPANSION * size + FLOOR
            head = self._raw.read(8)
            self._raw.seek(0)
            if head != b"\x89HDF\r\n\x1a\n":
                raise KerasFileError(f"{label} is not an HDF5 file (it starts with "
                                     f"{head[:8]!r})")
            try:
                self.file = h5py.File(self._raw, "r")
            except (OSError, ValueError, KeyError, RuntimeError) as e:
                raise KerasFileError(f"{label} is not a readable HDF5 file: {e}") from None
        except BaseException:
            self._raw.close()
            raise

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            self._raw.close()

    def __enter__(self) -> H5Reader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ----- structure ---------------------------------------------------------------------
    def child(self, group: Any, name: str, want: str = "any") -> Any:
        """``group[name]`` (name without '/') through a hard link only, or None if absent."""
        h5py = h5py_module()
        where = f"{self.label}: {group.name.rstrip('/')}/{name}"
        if not name or "/" in name or name in (".", ".."):
            raise KerasFileError(f"{where}: invalid member name {name!r}")
        try:
            link = group.get(name, getlink=True)
            if link is None:
                return None
            if not isinstance(link, h5py.HardLink):
                kind = type(link).__name__
                raise KerasFileError(f"{where} is a {kind}: links to other places or files "
                                     f"are refused")
            obj = group[name]
        except KerasFileError:
            raise
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
            raise KerasFileError(f"{where} cannot be read: {e}") from None
        if want == "group" and not isinstance(obj, h5py.Group):
            raise KerasFileError(f"{where} must be a group, found {type(obj).__name__}")
        if want == "dataset" and not isinstance(obj, h5py.Dataset):
            raise KerasFileError(f"{where} must be a dataset, found {type(obj).__name__}")
        return obj

    def path(self, names: list[str], want: str = "any") -> Any:
        """The object at ``a/b/c`` (each step a hard link), or None if a step is absent."""
        obj = self.file
        for i, name in enumerate(names):
            obj = self.child(obj, name, want if i == len(names) - 1 else "group")
            if obj is None:
                return None
        return obj

    def keys(self, group: Any) -> list[str]:
        try:
            names = list(group.keys())
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise KerasFileError(f"{self.label}: cannot list {group.name}: {e}") from None
        if len(names) > MAX_NAMES:
            raise KerasFileError(f"{self.label}: {group.name} holds {len(names)} members, "
                                 f"more than {MAX_NAMES}")
        odd = [n for n in names if not isinstance(n, str)]
        if odd:
            raise KerasFileError(f"{self.label}: {group.name} holds a member whose name is not "
                                 f"UTF-8 text: {odd[0]!r:.80}")
        return names

    # ----- datasets ----------------------------------------------------------------------
    def dataset_info(self, ds: Any) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) of a dataset whose data this reader will read; KerasFileError when
        it is stored outside the file, filtered by something unknown or not plain numbers."""
        h5py = h5py_module()
        if not isinstance(ds, h5py.Dataset):
            raise KerasFileError(f"{self.label}: a dataset it lists is missing or not a "
                                 f"dataset ({type(ds).__name__})")
        where = f"{self.label}: dataset {ds.name}"
        try:
            plist = ds.id.get_create_plist()
            layout = plist.get_layout()
            external = plist.get_external_count()
            filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
            shape, dtype = tuple(int(s) for s in ds.shape or ()), ds.dtype
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
            raise KerasFileError(f"{where} cannot be read: {e}") from None
        if layout == h5py.h5d.VIRTUAL or external:
            raise KerasFileError(f"{where} keeps its data outside the file (virtual or "
                                 f"external storage): refused")
        odd = [f for f in filters if f not in _FILTERS]
        if odd:
            raise KerasFileError(f"{where} uses HDF5 filter {odd[0]}; only "
                                 f"{sorted(_FILTERS.values())} are read")
        if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None \
                or dtype.itemsize > 8:
            raise KerasFileError(f"{where} has dtype {dtype}; only bool, integer and float "
                                 f"arrays are read")
        return shape, dtype

    def read(self, ds: Any) -> np.ndarray:
        """The dataset's values (native byte order), within the reader's budget."""
        shape, dtype = self.dataset_info(ds)
        n = math.prod(shape) * dtype.itemsize
        if n > self.budget:
            raise KerasFileError(f"{self.label}: dataset {ds.name} of shape {shape} and dtype "
                                 f"{dtype} needs {n} bytes, more than the file's size "
                                 f"justifies ({self.budget} left)")
        self.budget -= n
        try:
            arr = np.empty(shape, dtype.newbyteorder("="))
            if n:
                ds.read_direct(arr)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
            raise KerasFileError(f"{self.label}: dataset {ds.name} is damaged: {e}") from None
        return arr

    # ----- attributes --------------------------------------------------------------------
    def _attr(self, obj: Any, name: str) -> Any:
        h5py = h5py_module()
        where = f"{self.label}: attribute {name!r} of {obj.name}"
        try:
            if name not in obj.attrs:
                return None
            aid = obj.attrs.get_id(name)
            shape, dtype = aid.shape, aid.dtype
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
            raise KerasFileError(f"{where} cannot be read: {e}") from None
        count = math.prod(shape or ())
        is_text = h5py.check_string_dtype(dtype) is not None or dtype.kind == "S"
        if not is_text and not (dtype.kind == "f" and count == 0):  # h5py writes [] as float
            raise KerasFileError(f"{where} must be text, found dtype {dtype}")
        if count > MAX_NAMES or (dtype.kind == "S" and count * dtype.itemsize > MAX_TEXT):
            raise KerasFileError(f"{where} is too large ({count} entries of {dtype})")
        try:
            return obj.attrs[name]
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
            raise KerasFileError(f"{where} cannot be read: {e}") from None

    def text(self, obj: Any, name: str) -> str | None:
        """A scalar text attribute (bytes decoded as UTF-8), or None when absent."""
        value = self._attr(obj, name)
        if value is None:
            return None
        if isinstance(value, np.ndarray):
            if value.size != 1:
                raise KerasFileError(f"{self.label}: attribute {name!r} of {obj.name} must be "
                                     f"one string")
            value = value.reshape(-1)[0]
        return _decode(value, f"{self.label}: attribute {name!r}")

    def names(self, obj: Any, name: str) -> list[str] | None:
        """A list-of-names attribute, joined from ``name0``, ``name1``, ... when Keras 2 split
        it (HDF5's 64 KiB header limit); None when absent."""
        value = self._attr(obj, name)
        if value is None:
            parts = []
            while len(parts) <= MAX_NAMES:
                part = self._attr(obj, f"{name}{len(parts)}")
                if part is None:
                    break
                parts.append(part)
            if not parts:
                return None
            value = np.concatenate([np.asarray(p).reshape(-1) for p in parts])
        items = np.asarray(value).reshape(-1)
        if items.size > MAX_NAMES:
            raise KerasFileError(f"{self.label}: attribute {name!r} lists more than "
                                 f"{MAX_NAMES} names")
        return [_decode(v, f"{self.label}: attribute {name!r}") for v in items]


def _decode(value: Any, where: str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (bytes, np.bytes_)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError as e:
            raise KerasFileError(f"{where} is not UTF-8 text: {e}") from None
    else:
        raise KerasFileError(f"{where} must be text, found {type(value).__name__}")
    if len(text) > MAX_TEXT:
        raise KerasFileError(f"{where} is longer than {MAX_TEXT} characters")
    return text
