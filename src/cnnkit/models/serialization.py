"""Layer and model configs as JSON-ready dicts, and back. No code is ever loaded: a config can
only name classes defined in ``cnnkit.layers`` and ``cnnkit.models``, the layers cnnkit defines
elsewhere (found through a fixed table of cnnkit's own modules), and classes registered with
:func:`register`. Configs are checked field by field as they are walked; any failure to build
from a config raises ValueError naming the layer."""

from __future__ import annotations

import functools
from typing import Any

from ..layers.base import Layer

# cnnkit's layers defined above the models package, imported only when a config names them
# (so a file saved after ``import cnnkit.zoo`` loads in a fresh process)
MAX_LAYERS = 100_000  # per list; files are limited to 20,000 in all (models._meta)


@functools.cache
def _builtin() -> dict[str, type]:
    """Layer classes defined in cnnkit.layers, by class name."""
    from .. import layers as layer_module

    table: dict[str, type] = {}
    for name in dir(layer_module):
        obj = getattr(layer_module, name)
        if isinstance(obj, type) and issubclass(obj, Layer):
            table[obj.__name__] = obj
    return table


def _registry() -> dict[str, type]:
    return {**_builtin(), **_models, **_custom}


_custom: dict[str, type] = {}
_models: dict[str, type] = {}


def register_model_classes(*classes: type) -> None:
    """Called by ``models.model`` as it is imported: this module sits below it, never
    importing it (no cycle), and learns ``Model`` and ``Sequential`` from here."""
    for cls in classes:
        _models[cls.__name__] = cls


def register(cls: type) -> type:
    """Make a Layer subclass loadable from configs by its class name (decorator)."""
    _custom[cls.__name__] = cls
    return cls


def layer_class(name: str) -> type:
    """The class a config's ``class_name`` names, or ValueError."""
    cls = _custom.get(name) or _models.get(name) or _builtin().get(name)
    if cls is None:
        raise ValueError(f"unknown layer class {name[:80]!r} in config; register "
                         f"custom layers with cnnkit.models.register")
    return cls


