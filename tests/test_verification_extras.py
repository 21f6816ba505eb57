"""cnnkit.verification's cosine-softmax loss (value and gradients against PyTorch), the
within-class whitening (against covariances computed here), and the synthetic stroke glyphs
(pixels against a brute-force distance to the curve, classes against their spread)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import verification
from cnnkit.autograd import Tensor
from cnnkit.verification import synthetic as glyphs


@pytest.mark.parametrize("margin", [0.0, 0.35])
def test_cosine_softmax_loss_vs_torch(margin):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    e = rng.standard_normal((7, 5))
    w = rng.standard_normal((5, 4))
    y = rng.integers(0, 4, 7)
    te, tw = Tensor(e, requires_grad=True), Tensor(w, requires_grad=True)
    loss = verification.cosine_softmax_loss(te, tw, y, scale=10.0, margin=margin)
    loss.backward()
    re = torch.tensor(e, requires_grad=True)
    rw = torch.tensor(w, requires_grad=True)
    cos = F.normalize(re, dim=1) @ F.normalize(rw, dim=0)
    ref = F.cross_entropy(10.0 * (cos - margin * F.one_hot(torch.tensor(y), 4).double()),
                          torch.tensor(y))
    ref.backward()
    assert abs(float(loss.data) - ref.item()) < 1e-9
    np.testing.assert_allclose(te.grad, re.grad.numpy(), atol=1e-9)
    np.testing.assert_allclose(tw.grad, rw.grad.numpy(), atol=1e-9)


def _within_cov(z, y):
    return sum(np.cov(z[y == c], rowvar=False) for c in np.unique(y)) / len(np.unique(y))


def test_whitening_makes_within_class_covariance_identity():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 50)
    mix = rng.standard_normal((6, 6))
    e = rng.standard_normal((200, 6)) @ mix + 3 * rng.standard_normal((4, 6))[y]
    wh = verification.WithinClassWhitening(shrink=0.0, normalize=False).fit(e, y)
    z = wh.transform(e)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(_within_cov(z, y), np.eye(6), atol=1e-9)
    # shrink s: eigenvalues lambda of S_w become lambda / (lambda + s trace(S_w) / D)
    lam = np.linalg.eigvalsh(_within_cov(e, y))
    s = 0.5 * lam.sum() / 6
    z = verification.WithinClassWhitening(shrink=0.5, normalize=False).fit(e, y).transform(e)
    np.testing.assert_allclose(np.linalg.eigvalsh(_within_cov(z, y)), lam / (lam + s),
                               atol=1e-9)
    unit = verification.WithinClassWhitening().fit(e, y).transform(e[:5])
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1, atol=1e-12)


def test_whitening_errors():
    wh = verification.WithinClassWhitening()
    with pytest.raises(ValueError, match="before fit"):
        wh.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        wh.fit(np.zeros((3, 2)), [0, 0, 1])
    with pytest.raises(ValueError, match="singular"):
        verification.WithinClassWhitening(shrink=0).fit(np.zeros((4, 2)), [0, 0, 1, 1])
    wh.fit(np.random.default_rng(0).standard_normal((6, 3)), [0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        wh.transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="shrink"):
        verification.WithinClassWhitening(shrink=-1)


def test_glyph_pixels_are_the_pen_on_the_curve():
    pts = np.array([[[3.0, 4.0], [10.0, 12.5], [20.0, 6.0]]], np.float32)
    img = glyphs._draw(pts, np.array([0.7], np.float32), 28)[0]
    for r in range(28):
        for c in range(28):
            d = min(np.hypot(r - p[0], c - p[1]) for p in pts[0])
            assert abs(img[r, c] - np.clip(1.7 - d, 0, 1)) < 1e-5


def test_glyph_classes():
    x, y = glyphs.stroke_glyphs(12, 6, np.random.default_rng(3))
    assert x.shape == (72, 28, 28, 1) and x.dtype == np.float32 and y.tolist() == sorted(y)
    assert x.min() == 0 and x.max() == 1 and np.bincount(y).tolist() == [6] * 12
    x2, _ = glyphs.stroke_glyphs(12, 6, np.random.default_rng(3))
    assert np.array_equal(x, x2)
    ink = (x[..., 0] > 0.5)
    rows, cols = np.nonzero(ink.any(2)), np.nonzero(ink.any(1))
    assert len(rows[0]) and len(cols[0])  # every glyph is centred in the frame
    centre = np.array([(np.flatnonzero(m.any(1)).mean(), np.flatnonzero(m.any(0)).mean())
                       for m in ink])
    assert np.all(np.abs(centre - 13.5) < 6)
    # instances of one class are nearer each other than to other classes, on average
    flat = x.reshape(72, -1)
    d = np.linalg.norm(flat[:, None] - flat[None], axis=-1)
    same = y[:, None] == y[None]
    assert d[same & ~np.eye(72, dtype=bool)].mean() < 0.8 * d[~same].mean()
    with pytest.raises(ValueError, match="n_classes"):
        glyphs.stroke_glyphs(0, 3, np.random.default_rng(0))


def test_conv_bn_backbone_parameter_count():
    from cnnkit.zoo.siamese import conv_bn_backbone, embedding_tower

    w = 8
    tower = embedding_tower((28, 28, 1), embedding_dim=16, backbone=conv_bn_backbone(w))
    convs = 9 * (1 * w + w * 2 * w + 2 * w * 4 * w)  # 3x3 kernels, no bias
    bn = 4 * (w + 2 * w + 4 * w)  # gamma, beta, moving mean and variance
    dense = 4 * w * 16 + 16
    assert tower.count_params() == convs + bn + dense
    assert verification.embed(tower, np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 16)
    with pytest.raises(ValueError, match="width"):
        conv_bn_backbone(0)


def test_chimera_classes_join_halves_in_the_documented_order():
    labels = np.array([0, 0, 1, 1, 2, 2])
    x = np.broadcast_to(labels[:, None, None, None], (6, 4, 4, 1)).astype(np.float32)
    cx, cy = verification.chimera_classes(x, labels, 3, np.random.default_rng(0))
    order = [(axis, a, b, k) for axis in (1, 2) for a in range(3) for b in range(3) if a != b
             for k in range(4)]
    assert cx.shape == (len(order) * 3, 4, 4, 1) and np.bincount(cy).tolist() == [3] * 48
    for c, (axis, a, b, k) in enumerate(order):
        for im in cx[cy == c]:
            back = np.rot90(im, -k, axes=(0, 1))[..., 0]
            first, second = (back[:2], back[2:]) if axis == 1 else (back[:, :2], back[:, 2:])
            assert np.all(first == a) and np.all(second == b), (c, axis, a, b, k)
    with pytest.raises(ValueError, match="2 labels"):
        verification.chimera_classes(x[:2], labels[:2], 3, np.random.default_rng(0))


class _Linear:
    """A stand-in embedding model: e = flatten(x) W."""

    def __init__(self, w):
        self.w = w

    def __call__(self, x):
        return Tensor(np.asarray(x, np.float64).reshape(len(x), -1) @ self.w)


def _shifted(x, dx, dy):
    """out[i, j] = x[i - dy, j - dx], zero outside (integer shifts)."""
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def test_embed_tta_against_shifts_and_turns_made_here():
    rng = np.random.default_rng(0)
    x = rng.random((5, 6, 6, 1)).astype(np.float32)
    model = _Linear(rng.standard_normal((36, 4)))
    views = [(0, 0, 0), (0, 1, 0), (0, -2, 0), (0, 0, 1), (0, 1, -1), (90, 0, 0)]
    images = [_shifted(x, dx, dy) for _, dx, dy in views[:-1]] + [np.rot90(x, 1, axes=(1, 2))]
    e = [model(im).data for im in images]
    m = sum(v / np.linalg.norm(v, axis=1, keepdims=True) for v in e)
    want = m / np.linalg.norm(m, axis=1, keepdims=True)
    np.testing.assert_allclose(verification.embed_tta(model, x, views, batch_size=2), want,
                               atol=1e-5)
    plain = model(x).data
    np.testing.assert_allclose(verification.embed_tta(model, x, [(0, 0, 0)]),
                               plain / np.linalg.norm(plain, axis=1, keepdims=True), atol=1e-6)
    assert len(verification.tta_views()) == 5 and len(verification.tta_views(1, 5)) == 7
    with pytest.raises(ValueError, match="triples"):
        verification.embed_tta(model, x, [(0, 1)])
