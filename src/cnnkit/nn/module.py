"""``nn.Module`` (a subclassable Model whose ``call`` runs ``forward``) and ``nn.Sequential``."""

from __future__ import annotations

from ..layers.base import Layer
from ..models import Sequential as _KerasSequential
from ..models.module import Module

__all__ = ["Module", "Sequential"]


def Sequential(*layers: Layer, name: str | None = None) -> _KerasSequential:  # noqa: N802
    """``torch.nn.Sequential(a, b, c)``: the layers as positional arguments (Keras takes a
    list); returns a :class:`cnnkit.models.Sequential`."""
    if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
        layers = tuple(layers[0])
    return _KerasSequential(list(layers), name=name)
