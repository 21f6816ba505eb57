"""Keras's module paths on cnnkit (cnnkit.callbacks, optimizers, losses, metrics, activations,
utils, ops): the names exist, signatures match keras 3 except the listed deliberate
differences, and values equal Keras's on the same inputs."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

from keras_ref import check_signatures  # noqa: E402

import cnnkit  # noqa: E402
from cnnkit import activations, callbacks, losses, metrics, ops, optimizers, utils  # noqa: E402

MODULES = {"callbacks": callbacks, "optimizers": optimizers, "losses": losses,
           "metrics": metrics, "activations": activations, "utils": utils}
# cnnkit names in these modules that keras.<module> lacks, and why
CNNKIT_ONLY = {
    "LossFunctionWrapper": "cnnkit's base for function losses (Keras's is private)",
    "CrossEntropyLoss": "PyTorch-style loss", "MSELoss": "PyTorch-style loss",
    "BCEWithLogitsLoss": "PyTorch-style loss", "EPSILON": "the probability clip, 1e-7",
    "DistillationLoss": "knowledge distillation (the Keras example's loss, as a class)",
    "confusion_matrix": "helper", "accuracy": "per-sample function behind Accuracy",
}
UNSUPPORTED = {"keras only: not implemented"}
_EMA = {k: "not implemented" for k in ("use_ema", "ema_momentum", "ema_overwrite_frequency",
                                       "loss_scale_factor", "gradient_accumulation_steps")}
_TORCH = {k: "PyTorch-style alias" for k in ("params", "lr", "betas", "eps", "alpha",
                                             "dampening", "lr_decay")}
_WD = {"weight_decay": "0.0 means no decay, as Keras's None"}
_DTYPE = {"dtype": "float32 only"}
DELIBERATE = {
    "callbacks.TerminateOnNaN": {"stream": "where the message goes",
                                 "raise_error": "not implemented"},
    "callbacks.ProgbarLogger": {k: "display options (Keras takes none)" for k in (
        "stream", "clock", "interval", "dynamic")},
    "callbacks.LambdaCallback": {k: "taken through **kwargs (any hook name)" for k in (
        "on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end",
        "on_train_batch_begin", "on_train_batch_end")},
    "optimizers.Optimizer": {k: "Keras's base takes them through **kwargs" for k in (
        "params", "learning_rate", "weight_decay", "clipnorm", "clipvalue",
        "global_clipnorm", "name", "lr")} | _EMA,
    **{f"optimizers.{n}": {**_EMA, **_TORCH, **_WD,
                           "formula": "epsilon placement: 'auto' is torch's when given "
                                      "parameters, else Keras's"}
       for n in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")},
    **{f"losses.{n}": {**_DTYPE, "axis": "class axis is the last one"} for n in (
        "Loss", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
        "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError", "Huber",
        "KLDivergence", "sparse_categorical_crossentropy", "binary_crossentropy")},
    **{f"losses.{n}": {**_DTYPE, "axis": "class axis is the last one",
                       "label_smoothing": "cnnkit: smoothing for integer labels too"}
       for n in ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy")},
    "losses.deserialize": {"config": "one argument", "name": "Keras names it config",
                           "custom_objects": "not implemented"},
    **{f"metrics.{n}": dict(_DTYPE) for n in (
        "Metric", "MeanMetricWrapper", "Accuracy", "SparseCategoricalAccuracy",
        "CategoricalAccuracy", "BinaryAccuracy", "TopKCategoricalAccuracy",
        "MeanSquaredError", "MeanAbsoluteError")},
    "metrics.Mean": {**_DTYPE, "name": "None gives the default name"},
    "metrics.SparseTopKCategoricalAccuracy": {**_DTYPE, "from_sorted_ids": "not implemented"},
    "metrics.sparse_top_k_categorical_accuracy": {"from_sorted_ids": "not implemented"},
    "metrics.Precision": {**_DTYPE, "average": "cnnkit: multi-class micro/macro averaging",
                          "name": "default name 'precision'", "top_k": "not implemented"},
    "metrics.Recall": {**_DTYPE, "average": "cnnkit: multi-class micro/macro averaging",
                       "name": "default name 'recall'", "top_k": "not implemented"},
    "metrics.F1Score": {**_DTYPE, "average": "cnnkit returns one number (macro) by default",
                        "class_id": "cnnkit: F1 of one class"},
    "metrics.deserialize": {"custom_objects": "not implemented"},
    "activations.hard_sigmoid": {"alpha": "slope, Keras's 1/6", "beta": "offset, Keras's 0.5"},
}
# cnnkit.ops against keras.ops: argument names and defaults
OPS_DELIBERATE = {
    "conv": {"bias": "cnnkit: fused bias (after Keras's arguments)",
             "groups": "cnnkit: grouped convolution"},
    "max_pool": {"dilation_rate": "PyTorch's", "ceil_mode": "PyTorch's"},
    "average_pool": {"dilation_rate": "PyTorch's", "ceil_mode": "PyTorch's",
                     "count_include_pad": "PyTorch's"},
    "max": {"initial": "not implemented"},
    "hard_sigmoid": {"alpha": "slope, Keras's 1/6", "beta": "offset, Keras's 0.5"},
    "leaky_relu": {"alpha": "keyword-only Keras 2 name of negative_slope"},
    "add": {"activation": "cnnkit: a fused ReLU / ReLU6 of the sum (training-graph fusion)"},
}


def _pairs(prefix, ours, theirs, names):
    return {f"{prefix}{n}": (getattr(ours, n), getattr(theirs, n)) for n in names}


def test_modules_are_reachable_as_attributes():
    for name, module in MODULES.items():
        assert getattr(cnnkit, name) is module
    assert utils.to_categorical is cnnkit.utils.to_categorical
    assert cnnkit.initializers.get("he_normal") is not None
    assert cnnkit.regularizers.get("l2") is not None


def test_every_name_is_keras_or_listed_and_signatures_match():
    pairs = {}
    for mod_name, module in MODULES.items():
        kmod = getattr(keras, mod_name)
        for name in module.__all__:
            if not hasattr(kmod, name):
                assert name in CNNKIT_ONLY, f"cnnkit.{mod_name}.{name} is not in keras"
                continue
            if callable(getattr(module, name)):
                pairs[f"{mod_name}.{name}"] = (getattr(module, name), getattr(kmod, name))
    # callbacks added after this review may lack some of Keras's arguments
    reviewed = {p for p in pairs if not p.startswith("callbacks.")} | {
        f"callbacks.{n}" for n in ("Callback", "CallbackList", "History", "EarlyStopping",
                                   "ModelCheckpoint", "ReduceLROnPlateau", "CSVLogger",
                                   "LearningRateScheduler", "TerminateOnNaN", "LambdaCallback",
                                   "ProgbarLogger")}
    assert check_signatures(pairs, DELIBERATE, reviewed) == []


def test_keras_names_users_type_exist():
    for mod_name, names in {
        "callbacks": ["Callback", "EarlyStopping", "ModelCheckpoint", "History", "CSVLogger",
                      "LearningRateScheduler", "ReduceLROnPlateau", "TerminateOnNaN",
                      "LambdaCallback", "ProgbarLogger"],
        "optimizers": ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get"],
        "losses": ["SparseCategoricalCrossentropy", "CategoricalCrossentropy",
                   "BinaryCrossentropy", "MeanSquaredError", "get"],
        "metrics": ["Accuracy", "SparseCategoricalAccuracy", "Precision", "Recall", "get"],
        "activations": ["relu", "gelu", "softmax", "leaky_relu", "get", "serialize"],
    }.items():
        for name in names:
            assert hasattr(MODULES[mod_name], name), f"cnnkit.{mod_name}.{name}"


def test_ops_signatures_match_keras_ops():
    names = [n for n in dir(ops) if not n.startswith("_") and hasattr(keras.ops, n)
             and callable(getattr(ops, n)) and not isinstance(getattr(ops, n), type)]
    assert len(names) > 30
    assert check_signatures(_pairs("", ops, keras.ops, names), OPS_DELIBERATE) == []


@pytest.mark.parametrize("name", ["relu", "relu6", "leaky_relu", "elu", "selu", "gelu",
                                  "sigmoid", "hard_sigmoid", "tanh", "silu", "swish",
                                  "softplus", "softmax", "log_softmax", "hard_silu", "linear"])
def test_activations_equal_keras(name):
    x = np.random.default_rng(0).standard_normal((3, 7)).astype(np.float32) * 4
    want = keras.ops.convert_to_numpy(getattr(keras.activations, name)(x))
    got = getattr(activations, name)(x)
    np.testing.assert_allclose(getattr(got, "data", got), want, rtol=1e-5, atol=1e-6)
    got = activations.get(name)(x)
    np.testing.assert_allclose(getattr(got, "data", got), want, rtol=1e-5, atol=1e-6)


def test_relu_arguments_equal_keras():
    x = np.linspace(-4, 8, 25, dtype=np.float32)
    for kw in [{"negative_slope": 0.1}, {"max_value": 6.0}, {"threshold": 1.5},
               {"negative_slope": 0.2, "threshold": 1.0, "max_value": 5.0}]:
        want = keras.ops.convert_to_numpy(keras.activations.relu(x, **kw))
        np.testing.assert_allclose(activations.relu(x, **kw).data, want, rtol=1e-6, atol=1e-7)


def test_ops_defaults_equal_keras_ops():
    x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    for fn in ["leaky_relu", "gelu", "hard_sigmoid"]:
        want = keras.ops.convert_to_numpy(getattr(keras.ops, fn)(x))
        np.testing.assert_allclose(getattr(ops, fn)(x).data, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ops.leaky_relu(np.array([-1.0], np.float32)).data, [-0.2])
    pair = [x, x[::-1]]
    for fn in ["concatenate", "stack"]:
        want = keras.ops.convert_to_numpy(getattr(keras.ops, fn)(pair))
        np.testing.assert_array_equal(getattr(ops, fn)(pair).data, want)
    np.testing.assert_array_equal(ops.clip(x, x_min=-0.5, x_max=0.5).data,
                                  keras.ops.convert_to_numpy(keras.ops.clip(x, -0.5, 0.5)))
    np.testing.assert_array_equal(ops.reshape(x, newshape=(3, 8)).data, x.reshape(3, 8))
    np.testing.assert_array_equal(ops.pad(x, [(1, 0), (0, 2)]).data,
                                  keras.ops.convert_to_numpy(keras.ops.pad(x, [(1, 0), (0, 2)])))
    for fn in ["add", "subtract", "multiply", "divide", "power", "matmul"]:
        b = np.abs(x.T) + 1 if fn == "matmul" else np.abs(x) + 1
        want = keras.ops.convert_to_numpy(getattr(keras.ops, fn)(x1=np.abs(x), x2=b))
        np.testing.assert_allclose(getattr(ops, fn)(x1=np.abs(x), x2=b).data, want, rtol=1e-5)


def test_conv_and_pool_ops_take_keras_arguments():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 6, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    for fn, args in [("conv", (x, w, 2, "same", "channels_last", 1)),
                     ("max_pool", (x, 3, 2, "same", "channels_last")),
                     ("average_pool", (x, 2, 1, "valid", None))]:
        want = keras.ops.convert_to_numpy(getattr(keras.ops, fn)(*args))
        np.testing.assert_allclose(getattr(ops, fn)(*args).data, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="channels_last"):
        ops.conv(x, w, data_format="channels_first")


def test_to_categorical_equals_keras():
    for y, k in [(np.array([0, 2, 1, 2]), None), (np.array([[1], [0], [3]]), 5),
                 (np.array([[0, 1], [2, 2]]), 3)]:
        np.testing.assert_array_equal(utils.to_categorical(y, k),
                                      keras.utils.to_categorical(y, k))
    with pytest.raises(ValueError, match="class ids must be in"):
        utils.to_categorical(np.array([0, 3]), 3)


@pytest.mark.parametrize("name", ["SparseCategoricalCrossentropy", "CategoricalCrossentropy",
                                  "BinaryCrossentropy", "MeanSquaredError",
                                  "MeanAbsoluteError", "Huber", "KLDivergence"])
def test_losses_equal_keras(name):
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((6, 4)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y = {"SparseCategoricalCrossentropy": rng.integers(0, 4, 6),
         "CategoricalCrossentropy": np.eye(4, dtype=np.float32)[rng.integers(0, 4, 6)],
         "BinaryCrossentropy": (rng.random((6, 4)) > 0.5).astype(np.float32)}.get(
        name, rng.random((6, 4)).astype(np.float32))
    kw = {"from_logits": True} if "Crossentropy" in name else {}
    pred = logits if kw else probs
    want = float(keras.ops.convert_to_numpy(getattr(keras.losses, name)(**kw)(y, pred)))
    got = getattr(losses, name)(**kw)(y, pred)
    assert float(getattr(got, "data", got)) == pytest.approx(want, rel=1e-5)
