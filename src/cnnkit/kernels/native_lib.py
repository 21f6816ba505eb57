"""One optional compiled helper library: found next to this package, loaded once, switchable.

The C libraries (``_native``, ``_native_norm``) are optional extensions built by
``pip install``. Each is loaded with ctypes on first use, under a lock because kernel threads
may ask at the same time; a missing, unloadable or outdated build (a symbol missing) counts as
absent, and the kernels keep their NumPy path. ``CNNKIT_NATIVE=0`` (or ``false``, ``no``,
``off``) in the environment switches every helper off; :meth:`OptionalLibrary.set_enabled`
does the same at run time.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["OptionalLibrary", "env_enabled"]


def env_enabled() -> bool:
    """False when ``CNNKIT_NATIVE`` is 0 / false / no / off, else True."""
    return os.environ.get("CNNKIT_NATIVE", "1").strip().lower() not in ("0", "false", "no",
                                                                      "off")


class OptionalLibrary:
    """The shared library ``<stem><extension suffix>`` in ``cnnkit/kernels``; ``declare(lib)``
    sets its functions' argument and result types (AttributeError for a missing symbol)."""

    def __init__(self, stem: str, declare: Callable[[ctypes.CDLL], None]) -> None:
        self.stem = stem
        self.declare = declare
        self.state: dict[str, Any] = {"lib": None, "loaded": False, "enabled": None}
        self._lock = threading.Lock()

    def path(self) -> Path | None:
        """The built library file, or None."""
        here = Path(__file__).resolve().parent
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = here / f"{self.stem}{suffix}"
            if path.is_file():
                return path
        return None

    def load(self) -> ctypes.CDLL | None:
        """The library, loaded once; None when it is not built or does not load."""
        if self.state["loaded"]:
            return self.state["lib"]
        with self._lock:
            if not self.state["loaded"]:
                path = self.path()
                lib = None
                if path is not None:
                    try:
                        lib = ctypes.CDLL(str(path))
                        self.declare(lib)
                    except (OSError, AttributeError):  # not loadable, or an old build
                        lib = None
                self.state["lib"] = lib
                self.state["loaded"] = True
        return self.state["lib"]

    def set_enabled(self, flag: bool | None) -> None:
        """Force the helper on (when built) or off; None goes back to ``CNNKIT_NATIVE``."""
        self.state["enabled"] = flag

    def available(self) -> bool:
        """True when the library is built, loads, and is not switched off."""
        flag = self.state["enabled"]
        if flag is None:
            flag = env_enabled()
        return bool(flag) and self.load() is not None
