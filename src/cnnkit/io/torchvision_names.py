"""Load torchvision state dicts into the zoo's models by name.

The zoo names every weighted layer after the torchvision module it stands for
("layer1.0.conv1", "features.1.conv.0.0", "classifier.1"), so a checkpoint tensor
``<module>.<leaf>`` (``weight``, ``bias``, ``running_mean``, ``running_var``) goes to the
cnnkit layer named ``<module>`` with the layout conversions of
:mod:`cnnkit.io.torch_weights`. A Dense layer fed (through dropout or activations) by a
Flatten of a spatial map gets PyTorch's (C, H, W) feature order converted (AlexNet, VGG).

``num_batches_tracked`` buffers are ignored. With ``strict=True`` (default) every weighted
layer must be covered and every checkpoint module must exist in the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .torch_checkpoint import load_state_dict
from .torch_weights import _groups, as_state_dict, convert_module

__all__ = ["load_torchvision_weights", "named_layers"]

_PASS_THROUGH = {"Dropout", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"}


def named_layers(model: Any) -> dict[str, Any]:
    """{layer name: layer} for every leaf layer, descending into nested models (whose layer
    names are then prefixed with ``<nested model name>.``)."""
    out: dict[str, Any] = {}

    def walk(m: Any, prefix: str) -> None:
        for layer in m.layers:
            subs = getattr(layer, "layers", None)
            if isinstance(subs, list) and layer is not m and hasattr(layer, "_layers"):
                walk(layer, f"{prefix}{layer.name}.")
            else:
                out[prefix + layer.name] = layer

    walk(model, "")
    return out


def _flatten_sources(model: Any) -> dict[int, tuple]:
    """{id(Dense layer): channels-last shape flattened just before it} for a functional
    model's Dense layers fed by a Flatten of a tensor of rank >= 3."""
    nodes = getattr(model, "_nodes", None)
    if nodes is None:
        return {}
    shapes, _ = model.node_shapes()
    out: dict[int, tuple] = {}
    for node in nodes:
        if type(node.layer).__name__ != "Dense":
            continue
        t = node.input_tensors[0]
        while t.node is not None and type(t.node.layer).__name__ in _PASS_THROUGH:
            t = t.node.input_tensors[0]
        src = t.node
        if src is not None and type(src.layer).__name__ == "Flatten":
            shape = shapes[id(src.input_tensors[0])]
            if len(shape) >= 3:
                out[id(node.layer)] = tuple(shape[1:])
    return out


def load_torchvision_weights(model: Any, state_dict_or_path: Any, strict: bool = True) -> None:
    """Copy a torchvision-layout state dict (a dict of arrays/tensors, or a ``.pth`` path read
    without PyTorch) into the zoo model whose layer names are the torchvision module paths.

    Raises ValueError naming the module and layer on a missing, unexpected or mis-shaped
    tensor (and what :func:`~cnnkit.io.torch_checkpoint.load_state_dict` raises for a path);
    nothing is assigned unless every tensor converts."""
    if isinstance(state_dict_or_path, (str, Path)):
        state = load_state_dict(state_dict_or_path)
    else:
        state = as_state_dict(state_dict_or_path)
    by_name = named_layers(model)
    flats = _flatten_sources(model)
    groups = dict(_groups(state))
    unexpected = [m for m in groups if m not in by_name or not by_name[m].weights]
    weighted = [n for n, la in by_name.items() if la.weights]
    missing = [n for n in weighted if n not in groups]
    if strict and (unexpected or missing):
        parts = []
        if missing:
            parts.append(f"layers without a checkpoint module: {missing[:10]}"
                         f"{' ...' if len(missing) > 10 else ''}")
        if unexpected:
            parts.append(f"checkpoint modules without a layer: {unexpected[:10]}"
                         f"{' ...' if len(unexpected) > 10 else ''}")
        raise ValueError(f"state dict does not match model '{model.name}': "
                         + "; ".join(parts))
    converted = []
    for module, tensors in groups.items():
        layer = by_name.get(module)
        if layer is None or not layer.weights:
            continue
        converted.append((layer, convert_module(layer, tensors, module,
                                                flats.get(id(layer)))))
    for layer, arrays in converted:
        layer.set_weights(arrays)
