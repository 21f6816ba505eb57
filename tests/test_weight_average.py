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


def test_cli_ema_and_validation_scores_of_the_saved_model(tmp_path, capsys):
    """``--ema`` and ``--weight-decay`` reach the recipe; metrics.json's val_* figures are the
    saved model's accuracy on the held-out images, recomputed here with NumPy."""
    import json

    from cnnkit.cli import main
    from cnnkit.cli.checks import load_trained
    from cnnkit.cli.data import load_dataset, split_validation

    out = tmp_path / "run"
    assert main(["train", "--model", "simple_cnn", "--epochs", "1", "--quiet", "--augment",
                 "none", "--val-split", "0.25", "--ema", "0.9", "--weight-decay", "1e-4",
                 "--tta", "shift", "--seed", "3", "--out", str(out)]) == 0
    capsys.readouterr()
    m = json.loads((out / "metrics.json").read_text())
    assert m["recipe"]["ema"] == 0.9 and m["recipe"]["weight_decay"] == 1e-4
    (xt, yt), _, _ = load_dataset("mnist5k", None, None, False)
    _, (xv, yv) = split_validation(xt, yt, 0.25, 3)
    assert len(yv) == 1000
    model = load_trained(str(out / "model.cnnkit"))
    x = xv.astype(np.float32)
    logits = model.predict(x)
    assert m["val_accuracy"] == pytest.approx(float((logits.argmax(-1) == yv).mean()), abs=1e-9)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))  # the image and its 1-pixel shifts
    views = [padded[:, 1 + dy:29 + dy, 1 + dx:29 + dx] for dy, dx in
             ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))]
    z = np.stack([model.predict(v) for v in views]).astype(np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    p = (p / p.sum(-1, keepdims=True)).mean(0)
    assert m["val_accuracy_tta"] == pytest.approx(float((p.argmax(-1) == yv).mean()), abs=1e-9)
