"""A thread-safe inference engine: a model compiled into a plan of kernel calls on arrays.

``InferenceEngine(model)`` walks the model once and turns each layer into a function of
NumPy arrays that calls the forward kernels directly: no Tensors, no graph, no argument checks
per call, batch-norm folded into one multiply-add, a convolution's ReLU applied in place. The
plan reads the layers' weight arrays at call time, so it follows training and ``set_weights``
without recompiling. Nothing is written while the plan runs, so several threads can share one
engine. Layers without a compiled form run through their own ``call`` under ``no_grad``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import layers as L
from ..autograd import Tensor, no_grad
from ..kernels import activation as KA
from ..kernels import conv as KC
from ..kernels import linear as KL
from ..kernels import pool as KP
from ..kernels.padding import resolve_padding

Fn = Callable[[np.ndarray], np.ndarray]

_ACTIVATIONS: dict[str, Fn] = {
    "relu": KA.relu_forward, "relu6": KA.relu6_forward, "sigmoid": KA.sigmoid_forward,
    "tanh": np.tanh, "softmax": lambda z: KA.softmax_forward(z, -1),
}


def _activation(layer: Any) -> Fn | None | bool:
    """None for the identity, a kernel function, or False when it must go through ``call``."""
    name = getattr(layer, "activation_name", None)
    if name is None or (isinstance(name, str) and name.lower() == "linear"):
        return None
    if isinstance(name, str) and name.lower() in _ACTIVATIONS:
        return _ACTIVATIONS[name.lower()]
    return False


def _finish(z: np.ndarray, act: Fn | None) -> np.ndarray:
    if act is None:
        return z
    if act is KA.relu_forward:
        return np.maximum(z, 0, out=z)
    return act(z)


def _fallback(layer: Any) -> Fn:
    def run(x: Any) -> Any:
        with no_grad():
            args = [Tensor(a) for a in x] if isinstance(x, list) else Tensor(x)
            out = layer(args, training=False)
        return [o.data for o in out] if isinstance(out, list) else out.data

    return run


def _shape_cache(fn: Callable[[tuple], Any]) -> Callable[[tuple], Any]:
    """Memoise geometry per input shape (dict writes are atomic: safe across threads)."""
    cache: dict[tuple, Any] = {}

    def get(shape: tuple) -> Any:
        hit = cache.get(shape)
        if hit is None:
            hit = cache[shape] = fn(shape)
        return hit

    return get


def _compile_conv(layer: Any) -> Fn | None:
    act = _activation(layer)
    if act is False:
        return None
    nd = layer.rank

    def pads_for(shape: tuple) -> Any:
        return resolve_padding(layer.padding, shape[1:-1], layer.kernel_size, layer.strides,
                               layer.dilation_rate)

    pads = _shape_cache(pads_for)

    def run(x: np.ndarray) -> np.ndarray:
        b = layer.bias.data if layer.bias is not None else None
        z, _ = KC.conv_forward(x, layer.kernel.data, b, layer.strides, pads(x.shape),
                               layer.dilation_rate, layer.groups, keep_cols=False)
        return _finish(z, act)

    return run if nd in (1, 2, 3) else None


def _compile_depthwise(layer: Any) -> Fn | None:
    act = _activation(layer)
    if act is False:
        return None
    pads = _shape_cache(lambda s: resolve_padding(layer.padding, s[1:-1], layer.kernel_size,
                                                  layer.strides, layer.dilation_rate))

    def run(x: np.ndarray) -> np.ndarray:
        b = layer.bias.data if layer.bias is not None else None
        z = KC.depthwise_conv_forward(x, layer.kernel.data, b, layer.strides, pads(x.shape),
                                      layer.dilation_rate)
        return _finish(z, act)

    return run


def _compile_dense(layer: Any) -> Fn | None:
    act = _activation(layer)
    if act is False:
        return None

    def run(x: np.ndarray) -> np.ndarray:
        b = layer.bias.data if layer.bias is not None else None
        return _finish(KL.dense_forward(x, layer.kernel.data, b), act)

    return run


def _compile_batch_norm(layer: Any) -> Fn | None:
    if layer.axis not in (-1,):
        return None

    def run(x: np.ndarray) -> np.ndarray:
        scale = 1.0 / np.sqrt(layer.moving_variance.data + layer.epsilon)
        if layer.gamma is not None:
            scale = scale * layer.gamma.data
        shift = -layer.moving_mean.data * scale
        if layer.beta is not None:
            shift = shift + layer.beta.data
        return x * scale.astype(x.dtype) + shift.astype(x.dtype)

    return run


def _blocked(x: np.ndarray, pool: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Non-overlapping windows as extra axes: (N, o1, k1, o2, k2, ..., C), cropping the tail
    that "valid" pooling drops; returns the view and the window axes."""
    outs = [w // k for w, k in zip(x.shape[1:-1], pool, strict=True)]
    crop = x[(slice(None), *(slice(0, o * k) for o, k in zip(outs, pool, strict=True)))]
    shape = [x.shape[0]]
    for o, k in zip(outs, pool, strict=True):
        shape += [o, k]
    view = crop.reshape(*shape, x.shape[-1])
    return view, tuple(2 + 2 * i for i in range(len(pool)))


def _compile_pool(layer: Any) -> Fn | None:
    is_max = isinstance(layer, (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D))
    pool, strides = tuple(layer.pool_size), tuple(layer.strides)
    if pool == strides and layer.padding == "valid":  # disjoint windows: one reduction
        if is_max:
            def max_blocks(x: np.ndarray) -> np.ndarray:
                view, axes = _blocked(x, pool)
                return view.max(axis=axes)

            return max_blocks
        inv = 1.0 / float(np.prod(pool))

        def avg_blocks(x: np.ndarray) -> np.ndarray:
            view, axes = _blocked(x, pool)
            out = view.sum(axis=axes)
            out *= out.dtype.type(inv)
            return out

        return avg_blocks
    if is_max:
        return lambda x: KP.max_pool_forward(x, pool, strides, layer.padding)
    return lambda x: KP.avg_pool_forward(x, pool, strides, layer.padding)


def _compile_simple(layer: Any) -> Fn | None:
    kind = type(layer).__name__
    if kind in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                "InputLayer"):
        return lambda x: x
    if kind in ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"):
        pads = [tuple(p) for p in layer.padding]

        def zero_pad(x: np.ndarray) -> np.ndarray:
            shape = (x.shape[0], *(n + b + a for n, (b, a) in zip(x.shape[1:-1], pads,
                                                                    strict=True)), x.shape[-1])
            out = np.zeros(shape, dtype=x.dtype)
            out[(slice(None), *(slice(b, b + n) for n, (b, _) in zip(x.shape[1:-1], pads,
                                                                      strict=True)))] = x
            return out

        return zero_pad
    if kind == "Flatten":
        return lambda x: x.reshape(x.shape[0], -1)
    if kind == "Reshape":
        return lambda x: x.reshape(x.shape[0], *layer.target_shape)
    if kind == "Rescaling":
        scale, offset = np.float32(layer.scale), np.float32(layer.offset)

        def rescale(x: np.ndarray) -> np.ndarray:
            x = x if np.issubdtype(x.dtype, np.floating) else x.astype(layer.dtype)
            return x * scale.astype(x.dtype) + offset.astype(x.dtype)

        return rescale
    if kind == "ReLU" and layer.max_value is None and layer.negative_slope == 0 \
            and layer.threshold == 0:
        return KA.relu_forward
    if kind == "Activation":
        name = layer.activation_name
        if isinstance(name, str) and name.lower() in _ACTIVATIONS:
            return _ACTIVATIONS[name.lower()]
    if kind in ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D"):
        return lambda x: x.mean(axis=tuple(range(1, x.ndim - 1)), keepdims=layer.keepdims)
    if kind in ("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"):
        return lambda x: x.max(axis=tuple(range(1, x.ndim - 1)), keepdims=layer.keepdims)
    if kind == "Add":
        def add(xs: list) -> np.ndarray:
            out = xs[0] + xs[1]
            for x in xs[2:]:
                out += x
            return out

        return add
    if kind == "Subtract":
        return lambda xs: xs[0] - xs[1]
    if kind == "Multiply":
        def multiply(xs: list) -> np.ndarray:
            out = xs[0] * xs[1]
            for x in xs[2:]:
                out *= x
            return out

        return multiply
    if kind == "Concatenate":
        return lambda xs: np.concatenate(xs, axis=layer.axis)
    return None


