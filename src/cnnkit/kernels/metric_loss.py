"""Metric-learning losses on embeddings (rows of (N, D) arrays), forward and backward.

Distances: d(x, y) = sqrt(sum_j (x_j - y_j)^2 + eps) (eps keeps the gradient finite for equal
rows), or with ``squared`` the plain sum of squares s(x, y) = sum_j (x_j - y_j)^2.

- contrastive (Hadsell, Chopra & LeCun 2006), y_i = 1 for a similar pair:
  L = 1/2 mean_i [ y_i d_i^2 + (1 - y_i) max(m - d_i, 0)^2 ]; d_i^2 is the exact sum of squares.
  dL/da_i = (1/N) [ y_i - (1 - y_i) max(m - d_i, 0) / d_i ] (a_i - b_i); dL/db_i = -dL/da_i.
- triplet margin (Schroff et al. 2015; PyTorch's ``triplet_margin_loss`` with p = 2):
  L = mean_i max(d(a_i, p_i) - d(a_i, n_i) + m, 0). With active_i = [loss_i > 0]:
  dL/dp_i = -(active_i / N) (a_i - p_i) / d_ap, dL/dn_i = (active_i / N) (a_i - n_i) / d_an,
  dL/da_i = -(dL/dp_i + dL/dn_i). Squared: replace (x - y) / d by 2 (x - y). Soft margin
  (Hermans et al.): max(g, 0) becomes softplus(g) = log(1 + e^g), and active_i sigmoid(g_i).
- batch-hard triplet (Hermans, Beyer & Leibe 2017): for each anchor i of a batch with labels y,
  p(i) = argmax_{j != i, y_j = y_i} d_ij, n(i) = argmin_{y_j != y_i} d_ij, then the triplet
  loss over the anchors that have both; the gradient scatters back onto rows i, p(i), n(i).
"""

from __future__ import annotations

import numpy as np


def _distance(x: np.ndarray, y: np.ndarray, squared: bool, eps: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """(distance per row, x - y)."""
    diff = x - y
    s = np.sum(diff * diff, axis=-1)
    return (s if squared else np.sqrt(s + eps)), diff


def _unit(diff: np.ndarray, d: np.ndarray, squared: bool) -> np.ndarray:
    """d distance / d x for each row: 2 (x - y) squared, (x - y) / d otherwise."""
    return 2 * diff if squared else diff / d[:, None]


def contrastive_forward(a: np.ndarray, b: np.ndarray, y: np.ndarray, margin: float,
                        eps: float) -> tuple[np.ndarray, tuple]:
    """1/2 mean_i [ y_i d_i^2 + (1 - y_i) max(m - d_i, 0)^2 ] (scalar), cache."""
    d, diff = _distance(a, b, False, eps)
    hinge = np.maximum(margin - d, 0)
    per = y * np.sum(diff * diff, axis=-1) + (1 - y) * hinge * hinge
    return np.asarray(0.5 * per.mean(), dtype=a.dtype), (diff, d, hinge, y)


def contrastive_backward(g: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(dL/da, dL/db) = +-(g / N) [ y - (1 - y) max(m - d, 0) / d ] (a - b)."""
    diff, d, hinge, y = cache
    coef = (y - (1 - y) * hinge / d) * (np.asarray(g) / len(d))
    ga = (coef[:, None] * diff).astype(diff.dtype, copy=False)
    return ga, -ga


def triplet_forward(a: np.ndarray, p: np.ndarray, n: np.ndarray, margin: float,
                    squared: bool, eps: float, soft: bool = False) -> tuple[np.ndarray, tuple]:
    """mean_i max(g_i, 0), or softplus(g_i) with ``soft``, g_i = d(a_i, p_i) - d(a_i, n_i) + m
    (scalar; 0 for no rows), cache."""
    d_ap, diff_ap = _distance(a, p, squared, eps)
    d_an, diff_an = _distance(a, n, squared, eps)
    gap = d_ap - d_an + margin
    if soft:
        per, active = np.logaddexp(0, gap), 0.5 * (1 + np.tanh(gap / 2))  # sigmoid, stably
    else:
        per, active = np.maximum(gap, 0), gap > 0
    value = per.mean() if len(per) else 0.0
    return np.asarray(value, dtype=a.dtype), (diff_ap, d_ap, diff_an, d_an, active, squared)


def triplet_backward(g: np.ndarray, cache: tuple
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dL/da, dL/dp, dL/dn) as in the module docstring."""
    diff_ap, d_ap, diff_an, d_an, active, squared = cache
    scale = (active * (np.asarray(g) / max(len(active), 1)))[:, None]
    gp = -scale * _unit(diff_ap, d_ap, squared)
    gn = scale * _unit(diff_an, d_an, squared)
    dt = diff_ap.dtype
    return (-(gp + gn)).astype(dt, copy=False), gp.astype(dt, copy=False), \
        gn.astype(dt, copy=False)


def hardest_triplets(e: np.ndarray, labels: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(anchor, hardest positive, hardest negative) row indices, for every anchor that has
    another row of its label and a row of another label."""
    sq = np.sum(e * e, axis=1)
    # squared distances rank rows as the distances do
    s = np.maximum(sq[:, None] + sq[None, :] - 2 * (e @ e.T), 0)
    same = labels[:, None] == labels[None, :]
    pos = same & ~np.eye(len(e), dtype=bool)
    valid = pos.any(axis=1) & (~same).any(axis=1)
    hardest_pos = np.where(pos, s, -np.inf).argmax(axis=1)
    hardest_neg = np.where(same, np.inf, s).argmin(axis=1)
    anchors = np.flatnonzero(valid)
    return anchors, hardest_pos[anchors], hardest_neg[anchors]


def batch_hard_forward(e: np.ndarray, labels: np.ndarray, margin: float, squared: bool,
                       eps: float, soft: bool = False) -> tuple[np.ndarray, tuple]:
    """Batch-hard triplet loss (scalar), cache (the chosen rows and the triplet cache)."""
    i, p, n = hardest_triplets(e, labels)
    value, cache = triplet_forward(e[i], e[p], e[n], margin, squared, eps, soft)
    return value, ((i, p, n), cache, e.shape)


def batch_hard_backward(g: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/de: the triplet gradients of each anchor, positive and negative row summed."""
    rows, tcache, shape = cache
    grads = triplet_backward(g, tcache)
    out = np.zeros(shape, dtype=grads[0].dtype)
    for idx, gr in zip(rows, grads, strict=True):
        np.add.at(out, idx, gr)
    return out
