"""The reference profile a trained model is monitored against, saved beside it.

``build_profile(model, images)`` runs the model once over reference images (its training or
validation images) and keeps, small and without pickle (an ``.npz`` of plain arrays, the
metadata as UTF-8 JSON bytes):

- ``input_stats`` (n, C, 2): per image and channel, the mean and standard deviation of the
  pixels (a sample of at most ``max_stats`` images);
- ``class_counts`` (K,): how often each class was predicted;
- ``confidence_edges`` (B+1,) and ``confidence_counts`` (B,): the histogram of the top
  probability on bins cut at the reference's quantiles (equal shares per bin);
- ``embeddings`` (m, D): penultimate-layer values of at most ``max_embeddings`` images and the
  Gaussian-kernel ``bandwidth`` for them (median heuristic).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write
from ..npz import NpzArchive, NpzError
from .embed import EmbeddingPlan
from .stats import median_bandwidth

PROFILE_VERSION = 1
_ARRAYS = ("input_stats", "class_counts", "confidence_edges", "confidence_counts",
           "embeddings")


def profile_path(model_path: Any) -> Path:
    """``model.cnnkit`` -> ``model.profile.npz`` beside it."""
    p = Path(model_path)
    return p.with_name(p.stem + ".profile.npz")


def image_stats(x: np.ndarray) -> np.ndarray:
    """(N, C, 2): per image and channel, mean and standard deviation over the pixels."""
    x = np.asarray(x, dtype=np.float64)
    axes = tuple(range(1, x.ndim - 1))
    return np.stack([x.mean(axis=axes), x.std(axis=axes)], axis=-1).astype(np.float32)


def probabilities(out: np.ndarray) -> np.ndarray:
    """The outputs as probabilities: kept if every row already sums to 1, else a softmax."""
    out = np.asarray(out, dtype=np.float64)
    # |sum - 1| <= 1e-3 written out: np.allclose costs ~15 us, once per served request
    if (out >= 0).all() and (np.abs(out.sum(-1) - 1.0) <= 1e-3).all():
        return out
    z = np.exp(out - out.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


@dataclass
class ReferenceProfile:
    """What :func:`build_profile` keeps (see the module docstring)."""

    input_stats: np.ndarray
    class_counts: np.ndarray
    confidence_edges: np.ndarray
    confidence_counts: np.ndarray
    embeddings: np.ndarray
    bandwidth: float
    meta: dict = field(default_factory=dict)

    def save(self, path: Any) -> None:
        """Write the profile atomically as an ``.npz`` of plain arrays."""
        meta = dict(self.meta, version=PROFILE_VERSION, bandwidth=float(self.bandwidth))
        arrays = {k: np.asarray(getattr(self, k)) for k in _ARRAYS}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        with atomic_write(path) as f:
            f.write(buf.getvalue())

    @classmethod
    def load(cls, path: Any) -> ReferenceProfile:
        """Read a saved profile; NpzError (a ValueError) for a damaged or foreign file."""
        with NpzArchive(path, max_ratio=200.0, max_bytes=1 << 28) as a:
            missing = [k for k in (*_ARRAYS, "meta") if k not in a.names()]
            if missing:
                raise NpzError(f"{path}: not a cnnkit reference profile (missing "
                               f"{', '.join(missing)})")
            arrays = {k: a.read(k) for k in _ARRAYS}
            raw = a.read("meta")
        try:
            meta = json.loads(raw.astype(np.uint8).tobytes().decode())
            bandwidth = float(meta["bandwidth"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise NpzError(f"{path}: damaged profile metadata ({e})") from None
        return cls(**arrays, bandwidth=bandwidth, meta=meta)


def _confidence_bins(conf: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.unique(np.quantile(conf, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = 0.0, 1.0 + 1e-9
    if len(edges) < 2:
        edges = np.array([0.0, 1.0 + 1e-9])
    counts, _ = np.histogram(conf, edges)
    return edges, counts


def build_profile(model: Any, images: np.ndarray, batch_size: int = 256, bins: int = 10,
                  max_stats: int = 2000, max_embeddings: int = 300, max_images: int = 10_000,
                  seed: int = 0) -> ReferenceProfile:
    """The reference profile of ``model`` on ``images`` (N, H, W, C) as it sees them (a
    random ``max_images`` of them at most, so the cost stays one short inference pass)."""
    x = np.asarray(images)
    if x.ndim < 3 or len(x) < 2:
        raise ValueError(f"build_profile: expected at least 2 images (N, H, W, C), got an "
                         f"array of shape {x.shape}")
    rng = np.random.default_rng(seed)
    if len(x) > max_images:
        x = x[np.sort(rng.permutation(len(x))[:max_images])]
    plan = EmbeddingPlan(model, batch_invariant=False)
    outs, embs = [], []
    for s in range(0, len(x), batch_size):
        y, e = plan(x[s:s + batch_size].astype(plan.dtype))
        outs.append(y)
        if e is not None:
            embs.append(e)
    probs = probabilities(np.concatenate(outs))
    conf = probs.max(-1)
    edges, counts = _confidence_bins(conf, bins)
    pick = rng.permutation(len(x))
    emb = np.concatenate(embs)[pick[:max_embeddings]].astype(np.float32) if embs else \
        np.zeros((0, 0), np.float32)
    return ReferenceProfile(
        input_stats=image_stats(x[np.sort(pick[:max_stats])]),
        class_counts=np.bincount(probs.argmax(-1), minlength=probs.shape[-1]),
        confidence_edges=edges, confidence_counts=counts, embeddings=emb,
        bandwidth=median_bandwidth(emb) if len(emb) > 1 else 1.0,
        meta={"model": getattr(model, "name", "model"), "images": int(len(x)),
              "input_shape": list(x.shape[1:])})
