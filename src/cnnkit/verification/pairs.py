"""Pairs and one-shot tasks drawn from labelled rows, seeded by a ``numpy.random.Generator``."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["make_pairs", "one_shot_accuracy", "pk_batches"]


def _labels(labels: Any, op: str) -> np.ndarray:
    y = np.asarray(labels).reshape(-1)
    if y.size == 0:
        raise ValueError(f"{op} expects labels, got an empty array")
    return y


def make_pairs(labels: Any, n_pairs: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, same): ``n_pairs`` index pairs, half of one label (i != j), half of two labels."""
    y = _labels(labels, "make_pairs")
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(f"make_pairs needs at least 2 labels, got {classes.size}")
    by_class = {c: np.flatnonzero(y == c) for c in classes}
    if any(len(ix) < 2 for ix in by_class.values()):
        raise ValueError("make_pairs needs at least 2 rows of every label")
    n_same = n_pairs // 2
    c = rng.choice(classes, n_same)
    first = np.array([rng.choice(by_class[k], 2, replace=False) for k in c]).reshape(-1, 2)
    i_diff = rng.integers(0, y.size, n_pairs - n_same)
    j_diff = rng.integers(0, y.size, i_diff.size)
    while np.any(clash := y[i_diff] == y[j_diff]):  # redraw until the labels differ
        j_diff[clash] = rng.integers(0, y.size, int(clash.sum()))
    i = np.r_[first[:, 0], i_diff]
    j = np.r_[first[:, 1], j_diff]
    same = np.r_[np.ones(n_same, np.int64), np.zeros(n_pairs - n_same, np.int64)]
    order = rng.permutation(n_pairs)
    return i[order], j[order], same[order]


def one_shot_accuracy(embeddings: Any, labels: Any, n_way: int, trials: int,
                      rng: np.random.Generator) -> float:
    """N-way one-shot accuracy: per trial, ``n_way`` labels, one support row of each and one
    query row (another row of one of them); correct when the nearest support (Euclidean) has
    the query's label."""
    e = np.asarray(embeddings, dtype=np.float64)
    y = _labels(labels, "one_shot_accuracy")
    if e.ndim != 2 or e.shape[0] != y.size:
        raise ValueError(f"one_shot_accuracy expects embeddings (N, D) with N = {y.size} "
                         f"labels, got shape {e.shape}")
    classes = np.unique(y)
    if not 2 <= n_way <= classes.size:
        raise ValueError(f"one_shot_accuracy: n_way must lie in [2, {classes.size}] (the "
                         f"labels present), got {n_way}")
    by_class = {c: np.flatnonzero(y == c) for c in classes}
    hits = 0
    for _ in range(trials):
        ways = rng.choice(classes, n_way, replace=False)
        target = rng.integers(n_way)
        support = [rng.choice(by_class[c]) for c in ways]
        query = rng.choice(by_class[ways[target]][by_class[ways[target]] != support[target]])
        d = np.sum((e[support] - e[query]) ** 2, axis=1)
        hits += int(np.argmin(d) == target)
    return hits / trials


def pk_batches(labels: Any, p: int, k: int, rng: np.random.Generator):
    """Yield index batches of ``p`` labels x ``k`` rows each (the P-K sampling batch-hard
    mining needs), one pass over a shuffled order of the rows."""
    y = _labels(labels, "pk_batches")
    classes = np.unique(y)
    if p > classes.size:
        raise ValueError(f"pk_batches: p = {p} exceeds the {classes.size} labels present")
    for _ in range(max(y.size // (p * k), 1)):
        ways = rng.choice(classes, p, replace=False)
        yield np.concatenate([rng.choice(np.flatnonzero(y == c), k,
                                         replace=bool((y == c).sum() < k)) for c in ways])
