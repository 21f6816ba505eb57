"""Core layers: Input, Dense, Flatten, Reshape, Permute, Dropout, Embedding, Rescaling,
Normalization (the activation layers are in :mod:`.activation_layers`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import constraints, initializers, ops, regularizers
from .. import random as crandom
from ..autograd import Tensor, as_tensor
from ._utils import channels_error, check_data_format
from .base import KerasTensor, Layer


class InputLayer(Layer):
    """The source of a functional graph; holds no weights."""

    def __init__(self, shape: Sequence[int] | None = None, batch_size: int | None = None,
                 dtype: Any = "float32", batch_shape: Sequence[int] | None = None,
                 name: str | None = None, **kwargs: Any):
        if shape is None and "input_shape" in kwargs:
            shape = kwargs.pop("input_shape")
        if shape is None and batch_shape is not None:  # Keras: (batch, *shape)
            batch_size, shape = batch_shape[0], tuple(batch_shape)[1:]
        if shape is None:
            raise ValueError("InputLayer needs shape=(...) without the batch axis "
                             "(or batch_shape=(batch, ...))")
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.shape = tuple(int(s) if s is not None else None for s in shape)
        self.batch_size = batch_size
        self.built = True
        self.output = KerasTensor((batch_size, *self.shape), dtype, name=self.name)
        from .base import Node

        node = Node(self, [], self.output, {})
        self.output.node = node
        self.inbound_nodes.append(node)

    def call(self, inputs: Any, training: bool = False) -> Any:
        return inputs

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return steps.Identity()

    def get_config(self) -> dict:
        return {"shape": list(self.shape), "batch_size": self.batch_size,
                "dtype": self.dtype.name, "name": self.name}


def Input(shape: Sequence[int] | None = None, batch_size: int | None = None,  # noqa: N802
          dtype: Any = "float32", batch_shape: Sequence[int] | None = None,
          name: str | None = None) -> KerasTensor:
    """A symbolic input of ``shape`` (no batch axis; or Keras's ``batch_shape``), to start a
    functional model."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype,
                      batch_shape=batch_shape, name=name).output


