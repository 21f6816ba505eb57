"""Issue 12's five bugs: one-input list models, summary / build / shape inference of
subclassed models, unbuilt parameters given to an optimizer, and conv dtype messages.

Expected values are closed-form (x @ W + b, parameter counts) or Keras 3's answers for the
same model."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cnnkit import layers, models, ops
from cnnkit.layers import shape_inference
from cnnkit.train import optimizers


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    if os.environ["KERAS_BACKEND"] != "torch":
        pytest.skip("these comparisons run Keras on its torch backend")
    return pytest.importorskip("keras")


class TwoDense(models.Model):
    """A subclassed model: Dense(5) -> BatchNormalization -> Dense(2)."""

    def __init__(self) -> None:
        super().__init__()
        self.d1 = layers.Dense(5)
        self.bn = layers.BatchNormalization()
        self.d2 = layers.Dense(2)

    def call(self, x, training=False):
        return self.d2(self.bn(self.d1(x), training=training))


class EveryOther(layers.Layer):
    """A user's layer that changes the shape and defines no compute_output_shape."""

    def call(self, x, training=False):
        return x[:, ::2]


def _dense_ref(x, layer):
    kernel, bias = layer.get_weights()
    return x @ kernel + bias


# ----- bug 1: Model([i], ...) ----------------------------------------------------------------
def test_one_input_given_as_list_predicts_bare_and_listed_inputs():
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    i = layers.Input((3,))
    dense = layers.Dense(2)
    m = models.Model([i], dense(i))
    want = _dense_ref(x, dense)
    np.testing.assert_allclose(m.predict([x]), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.predict(x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m(x).numpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m([x]).numpy(), want, rtol=1e-5, atol=1e-6)


def test_transfer_learning_idiom_model_of_base_inputs():
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    i = layers.Input((4,))
    body = layers.Dense(3)
    base = models.Model(i, body(i))
    head = layers.Dense(2)
    m = models.Model(base.inputs, head(base.outputs[0]))
    want = _dense_ref(_dense_ref(x, body), head)
    np.testing.assert_allclose(m.predict(x), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m.predict([x]), want, rtol=1e-5, atol=1e-5)


def test_one_input_list_model_still_checks_shapes_and_counts():
    i = layers.Input((3,))
    m = models.Model([i], layers.Dense(2)(i))
    with pytest.raises(ValueError, match="expects input"):
        m.predict(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="expects 1 inputs, got 2"):
        m.predict([np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32)])


def test_keras_accepts_the_same_one_input_list_model():
    keras = _keras()
    i = keras.Input((3,))
    km = keras.Model([i], keras.layers.Dense(2)(i))
    x = np.ones((4, 3), np.float32)
    assert km.predict([x], verbose=0).shape == km.predict(x, verbose=0).shape == (4, 2)


# ----- bug 2: summary() of a subclassed model ----------------------------------------------
def test_summary_of_built_subclassed_model_counts_as_closed_form(capsys):
    m = TwoDense()
    m(np.zeros((4, 3), np.float32))
    m.summary()
    text = capsys.readouterr().out
    # Dense(3->5): 20, BN(5): 4*5 (10 trainable, 10 moving stats), Dense(5->2): 12
    assert "Total params: 52" in text
    assert "Trainable params: 42" in text
    assert "Non-trainable params: 10" in text
    rows = m.layer_table()
    assert [r[2] for r in rows] == [(None, 5), (None, 5), (None, 2)]
    assert [r[3] for r in rows] == [20, 20, 12]


def test_summary_totals_match_keras_for_the_same_subclassed_model():
    keras = _keras()

    class KTwoDense(keras.Model):
        def __init__(self):
            super().__init__()
            self.d1 = keras.layers.Dense(5)
            self.bn = keras.layers.BatchNormalization()
            self.d2 = keras.layers.Dense(2)

        def call(self, x, training=False):
            return self.d2(self.bn(self.d1(x), training=training))

    km = KTwoDense()
    km(np.zeros((4, 3), np.float32))
    m = TwoDense()
    m(np.zeros((4, 3), np.float32))
    assert sum(w.size for w in m.weights) == km.count_params()
    assert sum(w.size for w in m.trainable_weights) == sum(
        int(np.prod(w.shape)) for w in km.trainable_weights)
    assert [la.count_params() for la in m.layers] == [la.count_params() for la in km.layers]


