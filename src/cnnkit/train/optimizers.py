"""Optimizers: SGD, Adam, AdamW, RMSprop, Adagrad.

Both usage styles work:

* PyTorch style: ``opt = Adam(params, lr=1e-3)``; ``opt.zero_grad()``; ``loss.backward()``;
  ``opt.step()`` updates every parameter whose ``.grad`` is not None.
* Keras style: ``opt = Adam(learning_rate=1e-3)``; then ``opt.apply_gradients(zip(grads,
  params))`` (or ``opt.build(params)`` and ``opt.step(params)``).

Parameters are :class:`cnnkit.Tensor` objects; updates are written into ``param.data`` in
place (layers holding the Tensor see them) and in the parameter's dtype.

Adam, AdamW, RMSprop and Adagrad place epsilon as the habit they are built in expects:
``formula="auto"`` (the default) is torch's when parameters are given (``Adam(model.parameters())``)
and Keras's otherwise (``Adam(learning_rate=...)``, ``compile(optimizer="adam")``); pass
``formula="torch"`` or ``"keras"`` to choose. Everything else follows ``torch.optim``, which Keras
matches:

* ``weight_decay`` of SGD, Adam, RMSprop and Adagrad is coupled L2 as in torch:
  ``g <- g + weight_decay * p``. AdamW's is decoupled: ``p <- p * (1 - lr * weight_decay)``
  before the Adam step (torch ``AdamW`` = Keras ``AdamW``).
* Adam's epsilon, torch: outside the square root of the *bias-corrected* second moment,
  ``p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``; Keras adds eps to
  ``sqrt(v)`` before bias correction, which differs only by a factor ``sqrt(1 - b2^t)`` on eps.
  The default epsilon is Keras's 1e-7 (torch's is 1e-8).
* RMSprop and Adagrad: torch adds epsilon outside the square root, Keras inside.
* Gradient clipping is Keras's: ``clipvalue`` (elementwise), ``clipnorm`` (each parameter's
  gradient rescaled to norm <= clipnorm), ``global_clipnorm`` (all gradients of the step
  rescaled together); at most one of them. Clipping happens before weight decay is added.
* Schedules: ``learning_rate`` may be a float or a callable ``step -> lr``
  (see :mod:`cnnkit.train.schedules`); update ``k`` (0-based) uses ``schedule(k)``.

The classes live in ``optimizer_base`` (Optimizer), ``optimizer_sgd`` (SGD) and
``optimizer_adaptive`` (Adam, AdamW, RMSprop, Adagrad); this module re-exports them and looks
optimizers up by name (``get``, ``serialize``).
"""

from __future__ import annotations

from typing import Any

from .optimizer_adaptive import Adagrad, Adam, AdamW, RMSprop
from .optimizer_base import LearningRate as LearningRate  # re-exported for type hints
from .optimizer_base import Optimizer
from .optimizer_sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get", "serialize"]

_REGISTRY: dict[str, type[Optimizer]] = {
    "sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """``optimizer.get_config()`` (flat, with ``"class_name"``)."""
    return optimizer.get_config()


def get(identifier: str | Optimizer | dict[str, Any], **kwargs: Any) -> Optimizer:
    """An optimizer from a name (``"adam"``; ``kwargs`` go to the constructor), an instance
    (returned as is) or a config dict (flat ``get_config()`` output or Keras-style
    ``{"class_name": ..., "config": {...}}``). Names match case-insensitively."""
    if isinstance(identifier, Optimizer):
        return identifier
    known = ", ".join(f"'{k}'" for k in _REGISTRY)
    if isinstance(identifier, str):
        cls = _REGISTRY.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier!r}; known: {known}")
        return cls(**kwargs)
    if isinstance(identifier, dict) and "class_name" in identifier:
        name = str(identifier["class_name"])
        cls = _REGISTRY.get(name.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {name!r}; known: {known}")
        nested = identifier.get("config")
        config = dict(nested) if isinstance(nested, dict) else {
            k: v for k, v in identifier.items() if k != "class_name"}
        config.update(kwargs)
        return cls.from_config(config)
    raise ValueError(f"cannot interpret {identifier!r} as an optimizer; expected a name "
                     f"({known}), an Optimizer or a config dict with 'class_name'")
