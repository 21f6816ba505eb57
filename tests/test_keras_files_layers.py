"""Every cnnkit layer that has a Keras twin, read from and written to Keras files: one Keras 3
model holding them all (2-D, 1-D, 3-D and embedding branches), with outputs equal to
Keras's; and a Keras 2 full-model file written by hand with h5py in Keras 2's documented
layout (Keras 2 config spellings, ``:0`` weight names, ``layer_names0``/``layer_names1`` and
``weight_names0``/``weight_names1`` split attributes), weights taken from a Keras model."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from keras_models import keras_or_skip, keras_out, max_error, randomize

from cnnkit import models
from cnnkit.models.keras_format.layer_config import cnnkit_classes

keras = keras_or_skip()
h5py = pytest.importorskip("h5py")
TOL = 1e-5


def _branch_2d(L, inp):
    x = L.Rescaling(0.5, offset=0.1)(inp)
    x = L.Normalization(mean=[0.1, 0.2, 0.3], variance=[1.5, 0.5, 2.0])(x)
    x = L.Resizing(12, 12)(x)
    x = L.CenterCrop(10, 10)(x)
    for layer in [L.RandomFlip(), L.RandomRotation(0.1), L.RandomZoom(0.1),
                  L.RandomTranslation(0.1, 0.1), L.RandomContrast(0.1),
                  L.RandomBrightness(0.1)]:
        x = layer(x)
    x = L.Conv2D(6, 3, padding="same", dilation_rate=1, groups=1)(x)
    x = L.BatchNormalization()(x)
    x = L.LayerNormalization()(x)
    x = L.GroupNormalization(groups=2)(x)
    x = L.ReLU(max_value=3.0, negative_slope=0.1)(L.PReLU()(x))
    x = L.SpatialDropout2D(0.2)(x)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.SeparableConv2D(6, 3, padding="same")(x)
    x = L.ZeroPadding2D(1)(x)
    x = L.Cropping2D(1)(x)
    x = L.UpSampling2D()(x)
    x = L.Conv2DTranspose(4, 3, strides=2, padding="same")(x)
    x = L.MaxPooling2D()(x)
    x = L.AveragePooling2D(2)(x)
    a = L.AdaptiveAveragePooling2D((2, 2))(x)
    a = L.Flatten()(L.Permute((2, 1, 3))(a))
    m = L.GlobalMaxPooling2D()(x)
    g = L.GlobalAveragePooling2D()(x)
    return [a, m, g]


def _branch_1d(L, inp):
    x = L.Conv1D(4, 3, padding="same", activation="tanh")(inp)
    x = L.SpatialDropout1D(0.1)(L.ELU()(x))
    x = L.ZeroPadding1D(1)(L.MaxPooling1D()(x))
    x = L.Cropping1D(1)(L.UpSampling1D(2)(x))
    x = L.Conv1DTranspose(3, 3, strides=2)(L.AveragePooling1D(2)(x))
    return [L.GlobalAveragePooling1D()(x), L.GlobalMaxPooling1D()(x)]


def _branch_3d(L, inp):
    x = L.Conv3D(2, 2, padding="same")(inp)
    x = L.SpatialDropout3D(0.1)(L.LeakyReLU()(x))
    x = L.ZeroPadding3D(1)(L.MaxPooling3D()(x))
    x = L.Cropping3D(1)(L.UpSampling3D()(x))
    x = L.Conv3DTranspose(2, 2, strides=2)(L.AveragePooling3D(2)(x))
    return [L.GlobalAveragePooling3D()(x), L.GlobalMaxPooling3D()(x)]


def every_layer_model():
    L = keras.layers
    i2, i1 = keras.Input((8, 8, 3), name="img"), keras.Input((12, 3), name="seq")
    i3, ie = keras.Input((4, 4, 4, 1), name="vol"), keras.Input((5,), dtype="int32", name="ids")
    e = L.Flatten()(L.Embedding(7, 3)(ie))
    feats = _branch_2d(L, i2) + _branch_1d(L, i1) + _branch_3d(L, i3) + [e]
    x = L.Concatenate()([L.Dense(6)(f) for f in feats])
    x = L.Dropout(0.3)(L.Softmax()(L.Reshape((3, 4))(L.Dense(12, activation="gelu")(x))))
    x = L.Flatten()(x)
    d1, d2 = L.Dense(5)(x), L.Dense(5, activation="relu")(x)
    merged = [m()([d1, d2]) for m in (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum,
                                      L.Minimum)]
    out = L.Activation("sigmoid")(L.Add()(merged))
    return keras.Model([i2, i1, i3, ie], out, name="every_layer")


def _inputs(seed=2):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in
            [(2, 8, 8, 3), (2, 12, 3), (2, 4, 4, 4, 1)]] + [rng.integers(0, 7, (2, 5))]


@pytest.fixture(scope="module")
def every(tmp_path_factory):
    kmodel = randomize(every_layer_model())
    path = tmp_path_factory.mktemp("every") / "every.keras"
    kmodel.save(path)
    return kmodel, path


def test_every_twin_layer_is_in_the_model(every):
    kmodel, _ = every
    used = {type(la).__name__ for la in kmodel.layers} - {"InputLayer"}
    twins = {cls for name, cls in cnnkit_classes().items() if name != "InputLayer"}
    missing = {cls.__name__ for cls in twins} - used
    assert not missing, missing


def test_every_layer_from_keras(every):
    """(Keras's own legacy .h5 writer cannot save this model: it fails to copy the random
    preprocessing layers; .h5 is covered by test_keras_files.py.)"""
    kmodel, path = every
    x = _inputs()
    ours = models.load_model(path)
    assert max_error(ours.predict(x), keras_out(keras, kmodel, x)) <= TOL


def test_every_layer_to_keras(every, tmp_path):
    _, path = every
    ours = randomize(models.load_model(path), seed=7)
    x = _inputs(3)
    ours.save(tmp_path / "back.keras")
    theirs = keras.models.load_model(tmp_path / "back.keras")
    assert max_error(keras_out(keras, theirs, x), ours.predict(x)) <= TOL


# ----- a Keras 2 file, written by hand ---------------------------------------------------------
def _k2_layer(cls, name, cfg, inbound):
    return {"class_name": cls, "config": {"name": name, "trainable": True, "dtype": "float32",
                                          **cfg},
            "name": name, "inbound_nodes": [[[n, 0, 0, {}] for n in group]
                                            for group in inbound]}


def _k2_config():
    """A functional model as tf.keras 2.x words it (model class "Model")."""
    init = {"kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
            "kernel_constraint": None, "bias_constraint": None}
    conv = {"kernel_size": [3, 3], "strides": [1, 1], "padding": "same",
            "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
            "use_bias": True, **init}
    bn = {"axis": [3], "momentum": 0.99, "epsilon": 0.001, "center": True, "scale": True}
    layers = [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 8, 8, 3],
                                                "dtype": "float32", "sparse": False,
                                                "ragged": False, "name": "input_1"},
         "name": "input_1", "inbound_nodes": []},
        _k2_layer("Conv2D", "conv2d", {"filters": 4, "activation": "relu", **conv},
                  [["input_1"]]),
        _k2_layer("BatchNormalization", "batch_normalization", bn, [["conv2d"]]),
        _k2_layer("Conv2D", "conv2d_1", {"filters": 4, "activation": "linear", **conv},
                  [["batch_normalization"]]),
        _k2_layer("Add", "add", {}, [["conv2d_1", "batch_normalization"]]),
        _k2_layer("Concatenate", "concatenate", {"axis": -1}, [["add", "conv2d"]]),
        _k2_layer("GlobalAveragePooling2D", "global_average_pooling2d",
                  {"data_format": "channels_last", "keepdims": False}, [["concatenate"]]),
        _k2_layer("Dense", "dense", {"units": 3, "activation": "softmax", "use_bias": True,
                                     **init}, [["global_average_pooling2d"]])]
    return {"class_name": "Model", "config": {"name": "model", "layers": layers,
                                              "input_layers": [["input_1", 0, 0]],
                                              "output_layers": [["dense", 0, 0]]},
            "keras_version": "2.13.1", "backend": "tensorflow"}


def _names(values):
    return np.array([v.encode("utf-8") for v in values])


def _write_keras2(path, config, weights):
    """weights: {layer: [(variable name, array)]}; every layer in config order is listed."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.13.1"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode("utf-8")
        mw = f.create_group("model_weights")
        names = [la["config"]["name"] for la in config["config"]["layers"]]
        half = len(names) // 2  # as Keras 2 splits an attribute over 64 KiB
        mw.attrs["layer_names0"], mw.attrs["layer_names1"] = _names(names[:half]), \
            _names(names[half:])
        for name in names:
            g = mw.create_group(name)
            wnames = [f"{name}/{v}:0" for v, _ in weights.get(name, [])]
            if len(wnames) > 2:
                g.attrs["weight_names0"], g.attrs["weight_names1"] = _names(wnames[:2]), \
                    _names(wnames[2:])
            else:
                g.attrs["weight_names"] = _names(wnames)
            for wn, (_, value) in zip(wnames, weights.get(name, []), strict=True):
                g.create_dataset(wn, data=value)


