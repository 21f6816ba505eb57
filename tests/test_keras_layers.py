"""cnnkit layers against Keras 3 (torch backend): constructor arguments and defaults, outputs
with the same weights and input, compute_output_shape, and get_config accepted by Keras's
from_config."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import inspect  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

from keras_ref import check_signatures  # noqa: E402

from cnnkit import layers as L  # noqa: E402

_CONSTRAINTS = "constraints not implemented"
_ACT_REG = "activity_regularizer not implemented"
_LORA = "LoRA / quantization not implemented"
_NOT = {k: v for keys, v in [
    (("kernel_constraint", "bias_constraint", "depthwise_constraint", "pointwise_constraint",
      "embeddings_constraint", "beta_constraint", "gamma_constraint"), _CONSTRAINTS),
    (("activity_regularizer",), _ACT_REG),
    (("lora_rank", "lora_alpha", "quantization_config"), _LORA)] for k in keys}
# layer -> {argument: why cnnkit differs from keras.layers.<layer>}
_TORCH_POOL = {"ceil_mode": "cnnkit: PyTorch/ONNX output rounding (ONNX import)",
               "count_include_pad": "cnnkit: PyTorch/ONNX averaging over padding",
               "dilation_rate": "cnnkit: PyTorch/ONNX dilated windows"}
DELIBERATE = {
    "Layer": {"activity_regularizer": _ACT_REG, "autocast": "float32 only: nothing to cast",
              "dtype": "float32 by default (Keras: None = the global policy, float32)",
              "input_shape": "Keras 2 style first-layer input_shape"},
    "InputLayer": {"input_tensor": "no tensors",
                   "optional": "no optional inputs", "ragged": "no ragged tensors",
                   "sparse": "no sparse tensors", "dtype": "float32 by default"},
    "Embedding": {"weights": "use set_weights",
                  **_NOT},
    "BatchNormalization": {"renorm": "not implemented", "renorm_clipping": "not implemented",
                           "renorm_momentum": "not implemented",
                           "synchronized": "one device only",
                           "unbiased_variance": "cnnkit.nn.BatchNorm2d: PyTorch's running "
                                                "variance takes the unbiased batch variance",
                           **_NOT},
    **{f"{p}{d}D": {"pool_size": "defaults to 2 (Keras requires it)", **_TORCH_POOL}
       for p in ("AveragePooling", "AvgPool") for d in (1, 2, 3)},
    **{f"{p}{d}D": dict(_TORCH_POOL) for p in ("MaxPooling", "MaxPool") for d in (1, 2, 3)},
}


# the layers whose missing Keras arguments were reviewed one by one (listed in DELIBERATE)
REVIEWED = frozenset("""Layer InputLayer Dense Flatten Reshape Permute Activation ReLU LeakyReLU
ELU Softmax Dropout Embedding Rescaling Normalization Conv1D Conv2D Conv3D DepthwiseConv2D
SeparableConv2D Conv1DTranspose Conv2DTranspose Conv3DTranspose MaxPooling1D MaxPooling2D
MaxPooling3D AveragePooling1D AveragePooling2D AveragePooling3D GlobalAveragePooling1D
GlobalAveragePooling2D GlobalAveragePooling3D GlobalMaxPooling1D GlobalMaxPooling2D
GlobalMaxPooling3D MaxPool1D MaxPool2D MaxPool3D AvgPool1D AvgPool2D AvgPool3D GlobalAvgPool1D
GlobalAvgPool2D GlobalAvgPool3D GlobalMaxPool1D GlobalMaxPool2D GlobalMaxPool3D
AdaptiveAveragePooling2D BatchNormalization SpatialDropout1D SpatialDropout2D SpatialDropout3D
Add Subtract Multiply Average Maximum Minimum Concatenate UpSampling1D UpSampling2D UpSampling3D
ZeroPadding1D ZeroPadding2D ZeroPadding3D Cropping1D Cropping2D Cropping3D""".split())
NOT_IN_KERAS = {"KerasTensor": "Keras's is not exported from keras.layers",
                "L2Normalize": "x / max(||x||, eps) as a layer (keras.ops.normalize)",
                "SyncBatchNormalization": "Keras: BatchNormalization(synchronized=True)",
                "GridHead": "the grid detector's output layer (cnnkit.detection)",
                **{n: "an ONNX operator's form that load_onnx builds (cnnkit.io)" for n in (
                    "ConstantOperand", "UnaryMath", "Clip", "HardSigmoid", "LogSoftmax", "Cast",
                    "Divide", "Power", "MatMul", "LocalResponseNormalization", "Reduce",
                    "ArgMax", "Slice", "Split", "Squeeze", "ExpandDims", "Gather", "Pad",
                    "Resize")}}


def _classes():
    return [n for n in L.__all__ if inspect.isclass(getattr(L, n))
            and inspect.isclass(getattr(keras.layers, n, None))]


_INPUT = {"tensor": "no tensors", "optional": "no optional inputs", "ragged": "no ragged tensors",
          "sparse": "no sparse tensors", "dtype": "float32 by default"}
# model methods: argument -> why cnnkit differs from keras.Model
MODEL_DELIBERATE = {
    "compile": {"jit_compile": "no compiler", "steps_per_execution": "one step per call",
                "auto_scale_loss": "float32 only", "weighted_metrics": "not implemented",
                "run_eagerly": "always eager; None accepted", "seed": "cnnkit: shuffling seed"},
    "fit": {"validation_steps": "not implemented", "on_nonfinite": "cnnkit: NaN/Inf guard",
            "distributed": "cnnkit: data parallelism over MPI (cnnkit.distributed)"},
    "evaluate": {"steps": "not implemented"},
    "predict": {"steps": "not implemented", "verbose": "silent by default"},
}


def test_input_and_model_methods_match_keras():
    from cnnkit import models

    assert check_signatures({"Input": (L.Input, keras.Input)}, {"Input": _INPUT}) == []
    pairs = {n: (getattr(models.Model, n), getattr(keras.Model, n)) for n in MODEL_DELIBERATE}
    assert check_signatures(pairs, MODEL_DELIBERATE) == []
    x = L.Input(batch_shape=(None, 5, 3))
    assert x.shape == keras.Input(batch_shape=(None, 5, 3)).shape == (None, 5, 3)


def test_constructor_arguments_and_defaults_equal_keras():
    names = _classes()
    assert len(names) >= 68
    pairs = {n: (getattr(L, n), getattr(keras.layers, n)) for n in names}
    deliberate = {n: {**_NOT, **DELIBERATE.get(n, {})} for n in names}
    assert check_signatures(pairs, deliberate, REVIEWED) == []
    assert REVIEWED <= set(names)
    assert {n for n in L.__all__ if not hasattr(keras.layers, n)} <= set(NOT_IN_KERAS)


# (layer, kwargs, input shape or list of shapes)
CASES = [
    ("Dense", {"units": 5, "activation": "relu"}, (4, 6)),
    ("Dense", {"units": 3, "use_bias": False}, (2, 3, 6)),
    ("Conv1D", {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}, (2, 9, 3)),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "tanh"},
     (2, 7, 6, 3)),
    ("Conv2D", {"filters": 4, "kernel_size": (3, 2), "dilation_rate": 2}, (2, 9, 8, 2)),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "groups": 2, "strides": 2}, (1, 9, 9, 4)),
    ("Conv3D", {"filters": 2, "kernel_size": 2}, (1, 4, 5, 4, 2)),
    ("DepthwiseConv2D", {"kernel_size": 3, "depth_multiplier": 2, "padding": "same"},
     (2, 6, 6, 3)),
    ("SeparableConv2D", {"filters": 5, "kernel_size": 3}, (2, 7, 7, 3)),
    ("Conv1DTranspose", {"filters": 3, "kernel_size": 3, "strides": 2}, (2, 5, 2)),
    ("Conv2DTranspose", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"},
     (2, 4, 5, 2)),
    ("Conv3DTranspose", {"filters": 2, "kernel_size": 2, "strides": 2}, (1, 2, 3, 2, 2)),
    ("MaxPooling1D", {"pool_size": 3, "strides": 2}, (2, 9, 3)),
    ("MaxPooling2D", {"pool_size": 2, "padding": "same"}, (2, 7, 7, 3)),
    ("MaxPooling3D", {}, (1, 4, 4, 4, 2)),
    ("AveragePooling1D", {"pool_size": 2}, (2, 8, 3)),
    ("AveragePooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}, (2, 7, 7, 3)),
    ("AveragePooling3D", {"pool_size": 2}, (1, 4, 4, 4, 2)),
    ("GlobalAveragePooling1D", {}, (2, 5, 3)),
    ("GlobalAveragePooling2D", {"keepdims": True}, (2, 5, 4, 3)),
    ("GlobalMaxPooling2D", {}, (2, 5, 4, 3)),
    ("GlobalMaxPooling3D", {}, (1, 3, 4, 3, 2)),
    ("AdaptiveAveragePooling2D", {"output_size": (2, 3)}, (2, 6, 9, 3)),
    ("Flatten", {}, (2, 3, 4, 2)),
    ("Reshape", {"target_shape": (4, -1)}, (2, 3, 4, 2)),
    ("Permute", {"dims": (2, 1, 3)}, (2, 3, 4, 2)),
    ("Activation", {"activation": "gelu"}, (2, 6)),
    ("Activation", {"activation": "leaky_relu"}, (2, 6)),
    ("ReLU", {"max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5}, (2, 9)),
    ("LeakyReLU", {}, (2, 6)),
    ("ELU", {"alpha": 0.5}, (2, 6)),
    ("Softmax", {"axis": 1}, (2, 4, 3)),
    ("Dropout", {"rate": 0.5}, (2, 6)),
    ("SpatialDropout2D", {"rate": 0.5}, (2, 3, 3, 4)),
    ("Rescaling", {"scale": 1 / 255, "offset": -0.5}, (2, 4, 4, 3)),
    ("Normalization", {"mean": [1.0, 2.0, 3.0], "variance": [4.0, 1e-9, 0.25]}, (2, 4, 3)),
    ("Normalization", {"mean": [1.0, 2.0], "variance": [4.0, 0.25], "invert": True}, (2, 2)),
    ("BatchNormalization", {"momentum": 0.9, "epsilon": 1e-3}, (4, 3, 3, 2)),
    ("Embedding", {"input_dim": 7, "output_dim": 3}, "ids"),
    ("UpSampling1D", {"size": 3}, (2, 3, 2)),
    ("UpSampling2D", {"size": (2, 3)}, (2, 3, 2, 2)),
    ("UpSampling2D", {"size": 2, "interpolation": "bilinear"}, (1, 3, 4, 2)),
    ("UpSampling3D", {"size": 2}, (1, 2, 2, 2, 1)),
    ("ZeroPadding1D", {"padding": (1, 2)}, (2, 3, 2)),
    ("ZeroPadding2D", {"padding": ((1, 0), (2, 1))}, (2, 3, 3, 2)),
    ("ZeroPadding3D", {"padding": 1}, (1, 2, 2, 2, 1)),
    ("Cropping1D", {"cropping": (1, 2)}, (2, 6, 2)),
    ("Cropping2D", {"cropping": ((1, 0), (2, 1))}, (2, 5, 6, 2)),
    ("Cropping3D", {"cropping": 1}, (1, 4, 4, 4, 1)),
    ("Add", {}, [(2, 4, 3), (2, 4, 3)]),
    ("Subtract", {}, [(2, 4, 3), (2, 4, 3)]),
    ("Multiply", {}, [(2, 4, 3), (2, 4, 3), (2, 4, 3)]),
    ("Average", {}, [(2, 4, 3), (2, 4, 3)]),
    ("Maximum", {}, [(2, 4, 3), (2, 4, 3)]),
    ("Minimum", {}, [(2, 4, 3), (2, 4, 3)]),
    ("Concatenate", {"axis": -1}, [(2, 4, 3), (2, 4, 5)]),
]
# get_config keys cnnkit writes that keras.layers.<layer>.from_config would not take
CNNKIT_ONLY_CONFIG_KEYS = {f"SpatialDropout{d}D": {
    "trainable": "every cnnkit layer writes it; Keras's SpatialDropout takes no trainable"}
    for d in (1, 2, 3)}


def _inputs(shape, rng):
    if shape == "ids":
        return rng.integers(0, 7, (3, 5)).astype(np.int64), (3, 5)
    if isinstance(shape, list):
        return [rng.standard_normal(s).astype(np.float32) for s in shape], shape
    return rng.standard_normal(shape).astype(np.float32) * 2, shape


def _np(y):
    return [_np(t) for t in y] if isinstance(y, list) else np.asarray(
        getattr(y, "data", None) if hasattr(y, "data") and isinstance(y.data, np.ndarray)
        else keras.ops.convert_to_numpy(y))


def _pair(name, kwargs, shape, seed=0):
    """(cnnkit layer, keras layer from cnnkit's config with cnnkit's weights, x)."""
    rng = np.random.default_rng(seed)
    x, shapes = _inputs(shape, rng)
    ours = getattr(L, name)(**kwargs)
    ours(x)  # builds
    for w in ours.weights if name != "Normalization" else []:  # non-trivial values
        w.data[...] = rng.uniform(0.5, 1.5, w.shape) if "variance" in w.name else \
            rng.standard_normal(w.shape) * 0.5
    config = {k: v for k, v in ours.get_config().items()
              if k not in CNNKIT_ONLY_CONFIG_KEYS.get(name, {})}
    theirs = getattr(keras.layers, name).from_config(config)
    theirs.build([(None, *s[1:]) for s in shapes] if isinstance(shapes, list)
                 else (None, *shapes[1:]))
    if ours.get_weights() and name != "Normalization":  # Keras adds a count weight
        theirs.set_weights(ours.get_weights())
    return ours, theirs, x


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=[f"{c[0]}-{i}" for i, c in
                                                          enumerate(CASES)])
def test_same_output_shape_and_config_as_keras(name, kwargs, shape):
    ours, theirs, x = _pair(name, kwargs, shape)
    want = keras.ops.convert_to_numpy(theirs(x, training=False))
    got = ours(x, training=False)
    np.testing.assert_allclose(got.data, want, rtol=1e-5, atol=1e-5)
    batch_shape = ([(None, *s.shape[1:]) for s in x] if isinstance(x, list)
                   else (None, *x.shape[1:]))
    assert tuple(ours.compute_output_shape(batch_shape)) == tuple(
        theirs.compute_output_shape(batch_shape))
    # what Keras writes for its own layer, cnnkit writes too (same values, bar dtype policy)
    theirs_cfg, ours_cfg = theirs.get_config(), ours.get_config()
    for key in set(theirs_cfg) & set(ours_cfg) - {"dtype", "name"} - {
            k for k in theirs_cfg if k.endswith(("_initializer", "_regularizer"))}:
        assert _norm(ours_cfg[key]) == _norm(theirs_cfg[key]), key


def _norm(v):
    if isinstance(v, (list, tuple)):  # Keras writes a single axis as (-1,)
        return _norm(v[0]) if len(v) == 1 else [_norm(t) for t in v]
    return v


def test_batch_normalization_training_step_equals_keras():
    ours, theirs, x = _pair("BatchNormalization", {"momentum": 0.9}, (6, 3, 4, 5))
    want = keras.ops.convert_to_numpy(theirs(x, training=True))
    np.testing.assert_allclose(ours(x, training=True).data, want, rtol=1e-4, atol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
