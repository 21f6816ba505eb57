"""The inference engine gives the model's own inference outputs, follows weight updates, and
is safe to share between threads."""

import threading

import numpy as np
import pytest

import cnnkit
from cnnkit import layers
from cnnkit.deploy import InferenceEngine
from cnnkit.models import Model, Sequential

rng = np.random.default_rng(0)


def reference(model, x):
    """The model's own inference path: layer calls on Tensors, no engine (with gradients
    enabled, ``model(x)`` runs layer by layer; under ``no_grad`` it runs the engine's plan)."""
    with cnnkit.enable_grad():
        return model(x, training=False).data


def _functional():
    a = layers.Input((12, 12, 3))
    h = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(a)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    r = layers.DepthwiseConv2D(3, padding="same", activation="relu")(h)
    h = layers.Add()([h, r])
    h = layers.Subtract()([h, layers.Multiply()([h, r])])
    g = layers.GlobalMaxPooling2D()(h)
    h = layers.Add()([h, g])  # rank 2 + rank 4: Keras broadcasting, not NumPy's
    h = layers.Concatenate()([h, layers.Conv2D(4, 1, activation="tanh")(h)])
    h = layers.AveragePooling2D(2, padding="same")(h)
    h = layers.GlobalAveragePooling2D()(h)
    return Model(a, layers.Dense(5, activation="softmax")(h))


def _sequential():
    return Sequential([layers.Input((16, 16, 1)), layers.Rescaling(1 / 255),
                       layers.Conv2D(6, 5, padding="same", activation="relu"),
                       layers.MaxPooling2D(2), layers.Conv2D(4, 3),
                       layers.BatchNormalization(), layers.Activation("sigmoid"),
                       layers.Flatten(), layers.Dropout(0.5), layers.Dense(7, activation="elu")])


def _randomise_bn(model):
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.moving_mean.data[...] = rng.standard_normal(layer.moving_mean.shape)
            layer.moving_variance.data[...] = rng.uniform(0.5, 2, layer.moving_variance.shape)


@pytest.mark.parametrize("build,shape", [(_functional, (4, 12, 12, 3)),
                                         (_sequential, (3, 16, 16, 1))])
def test_engine_equals_model_inference(build, shape):
    cnnkit.random.seed(1)
    model = build()
    _randomise_bn(model)
    x = (rng.random(shape) * 255).astype(np.float32)
    engine = InferenceEngine(model)
    ref = reference(model, x)
    np.testing.assert_allclose(engine(x), ref, rtol=1e-5, atol=1e-6)
    # weights changed in place (training, set_weights) are seen without recompiling
    model.set_weights([w * 1.1 for w in model.get_weights()])
    np.testing.assert_allclose(engine(x), reference(model, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(engine.predict(x, batch_size=2), reference(model, x), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(model.predict(x, batch_size=3), reference(model, x), rtol=1e-5,
                               atol=1e-6)


def test_engine_zoo_models():
    for name in ("lenet5", "simple_cnn", "mnist_cnn"):
        model = cnnkit.zoo.get(name)
        _randomise_bn(model)
        x = (rng.random((2, 28, 28, 1)) * 255).astype(np.float32)
        np.testing.assert_allclose(InferenceEngine(model)(x), reference(model, x), rtol=1e-4,
                                   atol=1e-4)


def test_engine_is_thread_safe():
    model = _functional()
    _randomise_bn(model)
    engine = InferenceEngine(model)
    xs = [rng.random((2, 12, 12, 3)).astype(np.float32) for _ in range(8)]
    expected = [reference(model, x) for x in xs]
    errors = []

    def worker(i):
        for _ in range(20):
            out = engine(xs[i])
            if not np.allclose(out, expected[i], rtol=1e-5, atol=1e-6):
                errors.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
