"""LayerNormalization and GroupNormalization (Keras semantics), and PReLU.

LayerNormalization: y = gamma * (x - mean) / sqrt(var + epsilon) + beta, statistics per sample
over ``axis`` (gamma, beta: one value per position of ``axis``).
GroupNormalization: channels split into ``groups``; statistics per sample and group over the
spatial axes and the group's channels; gamma, beta per channel.
PReLU: y = max(x, 0) + alpha * min(x, 0), alpha learned per input position (``shared_axes``
share one value along the given axes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import constraints, initializers, ops, regularizers
from ..autograd import Tensor
from ._utils import single_shape
from .base import Layer

__all__ = ["LayerNormalization", "GroupNormalization", "PReLU"]


class _AffineNorm(Layer):
    """Shared arguments of the two normalisations: epsilon, center/scale, gamma/beta."""

    def __init__(self, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 beta_initializer: Any = "zeros", gamma_initializer: Any = "ones",
                 beta_regularizer: Any = None, gamma_regularizer: Any = None,
                 beta_constraint: Any = None, gamma_constraint: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not float(epsilon) > 0.0:
            raise ValueError(f"{type(self).__name__}: epsilon must be > 0, got {epsilon}")
        self.epsilon, self.center, self.scale = float(epsilon), bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma: Tensor | None = None
        self.beta: Tensor | None = None

    def _make_weights(self, pshape: tuple[int, ...]) -> None:
        if self.scale:
            self.gamma = self.add_weight("gamma", pshape, self.gamma_initializer,
                                         self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight("beta", pshape, self.beta_initializer,
                                        self.beta_regularizer, constraint=self.beta_constraint)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint)}


def _int_axes(cls: str, axis: Any) -> int | tuple[int, ...]:
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        return int(axis)
    if (isinstance(axis, Sequence) and not isinstance(axis, str) and len(axis) > 0
            and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis)):
        return tuple(int(a) for a in axis)
    raise ValueError(f"{cls}: axis must be an int or a non-empty list of ints, got {axis!r}")


class LayerNormalization(_AffineNorm):
    """Normalise each sample over ``axis`` (Keras: axis=-1, epsilon=1e-3)."""

    def __init__(self, axis: int | Sequence[int] = -1, epsilon: float = 1e-3, **kwargs: Any):
        super().__init__(epsilon=epsilon, **kwargs)
        self.axis = _int_axes("LayerNormalization", axis)

    def _axes(self, shape: tuple) -> tuple[int, ...]:
        axes = (self.axis,) if isinstance(self.axis, int) else self.axis
        if any(not -len(shape) <= a < len(shape) for a in axes) or \
                0 in {a % len(shape) for a in axes}:
            raise ValueError(f"LayerNormalization '{self.name}': axis {self.axis} is out of "
                             f"range or the batch axis for input shape {shape}")
        return tuple(sorted({a % len(shape) for a in axes}))

    def check_input_shape(self, input_shape: Any) -> None:
        shape = tuple(single_shape(self, input_shape))
        sizes = tuple(shape[a] for a in self._axes(shape))
        if any(s is None for s in sizes):
            raise ValueError(f"LayerNormalization '{self.name}' needs known sizes on axis "
                             f"{self.axis}, got input shape {shape}")
        if self.built and self.gamma is not None and sizes != self.gamma.shape:
            raise ValueError(f"LayerNormalization '{self.name}' was built for sizes "
                             f"{self.gamma.shape} on axis {self.axis}, got input shape {shape}")

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        self._make_weights(tuple(int(shape[a]) for a in self._axes(shape)))

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.layer_norm(inputs, self.gamma, self.beta, axis=self.axis,
                              epsilon=self.epsilon)

    def get_config(self) -> dict:
        axis = self.axis if isinstance(self.axis, int) else list(self.axis)
        return {**super().get_config(), "axis": axis}


class GroupNormalization(_AffineNorm):
    """Normalise each sample per group of channels along ``axis`` (Keras: groups=32, axis=-1):
    ``y = (x - mean_g) / sqrt(var_g + eps) * gamma + beta`` with the statistics over the
    group's channels and every other non-batch axis."""

    def __init__(self, groups: int = 32, axis: int = -1, epsilon: float = 1e-3, **kwargs: Any):
        super().__init__(epsilon=epsilon, **kwargs)
        if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
            raise ValueError(f"GroupNormalization: groups must be a positive int, got {groups!r}")
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or axis == 0:
            raise ValueError(f"GroupNormalization: axis must be a non-batch axis (an int, not 0), "
                             f"got {axis!r}")
        self.groups, self.axis = int(groups), int(axis)

    def _channel_axis(self, rank: int) -> int:
        a = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= a < rank:
            raise ValueError(f"GroupNormalization '{self.name}': axis={self.axis} is not a "
                             f"non-batch axis of a rank-{rank} input")
        return a

    def check_input_shape(self, input_shape: Any) -> None:
        shape = tuple(single_shape(self, input_shape))
        c = shape[self._channel_axis(len(shape))] if len(shape) >= 2 else None
        if c is None or c % self.groups:
            raise ValueError(f"GroupNormalization '{self.name}': the channel axis ({c}) must be "
                             f"known and divisible by groups={self.groups} (input shape "
                             f"{shape})")

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        self._make_weights((int(shape[self._channel_axis(len(shape))]),))

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        rank = len(inputs.shape)
        a = self._channel_axis(rank)
        if a == rank - 1:
            return ops.group_norm(inputs, self.groups, self.gamma, self.beta,
                                  epsilon=self.epsilon)
        # the kernel normalises the last axis: move the channels there and back
        order = [i for i in range(rank) if i != a] + [a]
        y = ops.group_norm(ops.transpose(inputs, order), self.groups, self.gamma, self.beta,
                           epsilon=self.epsilon)
        return ops.transpose(y, [int(i) for i in np.argsort(order)])

    def get_config(self) -> dict:
        return {**super().get_config(), "groups": self.groups, "axis": self.axis}


class PReLU(Layer):
    """y = max(x, 0) + alpha * min(x, 0) with learned alpha of the input's shape (batch axis
    dropped), size 1 on ``shared_axes`` (1-based as in Keras, e.g. [1, 2] for images)."""

    def __init__(self, alpha_initializer: Any = "Zeros", alpha_regularizer: Any = None,
                 alpha_constraint: Any = None, shared_axes: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes: list[int] | None = None
        else:
            axes = [shared_axes] if isinstance(shared_axes, int) else list(shared_axes)
            if not all(isinstance(a, int) and a >= 1 for a in axes):
                raise ValueError(f"PReLU: shared_axes must be axes >= 1 (the batch axis is "
                                 f"0), got {shared_axes!r}")
            self.shared_axes = axes

    def build(self, input_shape: Any) -> None:
        shape = list(tuple(input_shape)[1:])
        for a in self.shared_axes or []:
            if a > len(shape):
                raise ValueError(f"PReLU '{self.name}': shared axis {a} is out of range for "
                                 f"input shape {tuple(input_shape)}")
            shape[a - 1] = 1
        if any(s is None for s in shape):
            raise ValueError(f"PReLU '{self.name}' needs known sizes on the unshared axes, got "
                             f"input shape {tuple(input_shape)}")
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer,
                                     self.alpha_regularizer, constraint=self.alpha_constraint)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.prelu(inputs, self.alpha)

    def get_config(self) -> dict:
        return {**super().get_config(),
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint),
                "shared_axes": self.shared_axes}
