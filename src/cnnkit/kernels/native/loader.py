"""One loader for cnnkit's optional C libraries: find the build, pick the CPU's variant, check
the ABI version, declare the signatures from one table.

Each library (``_conv``, ``_norm`` in this folder, built by setup.py) exists as a baseline
build and, on x86-64, ``_avx2`` / ``_avx512`` variants. The baseline build's
``cnnkit_cpu_level()`` says which the running CPU can execute; the best variant built is
loaded (``CNNKIT_NATIVE_VARIANT=baseline|avx2|avx512`` caps the choice). A library whose
``cnnkit_abi_version()`` differs from :data:`ABI_VERSION` (an old build next to new Python
code) or that lacks a declared function is refused with a warning, and the kernels keep their
NumPy path. ``CNNKIT_NATIVE=0`` (or false / no / off) switches every helper off;
:meth:`NativeLibrary.set_enabled` does the same at run time. The variable is read once, on
first use (a kernel call asks ``available()`` dozens of times); after changing it in a
running process, call :func:`reread_env`.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ABI_VERSION", "VARIANTS", "NativeLibrary", "Signatures", "env_enabled",
           "pick_variants", "reread_env"]

# The signature version the tables in conv.py / norm.py are written for (CNK_ABI_VERSION in
# the C files): bump both together whenever an exported function changes.
ABI_VERSION = 1
# (name, file suffix, cnnkit_cpu_level needed), best first
VARIANTS = (("avx512", "_avx512", 2), ("avx2", "_avx2", 1), ("baseline", "", 0))

# function name -> (restype, argtypes)
Signatures = Mapping[str, tuple[Any, list[Any]]]


_ENV: list[bool] = []  # CNNKIT_NATIVE as read (empty: not read yet)


def reread_env() -> bool:
    """Read ``CNNKIT_NATIVE`` again (after a change in this process); its new value."""
    flag = os.environ.get("CNNKIT_NATIVE", "1").strip().lower() not in ("0", "false", "no",
                                                                      "off")
    _ENV[:] = [flag]
    return flag


def env_enabled() -> bool:
    """False when ``CNNKIT_NATIVE`` is 0 / false / no / off, else True (as read on first use
    or by the last :func:`reread_env`)."""
    return _ENV[0] if _ENV else reread_env()


def pick_variants(cpu_level: int, built: set[str], cap: str | None = None,
                  baseline_fallback: bool = True) -> list[str]:
    """The variants to try, best first: built, runnable at ``cpu_level``, at most ``cap``.
    Without ``baseline_fallback`` the baseline build is left out where faster variants were
    built (x86-64) unless ``cap`` asks for it (a library slower than NumPy at baseline)."""
    names = [name for name, _, _ in VARIANTS]
    start = names.index(cap) if cap in names else 0
    out = [name for name, _, level in VARIANTS[start:] if level <= cpu_level and name in built]
    if not baseline_fallback and cap != "baseline" and built != {"baseline"}:
        out = [name for name in out if name != "baseline"]
    return out


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


class NativeLibrary:
    """The C library ``<stem>[variant]<extension suffix>`` in ``folder`` (default: this
    package's folder) with the functions of ``signatures``, loaded once on first use
    (``baseline_fallback``: see :func:`pick_variants`)."""

    def __init__(self, stem: str, signatures: Signatures, folder: Path | None = None,
                 abi_version: int = ABI_VERSION, baseline_fallback: bool = True) -> None:
        self.stem = stem
        self.baseline_fallback = baseline_fallback
        self.signatures = dict(signatures)
        self.folder = Path(__file__).resolve().parent if folder is None else folder
        self.abi_version = abi_version
        self.state: dict[str, Any] = {"lib": None, "loaded": False, "enabled": None,
                                      "variant": None}
        self._lock = threading.Lock()

    def path(self, variant: str = "baseline") -> Path | None:
        """The built file of ``variant``, or None."""
        suffix = {name: sfx for name, sfx, _ in VARIANTS}[variant]
        return _find(self.folder, self.stem + suffix)

    def _open(self, path: Path) -> ctypes.CDLL | None:
        """The library at ``path`` with its signatures declared, or None (with a warning)
        when it does not load, has another ABI version or lacks a function."""
        try:
            lib = ctypes.CDLL(str(path))
            lib.cnnkit_abi_version.restype = ctypes.c_int
            lib.cnnkit_abi_version.argtypes = []
            version = lib.cnnkit_abi_version()
            if version != self.abi_version:
                raise AttributeError(f"ABI version {version}, expected {self.abi_version}")
            for name, (restype, argtypes) in self.signatures.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = restype, argtypes
        except (OSError, AttributeError) as exc:
            warnings.warn(f"cnnkit: the native helper {path.name} is not usable ({exc}); using "
                          f"the NumPy kernels (rebuild with pip install)", RuntimeWarning,
                          stacklevel=3)
            return None
        return lib

    def _cpu_level(self, base: Path) -> int:
        try:
            fn = ctypes.CDLL(str(base)).cnnkit_cpu_level
        except (OSError, AttributeError):
            return 0
        fn.restype, fn.argtypes = ctypes.c_int, []
        return int(fn())

    def _load_best(self) -> tuple[ctypes.CDLL | None, str | None]:
        base = self.path()
        if base is None:
            return None, None
        built = {name for name, _, _ in VARIANTS if self.path(name) is not None}
        cap = os.environ.get("CNNKIT_NATIVE_VARIANT", "").strip().lower() or None
        for name in pick_variants(self._cpu_level(base), built, cap, self.baseline_fallback):
            lib = self._open(self.path(name))  # type: ignore[arg-type]
            if lib is not None:
                return lib, name
        return None, None

    def load(self) -> ctypes.CDLL | None:
        """The library, loaded once; None when it is not built or not usable."""
        if self.state["loaded"]:
            return self.state["lib"]
        with self._lock:
            if not self.state["loaded"]:
                self.state["lib"], self.state["variant"] = self._load_best()
                self.state["loaded"] = True
        return self.state["lib"]

    def variant(self) -> str | None:
        """The variant loaded ("avx512", "avx2", "baseline"), or None when none is."""
        self.load()
        return self.state["variant"]

    def set_enabled(self, flag: bool | None) -> None:
        """Force the helper on (when built) or off; None goes back to ``CNNKIT_NATIVE``."""
        self.state["enabled"] = flag

    def available(self) -> bool:
        """True when the library is built, usable, and not switched off."""
        flag = self.state["enabled"]
        if flag is None:
            flag = env_enabled()
        return bool(flag) and self.load() is not None
