"""A cnnkit model as a Keras 3 config (what ``config.json`` holds): layers in the order Keras
will list them, each functional layer with its calls (``inbound_nodes``) as references
``[layer, call, tensor]`` to the tensors it reads."""

from __future__ import annotations

from typing import Any

from ...layers.core import InputLayer
from .layer_config import cnnkit_to_keras
from .tree import Entry


def _input_entry(name: str, shape: Any, dtype: Any = "float32") -> dict:
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": list(shape), "dtype": str(dtype), "sparse": False,
                       "ragged": False, "name": name},
            "registered_name": None}


def entry_config(e: Entry) -> dict:
    """The Keras 3 config of one entry (a layer, or a nested model)."""
    if e.class_name == "Sequential":
        return sequential_config(e)
    if e.class_name == "Functional":
        return functional_config(e)
    if isinstance(e.layer, InputLayer):
        return _input_entry(e.layer.name, (e.layer.batch_size, *e.layer.shape),
                            e.layer.dtype.name)
    return cnnkit_to_keras(e.layer)


def sequential_config(e: Entry) -> dict:
    model = e.layer
    spec = model._input_spec
    if spec is None:
        raise ValueError(f"Sequential '{model.name}' has no input shape yet; build it "
                         f"before saving it in a Keras format")
    first = model._input_layer_name or f"{model.name}_input"
    layers = [_input_entry(first, spec)] + [entry_config(c) for c in e.children or []]
    return {"module": "keras", "class_name": "Sequential",
            "config": {"name": model.name, "trainable": model.trainable, "dtype": "float32",
                       "layers": layers},
            "registered_name": None, "build_config": {"input_shape": list(spec)}}


def _keras_tensor(t: Any, where: dict[int, list]) -> dict:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(t.shape), "dtype": str(t.dtype),
                       "keras_history": where[id(t)]}}


def functional_config(e: Entry) -> dict:
    model = e.layer
    where: dict[int, list] = {}
    calls: dict[int, list] = {id(c.layer): [] for c in e.children or []}
    for node in model._nodes:
        idx = len(calls[id(node.layer)])
        for j, t in enumerate(node.output_tensors):
            where[id(t)] = [node.layer.name, idx, j]
        if isinstance(node.layer, InputLayer):
            calls[id(node.layer)].append(None)
            continue
        ins = [_keras_tensor(t, where) for t in node.input_tensors]
        arg = ins if isinstance(node.inputs, (list, tuple)) else ins[0]
        calls[id(node.layer)].append({"args": [arg], "kwargs": {}})
    layers = []
    for c in e.children or []:
        cfg = entry_config(c)
        cfg["name"] = c.layer.name
        cfg["inbound_nodes"] = [n for n in calls[id(c.layer)] if n is not None]
        layers.append(cfg)
    ins = [where[id(t)] for t in model._inputs]
    outs = [where[id(t)] for t in model._outputs]
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": model.name, "trainable": model.trainable, "layers": layers,
                       "input_layers": ins[0] if model._single_input else ins,
                       "output_layers": outs[0] if model._single_output else outs},
            "registered_name": "Functional"}


def legacy_config(entry: dict) -> dict:
    """The same config as Keras 3's legacy .h5 writer words it (layer entries without their
    module, registered name and build config)."""
    out = {k: v for k, v in entry.items()
           if k not in ("module", "registered_name", "build_config")}
    cfg = out.get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("layers"), list):
        out["config"] = {**cfg, "layers": [legacy_config(la) for la in cfg["layers"]]}
    return out
