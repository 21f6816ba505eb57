"""Within-class whitening of embeddings (within-class covariance normalisation, as in speaker
and face verification): fitted on the training classes, applied to any embeddings.

With mu the mean of the training embeddings and S_w = (1/C) sum_c cov(e | class c) (each the
unbiased covariance of one class), the map is z = (e - mu) U diag(lambda + s)^(-1/2), where
S_w = U diag(lambda) U^T and s = shrink * trace(S_w) / D keeps directions of little
within-class variance from being blown up; then z / ||z|| when ``normalize``. Directions in
which the training classes vary a lot within themselves are shrunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["WithinClassWhitening"]


class WithinClassWhitening:
    """``fit(embeddings, labels)`` on training classes, then ``transform(embeddings)``."""

    def __init__(self, shrink: float = 0.3, normalize: bool = True):
        if not shrink >= 0:
            raise ValueError(f"WithinClassWhitening: shrink must be >= 0, got {shrink}")
        self.shrink, self.normalize = float(shrink), bool(normalize)
        self.mean: np.ndarray | None = None
        self.projection: np.ndarray | None = None

    def fit(self, embeddings: Any, labels: Any) -> WithinClassWhitening:
        e = np.asarray(embeddings, dtype=np.float64)
        y = np.asarray(labels).reshape(-1)
        if e.ndim != 2 or e.shape[0] != y.size:
            raise ValueError(f"WithinClassWhitening.fit expects embeddings (N, D) with N = "
                             f"{y.size} labels, got shape {e.shape}")
        classes, counts = np.unique(y, return_counts=True)
        if classes.size < 1 or counts.min() < 2:
            raise ValueError("WithinClassWhitening.fit needs at least 2 rows of every label")
        s_w = sum(np.cov(e[y == c], rowvar=False).reshape(e.shape[1], -1)
                  for c in classes) / classes.size
        lam, u = np.linalg.eigh(s_w)
        lam = np.maximum(lam, 0) + self.shrink * np.trace(s_w) / e.shape[1]
        if lam.min() <= 0:
            raise ValueError("WithinClassWhitening.fit: the within-class covariance is "
                             "singular; use shrink > 0")
        self.mean, self.projection = e.mean(0), u / np.sqrt(lam)
        return self

    def transform(self, embeddings: Any) -> np.ndarray:
        if self.projection is None:
            raise ValueError("WithinClassWhitening.transform called before fit")
        e = np.asarray(embeddings, dtype=np.float64)
        if e.ndim != 2 or e.shape[1] != self.projection.shape[0]:
            raise ValueError(f"WithinClassWhitening.transform expects embeddings (N, "
                             f"{self.projection.shape[0]}), got shape {e.shape}")
        z = (e - self.mean) @ self.projection
        if self.normalize:
            z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return z
