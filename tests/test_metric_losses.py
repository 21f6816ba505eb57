"""Metric-learning losses (kernels.metric_loss via cnnkit.ops) against PyTorch: the triplet
margin loss against torch.nn.functional.triplet_margin_loss, the contrastive loss and the
squared triplet form against formulas written here in torch, batch-hard mining against a
brute-force loop feeding PyTorch's loss; forward and gradients, plus finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_vs_torch, gradcheck, torch_or_skip

from cnnkit import ops


def _rows(seed, n=9, d=5, k=3):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, d)).astype(np.float32) for _ in range(k)]


def test_contrastive_vs_torch_formula():
    torch = torch_or_skip()
    a, b = _rows(0, k=2)
    b[0] = a[0] + 0.01
    y = np.array([1, 0, 1, 0, 0, 1, 0, 1, 0], dtype=np.float32)
    m = 3.0

    def theirs(p, q):
        d = torch.sqrt(((p - q) ** 2).sum(1))
        yt = torch.tensor(y)
        return 0.5 * (yt * d ** 2 + (1 - yt) * torch.clamp(m - d, min=0) ** 2).mean()

    d = np.sqrt(((a - b) ** 2).sum(1))
    assert np.any((d < m) & (y == 0)) and np.any((d > m) & (y == 0))  # both hinge sides
    check_vs_torch(lambda p, q: ops.contrastive_loss(y, p, q, margin=m), theirs, a, b,
                   grad_out=np.float32(1.3), what="contrastive")
    gradcheck(lambda p, q: ops.contrastive_loss(y, p, q, margin=m), a, b)


@pytest.mark.parametrize("margin", [0.1, 0.5, 2.0])
def test_triplet_margin_vs_torch(margin):
    torch = torch_or_skip()
    a, p, n = _rows(1)
    check_vs_torch(lambda x, y, z: ops.triplet_margin_loss(x, y, z, margin=margin),
                   lambda x, y, z: torch.nn.functional.triplet_margin_loss(
                       x, y, z, margin=margin, p=2, eps=0.0),
                   a, p, n, grad_out=np.float32(0.7), what="triplet_margin_loss")
    gradcheck(lambda x, y, z: ops.triplet_margin_loss(x, y, z, margin=margin), a, p, n)


def test_triplet_squared_vs_torch_formula():
    torch = torch_or_skip()
    a, p, n = _rows(2)

    def theirs(x, y, z):
        gap = ((x - y) ** 2).sum(1) - ((x - z) ** 2).sum(1) + 0.5
        return torch.clamp(gap, min=0).mean()

    check_vs_torch(lambda x, y, z: ops.triplet_margin_loss(x, y, z, margin=0.5, squared=True),
                   theirs, a, p, n, grad_out=np.float32(1.0), what="squared triplet")


def _mine_brute_force(e, labels):
    """For each anchor: the farthest same-label row and the nearest other-label row."""
    anchors, pos, neg = [], [], []
    for i in range(len(e)):
        same = [j for j in range(len(e)) if j != i and labels[j] == labels[i]]
        other = [j for j in range(len(e)) if labels[j] != labels[i]]
        if not same or not other:
            continue
        dist = [float(np.linalg.norm(e[i].astype(np.float64) - e[j])) for j in range(len(e))]
        anchors.append(i)
        pos.append(max(same, key=lambda j: dist[j]))
        neg.append(min(other, key=lambda j: dist[j]))
    return anchors, pos, neg


def test_soft_margin_vs_torch_softplus():
    torch = torch_or_skip()
    a, p, n = _rows(5)

    def theirs(x, y, z):
        d_ap = torch.sqrt(((x - y) ** 2).sum(1))
        d_an = torch.sqrt(((x - z) ** 2).sum(1))
        return torch.nn.functional.softplus(d_ap - d_an + 0.2).mean()

    check_vs_torch(lambda x, y, z: ops.triplet_margin_loss(x, y, z, margin=0.2, soft=True),
                   theirs, a, p, n, grad_out=np.float32(1.0), what="soft-margin triplet")
    gradcheck(lambda x, y, z: ops.triplet_margin_loss(x, y, z, margin=0.2, soft=True), a, p, n)


@pytest.mark.parametrize("squared", [False, True])
def test_batch_hard_vs_brute_force_and_torch(squared):
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    e = rng.standard_normal((14, 4)).astype(np.float32)
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3, 4, 0])  # label 4: a lone row
    i, p, n = _mine_brute_force(e, labels)
    assert 12 not in i and len(i) == 13

    def theirs(x):
        xa, xp, xn = x[i], x[p], x[n]
        if squared:
            gap = ((xa - xp) ** 2).sum(1) - ((xa - xn) ** 2).sum(1) + 0.8
            return torch.clamp(gap, min=0).mean()
        return torch.nn.functional.triplet_margin_loss(xa, xp, xn, margin=0.8, eps=0.0)

    check_vs_torch(lambda x: ops.batch_hard_triplet_loss(x, labels, margin=0.8,
                                                         squared=squared),
                   theirs, e, grad_out=np.float32(1.0), what="batch-hard")
    gradcheck(lambda x: ops.batch_hard_triplet_loss(x, labels, margin=0.8, squared=squared),
              e, tol=1e-5)


def test_batch_hard_without_valid_anchor_is_zero():
    e = np.ones((3, 2), np.float32)
    assert float(ops.batch_hard_triplet_loss(e, [0, 1, 2]).data) == 0.0
    assert float(ops.batch_hard_triplet_loss(e, [5, 5, 5]).data) == 0.0


def test_metric_loss_errors():
    a, b = _rows(4, k=2)
    with pytest.raises(ValueError, match="one label per pair"):
        ops.contrastive_loss([1, 0], a, b)
    with pytest.raises(ValueError, match="0 .dissimilar. and 1"):
        ops.contrastive_loss(np.full(9, 2), a, b)
    with pytest.raises(ValueError, match=r"shape \(batch, dim\)"):
        ops.triplet_margin_loss(a[0], b[0], b[0])
    with pytest.raises(ValueError, match="one shape"):
        ops.triplet_margin_loss(a, b, b[:3])
    with pytest.raises(ValueError, match="margin"):
        ops.triplet_margin_loss(a, b, b, margin=-1)
    with pytest.raises(ValueError, match="one label per row"):
        ops.batch_hard_triplet_loss(a, [0, 1])
