"""Lambda (usable in memory, saving refused), model.input / model.output / layer.output, and
Embedding(mask_zero)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cnnkit import layers, ops
from cnnkit.models import Model, Sequential

rng = np.random.default_rng(3)


def test_lambda_computes_and_trains():
    x = rng.standard_normal((6, 4)).astype(np.float32)
    m = Sequential([layers.Dense(3, input_shape=(4,)), layers.Lambda(lambda t: t * 2.0 + 1.0),
                    layers.Dense(1)])
    d1 = m.layers[0]
    ref = (x @ d1.kernel.data + d1.bias.data) * 2 + 1  # the function written out by hand
    np.testing.assert_allclose(m.layers[1](m.layers[0](x)).data, ref, rtol=1e-5)
    m.compile("sgd", "mse")
    before = d1.kernel.data.copy()
    m.fit(x, np.ones((6, 1), np.float32), epochs=1, verbose=0)
    assert not np.allclose(before, d1.kernel.data)  # gradients flow through the Lambda


def test_lambda_output_shape_inferred_and_given():
    i = layers.Input((5, 4))
    o = layers.Lambda(lambda t: ops.sum(t, axis=1))(i)
    assert o.shape == (None, 4)
    o2 = layers.Lambda(lambda t: t, output_shape=(5, 4))(i)
    assert o2.shape == (None, 5, 4)
    o3 = layers.Lambda(lambda t, k: t * k, arguments={"k": 3.0})(i)
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(Model(i, o3).predict(x, verbose=0), 3 * x, rtol=1e-6)


def test_lambda_saving_refused_and_nothing_written(tmp_path):
    i = layers.Input((3,))
    m = Model(i, layers.Lambda(lambda t: t + 1, name="plus_one")(i))
    path = tmp_path / "m.cnnkit"
    with pytest.raises(ValueError, match="Lambda layer 'plus_one' cannot be saved.*running code"):
        m.save(path)
    assert list(tmp_path.iterdir()) == []


def test_model_input_output_and_layer_output():
    a, b = layers.Input((4,)), layers.Input((2,))
    d = layers.Dense(3)
    h = d(a)
    cat = layers.Concatenate()([h, b])
    m = Model([a, b], cat)
    assert m.input == [a, b] and m.output is cat
    assert d.output is h and d.input is a
    single = Model(a, h)
    assert single.input is a and single.output is h
    # Keras' feature-extractor idiom: a model ending at an inner layer's output
    x = rng.standard_normal((2, 4)).astype(np.float32)
    feat = Model(m.input[0], m.get_layer(d.name).output)
    np.testing.assert_allclose(feat.predict(x, verbose=0),
                               x @ d.kernel.data + d.bias.data, rtol=1e-5)


def test_layer_output_errors_clearly():
    d = layers.Dense(2)
    with pytest.raises(AttributeError, match="has not been called"):
        _ = d.output
    i = layers.Input((2,))
    d(i)
    d(i)
    with pytest.raises(AttributeError, match="called 2 times"):
        _ = d.output


def test_embedding_mask_zero():
    e = layers.Embedding(10, 3, mask_zero=True)
    ids = np.array([[1, 2, 0, 0], [4, 0, 0, 0]])
    e(ids)
    np.testing.assert_array_equal(e.compute_mask(ids), ids != 0)
    cfg = e.get_config()
    assert cfg["mask_zero"] is True
    assert layers.Embedding.from_config(cfg).mask_zero
    assert layers.Embedding(10, 3).compute_mask(ids) is None


def test_embedding_mask_same_as_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    ids = np.array([[1, 2, 0, 0], [4, 0, 0, 3]])
    theirs = keras.layers.Embedding(10, 3, mask_zero=True)
    np.testing.assert_array_equal(np.asarray(theirs.compute_mask(ids).cpu()),
                                  layers.Embedding(10, 3, mask_zero=True).compute_mask(ids))


def test_sequential_input_output_feature_extractor():
    m = Sequential([layers.Input((5,)), layers.Dense(4, name="hidden", activation="relu"),
                    layers.Dense(2)])
    assert m.input.shape == (None, 5) and m.output.shape == (None, 2)
    hidden = m.get_layer("hidden")
    feat = Model(m.input, hidden.output)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_allclose(feat.predict(x, verbose=0),
                               np.maximum(x @ hidden.kernel.data + hidden.bias.data, 0),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(AttributeError, match="no input shape"):
        _ = Sequential([layers.Dense(2)]).output


def test_subclassed_model_may_name_a_sublayer_output():
    class Net(Model):
        def __init__(self):
            super().__init__()
            self.hidden = layers.Dense(4)
            self.output = layers.Dense(2)  # a PyTorch habit: the head called "output"

        def call(self, x, training=False):
            return self.output(self.hidden(x))

    net = Net()
    x = rng.standard_normal((3, 5)).astype(np.float32)
    y = net(x).data
    assert len(net.weights) == 4  # the head's kernel and bias are tracked
    h = net.hidden
    ref = (x @ h.kernel.data + h.bias.data) @ net.output.kernel.data + net.output.bias.data
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