def serialize(layer: Layer) -> dict:
    """{"class_name": ..., "config": ...} for any registered layer or model."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: dict) -> Layer:
    """Rebuild a layer or model from :func:`serialize` output (ValueError when invalid)."""
    Model, Sequential = _models["Model"], _models["Sequential"]

    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ValueError(f"a layer config must be a dict with 'class_name', got "
                         f"{str(config)[:80]!r}")
    name = config["class_name"]
    cls = layer_class(name)
    cfg = config.get("config", {})
    if not isinstance(cfg, dict):
        raise ValueError(f"the config of a {name} must be an object, got "
                         f"{type(cfg).__name__}")
    builder = getattr(cls.from_config, "__func__", None)
    if builder is Sequential.from_config.__func__:
        _check_sequential(cfg)
    elif builder is Model.from_config.__func__:
        _check_functional(cfg)
    label = f"{name} '{str(cfg.get('name'))[:80]}'"
    try:
        if builder is Sequential.from_config.__func__:
            return _sequential_from_config(cls, cfg)
        return cls.from_config(dict(cfg))
    except MemoryError:
        raise
    except Exception as e:  # a constructor's or builder's complaint about the config values
        kind = "" if isinstance(e, ValueError) else f"{type(e).__name__}: "
        raise ValueError(f"{label}: {kind}{e}") from e


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"invalid model config: {what}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_common(cfg: dict) -> None:
    _need(isinstance(cfg.get("name"), (str, type(None))), "'name' must be a string")
    _need(isinstance(cfg.get("trainable", True), bool), "'trainable' must be true or false")
    layers = cfg.get("layers")
    _need(isinstance(layers, list) and len(layers) <= MAX_LAYERS,
          f"'layers' must be a list of at most {MAX_LAYERS} layer configs")


def _check_sequential(cfg: dict) -> None:
    _check_common(cfg)
    shape = cfg.get("input_shape")
    _need(shape is None or (isinstance(shape, list) and len(shape) <= 16 and all(
        d is None or (_is_int(d) and d >= 0) for d in shape)),
        "'input_shape' must be a list of sizes >= 0 (or null)")


def _sequential_from_config(cls: type, cfg: dict) -> Any:
    """``Sequential.from_config`` with one build pass at the end (``add`` would rebuild the
    chain after every layer: quadratic in the number of layers a file may declare)."""
    from ..layers.core import InputLayer

    model = cls(name=cfg.get("name"))
    spec = tuple(cfg["input_shape"]) if cfg.get("input_shape") else None
    for lc in cfg["layers"]:
        layer = deserialize(lc)
        if isinstance(layer, InputLayer):
            model.add(layer)  # an Input only as the first element, as add() checks
            spec = model._input_spec
            continue
        if not model._layers and spec is None and layer.input_shape_arg is not None:
            spec = (None, *layer.input_shape_arg)
        model._layers.append(layer)
    if spec is not None:
        model._input_spec = spec
        model._build_chain(spec)
    model.trainable = cfg.get("trainable", True)
    return model


def _pair(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_is_int(i) and i >= 0 for i in v)


def _check_functional(cfg: dict) -> None:
    _check_common(cfg)
    nodes = cfg.get("nodes")
    _need(isinstance(nodes, list), "'nodes' must be a list")
    for n in nodes:
        _need(isinstance(n, dict) and isinstance(n.get("layer"), str), "a node must be an "
              "object naming its 'layer'")
        ins = n.get("inputs")
        _need(ins is None or _pair(ins) or (isinstance(ins, list) and all(map(_pair, ins))),
              "a node's 'inputs' must be null, [node, tensor] or a list of those")
        _need(isinstance(n.get("kwargs", {}), dict), "a node's 'kwargs' must be an object")
    for key in ("inputs", "outputs"):
        v = cfg.get(key)
        _need(isinstance(v, list) and len(v) > 0 and all(map(_pair, v)),
              f"'{key}' must be a non-empty list of [node, tensor] pairs")
    for key in ("single_input", "single_output"):
        _need(isinstance(cfg.get(key), bool), f"'{key}' must be true or false")


def functional_config(model: Any) -> dict:
    """Layers plus the graph: every node in topological order with the tensors it reads."""
    from ..layers.core import InputLayer

    nodes = [n for n in model._nodes]
    input_nodes = [t.node for t in model._inputs]
    ordered = input_nodes + [n for n in nodes if n not in input_nodes]
    where: dict[int, list] = {}
    node_list = []
    for i, n in enumerate(ordered):
        for j, t in enumerate(n.output_tensors):
            where[id(t)] = [i, j]
        if isinstance(n.layer, InputLayer):
            args: Any = None
        elif isinstance(n.inputs, (list, tuple)):
            args = [where[id(t)] for t in n.inputs]
        else:
            args = where[id(n.inputs)]
        node_list.append({"layer": n.layer.name, "inputs": args, "kwargs": n.kwargs})
    return {"name": model.name, "trainable": model.trainable,
            "layers": [serialize(la) for la in model._layers],
            "nodes": node_list,
            "inputs": [where[id(t)] for t in model._inputs],
            "outputs": [where[id(t)] for t in model._outputs],
            "single_input": model._single_input, "single_output": model._single_output}


def _tensor(outputs: list[list[Any]], ref: list[int]) -> Any:
    i, j = ref
    _need(i < len(outputs) and j < len(outputs[i]),
          f"tensor [{i}, {j}] is not the output of an earlier node")
    return outputs[i][j]


def functional_from_config(config: dict, Model: type) -> Any:
    """The functional ``Model`` a :func:`functional_config` describes."""
    layers: dict[str, Layer] = {}
    for lc in config["layers"]:
        layer = deserialize(lc)
        _need(layer.name not in layers, f"two layers are named {layer.name[:80]!r}")
        layers[layer.name] = layer
    outputs: list[list[Any]] = []
    for nc in config["nodes"]:
        layer = layers.get(nc["layer"])
        _need(layer is not None, f"a node names layer {nc['layer'][:80]!r}, which the "
                                 f"config does not define")
        if nc["inputs"] is None:
            _need(hasattr(layer, "output"), f"node of layer {layer.name!r} has no inputs")
            outputs.append([layer.output])
            continue
        spec = nc["inputs"]
        if spec and isinstance(spec[0], list):
            args: Any = [_tensor(outputs, ref) for ref in spec]
        else:
            args = _tensor(outputs, spec)
        out = layer(args, **nc.get("kwargs", {}))
        outputs.append(out if isinstance(out, list) else [out])
    ins = [_tensor(outputs, ref) for ref in config["inputs"]]
    outs = [_tensor(outputs, ref) for ref in config["outputs"]]
    model = Model(ins[0] if config["single_input"] else ins,
                  outs[0] if config["single_output"] else outs, name=config.get("name"))
    model.trainable = config.get("trainable", True)
    return model
