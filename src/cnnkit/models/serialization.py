"""Layer and model configs as JSON-ready dicts, and back. No code is ever loaded: a config can
only name classes registered in ``cnnkit.layers`` and ``cnnkit.models``."""

from __future__ import annotations

from typing import Any

from ..layers.base import Layer


def _registry() -> dict[str, type]:
    from .. import layers as layer_module
    from . import model as model_module

    table: dict[str, type] = {}
    for module in (layer_module, model_module):
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, Layer):
                table[obj.__name__] = obj
    table.update(_custom)
    return table


_custom: dict[str, type] = {}


def register(cls: type) -> type:
    """Make a Layer subclass loadable from configs by its class name (decorator)."""
    _custom[cls.__name__] = cls
    return cls


def serialize(layer: Layer) -> dict:
    """{"class_name": ..., "config": ...} for any registered layer or model."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: dict) -> Layer:
    """Rebuild a layer or model from :func:`serialize` output."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"a layer config must be a dict with 'class_name', got {config!r:.80}")
    table = _registry()
    cls = table.get(config["class_name"])
    if cls is None:
        raise ValueError(f"unknown layer class {config['class_name']!r} in config; register "
                         f"custom layers with cnnkit.models.register")
    return cls.from_config(dict(config.get("config", {})))


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


def functional_from_config(config: dict) -> Any:
    from .model import Model

    layers = {}
    for lc in config["layers"]:
        layer = deserialize(lc)
        layers[layer.name] = layer
    outputs: list[list[Any]] = []
    for nc in config["nodes"]:
        layer = layers[nc["layer"]]
        if nc["inputs"] is None:
            outputs.append([layer.output])
            continue
        spec = nc["inputs"]
        if spec and isinstance(spec[0], list):
            args: Any = [outputs[i][j] for i, j in spec]
        else:
            args = outputs[spec[0]][spec[1]]
        out = layer(args, **nc.get("kwargs", {}))
        outputs.append(out if isinstance(out, list) else [out])
    ins = [outputs[i][j] for i, j in config["inputs"]]
    outs = [outputs[i][j] for i, j in config["outputs"]]
    model = Model(ins[0] if config["single_input"] else ins,
                  outs[0] if config["single_output"] else outs, name=config.get("name"))
    model.trainable = config.get("trainable", True)
    return model

