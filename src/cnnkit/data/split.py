"""Splitting arrays into training and validation sets."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["train_val_split"]


def _class_ids(y: np.ndarray) -> np.ndarray:
    """Integer class of each sample: labels (N,) / (N, 1), or argmax of one-hot rows (N, K)."""
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    y = y.reshape(len(y))
    if not (np.issubdtype(y.dtype, np.integer) or np.all(y == np.round(y))):
        raise ValueError("train_val_split: stratify=True needs class labels (integers or "
                         "one-hot rows); pass stratify=False for continuous targets")
    return y


def train_val_split(x: Any, y: Any = None, val_fraction: float = 0.2, seed: int | None = None,
                    stratify: bool = True) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """((x_train, y_train), (x_val, y_val)) holding out round(val_fraction * N) samples.

    With ``stratify`` (and labels) each class gives the validation set its share
    val_fraction * N_c, rounded by largest remainder so the total is exact; both subsets come
    back in random order (seeded by ``seed``). ``y=None`` gives y_train = y_val = None.
    """
    x = np.asarray(x)
    n = len(x)
    if not 0 < val_fraction < 1:
        raise ValueError(f"train_val_split: val_fraction must be in (0, 1), got {val_fraction}")
    if y is not None:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"train_val_split: x has {n} samples but y has {len(y)}")
    n_val = int(round(val_fraction * n))
    if n_val == 0 or n_val == n:
        raise ValueError(f"train_val_split: val_fraction {val_fraction} of {n} samples leaves "
                         f"an empty {'validation' if n_val == 0 else 'training'} set")
    rng = np.random.default_rng(seed)
    if stratify and y is not None:
        ids = _class_ids(y)
        classes, inverse = np.unique(ids, return_inverse=True)
        counts = np.bincount(inverse, minlength=len(classes))
        share = counts * (n_val / n)
        take = np.floor(share).astype(np.int64)
        extra = n_val - take.sum()
        if extra:
            take[np.argsort(-(share - take), kind="stable")[:extra]] += 1
        # rank of each sample within its class under a random order; the first take[c] go to val
        order = rng.permutation(n)
        sorted_order = order[np.argsort(inverse[order], kind="stable")]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(n, dtype=np.int64)
        rank[sorted_order] = np.arange(n) - np.repeat(starts, counts)
        is_val = rank < take[inverse]
        val_idx = rng.permutation(np.flatnonzero(is_val))
        train_idx = rng.permutation(np.flatnonzero(~is_val))
    else:
        order = rng.permutation(n)
        val_idx, train_idx = order[:n_val], order[n_val:]
    pick = (lambda a, i: None if a is None else a[i])  # noqa: E731
    return (x[train_idx], pick(y, train_idx)), (x[val_idx], pick(y, val_idx))