class Dense(Layer):
    """y = activation(x @ kernel + bias) over the last axis; kernel (in, units)."""

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"Dense units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = ops.get_activation(activation)
        self.activation_name = activation if isinstance(activation, str) or activation is None \
            else getattr(activation, "__name__", "custom")
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def check_input_shape(self, input_shape: Any) -> None:
        if len(input_shape) < 2:
            raise ValueError(f"Dense '{self.name}' expects inputs of rank >= 2 (batch, ..., "
                             f"features), got shape {tuple(input_shape)}")
        if self.built and input_shape[-1] != self.kernel.shape[0]:
            raise channels_error(self, self.kernel.shape[0], input_shape[-1], input_shape,
                                 "features")

    def build(self, input_shape: Any) -> None:
        if input_shape[-1] is None:
            raise ValueError(f"Dense '{self.name}' needs a known last axis, got {input_shape}")
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units),
                                      self.kernel_initializer, self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                    self.bias_regularizer, constraint=self.bias_constraint
                                    ) if self.use_bias else None

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        act = steps.activation(self.activation)
        return None if act is steps.UNSUPPORTED else steps.Dense(self, act)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        y = ops.dense(inputs, self.kernel, self.bias)
        return self.activation(y) if self.activation is not None else y

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*tuple(input_shape)[:-1], self.units)

    def compute_macs(self, input_shape: Any, output_shape: Any) -> int:
        if any(d is None for d in input_shape[1:]):
            return 0
        lead = int(np.prod([d for d in input_shape[1:-1]], dtype=np.int64))
        return lead * int(input_shape[-1]) * self.units

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units,
                "activation": self.activation_name or "linear",
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...), channels-last order."""

    def __init__(self, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        check_data_format(type(self).__name__, data_format)

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": "channels_last"}

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.flatten(inputs)

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return steps.View(_flatten_array)

    def compute_output_shape(self, input_shape: Any) -> Any:
        rest = input_shape[1:]
        n = None if any(d is None for d in rest) else int(np.prod(rest, dtype=np.int64))
        return (input_shape[0], n)


def _flatten_array(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape: Sequence[int], **kwargs: Any):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if any(d is None for d in input_shape[1:]):
            return (input_shape[0], *(None if d == -1 else d for d in self.target_shape))
        size = int(np.prod(input_shape[1:], dtype=np.int64))
        known = int(np.prod([d for d in self.target_shape if d != -1], dtype=np.int64))
        shape = tuple(size // known if d == -1 else d for d in self.target_shape)
        if int(np.prod(shape, dtype=np.int64)) != size:
            raise ValueError(f"Reshape '{self.name}' cannot reshape inputs of shape "
                             f"{tuple(input_shape)} ({size} values per sample) to "
                             f"{self.target_shape}")
        return (input_shape[0], *shape)

    def check_input_shape(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.reshape(inputs, (inputs.shape[0], *self.target_shape))

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return steps.View(lambda x: x.reshape(x.shape[0], *self.target_shape))

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """Permute the non-batch axes; ``dims`` counts from 1 as in Keras."""

    def __init__(self, dims: Sequence[int], **kwargs: Any):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"Permute dims must be a permutation of 1..{len(self.dims)}, "
                             f"got {self.dims}")

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return ops.transpose(inputs, (0, *self.dims))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def get_config(self) -> dict:
        return {**super().get_config(), "dims": list(self.dims)}


class Dropout(Layer):
    """Training: zero each unit with probability ``rate``, scale the rest by 1/(1-rate)."""

    def __init__(self, rate: float, noise_shape: Sequence[int] | None = None,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.noise_shape = tuple(noise_shape) if noise_shape is not None else None
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        return steps.Identity()  # no dropout at inference

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        return ops.dropout(inputs, self.rate, training=True, noise_shape=self.noise_shape,
                           rng=crandom.get_rng(self._rng))

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": list(self.noise_shape) if self.noise_shape else None}


class Embedding(Layer):
    """Integer ids (N, L) -> vectors (N, L, output_dim) by row lookup in a (input_dim, output_dim)
    table; the gradient scatters back onto the looked-up rows. ``weights`` (Keras 3): pre-set
    vectors, an (input_dim, output_dim) array, used instead of the initializer (pass
    ``trainable=False`` to keep them fixed, Kim's "CNN-static")."""

    def __init__(self, input_dim: int, output_dim: int,
                 embeddings_initializer: Any = "uniform",
                 embeddings_regularizer: Any = None, embeddings_constraint: Any = None,
                 mask_zero: bool = False, weights: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self._preset = None if weights is None else _preset_table(self.name, weights,
                                                                    self.input_dim,
                                                                    self.output_dim)
        # Keras: id 0 is padding; cnnkit has no mask-consuming layers, compute_mask gives it
        self.mask_zero = bool(mask_zero)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)

    def build(self, input_shape: Any) -> None:
        preset = self._preset
        init = self.embeddings_initializer if preset is None else (
            lambda shape, dtype, rng=None: preset.astype(dtype))
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          init, self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint)

    def call(self, inputs: Any, training: bool = False) -> Tensor:
        ids = np.asarray(as_tensor(inputs).data)
        if not np.issubdtype(ids.dtype, np.integer):
            if not np.all(np.mod(ids, 1) == 0):
                raise TypeError(f"Embedding '{self.name}' expects integer ids, got dtype "
                                f"{ids.dtype}")
            ids = ids.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.input_dim):
            raise ValueError(f"Embedding '{self.name}' expects ids in [0, {self.input_dim}), "
                             f"got values from {ids.min()} to {ids.max()}")
        return ops.getitem(self.embeddings, ids)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*tuple(input_shape), self.output_dim)

    def compute_mask(self, inputs: Any, mask: Any = None) -> np.ndarray | None:
        """With ``mask_zero``: True where the id is not 0 (padding), else None."""
        if not self.mask_zero:
            return None
        return np.asarray(as_tensor(inputs).data) != 0

    def output_dtype(self, input_dtype: Any) -> Any:
        return self.dtype

    def get_config(self) -> dict:
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim, "mask_zero": self.mask_zero,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "embeddings_constraint": constraints.serialize(self.embeddings_constraint)}


