"""WeightAverage: the final weights are the exponential moving average of the weights seen
after each training batch, recomputed here from a recording of them."""

import numpy as np
import pytest

from cnnkit import layers
from cnnkit.models import Sequential
from cnnkit.train import losses as L
from cnnkit.train.callback_average import WeightAverage
from cnnkit.train.callback_base import Callback


class _Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.seen = []  # (epoch, weights after each batch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append((self.epoch, [w.data.copy() for w in self.model.weights]))


def _model():
    m = Sequential([layers.Input((6,)), layers.Dense(5), layers.BatchNormalization(),
                    layers.ReLU(), layers.Dense(3)])
    m.compile(optimizer="adam", loss=L.SparseCategoricalCrossentropy(from_logits=True), seed=0)
    return m


@pytest.mark.parametrize("decay, start", [(0.9, 0), (0.5, -2), (0.0, 1), (0.99, 1)])
def test_final_weights_are_the_moving_average(decay, start):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)).astype(np.float32), rng.integers(0, 3, 40)
    model, rec = _model(), _Recorder()
    before = [w.data.copy() for w in model.weights]
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False,
              callbacks=[rec, WeightAverage(decay, start)])
    first = start if start >= 0 else 3 + start
    prev = before if first == 0 else [s for e, s in rec.seen if e == first - 1][-1]
    avg = [p.astype(np.float64) for p in prev]  # the weights when the first epoch averaged began
    for t, (_, ws) in enumerate((s for s in rec.seen if s[0] >= first), 1):
        d = min(decay, (1 + t) / (10 + t))
        avg = [a + (1 - d) * (w - a) for a, w in zip(avg, ws, strict=True)]
    got = [w.data for w in model.weights]
    assert len(got) == 8  # two dense (kernel, bias), BN (gamma, beta, moving mean, variance)
    for g, a in zip(got, avg, strict=True):
        np.testing.assert_allclose(g, a, rtol=1e-5, atol=1e-6)
    assert not all(np.allclose(g, w) for g, w in zip(got, rec.seen[-1][1], strict=True)) \
        or decay == 0.0


def test_decay_out_of_range():
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(1.0)
