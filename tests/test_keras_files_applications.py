"""Keras's own architectures (keras.applications, built with weights=None and non-trivial
batch-norm statistics) saved by Keras 3 load in cnnkit with the same logits, in .keras and
.h5, and go back to Keras unchanged. MobileNetV3 uses Keras ops in its graph (``x + 3``,
``x * (1/6)`` in hard-swish), read as Rescaling layers. They take 10-60 s each, so they run
with ``pytest -m slow``; the default suite runs the same kinds of graph at a small size
(test_keras_files*.py, and the ops test below)."""

from __future__ import annotations

import numpy as np
import pytest
from keras_models import keras_or_skip, keras_out

from cnnkit import models

keras = keras_or_skip()
# name -> (keras.applications constructor name, its arguments)
ARCHS = {
    "MobileNetV3Small": {"alpha": 0.75, "input_shape": (32, 32, 3)},
    "MobileNetV2": {"alpha": 0.35, "input_shape": (32, 32, 3)},
    "EfficientNetB0": {"input_shape": (32, 32, 3)},
    "ResNet50": {"input_shape": (32, 32, 3)},
    "DenseNet121": {"input_shape": (32, 32, 3)},
    "Xception": {"input_shape": (71, 71, 3)},
}
TOL = 1e-5  # largest difference over the largest logit


def _relative(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def _keras_model(name):
    kmodel = getattr(keras.applications, name)(weights=None, classes=10,
                                                classifier_activation=None, **ARCHS[name])
    rng = np.random.default_rng(0)
    for w in kmodel.weights:  # Keras's initialisation, non-trivial batch-norm statistics
        if "moving" in w.path:
            w.assign((rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path
                      else rng.standard_normal(w.shape) * 0.1).astype(np.float32))
    return kmodel


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ARCHS))
def test_keras_application_round_trip(name, tmp_path):
    kmodel = _keras_model(name)
    x = np.random.default_rng(1).uniform(0, 255, (2, *ARCHS[name]["input_shape"]))
    x = x.astype(np.float32)
    want = keras_out(keras, kmodel, x)
    for suffix in (".keras", ".h5"):
        kmodel.save(tmp_path / f"m{suffix}")
        ours = models.load_model(tmp_path / f"m{suffix}")
        got = ours.predict(x)
        assert _relative(got, want) <= TOL, suffix
    # (Keras's Normalization keeps the sample count of adapt() as a weight; cnnkit does not)
    assert ours.count_params() == sum(int(np.prod(w.shape)) for w in kmodel.weights
                                      if not w.path.endswith("/count"))
    ours.save(tmp_path / "back.keras")
    back = keras_out(keras, keras.models.load_model(tmp_path / "back.keras"), x)
    assert _relative(back, got) <= TOL


def test_keras_ops_between_a_tensor_and_a_number(tmp_path):
    """x + 3, 2 - x, x * (1/6), x / 4, as Keras records them in a functional graph."""
    inp = keras.Input((5,))
    x = keras.layers.Dense(4)(inp)
    y = keras.layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)
    out = keras.layers.Concatenate()([y, 2.0 - x, x / 4.0])
    kmodel = keras.Model(inp, out)
    x_in = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32) * 3
    want = keras_out(keras, kmodel, x_in)
    for suffix in (".keras", ".h5"):
        kmodel.save(tmp_path / f"ops{suffix}")
        ours = models.load_model(tmp_path / f"ops{suffix}")
        np.testing.assert_allclose(ours.predict(x_in), want, rtol=0, atol=1e-5)
    ours.save(tmp_path / "back.keras")
    back = keras_out(keras, keras.models.load_model(tmp_path / "back.keras"), x_in)
    np.testing.assert_allclose(back, want, rtol=0, atol=1e-5)
