"""Metric-learning losses on embedding Tensors (rows of (N, D)); the maths is in
``kernels.metric_loss``. Labels are constants: no gradient flows into them."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels import metric_loss as K
from ._core import Tensor, floating, record

__all__ = ["contrastive_loss", "triplet_margin_loss", "batch_hard_triplet_loss"]


def _rows(op: str, **named: Any) -> list[Tensor]:
    ts = [floating(v, name) for name, v in named.items()]
    for name, t in zip(named, ts, strict=True):
        if t.ndim != 2:
            raise ValueError(f"{op} expects {name} of shape (batch, dim), got shape {t.shape}")
    if len({t.shape for t in ts}) != 1:
        shapes = ", ".join(f"{n} {t.shape}" for n, t in zip(named, ts, strict=True))
        raise ValueError(f"{op} expects embeddings of one shape, got {shapes}")
    if len({t.dtype for t in ts}) != 1:
        raise TypeError(f"{op} expects embeddings of one dtype, got "
                        f"{[str(t.dtype) for t in ts]}")
    return ts


def _labels(op: str, labels: Any, n: int, unit: str) -> np.ndarray:
    lab = np.asarray(labels.data if isinstance(labels, Tensor) else labels).reshape(-1)
    if lab.shape[0] != n:
        raise ValueError(f"{op} expects one label per {unit}: {n} {unit}s, got "
                         f"{lab.shape[0]} labels")
    return lab


def _margin(op: str, margin: float) -> float:
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"{op}: margin must be a finite number >= 0, got {margin}")
    return float(margin)


def contrastive_loss(y_same: Any, a: Any, b: Any, margin: float = 1.0,
                     epsilon: float = 1e-12) -> Tensor:
    """1/2 mean_i [ y_i d_i^2 + (1 - y_i) max(margin - d_i, 0)^2 ], d_i = ||a_i - b_i||,
    y_i = 1 for a similar pair and 0 for a dissimilar one (Hadsell et al. 2006)."""
    op = "contrastive_loss"
    a, b = _rows(op, a=a, b=b)
    y = _labels(op, y_same, a.shape[0], "pair")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"{op} expects y_same of 0 (dissimilar) and 1 (similar), got values "
                         f"{np.unique(y)[:5]}")
    value, cache = K.contrastive_forward(a.data, b.data, y.astype(a.dtype), _margin(op, margin),
                                         epsilon)
    return record(value, (a, b), lambda g: K.contrastive_backward(g, cache), op)


def triplet_margin_loss(anchor: Any, positive: Any, negative: Any, margin: float = 1.0,
                        squared: bool = False, epsilon: float = 1e-12,
                        soft: bool = False) -> Tensor:
    """mean_i max(d(a_i, p_i) - d(a_i, n_i) + margin, 0) with the Euclidean distance
    (PyTorch's ``triplet_margin_loss``), or its square with ``squared`` (FaceNet); ``soft``
    takes softplus(.) = log(1 + exp(.)) for max(., 0) (Hermans et al.'s soft margin)."""
    op = "triplet_margin_loss"
    a, p, n = _rows(op, anchor=anchor, positive=positive, negative=negative)
    value, cache = K.triplet_forward(a.data, p.data, n.data, _margin(op, margin), bool(squared),
                                     epsilon, bool(soft))
    return record(value, (a, p, n), lambda g: K.triplet_backward(g, cache), op)


def batch_hard_triplet_loss(embeddings: Any, labels: Any, margin: float = 1.0,
                            squared: bool = False, epsilon: float = 1e-12,
                            soft: bool = False) -> Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017): each anchor with its farthest positive
    and nearest negative in the batch, mean_i max(d(a_i, p_i) - d(a_i, n_i) + margin, 0);
    anchors lacking a positive or a negative are left out (0 when none remain); ``soft`` as
    in :func:`triplet_margin_loss`."""
    op = "batch_hard_triplet_loss"
    (e,) = _rows(op, embeddings=embeddings)
    lab = _labels(op, labels, e.shape[0], "row")
    value, cache = K.batch_hard_forward(e.data, lab, _margin(op, margin), bool(squared),
                                        epsilon, bool(soft))
    return record(value, (e,), lambda g: (K.batch_hard_backward(g, cache),), op)