_MERGES = ("Add", "Subtract", "Multiply")


def _same_rank_or_fallback(layer: Any, fn: Fn) -> Fn:
    """Merges broadcast Keras' way (new axes after the batch axis) when ranks differ: the
    array shortcut is only taken for inputs of equal rank."""
    slow = _fallback(layer)

    def run(xs: list) -> Any:
        if all(x.ndim == xs[0].ndim for x in xs):
            return fn(xs)
        return slow(xs)

    return run


def compile_layer(layer: Any) -> Fn:
    """The array function computing ``layer`` in inference mode."""
    fn: Fn | None = None
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D)):
        fn = _compile_conv(layer)
    elif isinstance(layer, L.DepthwiseConv2D):
        fn = _compile_depthwise(layer)
    elif isinstance(layer, L.Dense):
        fn = _compile_dense(layer)
    elif isinstance(layer, L.BatchNormalization):
        fn = _compile_batch_norm(layer)
    elif isinstance(layer, (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D,
                            L.AveragePooling2D, L.AveragePooling3D)):
        fn = _compile_pool(layer)
    elif type(layer).__name__ in ("Sequential", "Model") or hasattr(layer, "_nodes"):
        fn = InferenceEngine(layer)
    else:
        fn = _compile_simple(layer)
        if fn is not None and type(layer).__name__ in _MERGES:
            fn = _same_rank_or_fallback(layer, fn)
    return fn if fn is not None else _fallback(layer)


