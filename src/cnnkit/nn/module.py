"""``nn.Module`` (a subclassable Model whose ``call`` runs ``forward``) and ``nn.Sequential``."""

from __future__ import annotations

from typing import Any

from ..layers.base import Layer
from ..models import Model
from ..models import Sequential as _KerasSequential

__all__ = ["Module", "Sequential"]


class Module(Model):
    """Subclass it as in PyTorch: create layers in ``__init__``, write ``forward(x)``.

    ``model(x)`` runs ``forward``; ``model(x, training=True)`` (and ``fit``) run it in training
    mode, which every layer called inside ``forward`` inherits (dropout, batch statistics).
    """

    def __init__(self, name: str | None = None):
        super().__init__(name=name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def call(self, inputs: Any, training: bool = False, **kwargs: Any) -> Any:
        return self.forward(inputs, **kwargs)


def Sequential(*layers: Layer, name: str | None = None) -> _KerasSequential:  # noqa: N802
    """``torch.nn.Sequential(a, b, c)``: the layers as positional arguments (Keras takes a
    list); returns a :class:`cnnkit.models.Sequential`."""
    if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
        layers = tuple(layers[0])
    return _KerasSequential(list(layers), name=name)
