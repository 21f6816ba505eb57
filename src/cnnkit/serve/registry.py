"""The models a server holds: each loaded once, compiled into a batch-invariant plan behind
its own batcher, with its drift monitor; replaced when its file changes on disk.

Hot reload: a watcher thread compares each file's (mtime, size, inode) every
``reload_interval_s``. A change that has held still for one interval (a writer that is not
atomic has finished) is loaded in the watcher thread while the old model keeps serving; only
a model that loaded and compiled is swapped in (one dict assignment), then the old batcher
finishes the requests it accepted. A file that fails to load leaves the old model serving
and is logged.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..monitor import DriftMonitor, EmbeddingPlan, ReferenceProfile, probabilities, profile_path
from .batcher import Batcher
from .config import ServeConfig
from .metrics import Metrics

log = logging.getLogger("cnnkit.serve")


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """(mtime_ns, size, inode) of ``path``, or None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class Extras:
    """What a model call gives besides its outputs, sliced per request by the batcher:
    embeddings (or None) and the outputs as probabilities (computed once per batch)."""

    __slots__ = ("embeddings", "probs")

    def __init__(self, embeddings: np.ndarray | None, probs: np.ndarray):
        self.embeddings, self.probs = embeddings, probs

    def __getitem__(self, index: slice) -> Extras:
        emb = self.embeddings
        return Extras(None if emb is None else emb[index], self.probs[index])


class ServedModel:
    """One loaded model: plan, batcher, class names, drift monitor."""

    def __init__(self, name: str, path: Path, config: ServeConfig, metrics: Metrics):
        from ..models import load_model

        self.name, self.path, self.config, self.metrics = name, Path(path), config, metrics
        self.signature = file_signature(self.path)
        self.model = load_model(self.path, compile=False)
        shape = getattr(self.model, "input_shape", None)
        out = getattr(self.model, "output_shape", None)
        if not isinstance(shape, tuple) or not isinstance(out, tuple) or len(out) != 2 \
                or out[1] is None:
            raise ValueError(f"{path}: model '{self.model.name}' takes {shape} and outputs "
                             f"{out}; cnnkit serve needs a classifier with one output "
                             f"(N, classes)")
        self.input_shape = tuple(shape[1:])
        self.classes = int(out[1])
        names = getattr(self.model, "class_names", None)
        self.class_names = [str(n) for n in names] if names else None
        self.plan = EmbeddingPlan(self.model, batch_invariant=True)
        self.monitor = self._monitor()
        self._drift_event = threading.Event()
        self._pending = 0
        self._stopped = threading.Event()
        self.loaded_at = time.time()
        self.incoming = 0  # requests being received or decoded (changed on the event loop)
        self.batcher = Batcher(self._run, config.max_batch_size, config.max_wait_ms / 1000.0,
                               config.queue_length, self._after_batch, name,
                               lambda: self.incoming, config.threads or None)
        self._drift_thread: threading.Thread | None = None
        if self.monitor is not None:
            self._drift_thread = threading.Thread(target=self._drift_loop, daemon=True,
                                                  name=f"cnnkit-drift-{name}")
            self._drift_thread.start()

    def _monitor(self) -> DriftMonitor | None:
        p = profile_path(self.path)
        if not p.is_file():
            return None
        try:
            profile = ReferenceProfile.load(p)
        except (ValueError, OSError) as e:
            log.warning("model %s: reference profile %s not used: %s", self.name, p, e)
            return None
        return DriftMonitor(profile, self.config.drift, self.name)

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, Extras]:
        y, emb = self.plan(x.astype(self.plan.dtype, copy=False))
        return y, Extras(emb, probabilities(y))

    def _after_batch(self, x: np.ndarray, y: np.ndarray, extras: Extras,
                     seconds: float) -> None:
        self.metrics.batch(self.name, len(x), seconds)
        if self.monitor is not None:
            self.monitor.observe(x, y, extras.embeddings, extras.probs)
            self._pending += len(x)
            if self._pending >= self.config.drift_check_every:
                self._pending = 0
                self._drift_event.set()

    def _drift_loop(self) -> None:
        assert self.monitor is not None
        while True:
            self._drift_event.wait()
            self._drift_event.clear()
            if self._stopped.is_set():
                return
            try:
                self.monitor.check()
            except Exception as e:  # a failed check must not stop the monitor
                log.error("model %s: drift check failed: %s: %s", self.name,
                          type(e).__name__, e)
            if self._stopped.wait(self.config.drift_min_interval_s):  # at most one per interval
                return

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "file": str(self.path), "model": self.model.name,
                "input_shape": [d for d in self.input_shape], "classes": self.classes,
                "class_names": self.class_names, "drift_monitoring": self.monitor is not None,
                "loaded_at": self.loaded_at}

    def label(self, i: int) -> str:
        return self.class_names[i] if self.class_names and i < len(self.class_names) \
            else str(i)

    def close(self) -> None:
        """Finish accepted requests, then stop the threads."""
        self.batcher.close()
        self._stopped.set()
        self._drift_event.set()


class Registry:
    """Models by name, with the hot-reload watcher."""

    def __init__(self, paths: dict[str, Path], config: ServeConfig, metrics: Metrics):
        self.config, self.metrics = config, metrics
        self.models: dict[str, ServedModel] = {}
        for name, path in paths.items():
            self.models[name] = ServedModel(name, path, config, metrics)
            log.info("model %s loaded from %s", name, path)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        if config.reload_interval_s > 0:
            self._watcher = threading.Thread(target=self._watch, daemon=True,
                                             name="cnnkit-reload")
            self._watcher.start()

    def get(self, name: str) -> ServedModel | None:
        return self.models.get(name)

    def _watch(self) -> None:
        seen: dict[str, Any] = {}
        while not self._stop.wait(self.config.reload_interval_s):
            for name, entry in list(self.models.items()):
                sig = file_signature(entry.path)
                if sig is None or sig == entry.signature:
                    seen.pop(name, None)
                    continue
                if seen.get(name) != sig:  # changed: wait one interval for it to hold still
                    seen[name] = sig
                    continue
                seen.pop(name, None)
                self.reload(name)

    def reload(self, name: str) -> bool:
        """Load ``name``'s file again and swap it in; False (old model kept) if it fails."""
        old = self.models[name]
        try:
            new = ServedModel(name, old.path, self.config, self.metrics)
        except Exception as e:  # any failure keeps the old model serving
            old.signature = file_signature(old.path)  # retry only after the next change
            self.metrics.reload(name, False)
            log.error("model %s: reload of %s failed, the previous model keeps serving: "
                      "%s: %s", name, old.path, type(e).__name__, e)
            return False
        self.models[name] = new
        self.metrics.reload(name, True)
        log.info("model %s reloaded from %s", name, old.path)
        old.close()
        return True

    def close(self) -> None:
        self._stop.set()
        for entry in self.models.values():
            entry.close()