class InferenceEngine:
    """``engine(x)`` = ``model(x, training=False)`` as arrays, through a compiled plan.

    Args:
        model: a built Sequential or functional Model (or any Layer).
        dtype: inputs are cast to this dtype (default: the model's).
    """

    def __init__(self, model: Any, dtype: Any = None):
        self.model = model
        self.dtype = np.dtype(dtype or getattr(model, "dtype", np.float32))
        from ..models import Sequential

        if isinstance(model, Sequential):
            self._steps = [compile_layer(la) for la in model.layers]
            self._graph = None
        elif getattr(model, "_functional", False):
            self._steps = []
            self._graph = self._compile_graph(model)
        else:
            self._steps = [_fallback(model)]
            self._graph = None

    def _compile_graph(self, model: Any) -> tuple:
        from ..layers.core import InputLayer

        ids = {id(t): i for i, t in enumerate(model._inputs)}
        plan = []
        for node in model._nodes:
            if isinstance(node.layer, InputLayer):
                continue
            if isinstance(node.inputs, (list, tuple)):
                args: Any = [ids.setdefault(id(t), len(ids)) for t in node.inputs]
            else:
                args = ids.setdefault(id(node.inputs), len(ids))
            outs = [ids.setdefault(id(t), len(ids)) for t in node.output_tensors]
            plan.append((compile_layer(node.layer), args, outs))
        result = [ids[id(t)] for t in model._outputs]
        return plan, result, len(model._inputs), model._single_output

    def __call__(self, x: Any) -> Any:
        if self._graph is None:
            a = x
            if not isinstance(a, list):
                a = np.asarray(a)
                if a.dtype != self.dtype:
                    a = a.astype(self.dtype)
            for step in self._steps:
                a = step(a)
            return a
        plan, result, n_in, single = self._graph
        xs = x if isinstance(x, list) else [x]
        values: dict[int, Any] = {}
        for i, a in enumerate(xs[:n_in]):
            a = np.asarray(a)
            values[i] = a.astype(self.dtype) if a.dtype != self.dtype and np.issubdtype(
                a.dtype, np.floating) or a.dtype == np.uint8 else a
        for fn, args, outs in plan:
            arg = [values[i] for i in args] if isinstance(args, list) else values[args]
            out = fn(arg)
            if len(outs) == 1:
                values[outs[0]] = out
            else:
                for i, o in zip(outs, out, strict=True):
                    values[i] = o
        res = [values[i] for i in result]
        return res[0] if single else res

    def predict(self, x: Any, batch_size: int = 256) -> Any:
        """Outputs for ``x`` computed in batches."""
        xs = x if isinstance(x, list) else [x]
        n = len(xs[0])
        outs = []
        for s in range(0, n, batch_size):
            chunk = [a[s:s + batch_size] for a in xs]
            outs.append(self(chunk if isinstance(x, list) else chunk[0]))
        if isinstance(outs[0], list):
            return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]
        return np.concatenate(outs)