def _preset_table(name: str, weights: Any, input_dim: int, output_dim: int) -> np.ndarray:
    w = np.asarray(weights[0] if isinstance(weights, (list, tuple)) and len(weights) == 1
                   else weights)
    if w.shape != (input_dim, output_dim) or not np.issubdtype(w.dtype, np.number):
        raise ValueError(f"Embedding '{name}' expects weights of shape ({input_dim}, "
                         f"{output_dim}) (input_dim, output_dim), got {w.dtype} array of shape "
                         f"{w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"Embedding '{name}': weights must be finite")
    return w.copy()


class Rescaling(Layer):
    """x * scale + offset (e.g. scale=1/255 to bring pixels to [0, 1])."""

    def __init__(self, scale: float, offset: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        x = inputs if np.issubdtype(inputs.dtype, np.floating) else Tensor(
            inputs.data.astype(self.dtype))
        return x * self.scale + self.offset

    def inference_step(self, steps: Any, rank: int | None) -> Any:
        scale, offset, dtype = np.float32(self.scale), np.float32(self.offset), self.dtype

        def rescale(x: np.ndarray) -> np.ndarray:
            x = x if np.issubdtype(x.dtype, np.floating) else x.astype(dtype)
            return x * scale.astype(x.dtype) + offset.astype(x.dtype)

        return steps.Elementwise(rescale)  # value by value: batch-invariant

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Normalization(Layer):
    """(x - mean) / max(sqrt(variance), 1e-7) per channel (last axis), as Keras; ``invert``
    maps back: mean + x * max(sqrt(variance), 1e-7). ``adapt(data)`` learns them."""

    def __init__(self, mean: Any = None, variance: Any = None, axis: int = -1,
                 invert: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = axis
        self.invert = bool(invert)
        self._init_mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self._init_var = None if variance is None else np.asarray(variance, dtype=np.float64)

    def build(self, input_shape: Any) -> None:
        c = input_shape[self.axis]
        self.mean = self.add_weight("mean", (c,), "zeros", trainable=False)
        self.variance = self.add_weight("variance", (c,), "ones", trainable=False)
        if self._init_mean is not None:
            self.mean.data[...] = self._init_mean
        if self._init_var is not None:
            self.variance.data[...] = self._init_var

    def adapt(self, data: Any) -> None:
        """Set mean and variance from ``data`` (N, ..., C)."""
        arr = np.asarray(as_tensor(data).data, dtype=np.float64)
        if not self.built:
            self._maybe_build((None, *arr.shape[1:]))
        keep = self.axis % arr.ndim
        axes = tuple(i for i in range(arr.ndim) if i != keep)
        self.mean.data[...] = arr.mean(axis=axes)
        self.variance.data[...] = arr.var(axis=axes)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        x = inputs if np.issubdtype(inputs.dtype, np.floating) else Tensor(
            inputs.data.astype(self.dtype))
        # Keras floors the standard deviation (not the variance) at its epsilon, 1e-7
        std = np.maximum(np.sqrt(self.variance.data), 1e-7).astype(x.dtype)
        mean = self.mean.data.astype(x.dtype)
        return x * std + mean if self.invert else (x - mean) / std

    def get_config(self) -> dict:
        # the constructor's statistics, as Keras writes them (the built ones are weights)
        stats = {k: None if v is None else v.tolist() for k, v in (
            ("mean", self._init_mean), ("variance", self._init_var))}
        return {**super().get_config(), "axis": self.axis, "invert": self.invert, **stats}

