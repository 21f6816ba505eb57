"""BatchNormalization (Keras semantics), channels-last.

y = gamma * (x - mean) / sqrt(var + epsilon) + beta per channel (the ``axis`` kept).

- training=True: mean/var are the batch statistics (biased variance) over every other axis, and
  the moving statistics move in place: moving = momentum * moving + (1 - momentum) * batch.
- training=False: mean/var are the moving statistics.
- A layer with ``trainable=False`` always runs in inference mode, even with training=True
  (Keras: frozen BN layers keep their statistics during fine-tuning).

Weights, in Keras' order: gamma (if ``scale``), beta (if ``center``) - trainable - then
moving_mean and moving_variance (non-trainable), so ``count_params`` is 4*C with both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import collective, constraints, initializers, ops, regularizers
from ..autograd import Tensor
from ..ops.collective import allreduce_sum
from ._utils import channels_error, single_shape
from .base import Layer

__all__ = ["BatchNormalization", "SyncBatchNormalization", "LocalResponseNormalization"]


def _activate(y: Tensor, activation: str | None) -> Tensor:
    """relu(y) / relu6(y) / y for ``activation`` "relu" / "relu6" / None."""
    if activation is None:
        return y
    return ops.relu6(y) if activation == "relu6" else ops.relu(y)


class BatchNormalization(Layer):
    """Normalise each channel with batch (training) or moving (inference) statistics.

    Args:
        axis: the channel axis (or list of axes) kept; -1 for channels-last.
        momentum: moving-average momentum (Keras 0.99; PyTorch's momentum is 1 - this).
        epsilon: added to the variance (Keras 1e-3).
        center, scale: learn beta / gamma.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer, beta_regularizer, gamma_regularizer: as in Keras.
    """

    def __init__(self, axis: int | Sequence[int] = -1, momentum: float = 0.99,
                 epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 beta_initializer: Any = "zeros", gamma_initializer: Any = "ones",
                 moving_mean_initializer: Any = "zeros",
                 moving_variance_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, synchronized: bool = False,
                 unbiased_variance: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.unbiased_variance = bool(unbiased_variance)
        self.synchronized = bool(synchronized)
        if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            self.axis: int | tuple[int, ...] = int(axis)
        elif (isinstance(axis, Sequence) and not isinstance(axis, str) and len(axis) > 0
              and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                      for a in axis)):
            self.axis = tuple(int(a) for a in axis)
        else:
            raise ValueError(f"BatchNormalization: axis must be an int or a non-empty list of "
                             f"ints, got {axis!r}")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum}")
        if not float(epsilon) > 0.0:
            raise ValueError(f"BatchNormalization: epsilon must be > 0, got {epsilon}")
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self._param_shape: tuple[int, ...] | None = None

    def _axes(self, rank: int, shape: tuple) -> tuple[int, ...]:
        axes = (self.axis,) if isinstance(self.axis, int) else self.axis
        for a in axes:
            if not -rank <= a < rank:
                raise ValueError(f"BatchNormalization '{self.name}': axis {self.axis} is out of "
                                 f"range for inputs of rank {rank} (input shape {shape})")
        norm = sorted({a % rank for a in axes})
        if 0 in norm:
            raise ValueError(f"BatchNormalization '{self.name}': axis {self.axis} includes the "
                             f"batch axis (input shape {shape})")
        return tuple(norm)

    def check_input_shape(self, input_shape: Any) -> None:
        shape = single_shape(self, input_shape)
        if len(shape) < 2:
            raise ValueError(f"BatchNormalization '{self.name}' expects inputs of rank >= 2 "
                             f"(batch, ..., channels), got rank {len(shape)} (input shape "
                             f"{shape})")
        sizes = tuple(shape[a] for a in self._axes(len(shape), shape))
        if any(s is None for s in sizes):
            raise ValueError(f"BatchNormalization '{self.name}' needs a known size on axis "
                             f"{self.axis}, got input shape {shape}")
        if self.built and self._param_shape is not None and sizes != self._param_shape:
            expected = self._param_shape[0] if len(sizes) == 1 else self._param_shape
            got = sizes[0] if len(sizes) == 1 else sizes
            raise channels_error(self, expected, got, shape)

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        pshape = tuple(int(shape[a]) for a in self._axes(len(shape), shape))
        self._param_shape = pshape
        self.gamma = self.add_weight("gamma", pshape, self.gamma_initializer,
                                     self.gamma_regularizer, constraint=self.gamma_constraint
                                     ) if self.scale else None
        self.beta = self.add_weight("beta", pshape, self.beta_initializer,
                                    self.beta_regularizer, constraint=self.beta_constraint
                                    ) if self.center else None
        self.moving_mean = self.add_weight("moving_mean", pshape, self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", pshape,
                                               self.moving_variance_initializer,
                                               trainable=False)

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        """x * s + t per channel when the normalised axis is the last one (channels-last)."""
        axis = self.axis
        if isinstance(axis, tuple):
            if len(axis) != 1:
                return None
            axis = axis[0]
        last = axis == -1 or (rank is not None and axis == rank - 1)
        return steps.ChannelAffine(self) if last else None

    def call(self, inputs: Tensor, training: bool = False,
             activation: str | None = None) -> Tensor:
        """``activation`` "relu" / "relu6": return that activation of the result (a model
        passes it for the ReLU layer that alone reads this layer's output; one fused op)."""
        use_batch_stats = bool(training) and self.trainable
        group = collective.get_group() if self.synchronized else None
        if use_batch_stats and group is not None and group.size > 1:
            return _activate(self._call_synchronized(inputs), activation)
        if use_batch_stats and self.unbiased_variance:
            return _activate(self._call_unbiased(inputs), activation)
        return ops.batch_norm(inputs, self.gamma, self.beta, self.moving_mean,
                              self.moving_variance, training=use_batch_stats,
                              momentum=self.momentum, epsilon=self.epsilon,
                              axis=self.axis if isinstance(self.axis, int) else list(self.axis),
                              activation=activation)

    def _call_unbiased(self, inputs: Tensor) -> Tensor:
        """Training step whose moving variance takes var * n / (n - 1): the op's update
        m * old + (1 - m) * var is rescaled on its batch part."""
        old = self.moving_variance.data.copy()
        y = ops.batch_norm(inputs, self.gamma, self.beta, self.moving_mean,
                           self.moving_variance, training=True, momentum=self.momentum,
                           epsilon=self.epsilon,
                           axis=self.axis if isinstance(self.axis, int) else list(self.axis))
        n = inputs.data.size // max(1, int(np.prod(self._param_shape or (1,))))
        if n > 1:
            kept = old * np.float32(self.momentum)
            mv = self.moving_variance.data
            mv[...] = kept + (mv - kept) * np.float32(n / (n - 1))
        return y

    def _call_synchronized(self, inputs: Tensor) -> Tensor:
        """Training step with the statistics of the global batch (every process's samples):
        per channel, sum x, sum x^2 and the count are summed over the processes,
        ``mean = S1 / n``, ``var = S2 / n - mean^2``; the backward sums the same way."""
        if self.axis not in (-1, (-1,)) and self.axis != inputs.ndim - 1:
            raise ValueError(f"BatchNormalization '{self.name}': synchronized statistics need "
                             f"the channel axis last, got axis={self.axis}")
        x = inputs if isinstance(inputs, Tensor) else Tensor(np.asarray(inputs, np.float32))
        axes = tuple(range(x.ndim - 1))
        c = x.shape[-1]
        count = np.full((1, c), x.data.size // c, x.dtype)
        stats = allreduce_sum(ops.concatenate([x.sum(axis=axes).reshape(1, c),
                                               (x * x).sum(axis=axes).reshape(1, c),
                                               Tensor(count)], axis=0))
        n = float(stats.data[2, 0])
        mean = stats[0] / n
        var = stats[1] / n - mean * mean
        y = (x - mean) * (var + self.epsilon) ** -0.5
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        m = np.float32(self.momentum)
        moving_var = var.data * np.float32(n / (n - 1) if self.unbiased_variance and n > 1 else 1)
        self.moving_mean.data[...] = m * self.moving_mean.data + (1 - m) * mean.data
        self.moving_variance.data[...] = m * self.moving_variance.data + (1 - m) * moving_var
        return y

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def compute_macs(self, input_shape: Any, output_shape: Any) -> int:
        """One multiply-add per element (the inference form folds to x * a + b)."""
        rest = input_shape[1:]
        if any(d is None for d in rest):
            return 0
        return int(np.prod([int(d) for d in rest], dtype=np.int64))

    def get_config(self) -> dict:
        return {**super().get_config(),
                "axis": self.axis if isinstance(self.axis, int) else list(self.axis),
                "synchronized": self.synchronized, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(
                    self.moving_variance_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint),
                # only when set, so the config matches Keras' otherwise
                **({"unbiased_variance": True} if self.unbiased_variance else {})}


class L2Normalize(Layer):
    """x / sqrt(sum(x^2) + 1e-12) over the last axis (unit-length embeddings)."""

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        n = ops.sqrt(ops.sum(ops.square(inputs), axis=-1, keepdims=True) + 1e-12)
        return inputs / n


class SyncBatchNormalization(BatchNormalization):
    """``BatchNormalization(synchronized=True)``: in a distributed run, training batches are
    normalised with the statistics of every process's samples together (one process: plain
    batch normalisation)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["synchronized"] = True
        super().__init__(*args, **kwargs)


class LocalResponseNormalization(Layer):
    """AlexNet's LRN across channels (ONNX LRN, torch LocalResponseNorm), channels-last:
    y_c = x_c / (bias + alpha / size * sum_{c'} x_{c'}^2) ** beta, the sum over channels
    c - floor((size-1)/2) <= c' <= c + ceil((size-1)/2) that exist."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"LocalResponseNormalization: size must be a positive int, got "
                             f"{size!r}")
        self.size = int(size)
        self.alpha, self.beta, self.bias = float(alpha), float(beta), float(bias)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        c = inputs.shape[-1]
        lo = (self.size - 1) // 2
        sq = ops.pad(ops.square(inputs), [(0, 0)] * (inputs.ndim - 1) + [(lo, self.size - 1 - lo)])
        total = ops.getitem(sq, (..., slice(0, c)))
        for k in range(1, self.size):
            total = ops.add(total, ops.getitem(sq, (..., slice(k, k + c))))
        scale = ops.add(ops.multiply(total, np.asarray(self.alpha / self.size, inputs.dtype)),
                        np.asarray(self.bias, inputs.dtype))
        return ops.divide(inputs, ops.power(scale, np.asarray(self.beta, inputs.dtype)))

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size, "alpha": self.alpha,
                "beta": self.beta, "bias": self.bias}