def test_keras2_file_with_split_attributes(tmp_path):
    config = _k2_config()
    # Keras builds the twin from the same config
    kmodel = randomize(keras.Model.from_config(copy.deepcopy(config["config"])))
    weights = {la.name: [(w.path.split("/")[-1], keras.ops.convert_to_numpy(w))
                         for w in la.weights] for la in kmodel.layers}
    _write_keras2(tmp_path / "k2.h5", config, weights)
    with h5py.File(tmp_path / "k2.h5") as f:
        assert "layer_names" not in f["model_weights"].attrs
        assert "weight_names1" in f["model_weights/batch_normalization"].attrs
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
    want = keras_out(keras, kmodel, x)
    ours = models.load_model(tmp_path / "k2.h5")
    assert max_error(ours.predict(x), want) <= TOL
    # Keras 3 reads the hand-written file the same way (the layout is Keras's)
    assert max_error(keras_out(keras, keras.models.load_model(tmp_path / "k2.h5"), x),
                     want) <= TOL
    # and Keras 2's load_weights into a built model goes by the order of layers with weights
    fresh = models.load_model(tmp_path / "k2.h5")
    randomize(fresh, seed=9)
    fresh.load_weights(tmp_path / "k2.h5")
    assert max_error(fresh.predict(x), want) <= TOL


def test_keras2_sequential_without_input_layer(tmp_path):
    """Keras 2 Sequential configs give the input shape on the first layer."""
    L = keras.layers
    kmodel = randomize(keras.Sequential([keras.Input((6, 6, 2)), L.Conv2D(3, 3), L.Flatten(),
                                         L.Dense(2)]))
    layers = [{"class_name": type(la).__name__, "config": la.get_config()}
              for la in kmodel.layers]
    layers[0]["config"]["batch_input_shape"] = [None, 6, 6, 2]
    for la in layers:
        la["config"]["dtype"] = "float32"
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}
    weights = {la.name: [(w.path.split("/")[-1], keras.ops.convert_to_numpy(w))
                         for w in la.weights] for la in kmodel.layers}
    _write_keras2(tmp_path / "s2.h5", config, weights)
    x = np.random.default_rng(1).standard_normal((2, 6, 6, 2)).astype(np.float32)
    assert max_error(models.load_model(tmp_path / "s2.h5").predict(x),
                     keras_out(keras, kmodel, x)) <= TOL
