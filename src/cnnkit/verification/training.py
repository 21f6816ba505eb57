"""Training loops for an embedding model (one tower, shared weights): pairs with the
contrastive loss, P-K batches with the batch-hard triplet loss, or plain batches with the
normalised-softmax (cosine-margin) loss; and embedding a data set.

``lr`` is a float or a schedule (a callable step -> rate, e.g. ``cnnkit.train.schedules.
CosineDecay``), as Adam takes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops
from ..autograd import Tensor, as_tensor, no_grad
from ..train.optimizers import Adam
from .pairs import make_pairs, pk_batches

__all__ = ["embed", "fit_contrastive", "fit_triplet", "fit_cosine_softmax",
           "cosine_softmax_loss"]


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


def _unit(t: Any, axis: int) -> Any:
    return t / ops.sqrt(ops.sum(ops.square(t), axis=axis, keepdims=True) + 1e-12)


def cosine_softmax_loss(embeddings: Any, weights: Any, labels: Any, scale: float = 16.0,
                        margin: float = 0.0) -> Any:
    """-mean_i log softmax_c(scale (cos(e_i, w_c) - margin [c = y_i]))_{y_i}: embeddings
    (N, D), class weights (D, C) (one column per class), labels in 0..C-1. The normalised
    softmax (NormFace) at ``margin=0``, CosFace's additive cosine margin otherwise."""
    y = np.asarray(labels).reshape(-1)
    cos = ops.matmul(_unit(as_tensor(embeddings), -1), _unit(as_tensor(weights), 0))
    if cos.shape[0] != y.size:
        raise ValueError(f"cosine_softmax_loss expects one label per row: {cos.shape[0]} "
                         f"rows, {y.size} labels")
    shift = np.zeros(cos.shape, dtype=cos.dtype)
    shift[np.arange(y.size), y] = margin
    return ops.softmax_cross_entropy((cos - shift) * scale, y)


def fit_cosine_softmax(model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int = 5,
                       batch_size: int = 64, scale: float = 16.0, margin: float = 0.0,
                       lr: Any = 2e-3, rng: np.random.Generator | None = None,
                       augment: Augment | None = None,
                       log: Callable[[str], None] | None = None) -> list[float]:
    """Adam on the normalised-softmax loss with an additive cosine margin (CosFace, Wang et
    al. 2018; ``margin=0``: NormFace): with unit embeddings e_i and unit class weights w_c
    (one learnt column per label 0..C-1, dropped after training),
    L = -mean_i log softmax_c(scale (cos(e_i, w_c) - margin [c = y_i]))_{y_i}.
    Returns the mean loss of each epoch (one pass over shuffled ``x``)."""
    rng = np.random.default_rng(0) if rng is None else rng
    labels = np.asarray(y).reshape(-1)
    if labels.size != len(x) or labels.min() < 0:
        raise ValueError(f"fit_cosine_softmax expects one label >= 0 per row: {len(x)} rows, "
                         f"{labels.size} labels (min {labels.min()})")
    n_classes = int(labels.max()) + 1
    dim = int(embed(model, x[:1]).shape[1])
    w = Tensor(0.1 * rng.standard_normal((dim, n_classes)).astype(np.float32),
               requires_grad=True)
    optimizer, history = Adam([*model.parameters(), w], lr=lr), []
    for epoch in range(epochs):
        order, losses = rng.permutation(len(x)), []
        for s in range(0, max(len(x) - batch_size + 1, 1), batch_size):  # full batches
            b = order[s:s + batch_size]
            losses.append(_step(model, optimizer, lambda e, b=b: cosine_softmax_loss(
                e, w, labels[b], scale, margin), x[b], augment, rng))
        history.append(float(np.mean(losses)))
        if log:
            log(f"epoch {epoch + 1}: cosine-softmax loss {history[-1]:.4f}")
    return history
