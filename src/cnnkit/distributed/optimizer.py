"""The PyTorch-style loop under MPI: ``DistributedOptimizer(opt)`` averages gradients across the
ranks before each ``step()``; ``broadcast_parameters`` starts every rank from rank 0's weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor
from .comm import init
from .gradients import DEFAULT_BUCKET_BYTES, GradientReducer, broadcast_arrays

__all__ = ["DistributedOptimizer", "broadcast_parameters", "broadcast_optimizer_state"]


def _weights(obj: Any) -> list[Tensor]:
    if hasattr(obj, "weights"):  # a layer or model: trainable and non-trainable (BN stats)
        return list(obj.weights)
    return list(obj)


def broadcast_parameters(model_or_params: Any, root: int = 0, group: Any = None) -> None:
    """Every rank's weights (all of a model's, or the Tensors given) set to rank ``root``'s."""
    g = group or init()
    if g.size > 1:
        broadcast_arrays(g, [w.data for w in _weights(model_or_params)], root)


def broadcast_optimizer_state(optimizer: Any, root: int = 0, group: Any = None) -> None:
    """The optimizer's slots and step counts set to rank ``root``'s (after a resume, say).
    Every rank must hold the same slot names, as after the same number of steps."""
    g = group or init()
    if g.size <= 1:
        return
    state = optimizer.get_state()
    keys = sorted(state)
    arrays = [np.array(state[k], order="C") for k in keys]
    broadcast_arrays(g, arrays, root)
    optimizer.set_state(dict(zip(keys, arrays, strict=True)))


class DistributedOptimizer:
    """Wraps an optimizer: ``step()`` first replaces each gradient with its average over the
    ranks (equal shards, as a DistributedSampler gives), then steps. Everything else
    (``zero_grad``, ``learning_rate``, state) is the wrapped optimizer's."""

    def __init__(self, optimizer: Any, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                 group: Any = None):
        self.optimizer, self.bucket_bytes = optimizer, int(bucket_bytes)
        self.group = group or init()
        self._reducer: GradientReducer | None = None
        self.last_loss: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["optimizer"], name)

    def reduce_gradients(self, params: list[Tensor], loss: float = 0.0) -> float:
        """Average the gradients of ``params``; returns the mean of ``loss`` over the ranks."""
        if self._reducer is None or self._reducer.params != params:
            self._reducer = GradientReducer(self.group, params, self.bucket_bytes)
        return self._reducer.reduce(loss)

    def step(self, params: Any = None) -> None:
        plist = list(params) if params is not None else list(self.optimizer._params)
        if self.group.size > 1 and plist:
            self.reduce_gradients(plist)
        self.optimizer.step(plist or None)
