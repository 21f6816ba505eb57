"""Rebuilding a model with fewer channels: each layer's config gets its new width and each
weight keeps the rows and columns of the channels that stay."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import layers as L
from ...models import deserialize, serialize
from .channel_graph import ChannelGraph


def keep_mask(g: ChannelGraph, atoms: np.ndarray, removed: set[int]) -> np.ndarray:
    """True for each channel whose set is kept."""
    return np.array([r not in removed for r in g.roots(atoms).tolist()], dtype=bool)


def _sliced(layer: Any, w_name: str, data: np.ndarray, i: np.ndarray | None,
            o: np.ndarray | None) -> np.ndarray:
    """One weight with input mask ``i`` and output mask ``o`` applied."""
    if isinstance(layer, L.BatchNormalization):
        return data[i]
    if isinstance(layer, L.DepthwiseConv2D):
        return data[..., i, :] if w_name == "kernel" else data[o]
    if isinstance(layer, L.SeparableConv2D):
        if w_name == "depthwise_kernel":
            return data[..., i, :]
        if w_name == "pointwise_kernel":
            mid = np.repeat(i, layer.depth_multiplier)
            return data[..., mid, :][..., o]
        return data[o]
    if w_name == "kernel":  # Dense (in, out) and Conv (*K, in, out)
        return data[..., i, :][..., o]
    return data[o]


def _walk_configs(obj: Any, found: dict[str, dict]) -> None:
    """Every layer config dict in a serialized model, by layer name."""
    if isinstance(obj, dict):
        cfg = obj.get("config")
        if isinstance(obj.get("class_name"), str) and isinstance(cfg, dict) and isinstance(
                cfg.get("name"), str):
            found.setdefault(cfg["name"], cfg)
        for v in obj.values():
            _walk_configs(v, found)
    elif isinstance(obj, list):
        for v in obj:
            _walk_configs(v, found)


def rebuild(model: Any, g: ChannelGraph, removed: set[int]) -> Any:
    """A new model of the same graph without the channel sets in ``removed`` (root atoms)."""
    masks_in = {n: keep_mask(g, a, removed) for n, a in g.layer_in.items()}
    masks_out = {n: keep_mask(g, a, removed) for n, a in g.layer_out.items()}
    config = serialize(model)
    configs: dict[str, dict] = {}
    _walk_configs(config, configs)
    for name, o in masks_out.items():
        layer = g.layers[name]
        key = "units" if isinstance(layer, L.Dense) else "filters"
        if key in configs[name]:
            configs[name][key] = int(o.sum())
    new = deserialize(config)
    old_layers = {la.name: la for la in model.layers}
    for layer in new.layers:
        old = old_layers[layer.name]
        if not old.weights:
            continue
        i, o = masks_in.get(layer.name), masks_out.get(layer.name)
        if i is None and o is None:
            layer.set_weights(old.get_weights())
            continue
        values = [_sliced(old, w.name.rsplit("/", 1)[-1], w.data, i, o) for w in old.weights]
        layer.set_weights(values)
    for attr in ("class_names", "seed"):
        if getattr(model, attr, None) is not None:
            setattr(new, attr, getattr(model, attr))
    return new
