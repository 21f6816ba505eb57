"""Drift monitoring in service: a sliding window of recent predictions against the reference.

Each prediction adds one record to the window (its per-channel input statistics, predicted
class, top probability and embedding). :meth:`DriftMonitor.check` compares the window with
the :class:`~.profile.ReferenceProfile`:

- PSI of the top-probability histogram and of the predicted-class distribution, alarm above
  ``psi_threshold`` (0.25: the usual "significant shift" line);
- Kolmogorov-Smirnov on each channel's per-image mean and standard deviation, alarm when the
  smallest p-value times the number of tests (Bonferroni) is below ``ks_alpha``;
- MMD on the last ``mmd_window`` embeddings, alarm when the permutation p-value
  (k + 1) / (n + 1) is below ``mmd_alpha``.

A crossing from no alarm to alarm is logged (logger ``cnnkit.monitor``) once.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from .profile import ReferenceProfile, image_stats, probabilities
from .stats import ks_2samp, mmd_test, psi

log = logging.getLogger("cnnkit.monitor")


@dataclass(frozen=True)
class DriftConfig:
    """Window sizes and alarm thresholds (see the module docstring)."""

    window: int = 200
    min_samples: int = 100  # PSI over 10 bins averages about 9/n by chance: 0.18 at n = 50
    psi_threshold: float = 0.25
    ks_alpha: float = 0.01
    mmd_alpha: float = 0.01
    mmd_window: int = 100
    permutations: int = 200

    def __post_init__(self) -> None:
        if not 2 <= self.min_samples <= self.window:
            raise ValueError(f"DriftConfig: need 2 <= min_samples <= window, got min_samples="
                             f"{self.min_samples}, window={self.window}")
        for name in ("ks_alpha", "mmd_alpha"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"DriftConfig: {name} must be in (0, 1), got "
                                 f"{getattr(self, name)}")
        if self.psi_threshold <= 0 or self.mmd_window < 2 or self.permutations < 1:
            raise ValueError("DriftConfig: psi_threshold must be > 0, mmd_window >= 2 and "
                             "permutations >= 1")


class DriftMonitor:
    """``observe(inputs, outputs, embeddings)`` after each batch; ``check()`` -> report."""

    def __init__(self, profile: ReferenceProfile, config: DriftConfig | None = None,
                 name: str = "model", seed: int = 0):
        self.profile, self.config, self.name = profile, config or DriftConfig(), name
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        w = self.config.window
        self._stats: deque = deque(maxlen=w)
        self._classes: deque = deque(maxlen=w)
        self._conf: deque = deque(maxlen=w)
        self._emb: deque = deque(maxlen=w)
        self.seen = 0
        self.alarm = False
        self.last: dict[str, Any] = {"samples": 0, "alarm": False, "status": "warming up"}

    def observe(self, inputs: np.ndarray, outputs: np.ndarray,
                embeddings: np.ndarray | None = None, probs: np.ndarray | None = None) -> None:
        """Add a batch's records to the window (``probs``: ``probabilities(outputs)`` when
        the caller has them already)."""
        stats = image_stats(inputs)
        probs = probabilities(outputs) if probs is None else probs
        with self._lock:
            self._stats.extend(stats)
            self._classes.extend(probs.argmax(-1).tolist())
            self._conf.extend(probs.max(-1).tolist())
            if embeddings is not None and len(self.profile.embeddings):
                self._emb.extend(np.asarray(embeddings, np.float32))
            self.seen += len(stats)

    def reset(self) -> None:
        """Empty the window (the alarm state is kept until the next check)."""
        with self._lock:
            for d in (self._stats, self._classes, self._conf, self._emb):
                d.clear()

    def _snapshot(self) -> tuple:
        with self._lock:
            return (np.array(self._stats), np.array(self._classes, dtype=np.int64),
                    np.array(self._conf), np.array(self._emb), self.seen)

    def check(self) -> dict[str, Any]:
        """The drift report of the current window (also kept as ``last``)."""
        stats, classes, conf, emb, seen = self._snapshot()
        cfg, ref = self.config, self.profile
        report: dict[str, Any] = {"samples": int(len(stats)), "seen": int(seen)}
        if len(stats) < cfg.min_samples:
            report.update(alarm=False, status="warming up", alarms=[])
            self.last = report
            return report
        conf_counts, _ = np.histogram(conf, ref.confidence_edges)
        k = len(ref.class_counts)
        report["psi_confidence"] = psi(ref.confidence_counts, conf_counts)
        report["psi_classes"] = psi(ref.class_counts,
                                    np.bincount(np.clip(classes, 0, k - 1), minlength=k))
        report.update(self._ks(stats))
        if len(emb) >= 2 and len(ref.embeddings) >= 2:
            recent = emb[-cfg.mmd_window:]
            report["mmd2"], report["mmd_p"] = mmd_test(ref.embeddings, recent, ref.bandwidth,
                                                       cfg.permutations, self._rng)
        alarms = [n for n, hit in (
            ("psi_confidence", report["psi_confidence"] > cfg.psi_threshold),
            ("psi_classes", report["psi_classes"] > cfg.psi_threshold),
            ("ks", report["ks_p"] < cfg.ks_alpha),
            ("mmd", report.get("mmd_p", 1.0) < cfg.mmd_alpha)) if hit]
        report.update(alarm=bool(alarms), alarms=alarms, status="drift" if alarms else "ok")
        if alarms and not self.alarm:
            log.warning("drift alarm for model %s after %d samples: %s (%s)", self.name, seen,
                        ", ".join(alarms), _brief(report))
        elif self.alarm and not alarms:
            log.info("drift alarm for model %s cleared after %d samples", self.name, seen)
        self.alarm = bool(alarms)
        self.last = report
        return report

    def _ks(self, stats: np.ndarray) -> dict[str, float]:
        """Largest KS distance and Bonferroni-adjusted smallest p-value over channel stats."""
        ref = self.profile.input_stats
        tests = [ks_2samp(ref[:, c, j], stats[:, c, j])
                 for c in range(min(ref.shape[1], stats.shape[1])) for j in range(2)]
        d = max(t[0] for t in tests)
        p = min(1.0, min(t[1] for t in tests) * len(tests))
        return {"ks_d": float(d), "ks_p": float(p)}


def _brief(report: dict[str, Any]) -> str:
    keys = ("psi_confidence", "psi_classes", "ks_d", "ks_p", "mmd2", "mmd_p")
    return ", ".join(f"{k}={report[k]:.4g}" for k in keys if k in report)
