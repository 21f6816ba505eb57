"""StochasticWeightAverage and update_batch_norm against PyTorch's torch.optim.swa_utils
(AveragedModel fed the recorded epoch-end weights; update_bn on a twin batch-norm layer) and
the plain mean written out here."""

import numpy as np
import pytest

from cnnkit import layers
from cnnkit.models import Sequential
from cnnkit.train import losses as L
from cnnkit.train.callback_base import Callback
from cnnkit.train.callback_swa import StochasticWeightAverage, update_batch_norm

torch = pytest.importorskip("torch")


class _EpochEnds(Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append([w.data.copy() for w in self.model.weights])


def _model():
    m = Sequential([layers.Input((6,)), layers.Dense(5), layers.BatchNormalization(),
                    layers.ReLU(), layers.Dense(3)])
    m.compile(optimizer="adam", loss=L.SparseCategoricalCrossentropy(from_logits=True), seed=0)
    return m


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 6)).astype(np.float32), rng.integers(0, 3, 40)


@pytest.mark.parametrize("start", [0, 2, -2])
def test_average_matches_torch_averaged_model(start):
    x, y = _data()
    model, rec = _model(), _EpochEnds()
    swa = StochasticWeightAverage(start)
    model.fit(x, y, batch_size=8, epochs=4, verbose=0, shuffle=False, callbacks=[rec, swa])
    first = start if start >= 0 else 4 + start
    snaps = rec.seen[first:]
    assert swa.count == len(snaps) == 4 - first
    params = [torch.nn.Parameter(torch.zeros(w.shape, dtype=torch.float64))
              for w in snaps[0]]
    module = torch.nn.ParameterList(params)
    averaged = torch.optim.swa_utils.AveragedModel(module)
    for snap in snaps:
        with torch.no_grad():
            for p, w in zip(params, snap, strict=True):
                p.copy_(torch.from_numpy(w.astype(np.float64)))
        averaged.update_parameters(module)
    mean = [np.mean([s[i] for s in snaps], axis=0) for i in range(len(snaps[0]))]
    for got, ref, plain in zip(model.weights, averaged.module, mean, strict=True):
        np.testing.assert_allclose(got.data, ref.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.data, plain, rtol=1e-5, atol=1e-6)


def test_update_batch_norm_matches_torch_update_bn():
    rng = np.random.default_rng(1)
    batches = [(rng.normal(2.0, 3.0, size=(n, 4)).astype(np.float32), None) for n in (8, 5, 9)]
    bn = layers.BatchNormalization(momentum=0.9)
    model = Sequential([layers.Input((4,)), bn, layers.Dense(2)])
    model.compile(optimizer="sgd", loss=L.MeanSquaredError(), seed=0)
    assert update_batch_norm(model, batches) == 3
    assert bn.momentum == 0.9  # restored
    twin = torch.nn.Sequential(torch.nn.BatchNorm1d(4))
    loader = [torch.from_numpy(b[0]) for b in batches]
    torch.optim.swa_utils.update_bn(loader, twin)
    # torch keeps the unbiased batch variance; cnnkit's default layer the biased one
    biased = np.mean([b[0].var(0) for b in batches], axis=0)
    np.testing.assert_allclose(bn.moving_mean.data, twin[0].running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.data, biased, rtol=1e-5)
    unbiased = np.mean([b[0].var(0, ddof=1) for b in batches], axis=0)
    np.testing.assert_allclose(twin[0].running_var.numpy(), unbiased, rtol=1e-5)


def test_update_batch_norm_reaches_nested_models():
    rng = np.random.default_rng(2)
    batches = [rng.normal(-1.0, 2.0, size=(n, 4)).astype(np.float32) for n in (6, 7)]
    inner_bn = layers.BatchNormalization(momentum=0.5)
    inner = Sequential([layers.Input((4,)), inner_bn], name="inner")
    model = Sequential([layers.Input((4,)), inner, layers.Dense(2)])
    assert update_batch_norm(model, batches) == 2
    twin = torch.nn.Sequential(torch.nn.BatchNorm1d(4))
    torch.optim.swa_utils.update_bn([torch.from_numpy(b) for b in batches], twin)
    np.testing.assert_allclose(inner_bn.moving_mean.data, twin[0].running_mean.numpy(),
                               rtol=1e-5)
    np.testing.assert_allclose(inner_bn.moving_variance.data,
                               np.mean([b.var(0) for b in batches], axis=0), rtol=1e-5)
    assert inner_bn.momentum == 0.5


def test_bn_batches_recomputed_after_averaging():
    x, y = _data()
    model = _model()
    swa = StochasticWeightAverage(-2, bn_batches=[(x[:20], y[:20]), (x[20:], y[20:])])
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[swa])
    bn = model.layers[1]
    w, b = (v.data.astype(np.float64) for v in model.layers[0].weights)
    h = [x[:20] @ w + b, x[20:] @ w + b]  # the averaged Dense's output, the BN's input
    np.testing.assert_allclose(bn.moving_mean.data, np.mean([a.mean(0) for a in h], 0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.data, np.mean([a.var(0) for a in h], 0),
                               rtol=1e-4, atol=1e-5)


def test_cli_swa_option(tmp_path, capsys):
    import json

    from cnnkit.cli import main

    out_dir = tmp_path / "run"
    code = main(["train", "--model", "lenet5", "--epochs", "2", "--swa", "2", "--lr", "2e-3",
                 "--quiet", "--out", str(out_dir)])
    assert code == 0 and "SWA over the last 2 epochs" in capsys.readouterr().out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["recipe"]["swa"] == 2
    assert metrics["test_accuracy"] > 0.4  # two epochs of LeNet-5 on 4,000 digits; chance 0.1
