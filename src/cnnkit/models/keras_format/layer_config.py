"""One layer's config, Keras <-> cnnkit. cnnkit's layers take Keras's argument names, so most
keys pass through; this module handles what differs: dtype policies, initializer, regularizer
and constraint objects, Keras 2 spellings, and arguments cnnkit does not have (dropped when
their value cannot change the outputs, refused with a message otherwise).

Only classes that Keras ships and cnnkit also defines are read: a ``Lambda`` (Python code),
a custom or registered class, or any unknown name is refused with a message that names it.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Any

from ...layers.base import Layer
from .errors import KerasFileError

_DROPPED = object()  # an initializer, regularizer or constraint cnnkit does not have
CODE_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda"}
MODEL_CLASSES = {"Functional", "Model", "Sequential"}
# cnnkit layers that Keras does not have (writing them would give a file Keras cannot open)
NOT_KERAS = {"Layer", "Lambda", "L2Normalize", "KerasTensor", "Input",
             # cnnkit's own: SyncBatchNormalization, and the ONNX importer's operator layers
             "SyncBatchNormalization", "ConstantOperand", "UnaryMath", "Clip", "HardSigmoid",
             "LogSoftmax", "Cast", "Divide", "Power", "MatMul", "LocalResponseNormalization",
             "Reduce", "ArgMax", "Slice", "Split", "Squeeze", "ExpandDims", "Gather", "Pad",
             "Resize", "GridHead"}
# arguments cnnkit lacks whose value must be this (anything else changes the outputs)
_DEFAULT_ONLY: dict[str, Any] = {
    "data_format": "channels_last", "renorm": False, "synchronized": False, "sparse": False,
    "ragged": False, "optional": False, "lora_rank": None, "quantization_config": None,
    "renorm_clipping": None, "input_length": None, "unbiased_variance": False,
    "crop_to_aspect_ratio": False, "pad_to_aspect_ratio": False, "antialias": False,
    "rms_scaling": False}
# per class: arguments that only matter with an option _DEFAULT_ONLY has already refused
_CLASS_IGNORED = {"Resizing": {"fill_mode", "fill_value"}}
# arguments cnnkit lacks that never change what a layer computes
_IGNORED = {"renorm_momentum", "autocast", "lora_alpha", "seed", "input_dtype", "name_scope",
            "module", "registered_name", "shared_object_id", "build_config", "weights"}
_INT_AXIS = {"BatchNormalization", "Normalization", "Softmax", "Concatenate"}  # Keras: [axis]
_BASE_ARGS = {"name", "trainable", "dtype", "input_shape", "batch_input_shape", "input_dim",
              "activity_regularizer"}
# Keras's VarianceScaling family by class name: (scale, mode, distribution)
_VARIANCE = {"GlorotUniform": (1.0, "fan_avg", "uniform"),
             "GlorotNormal": (1.0, "fan_avg", "truncated_normal"),
             "HeUniform": (2.0, "fan_in", "uniform"), "HeNormal": (2.0, "fan_in",
                                                                   "truncated_normal"),
             "LecunUniform": (1.0, "fan_in", "uniform"),
             "LecunNormal": (1.0, "fan_in", "truncated_normal")}


@functools.cache
def cnnkit_classes() -> dict[str, type]:
    """Keras class name -> cnnkit layer class, for every layer both libraries have."""
    from ... import layers as L

    table = {}
    for name in L.__all__:
        cls = getattr(L, name)
        if isinstance(cls, type) and issubclass(cls, Layer) and name not in NOT_KERAS:
            table[name] = cls
    return table


@functools.cache
def _accepted(cls: type) -> frozenset[str]:
    params = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        sig = inspect.signature(init)
        params |= {k for k, p in sig.parameters.items()
                   if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            break
    return frozenset((params | _BASE_ARGS) - {"self"})


def refuse_custom(entry: dict, where: str) -> str:
    """The class name of a layer entry, or KerasFileError for code, custom or unknown classes."""
    name = entry.get("class_name")
    if not isinstance(name, str):
        raise KerasFileError(f"{where}: a layer entry has no 'class_name'")
    label = f"{where}: layer {name[:80]!r}"
    layer_name = _layer_name(entry)
    if layer_name:
        label += f" named {layer_name[:80]!r}"
    if name in CODE_LAYERS:
        raise KerasFileError(f"{label} holds Python code (a Lambda); cnnkit never runs code from "
                             f"a file. Rebuild that part with cnnkit layers and load the "
                             f"weights with load_weights")
    module, registered = entry.get("module"), entry.get("registered_name")
    custom = (isinstance(module, str) and not module.startswith("keras")) or (
        isinstance(registered, str) and registered not in (name, "Functional")
        and name not in MODEL_CLASSES)
    if custom:
        raise KerasFileError(f"{label} is a custom class (module {module!r}, registered as "
                             f"{registered!r}); cnnkit reads only Keras's built-in layers")
    if name not in cnnkit_classes() and name not in MODEL_CLASSES:
        raise KerasFileError(f"{label} is not a Keras layer cnnkit has (a custom class?); "
                             f"supported: {sorted(cnnkit_classes())}")
    return name


def _layer_name(entry: dict) -> str | None:
    cfg = entry.get("config")
    name = cfg.get("name") if isinstance(cfg, dict) else None
    return name if isinstance(name, str) else entry.get("name") if isinstance(
        entry.get("name"), str) else None


def _dtype(value: Any, is_input: bool) -> Any:
    if isinstance(value, dict):  # Keras 3 DTypePolicy
        value = (value.get("config") or {}).get("name", "float32")
    if not isinstance(value, str):
        return "float32"
    if is_input:
        return value if value in ("float64", "int32", "int64", "uint8") else "float32"
    return "float64" if value == "float64" else "float32"  # mixed_* keeps float32 variables


def _initializer(value: Any) -> Any:
    from ... import initializers

    if not isinstance(value, dict):
        return value
    name, cfg = value.get("class_name"), value.get("config") or {}
    if name in _VARIANCE:
        scale, mode, dist = _VARIANCE[name]
        value = {"class_name": "VarianceScaling",
                 "config": {"scale": scale, "mode": mode, "distribution": dist}}
    elif isinstance(cfg, dict):
        cls = initializers._CLASSES.get(name)
        keep = _accepted_args(cls) if cls is not None else set()
        value = {"class_name": name, "config": {k: v for k, v in cfg.items() if k in keep}}
    initializers.get(value)  # ValueError / TypeError when cnnkit lacks it
    return value


def _accepted_args(cls: type) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def _activation(value: Any, label: str) -> Any:
    if isinstance(value, dict):  # Keras 3 writes some functions as {"config": "relu", ...}
        inner = value.get("config")
        if value.get("class_name") != "function" or not isinstance(inner, str):
            raise KerasFileError(f"{label}: activation {str(value)[:80]} is a custom object; "
                                 f"only Keras's named activations are read")
        value = inner
    if value is not None and not isinstance(value, str):
        raise KerasFileError(f"{label}: activation must be a name, got {str(value)[:80]}")
    return value


def _optional_object(key: str, value: Any, label: str) -> Any:
    """Regularizers, constraints and initializers: cnnkit's form, or None (with a warning:
    they shape training, never the outputs of the weights read)."""
    from ... import constraints, regularizers

    if value is None:
        return None
    try:
        if key.endswith("_initializer"):
            return _initializer(value)
        if key.endswith("_regularizer"):
            regularizers.get(value)
        else:
            constraints.get(value)
        return value
    except (ValueError, TypeError) as e:
        warnings.warn(f"{label}: {key} {str(value)[:80]} dropped ({e})", stacklevel=4)
        return _DROPPED


def keras_to_cnnkit(name: str, config: Any, where: str) -> dict:
    """The cnnkit config for Keras layer class ``name`` from its Keras (2 or 3) config."""
    cls = cnnkit_classes()[name]
    if not isinstance(config, dict):
        raise KerasFileError(f"{where}: the config of a {name} must be an object")
    label = f"{where}: {name} {str(config.get('name'))[:80]!r}"
    accepted = _accepted(cls)
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "dtype":
            out[key] = _dtype(value, name == "InputLayer")
        elif key == "batch_input_shape" and name == "InputLayer":
            out["batch_shape"] = value
        elif key in accepted:
            if key == "activation":
                value = _activation(value, label)
            elif key.endswith(("_initializer", "_regularizer", "_constraint")):
                value = _optional_object(key, value, label)
                if value is _DROPPED:
                    continue  # cnnkit's default
            out[key] = value
        elif key in _DEFAULT_ONLY:
            if value != _DEFAULT_ONLY[key]:
                raise KerasFileError(f"{label}: {key}={str(value)[:80]} is not supported by "
                                     f"cnnkit (only {_DEFAULT_ONLY[key]!r})")
        elif key.endswith(("_regularizer", "_constraint")):
            _optional_object(key, value, label)  # warns when it is set
        elif key not in _IGNORED and key not in _CLASS_IGNORED.get(name, ()) \
                and not key.endswith("_initializer"):
            raise KerasFileError(f"{label}: argument {key!r}={str(value)[:80]} is not supported "
                                 f"by cnnkit's {name}")
    if name in _INT_AXIS and isinstance(out.get("axis"), list) and len(out["axis"]) == 1:
        out["axis"] = out["axis"][0]
    return out


# ----- cnnkit -> Keras 3 ---------------------------------------------------------------------
_CNNKIT_ONLY = {"input_shape"}


def cnnkit_to_keras(layer: Layer) -> dict:
    """The Keras 3 ``{"module", "class_name", "config", "registered_name"}`` for a layer."""
    name = type(layer).__name__
    if name in CODE_LAYERS:
        raise ValueError(f"layer '{layer.name}' is a Lambda (Python code): a Keras file cannot "
                         f"hold it in a form Keras loads safely; replace it by layers")
    if cnnkit_classes().get(name) is not type(layer):
        raise ValueError(f"layer '{layer.name}' ({name}) has no Keras twin; Keras could not "
                         f"load it. Save as .cnnkit instead")
    cfg = {k: v for k, v in layer.get_config().items() if k not in _CNNKIT_ONLY}
    if name.startswith("SpatialDropout"):
        cfg.pop("trainable", None)  # Keras's SpatialDropout takes no trainable argument
    if name == "Normalization":
        cfg["mean"] = layer.mean.data.reshape(-1).tolist()
        cfg["variance"] = layer.variance.data.reshape(-1).tolist()
    return {"module": "keras.layers", "class_name": name, "config": cfg,
            "registered_name": None}
