"""Behaviour every layer shares (layers/base.py), over the layer table of tests/layer_cases.py:
output shapes and parameter counts against closed forms, symbolic shapes, config round-trips,
Keras default names, multiply-add counts, positional arguments, float64 gradients, unknown
sizes and a functional model built from the layers."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from helpers import gradcheck
from layer_cases import (
    CASES,
    IDS,
    batchless,
    make_input,
    randomize,
)

from cnnkit import layers as L

rng = np.random.default_rng(0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_output_shape(case):
    layer = case.make()
    y = layer(make_input(case))
    assert y.shape == case.out
    assert tuple(layer.compute_output_shape(case.inputs)) == case.out
    assert tuple(layer.compute_output_shape(batchless(case.inputs))) == (None, *case.out[1:])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_symbolic_shape(case):
    layer = case.make()
    dtype = "int64" if case.int_input else "float32"
    if isinstance(case.inputs, list):
        ins = [L.Input(s[1:]) for s in case.inputs]
    else:
        ins = L.Input(case.inputs[1:], dtype=dtype)
    out = layer(ins)
    assert out.shape == (None, *case.out[1:])
    assert out.node.layer is layer


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_param_count(case):
    layer = case.make()
    layer(make_input(case))
    assert layer.count_params() == case.params
    assert sum(w.size for w in layer.weights) == case.params


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_roundtrip(case):
    layer = case.make()
    x = make_input(case)
    layer(x)
    randomize(layer)
    cfg = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(cfg)
    assert json.loads(json.dumps(clone.get_config())) == cfg
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x, training=False).data, layer(x, training=False).data)
    for a, b in zip(clone.weights, layer.weights, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype


def test_default_names_are_keras_style():
    pairs = [(L.Conv2D(1, 1), "conv2d"), (L.Conv2DTranspose(1, 1), "conv2d_transpose"),
             (L.DepthwiseConv2D(1), "depthwise_conv2d"), (L.MaxPooling2D(), "max_pooling2d"),
             (L.GlobalAveragePooling2D(), "global_average_pooling2d"),
             (L.BatchNormalization(), "batch_normalization"), (L.UpSampling2D(), "up_sampling2d"),
             (L.ZeroPadding2D(), "zero_padding2d"), (L.SpatialDropout2D(0.1), "spatial_dropout2d"),
             (L.Concatenate(), "concatenate")]
    for layer, base in pairs:
        assert re.fullmatch(rf"{base}(_\d+)?", layer.name), layer.name
    a, b = L.Conv1D(1, 1), L.Conv1D(1, 1)
    assert a.name != b.name
    assert L.Conv2D(1, 1, name="mine").name == "mine"


def test_weight_layouts_and_trainable_split():
    conv = L.Conv2D(8, (3, 2), groups=2)
    conv(np.zeros((1, 5, 5, 4), np.float32))
    assert [w.shape for w in conv.weights] == [(3, 2, 2, 8), (8,)]
    dw = L.DepthwiseConv2D(3, depth_multiplier=2)
    dw(np.zeros((1, 5, 5, 3), np.float32))
    assert [w.shape for w in dw.weights] == [(3, 3, 3, 2), (6,)]
    sep = L.SeparableConv2D(4, 3, depth_multiplier=2)
    sep(np.zeros((1, 5, 5, 3), np.float32))
    assert [w.shape for w in sep.weights] == [(3, 3, 3, 2), (1, 1, 6, 4), (4,)]
    tr = L.Conv3DTranspose(5, (2, 3, 1))
    tr(np.zeros((1, 3, 3, 3, 2), np.float32))
    assert [w.shape for w in tr.weights] == [(2, 3, 1, 5, 2), (5,)]
    bn = L.BatchNormalization()
    bn(np.zeros((2, 3, 3, 4), np.float32))
    assert [w.name.split("/")[-1] for w in bn.weights] == ["gamma", "beta", "moving_mean",
                                                           "moving_variance"]
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2


MACS = [
    # prod(output spatial) * prod(K) * C_in/groups * C_out
    (lambda: L.Conv2D(5, 3), (2, 8, 7, 3), 6 * 5 * 9 * 3 * 5),
    (lambda: L.Conv2D(4, 3, groups=2, padding="same"), (2, 7, 7, 4), 7 * 7 * 9 * 2 * 4),
    (lambda: L.Conv1D(4, 3, strides=2, padding="same"), (2, 9, 3), 5 * 3 * 3 * 4),
    (lambda: L.Conv3D(3, 2), (1, 4, 5, 6, 2), 3 * 4 * 5 * 8 * 2 * 3),
    (lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (2, 7, 6, 3), 5 * 4 * 9 * 3 * 2),
    (lambda: L.SeparableConv2D(5, 3, depth_multiplier=2), (2, 7, 6, 3),
     5 * 4 * (9 * 6 + 6 * 5)),
    # transposed: prod(input spatial) * prod(K) * C_in * C_out
    (lambda: L.Conv2DTranspose(4, 3, strides=2, padding="same"), (2, 4, 5, 3),
     4 * 5 * 9 * 3 * 4),
    (lambda: L.Dense(5), (2, 3), 15),
    (lambda: L.BatchNormalization(), (2, 4, 4, 3), 48),
    (lambda: L.MaxPooling2D(), (2, 4, 4, 3), 0),
]


@pytest.mark.parametrize("make,shape,macs", MACS)
def test_compute_macs(make, shape, macs):
    layer = make()
    y = layer(np.zeros(shape, np.float32))
    assert layer.compute_macs(shape, y.shape) == macs
    assert layer.compute_macs((None, *shape[1:]), (None, *y.shape[1:])) == macs


def test_keras_positional_argument_order():
    """Positional arguments land where Keras puts them."""
    c = L.Conv2D(4, 3, 2, "same", "channels_last", 1, 2)
    assert (c.strides, c.padding, c.groups) == ((2, 2), "same", 2)
    t = L.Conv2DTranspose(4, 3, 2, "same", 1)
    assert (t.strides, t.padding, t.output_padding) == ((2, 2), "same", (1, 1))
    d = L.DepthwiseConv2D(3, 1, "valid", 2)
    assert d.depth_multiplier == 2
    s = L.SeparableConv2D(4, 3, 1, "valid", None, 1, 3)
    assert s.depth_multiplier == 3
    assert L.SpatialDropout2D(0.2, "channels_last", 7).seed == 7
    assert L.SpatialDropout1D(0.2, 7).seed == 7
    assert L.BatchNormalization(1, 0.9, 1e-5).momentum == 0.9
    assert L.MaxPooling2D(3, 1, "same").strides == (1, 1)


@pytest.mark.parametrize("make,shape", [
    (lambda: L.Conv2D(3, 3, strides=2, padding="same", dtype="float64"), (2, 5, 4, 2)),
    (lambda: L.Conv1DTranspose(2, 3, strides=2, dtype="float64"), (2, 3, 2)),
    (lambda: L.DepthwiseConv2D(2, depth_multiplier=2, dtype="float64"), (1, 3, 3, 2)),
    (lambda: L.AveragePooling2D(3, 2, "same", dtype="float64"), (2, 5, 4, 2)),
])
def test_float64_layers_gradcheck(make, shape):
    """float64 layers run in float64, and the input gradient through the layer matches
    central differences."""
    layer = make()
    x = rng.standard_normal(shape)
    layer(x)
    assert all(w.dtype == np.float64 for w in layer.weights)
    gradcheck(lambda t: layer(t), x)


def test_unknown_spatial_sizes_propagate():
    assert L.Conv2D(4, 3, strides=2)(L.Input((None, 9, 3))).shape == (None, None, 4, 4)
    assert L.Conv2DTranspose(4, 3, strides=2)(L.Input((None, 5, 3))).shape == (None, None, 11, 4)
    assert L.MaxPooling2D()(L.Input((None, 9, 3))).shape == (None, None, 4, 3)
    assert L.UpSampling2D()(L.Input((None, 3, 2))).shape == (None, None, 6, 2)
    assert L.Concatenate(axis=1)([L.Input((None, 3)), L.Input((2, 3))]).shape == (None, None, 3)
    assert L.Conv2D(4, 3).compute_macs((None, None, 9, 3), (None, None, 7, 4)) == 0


def test_functional_model_with_new_layers():
    """A small graph built from these layers runs, and its shapes agree with the layers'."""
    models = pytest.importorskip("cnnkit.models")
    inp = L.Input((9, 8, 3))
    a = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    b = L.BatchNormalization()(a)
    c = L.DepthwiseConv2D(3, padding="same")(b)
    d = L.Add()([b, c])
    e = L.Concatenate()([d, L.SeparableConv2D(2, 3, padding="same")(d)])
    f = L.MaxPooling2D(padding="same")(e)
    g = L.Conv2DTranspose(3, 2, strides=2)(f)
    h = L.Cropping2D(((0, 1), 0))(L.ZeroPadding2D(0)(g))
    out = L.Dense(2)(L.GlobalAveragePooling2D()(L.SpatialDropout2D(0.2)(h)))
    model = models.Model(inp, out)
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
    y = model(x, training=True)
    assert y.shape == (2, 2) == (2, *out.shape[1:])
    assert h.shape == (None, 9, 8, 3)
    y.backward(np.ones(y.shape, np.float32))
    assert all(w.grad is not None for w in model.trainable_weights)
