"""Keras files both ways, with Keras 3 (torch backend) as the reference: models built and
saved by Keras load in cnnkit with the same outputs (.keras archives, legacy .h5, a Keras 2
file written by hand with split attributes), and what cnnkit saves Keras loads with the same
outputs (.keras, .h5, .weights.h5)."""

from __future__ import annotations

import numpy as np
import pytest
from keras_models import (
    functional_net,
    keras_or_skip,
    keras_out,
    max_error,
    randomize,
    sequential_cnn,
)

from cnnkit import layers as L
from cnnkit import models

keras = keras_or_skip()
TOL = 1e-5
BUILDERS = {"sequential": sequential_cnn, "functional": functional_net}


def _input(model, seed=1):
    shape = model.inputs[0].shape if hasattr(model, "inputs") else model.input_shape
    return np.random.default_rng(seed).standard_normal((3, *shape[1:])).astype(np.float32)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_keras_saved_model_loads_with_same_outputs(kind, suffix, tmp_path):
    kmodel = randomize(BUILDERS[kind](keras))
    path = tmp_path / f"model{suffix}"
    kmodel.save(path)
    x = _input(kmodel)
    ours = models.load_model(path)
    err = max_error(ours.predict(x), keras_out(keras, kmodel, x))
    assert err <= TOL, err
    assert ours.count_params() == kmodel.count_params()
    assert [la.name for la in ours.layers][-1] == kmodel.layers[-1].name


def test_nested_and_shared_structure_survives(tmp_path):
    kmodel = randomize(functional_net(keras))
    kmodel.save(tmp_path / "m.keras")
    ours = models.load_model(tmp_path / "m.keras")
    assert isinstance(ours.get_layer("block"), models.Model)
    assert isinstance(ours.get_layer("head"), models.Sequential)
    shared = ours.get_layer("shared_dw")
    assert sum(n.layer is shared for n in ours._nodes) == 2  # one layer, two calls
    np.testing.assert_array_equal(shared.get_weights()[0],
                                  keras.ops.convert_to_numpy(kmodel.get_layer(
                                      "shared_dw").weights[0]))


def _cnnkit_functional():
    inp = L.Input((9, 9, 2))
    x = L.Conv2D(6, 3, padding="same", activation="relu")(inp)
    x = L.BatchNormalization()(x)
    bi = L.Input((9, 9, 6))
    inner = models.Model(bi, L.DepthwiseConv2D(3, padding="same")(bi), name="inner")
    shared = L.SeparableConv2D(6, 3, padding="same")
    y = L.Add()([shared(x), shared(inner(x))])
    z = L.Concatenate()([y, x])
    z = models.Sequential([L.Conv2D(4, 1), L.BatchNormalization(), L.ReLU()], name="tail")(z)
    out = L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(z))
    return models.Model(inp, out, name="ck")


def _cnnkit_sequential():
    return models.Sequential([L.Input((8, 8, 1)), L.Conv2D(4, 3, activation="relu"),
                              L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(),
                              L.Dense(3)], name="cks")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("build", [_cnnkit_sequential, _cnnkit_functional])
def test_cnnkit_saved_model_loads_in_keras_with_same_outputs(build, suffix, tmp_path):
    ours = randomize(build())
    x = _input(ours)
    want = ours.predict(x)
    ours.save(tmp_path / f"m{suffix}")
    theirs = keras.models.load_model(tmp_path / f"m{suffix}")
    assert max_error(keras_out(keras, theirs, x), want) <= TOL
    assert theirs.count_params() == ours.count_params()


def test_weights_files_both_ways(tmp_path):
    """cnnkit's save_weights -> Keras load_weights, and Keras's save_weights -> cnnkit."""
    kmodel = randomize(functional_net(keras), seed=3)
    kmodel.save(tmp_path / "arch.keras")
    ours = models.load_model(tmp_path / "arch.keras")
    randomize(ours, seed=4)
    x = _input(kmodel)
    ours.save_weights(tmp_path / "ours.weights.h5")
    kmodel.load_weights(tmp_path / "ours.weights.h5")
    assert max_error(keras_out(keras, kmodel, x), ours.predict(x)) <= TOL
    randomize(kmodel, seed=5)
    kmodel.save_weights(tmp_path / "theirs.weights.h5")
    ours.load_weights(tmp_path / "theirs.weights.h5")
    assert max_error(ours.predict(x), keras_out(keras, kmodel, x)) <= TOL


def test_load_weights_refuses_a_mismatch_and_keeps_the_weights(tmp_path):
    kmodel = randomize(sequential_cnn(keras))
    kmodel.save_weights(tmp_path / "w.weights.h5")
    ours = _cnnkit_sequential()
    before = ours.get_weights()
    with pytest.raises(ValueError, match="shape|weights"):
        ours.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(before, ours.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_cnnkit_own_format_is_unchanged(tmp_path):
    ours = randomize(_cnnkit_sequential())
    ours.save(tmp_path / "m.cnnkit")
    assert (tmp_path / "m.cnnkit").read_bytes()[:2] == b"PK"
    x = _input(ours)
    np.testing.assert_array_equal(models.load_model(tmp_path / "m.cnnkit").predict(x),
                                  ours.predict(x))


def test_keras_path_names_match_keras():
    """The per-class weight-path element cnnkit derives equals Keras's snake case."""
    from keras.src.utils.naming import to_snake_case

    from cnnkit.models.keras_format.layer_config import cnnkit_classes
    from cnnkit.models.keras_format.tree import weight_key

    for name in [*cnnkit_classes(), "Functional", "Sequential"]:
        assert weight_key(name) == to_snake_case(name), name
