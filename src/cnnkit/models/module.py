"""``Module``: the PyTorch-style subclassable model (``forward`` instead of ``call``), exposed as
``cnnkit.nn.Module``; it lives here so that every Layer class sits where ``load_model`` looks."""

from __future__ import annotations

from typing import Any

from .model import Model

__all__ = ["Module"]


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
