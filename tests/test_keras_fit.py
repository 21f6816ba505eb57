"""The same model in cnnkit and Keras 3 (torch backend): same parameter counts, and after
compile/fit with the same weights, data order and optimizer, the same weights."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

from cnnkit import layers as L  # noqa: E402
from cnnkit import losses, models, optimizers  # noqa: E402


def _build(lib):
    """A small CNN with every kind of trainable and moving weight."""
    return lib.models.Sequential([
        lib.layers.Input((8, 8, 2)),
        lib.layers.Conv2D(4, 3, padding="same", activation="relu"),
        lib.layers.BatchNormalization(momentum=0.9),
        lib.layers.MaxPooling2D(),
        lib.layers.DepthwiseConv2D(3, padding="same"),
        lib.layers.Flatten(),
        lib.layers.Dense(6, activation="tanh"),
        lib.layers.Dense(3),
    ])


class _Cnnkit:
    models, layers = models, L


def _pair():
    ours, theirs = _build(_Cnnkit), _build(keras)
    rng = np.random.default_rng(0)
    theirs.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.3
                        if "variance" not in w.path else np.ones(w.shape, np.float32)
                        for w in theirs.weights])
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def _data():
    rng = np.random.default_rng(1)
    return rng.standard_normal((16, 8, 8, 2)).astype(np.float32), rng.integers(0, 3, 16)


def test_same_parameter_counts_and_outputs():
    ours, theirs = _pair()
    assert ours.count_params() == theirs.count_params()
    for a, b in zip(ours.layers, theirs.layers, strict=True):
        assert a.count_params() == b.count_params(), a.name
    x, _ = _data()
    want = keras.ops.convert_to_numpy(theirs(x, training=False))
    np.testing.assert_allclose(ours.predict(x, verbose=0), want, rtol=1e-4, atol=1e-5)


OPTIMIZERS = {
    "sgd_momentum": {"learning_rate": 0.05, "momentum": 0.9},
    "sgd_nesterov": {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    "adam": {"learning_rate": 0.01},
    "rmsprop": {"learning_rate": 0.005, "rho": 0.8},
    "rmsprop_momentum": {"learning_rate": 0.005, "momentum": 0.5},
    "adamw": {"learning_rate": 0.01, "weight_decay": 0.1},
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_fit_gives_the_same_weights_as_keras(name):
    ours, theirs = _pair()
    cls = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop", "adamw": "AdamW"}[
        name.split("_")[0]]
    kw = OPTIMIZERS[name]
    for model, opts, loss in ((ours, optimizers, losses),
                              (theirs, keras.optimizers, keras.losses)):
        model.compile(optimizer=getattr(opts, cls)(**kw),
                      loss=loss.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data()
    theirs.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b, w in zip(ours.get_weights(), theirs.get_weights(), theirs.weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=w.path)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "adagrad"])
def test_optimizer_by_name_gives_keras_weights(name):
    ours, theirs = _pair()
    for model, loss in ((ours, losses), (theirs, keras.losses)):
        model.compile(optimizer=name, loss=loss.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data()
    theirs.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b, w in zip(ours.get_weights(), theirs.get_weights(), theirs.weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=w.path)


def _totals(lines):
    """{'Total params': n, 'Trainable params': n, 'Non-trainable params': n} from a summary."""
    out = {}
    for line in "\n".join(lines).splitlines():
        for key in ("Total params", "Trainable params", "Non-trainable params"):
            if line.strip().startswith(key + ":"):
                out[key] = int(line.split(":")[1].split("(")[0].replace(",", "").strip())
    return out


def test_summary_totals_equal_keras():
    ours, theirs = _pair()
    lines_ours, lines_theirs = [], []
    ours.summary(print_fn=lambda s, **_: lines_ours.append(str(s)))
    theirs.summary(print_fn=lambda s, **_: lines_theirs.append(str(s)))
    want = _totals(lines_theirs)
    assert len(want) == 3
    assert _totals(lines_ours) == want
