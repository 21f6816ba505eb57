"""cnnkit.segmentation.predict: shift test-time augmentation and the background threshold,
against per-pixel loops written here."""

from __future__ import annotations

import numpy as np

from cnnkit.segmentation import masks_from_probabilities, predict_probabilities


class _PositionModel:
    """Logits that depend on the pixel and on its absolute position, so shifts matter."""

    def __init__(self, w):
        self.w = w

    def predict(self, x, batch_size=32):
        n, h, wd, _ = x.shape
        ramp = (np.arange(h)[:, None] * 0.3 + np.arange(wd)[None, :] * 0.1)[None, :, :, None]
        return x @ self.w + ramp * np.arange(self.w.shape[1])


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def _reflect(i, n):  # numpy's "reflect": d c b | a b c d | c b a
    return -i if i < 0 else (2 * (n - 1) - i if i >= n else i)


def test_predict_probabilities_averages_shifted_predictions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 7, 3)).astype(np.float32)
    model = _PositionModel(rng.normal(size=(3, 4)).astype(np.float32))
    shifts = [(0, 0), (1, 0), (0, -2), (-1, 1)]
    got = predict_probabilities(model, x, shifts=shifts)
    n, h, w, _ = x.shape
    want = np.zeros((n, h, w, 4))
    for dy, dx in shifts:
        moved = np.zeros_like(x)  # moved[i, j] = x[i - dy, j - dx], borders reflected
        for i in range(h):
            for j in range(w):
                moved[:, i, j] = x[:, _reflect(i - dy, h), _reflect(j - dx, w)]
        z = model.predict(moved)
        for b in range(n):
            for i in range(h):
                for j in range(w):  # back to the original frame, edges repeated
                    ii, jj = min(max(i + dy, 0), h - 1), min(max(j + dx, 0), w - 1)
                    want[b, i, j] += _softmax(z[b, ii, jj]) / len(shifts)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)


def test_masks_from_probabilities_threshold_and_argmax():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(5), size=(3, 4, 4))
    np.testing.assert_array_equal(masks_from_probabilities(p), p.argmax(-1))
    got = masks_from_probabilities(p, background_below=0.3)
    for idx in np.ndindex(p.shape[:3]):
        v = p[idx]
        assert got[idx] == (0 if v[0] >= 0.3 else 1 + int(np.argmax(v[1:])))
