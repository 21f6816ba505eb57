"""Drift monitoring proved on real data: no alarm on held-out digits from the training
distribution (false-alarm rate over many windows near the chosen level), an alarm within
a stated number of requests on shifted data (Fashion-MNIST to a digits model, noisy,
inverted and rotated digits)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import shared_path
from serve_helpers import tiny_cnn

from cnnkit.datasets import mnist5k
from cnnkit.monitor import DriftConfig, DriftMonitor, EmbeddingPlan, build_profile

ALARM_WITHIN = 100  # requests of one image each, stated in the README
CHECK_EVERY = 10


@pytest.fixture(scope="module")
def trained():
    from cnnkit.train import losses, optimizers

    (xt, yt), (xv, yv) = mnist5k.load_data()
    xt = xt.reshape(-1, 28, 28, 1).astype(np.float32)
    xv = xv.reshape(-1, 28, 28, 1).astype(np.float32)
    model = tiny_cnn(seed=0, width=4)
    model.compile(optimizer=optimizers.Adam(learning_rate=3e-3),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], seed=0)
    model.fit(xt, yt, epochs=2, batch_size=64, verbose=0)
    acc = float((model.predict(xv).argmax(-1) == yv).mean())
    assert acc > 0.85, acc  # a real digits model
    return model, build_profile(model, xt), xv, acc


def _window_alarms(model, profile, x, seed):
    mon = DriftMonitor(profile, DriftConfig(window=len(x), min_samples=len(x)), seed=seed)
    y, emb = EmbeddingPlan(model)(x)
    mon.observe(x, y, emb)
    return mon.check()["alarms"]


def _false_alarms(trained, windows, size=100):
    model, profile, xv, _ = trained
    rng = np.random.default_rng(0)
    counts = {"psi_confidence": 0, "psi_classes": 0, "ks": 0, "mmd": 0, "any": 0}
    for w in range(windows):
        alarms = _window_alarms(model, profile, xv[rng.choice(len(xv), size, replace=False)], w)
        for a in alarms:
            counts[a] += 1
        counts["any"] += bool(alarms)
    return {k: v / windows for k, v in counts.items()}


def test_no_alarm_on_held_out_digits(trained):
    rates = _false_alarms(trained, 20)
    print(f"digits model test accuracy {trained[3]:.4f}")
    print(f"false-alarm rates over 20 windows of 100 held-out digits: {rates}")
    # levels: KS and MMD at alpha = 0.01; 20 windows allow one or two by chance
    assert rates["ks"] <= 0.1 and rates["mmd"] <= 0.1 and rates["any"] <= 0.2


@pytest.mark.slow
def test_false_alarm_rate_many_windows(trained):
    rates = _false_alarms(trained, 300)
    print(f"false-alarm rates over 300 windows of 100 held-out digits: {rates}")
    assert rates["ks"] <= 0.04 and rates["mmd"] <= 0.04 and rates["any"] <= 0.1


def _first_alarm(model, profile, stream):
    """Requests (one image each) until the monitor first alarms, checking every 10."""
    mon = DriftMonitor(profile, DriftConfig(window=200), seed=1)  # first check at 100
    plan = EmbeddingPlan(model)
    for i in range(len(stream)):
        x = stream[i:i + 1]
        y, emb = plan(x)
        mon.observe(x, y, emb)
        if (i + 1) % CHECK_EVERY == 0 and mon.check()["alarm"]:
            return i + 1, mon.last["alarms"]
    return None, mon.last.get("alarms")


def _shifted(kind, xv, rng):
    x = xv[rng.permutation(len(xv))[:ALARM_WITHIN]]
    if kind == "inverted":
        return 255.0 - x
    if kind == "noisy":
        return np.clip(x + rng.normal(0, 64, x.shape), 0, 255).astype(np.float32)
    if kind == "rotated":
        return np.ascontiguousarray(np.rot90(x, 1, axes=(1, 2)))
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["inverted", "noisy", "rotated"])
def test_alarm_on_shifted_digits(trained, kind):
    model, profile, xv, _ = trained
    at, alarms = _first_alarm(model, profile, _shifted(kind, xv, np.random.default_rng(3)))
    print(f"{kind} digits: first alarm after {at} requests ({alarms})")
    assert at is not None and at <= ALARM_WITHIN


def test_alarm_on_fashion_mnist(trained):
    from cnnkit.datasets import fashion_mnist

    folder = shared_path("datasets", "fashion-mnist")
    (_, _), (xf, _) = fashion_mnist.load_data(folder, download=False)
    x = xf[:ALARM_WITHIN].reshape(-1, 28, 28, 1).astype(np.float32)
    model, profile, _, _ = trained
    at, alarms = _first_alarm(model, profile, x)
    print(f"Fashion-MNIST to the digits model: first alarm after {at} requests ({alarms})")
    assert at is not None and at <= ALARM_WITHIN


def test_in_distribution_stream_does_not_alarm(trained):
    model, profile, xv, _ = trained
    x = xv[np.random.default_rng(4).permutation(len(xv))[:150]]
    at, alarms = _first_alarm(model, profile, x)
    assert at is None, alarms
