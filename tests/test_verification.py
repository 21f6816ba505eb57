"""cnnkit.verification: ROC/AUC against a brute-force count over all (same, different) pairs,
the threshold against a search over every cut, one-shot accuracy on embeddings whose answer is
known, the samplers' invariants, and short training runs of both losses."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import layers, verification
from cnnkit import random as crandom
from cnnkit.models import Sequential


def _brute_auc(scores, same):
    """P(score_same > score_diff) + 1/2 P(tie), counted over every pair."""
    pos, neg = scores[same == 1], scores[same == 0]
    wins = sum(float(p > n) + 0.5 * float(p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_vs_brute_force(seed):
    rng = np.random.default_rng(seed)
    same = rng.integers(0, 2, 120)
    scores = np.round(rng.standard_normal(120) + same, 1)  # rounding makes ties
    assert len(np.unique(scores)) < 120
    assert abs(verification.roc_auc(scores, same) - _brute_auc(scores, same)) < 1e-12
    fpr, tpr, thr = verification.roc_curve(scores, same)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and np.isinf(thr[0])
    for f, t, th in zip(fpr[1:], tpr[1:], thr[1:], strict=True):  # each point by counting
        assert t == np.mean(scores[same == 1] >= th) and f == np.mean(scores[same == 0] >= th)


def test_auc_extremes():
    same = np.array([0, 0, 1, 1])
    assert verification.roc_auc([0.1, 0.2, 0.8, 0.9], same) == 1.0
    assert verification.roc_auc([0.9, 0.8, 0.2, 0.1], same) == 0.0
    assert verification.roc_auc([0.5] * 4, same) == 0.5
    assert verification.auc([0, 0.5, 1], [0, 1, 1]) == 0.75


def test_best_threshold_vs_every_cut():
    rng = np.random.default_rng(3)
    same = rng.integers(0, 2, 200)
    d = np.round(np.abs(rng.standard_normal(200) + 1.5 * (1 - same)), 2)
    t, acc = verification.best_threshold(d, same)
    cuts = np.r_[d.min() - 1, np.unique(d)]
    best = max(np.mean((d <= c) == same) for c in cuts)
    assert abs(acc - best) < 1e-12
    assert abs(verification.pair_accuracy(d, same, t) - best) < 1e-12
    # calling no pair "same" is best here: the threshold lies below every distance
    assert verification.best_threshold([1.0, 2.0, 3.0], [0, 0, 1]) == (0.0, 2 / 3)


def test_one_shot_accuracy_known_answers():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 10)
    clustered = np.eye(6)[labels] * 10 + 0.01 * rng.standard_normal((60, 6))
    assert verification.one_shot_accuracy(clustered, labels, 5, 200, rng) == 1.0
    same_point = np.zeros((60, 3))  # all ties: argmin picks the first support
    acc = verification.one_shot_accuracy(same_point, labels, 4, 2000, rng)
    assert abs(acc - 1 / 4) < 0.04  # the target's position is uniform


def test_samplers():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(5), 7)
    i, j, same = verification.make_pairs(y, 301, rng)
    assert same.sum() == 150 and np.all((y[i] == y[j]) == same.astype(bool)) and np.all(i != j)
    for b in verification.pk_batches(y, 3, 4, rng):
        assert len(b) == 12 and len(np.unique(y[b])) == 3
        assert np.all(np.bincount(y[b])[np.unique(y[b])] == 4)


def test_errors():
    with pytest.raises(ValueError, match="both same"):
        verification.roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="one label per score"):
        verification.roc_curve([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="labels 0"):
        verification.roc_auc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="n_way"):
        verification.one_shot_accuracy(np.zeros((4, 2)), [0, 0, 1, 1], 3, 5,
                                       np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least 2 labels"):
        verification.make_pairs([1, 1, 1], 4, np.random.default_rng(0))


def _tower(seed):
    crandom.seed(seed)  # weight initialisation from cnnkit's global generator
    return Sequential([layers.Input((6,)), layers.Dense(8, activation="relu"),
                       layers.Dense(4)])


@pytest.mark.parametrize("loss", ["contrastive", "triplet", "cosine"])
@pytest.mark.parametrize("seed", [0, 1])
def test_training_separates_clusters(loss, seed):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), 30)
    centres = rng.standard_normal((4, 6))
    x = (centres[y] + 0.4 * rng.standard_normal((120, 6))).astype(np.float32)
    model = _tower(seed)
    i, j, same = verification.make_pairs(y, 400, np.random.default_rng(9))

    def auc():
        e = verification.embed(model, x)
        if loss == "cosine":  # it trains directions only
            e = e / np.linalg.norm(e, axis=1, keepdims=True)
        return verification.roc_auc(-np.linalg.norm(e[i] - e[j], axis=1), same)

    before = auc()
    if loss == "contrastive":
        hist = verification.fit_contrastive(model, x, y, epochs=10, pairs_per_epoch=256,
                                            batch_size=32, lr=1e-2, rng=rng)
    elif loss == "triplet":
        hist = verification.fit_triplet(model, x, y, epochs=20, p=4, k=6, lr=1e-2, rng=rng)
    else:
        hist = verification.fit_cosine_softmax(model, x, y, epochs=20, batch_size=16,
                                               lr=3e-2, rng=rng)
    assert hist[-1] < hist[0]
    assert auc() > max(before + 0.02, 0.95), (before, auc())
