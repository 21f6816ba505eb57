"""Parameter counts in either convention.

Keras (``summary()``, ``model.count_params()``) counts batch-norm moving mean and variance
as non-trainable parameters; PyTorch/torchvision (``sum(p.numel() for p in m.parameters())``)
keeps them as buffers and does not count them. ``count_params(model)`` gives the torchvision
figure by default, ``count_params(model, include_moving_stats=True)`` the Keras one.
"""

from __future__ import annotations

from typing import Any

from ..layers.normalization import BatchNormalization

__all__ = ["count_params", "iter_layers"]


def iter_layers(model: Any) -> list[Any]:
    """Every leaf layer of ``model``, descending into nested models, each once."""
    out: list[Any] = []
    seen: set[int] = set()

    def walk(layer: Any) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        subs = getattr(layer, "layers", None)
        if isinstance(subs, list) and subs and subs[0] is not layer:
            for s in subs:
                walk(s)
        else:
            out.append(layer)

    walk(model)
    return out


def count_params(model: Any, include_moving_stats: bool = False) -> int:
    """Number of scalars in the model's weights, leaving out every BatchNormalization's
    moving_mean and moving_variance (the PyTorch convention) unless
    ``include_moving_stats=True`` (the Keras convention, as ``model.count_params()``)."""
    total = int(sum(w.size for w in model.weights))
    if include_moving_stats:
        return total
    stats: dict[int, int] = {}
    for layer in iter_layers(model):
        if isinstance(layer, BatchNormalization) and layer.built:
            for w in (layer.moving_mean, layer.moving_variance):
                stats[id(w)] = int(w.size)
    return total - sum(stats.values())
