"""Training loops for an embedding model (one tower, shared weights): pairs with the
contrastive loss, or P-K batches with the batch-hard triplet loss; and embedding a data set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops
from ..autograd import no_grad
from ..train.optimizers import Adam
from .pairs import make_pairs, pk_batches

__all__ = ["embed", "fit_contrastive", "fit_triplet"]


def embed(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's embeddings of ``x``, in batches, without recording gradients."""
    with no_grad():
        return np.concatenate([np.asarray(model(x[s:s + batch_size]).data)
                               for s in range(0, len(x), batch_size)])


Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _step(model: Any, optimizer: Any, loss_fn: Callable[[Any], Any], xb: np.ndarray,
          augment: Augment | None, rng: np.random.Generator) -> float:
    if augment is not None:
        xb = augment(xb, rng)
    optimizer.zero_grad()
    loss = loss_fn(model(xb, training=True))
    loss.backward()
    optimizer.step()
    return float(loss.data)


def fit_contrastive(model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int = 5,
                    pairs_per_epoch: int = 4096, batch_size: int = 64, margin: float = 1.0,
                    lr: float = 1e-3, rng: np.random.Generator | None = None,
                    augment: Augment | None = None,
                    log: Callable[[str], None] | None = None) -> list[float]:
    """Adam on the contrastive loss over fresh balanced pairs each epoch; returns the mean
    loss of each epoch. Each batch embeds its 2B images in one forward pass, after
    ``augment(batch, rng)`` when given."""
    rng = np.random.default_rng(0) if rng is None else rng
    optimizer, history = Adam(model.parameters(), lr=lr), []
    for epoch in range(epochs):
        i, j, same = make_pairs(y, pairs_per_epoch, rng)
        losses = []
        for s in range(0, len(i), batch_size):
            bi, bj, bs = i[s:s + batch_size], j[s:s + batch_size], same[s:s + batch_size]
            n = len(bi)
            losses.append(_step(model, optimizer, lambda e, n=n, bs=bs: ops.contrastive_loss(
                bs, e[:n], e[n:], margin=margin), np.concatenate([x[bi], x[bj]]), augment, rng))
        history.append(float(np.mean(losses)))
        if log:
            log(f"epoch {epoch + 1}: contrastive loss {history[-1]:.4f}")
    return history


def fit_triplet(model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int = 5, p: int = 5,
                k: int = 8, margin: float = 0.5, lr: float = 1e-3,
                rng: np.random.Generator | None = None, augment: Augment | None = None,
                soft: bool = False, log: Callable[[str], None] | None = None) -> list[float]:
    """Adam on the batch-hard triplet loss (``soft``: with the soft margin) over P-K batches
    (p labels x k rows, after ``augment(batch, rng)`` when given); returns the mean loss of
    each epoch (an epoch is about len(x) rows)."""
    rng = np.random.default_rng(0) if rng is None else rng
    optimizer, history = Adam(model.parameters(), lr=lr), []
    for epoch in range(epochs):
        losses = [_step(model, optimizer, lambda e, b=b: ops.batch_hard_triplet_loss(
            e, y[b], margin=margin, soft=soft), x[b], augment, rng)
            for b in pk_batches(y, p, k, rng)]
        history.append(float(np.mean(losses)))
        if log:
            log(f"epoch {epoch + 1}: batch-hard triplet loss {history[-1]:.4f}")
    return history