# ----- bug 3: build() builds; an optimizer refuses an unbuilt model's parameters -----------
def test_build_creates_the_parameters_of_a_subclassed_model():
    m = TwoDense()
    m.build((None, 3))
    shapes = [tuple(p.shape) for p in m.parameters()]
    assert shapes == [(3, 5), (5,), (5,), (5,), (5, 2), (2,)]
    assert m.count_params() == 52


def test_optimizer_on_unbuilt_parameters_says_to_build_first():
    m = TwoDense()
    with pytest.raises(ValueError, match=r"not built.*build\(input_shape\)"):
        optimizers.Adam(m.parameters(), lr=1e-3)
    assert len(m.parameters()) == 0  # still a list, empty, for code that only counts


def test_pytorch_order_works_after_build_sgd_step_is_closed_form():
    m = TwoDense()
    m.build((None, 3))
    opt = optimizers.SGD(m.parameters(), lr=0.1)
    x = np.random.default_rng(2).normal(size=(6, 3)).astype(np.float32)
    before = [p.numpy().copy() for p in m.parameters()]
    loss = (m(x, training=True) ** 2).mean()
    loss.backward()
    grads = [p.grad.copy() for p in m.parameters()]
    opt.step()
    for p, b, g in zip(m.parameters(), before, grads, strict=True):
        np.testing.assert_allclose(p.numpy(), b - 0.1 * g, rtol=1e-6, atol=1e-7)


# ----- bug 4: shapes of user layers / subclassed models inside Sequential -----------------
def test_subclassed_layer_and_model_inside_sequential_infer_shapes():
    seq = models.Sequential([layers.Input((6,)), EveryOther(), TwoDense(), layers.Dense(4)])
    assert seq.output_shape == (None, 4)
    assert seq.layers[0].compute_output_shape((None, 6)) == (None, 3)
    x = np.random.default_rng(3).normal(size=(2, 6)).astype(np.float32)
    assert seq.predict(x).shape == (2, 4)
    assert seq.layers[1].d1.get_weights()[0].shape == (3, 5)


def test_unknown_dims_stay_unknown_and_matches_keras():
    keras = _keras()

    class Down(models.Model):
        def __init__(self):
            super().__init__()
            self.conv = layers.Conv2D(4, 3, strides=2)

        def call(self, x, training=False):
            return self.conv(x)

    class KDown(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3, strides=2)

        def call(self, x, training=False):
            return self.conv(x)

    for spatial in [(9, 9), (None, None), (11, None)]:
        shape = (None, *spatial, 3)
        seq = models.Sequential([layers.Input(shape[1:]), Down()])
        kseq = keras.Sequential([keras.Input(shape[1:]), KDown()])
        assert seq.output_shape == tuple(kseq.output_shape), spatial


def test_builtin_layers_keep_their_own_shape_rules():
    assert not shape_inference.writes_own_call(layers.Dropout)
    assert not shape_inference.writes_own_call(layers.Dense)
    assert shape_inference.writes_own_call(EveryOther)
    assert shape_inference.writes_own_call(TwoDense)


# ----- bug 5: conv dtype message names what was passed --------------------------------------
def test_conv2d_int_kernel_message_says_what_was_passed():
    x = np.ones((1, 4, 4, 1), np.float64)
    k = np.ones((3, 3, 1, 1), np.int64)
    with pytest.raises(TypeError) as err:
        ops.conv2d(x, k)
    msg = str(err.value)
    assert "int64" in msg and "float64" in msg
    assert "kernel has dtype float32" not in msg


def test_dense_and_matmul_messages_say_what_was_passed():
    with pytest.raises(TypeError, match="int32"):
        ops.dense(np.ones((2, 3), np.float64), np.ones((3, 2), np.int32))
    with pytest.raises(TypeError, match="int64"):
        ops.matmul(np.ones((2, 3), np.int64), np.ones((3, 2), np.float64))
    # matching dtypes still work
    out = ops.conv2d(np.ones((1, 4, 4, 1), np.float32), np.ones((3, 3, 1, 1), np.float32))
    np.testing.assert_allclose(out.numpy(), np.full((1, 2, 2, 1), 9.0))


def test_summary_of_unbuilt_subclassed_model_says_to_build():
    with pytest.raises(ValueError, match=r"not built yet.*build\(input_shape\)"):
        TwoDense().layer_table()
