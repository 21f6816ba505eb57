"""Normalizations and rescalings: BatchNormalization (kept as a node in a training export or
when nothing before it can take it in), LayerNormalization, GroupNormalization, Keras's
Normalization, L2Normalize and Rescaling.

- batch norm: ONNX BatchNormalization (inference statistics) on the channel axis; on another
  axis, x * s + t with s = gamma / sqrt(var + eps), t = beta - mean * s;
- layer norm: (x - mean) / sqrt(var + eps) * gamma + beta over the normalised axes (ONNX
  LayerNormalization from opset 17 when they are the trailing axes; else Reduce* nodes);
- group norm: the same over (channels of one group, spatial axes), through a reshape to
  (N, groups, -1);
- Normalization: (x - mean) / max(sqrt(var), 1e-7), or its inverse;
- L2Normalize: x / sqrt(sum(x^2) + 1e-12) over the last axis.
"""

from __future__ import annotations

import numpy as np

from ... import layers
from ...runtime.compute import bn_scale_shift
from .errors import OnnxExportError
from .graph import Graph, Value, onnx_axis, to_cf
from .layout import as_cf
from .registry import Call, exports


def broadcast(x: Value, values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``values`` (sizes of cnnkit axes ``axes``) shaped to broadcast against x in its ONNX
    layout."""
    full = [1] * x.rank
    for a, n in zip(axes, values.shape, strict=True):
        full[a] = n
    arr = values.reshape(full)
    return np.ascontiguousarray(arr.transpose(to_cf(x.rank))) if x.cf else arr


def _affine(c: Call, x: Value, s: str, t: str | None, base: str) -> Value:
    y = c.g.node("Mul", [x.name, s], base if t is None else f"{base}/scale")
    return x.named(y if t is None else c.g.node("Add", [y, t], base))


def _axes(layer: object, rank: int) -> tuple[int, ...]:
    axis = layer.axis  # type: ignore[attr-defined]
    return tuple(sorted({a % rank for a in ((axis,) if isinstance(axis, int) else axis)}))


@exports(layers.BatchNormalization, layers.SyncBatchNormalization)
def batch_norm(c: Call) -> Value:
    """(synchronized statistics matter in distributed training only: the same at inference)"""
    la, x = c.layer, c.x
    axes = _axes(la, x.rank)
    dt = np.dtype(c.dtype)
    if axes == (x.rank - 1,):
        x = as_cf(c.g, x)
        c_ = int(la.moving_mean.shape[0])
        ins = [la.gamma.data if la.gamma is not None else np.ones(c_, dt),
               la.beta.data if la.beta is not None else np.zeros(c_, dt),
               la.moving_mean.data, la.moving_variance.data]
        names = [c.weight(w, a) for w, a in zip(("gamma", "beta", "moving_mean",
                                                  "moving_variance"), ins, strict=True)]
        y = c.g.node("BatchNormalization", [x.name, *names], c.name, epsilon=la.epsilon,
                     momentum=la.momentum)
        return x.named(y)
    s, t = bn_scale_shift(la, dt)
    return _affine(c, x, c.weight("scale", broadcast(x, s, axes)),
                   c.weight("shift", broadcast(x, t, axes)), c.name)


def normalize(g: Graph, x: Value, axes: list[int], eps: float, base: str) -> str:
    """(x - mean) / sqrt(var + eps) over ONNX ``axes`` (population variance)."""
    mean = g.reduce("ReduceMean", x.name, axes, True, f"{base}/mean")
    d = g.node("Sub", [x.name, mean], f"{base}/centered")
    var = g.reduce("ReduceMean", g.node("Mul", [d, d], f"{base}/squared"), axes, True,
                   f"{base}/var")
    std = g.node("Sqrt", [g.node("Add", [var, g.const(eps, "epsilon", x.dtype)],
                                 f"{base}/var_eps")], f"{base}/std")
    return g.node("Div", [d, std], f"{base}/normalized")


def _gamma_beta(c: Call, x: Value, axes: tuple[int, ...], shape: tuple) -> tuple:
    la, dt = c.layer, np.dtype(c.dtype)
    gamma = la.gamma.data if la.gamma is not None else np.ones(shape, dt)
    beta = la.beta.data if la.beta is not None else np.zeros(shape, dt)
    return (c.weight("gamma", broadcast(x, gamma.reshape(shape), axes)),
            c.weight("beta", broadcast(x, beta.reshape(shape), axes)))


@exports(layers.LayerNormalization)
def layer_norm(c: Call) -> Value:
    la, x, g = c.layer, c.x, c.g
    axes = _axes(la, x.rank)
    onnx_axes = sorted(onnx_axis(a, x) for a in axes)
    sizes = tuple(int(x.shape[a]) for a in axes)
    trailing = onnx_axes == list(range(x.rank - len(axes), x.rank))
    if g.opset >= 17 and trailing:
        dt = np.dtype(c.dtype)
        gamma = la.gamma.data if la.gamma is not None else np.ones(sizes, dt)
        beta = la.beta.data if la.beta is not None else np.zeros(sizes, dt)
        def to_onnx(a: np.ndarray) -> np.ndarray:  # the trailing sizes alone
            return broadcast(x, a.reshape(sizes), axes).reshape(_onnx_sizes(x, axes))

        y = g.node("LayerNormalization", [x.name, c.weight("gamma", to_onnx(gamma)),
                                          c.weight("beta", to_onnx(beta))], c.name,
                   axis=onnx_axes[0], epsilon=la.epsilon)
        return x.named(y)
    y = normalize(g, x, onnx_axes, la.epsilon, c.name)
    gamma, beta = _gamma_beta(c, x, axes, sizes)
    return _affine(c, x.named(y), gamma, beta, c.name)


def _onnx_sizes(x: Value, axes: tuple[int, ...]) -> list[int]:
    """Sizes of the normalised axes in ONNX axis order."""
    return [int(x.shape[a]) for a in sorted(axes, key=lambda a: onnx_axis(a, x))]


@exports(layers.GroupNormalization)
def group_norm(c: Call) -> Value:
    """Statistics per sample and group over (the group's channels, the other axes): the
    channel axis first, a reshape to (N, groups, -1), and back."""
    la, g = c.layer, c.g
    x = as_cf(g, c.x)
    a = la.axis % x.rank
    ca = onnx_axis(a, x)
    perm = [0, ca, *(i for i in range(1, x.rank) if i != ca)]
    t = x.name if ca == 1 else g.transpose(x.name, perm, f"{c.name}/channels_first")
    grouped = g.node("Reshape", [t, g.ints([0, la.groups, -1], "group_shape")],
                     f"{c.name}/grouped")
    y = normalize(g, x.named(grouped, cf=False), [2], la.epsilon, c.name)
    y = g.node("Reshape", [y, g.node("Shape", [t], f"{c.name}/shape")], f"{c.name}/ungrouped")
    if ca != 1:
        y = g.transpose(y, tuple(int(i) for i in np.argsort(perm)), f"{c.name}/back")
    gamma, beta = _gamma_beta(c, x, (a,), (int(x.shape[a]),))
    return _affine(c, x.named(y), gamma, beta, c.name)


@exports(layers.Normalization, keeps_order=False)
def normalization(c: Call) -> Value:
    la, x, g = c.layer, c.x, c.g
    if la.axis not in (-1, x.rank - 1):
        raise OnnxExportError(f"Normalization '{la.name}' over axis {la.axis}: only the last "
                              f"(channel) axis is exported")
    x = _floating(c, x)
    dt = np.dtype(x.dtype)
    std = np.maximum(np.sqrt(la.variance.data.astype(np.float64)), 1e-7).astype(dt)
    mean = la.mean.data.astype(dt)
    ax = (x.rank - 1,)
    if la.invert:
        return _affine(c, x, c.weight("std", broadcast(x, std, ax)),
                       c.weight("mean", broadcast(x, mean, ax)), c.name)
    d = g.node("Sub", [x.name, c.weight("mean", broadcast(x, mean, ax))], f"{c.name}/centered")
    return x.named(g.node("Div", [d, c.weight("std", broadcast(x, std, ax))], c.name))


def _floating(c: Call, x: Value) -> Value:
    """x cast to the layer's dtype when it holds integers (as the layer's call does)."""
    if np.dtype(x.dtype).kind == "f":
        return x
    to = c.g.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(c.layer.dtype))
    return x.named(c.g.node("Cast", [x.name], f"{c.name}/float", to=to),
                   dtype=np.dtype(c.layer.dtype))


@exports(layers.Rescaling, keeps_order=True)
def rescaling(c: Call) -> Value:
    x = _floating(c, c.x)
    scale = c.g.const(c.layer.scale, "scale", x.dtype)
    offset = c.g.const(c.layer.offset, "offset", x.dtype) if c.layer.offset else None
    return _affine(c, x, scale, offset, c.name)


@exports(layers.L2Normalize)
def l2_normalize(c: Call) -> Value:
    g, x = c.g, c.x
    sq = g.node("Mul", [x.name, x.name], f"{c.name}/squared")
    total = g.reduce("ReduceSum", sq, [onnx_axis(-1, x)], True, f"{c.name}/sum")
    norm = g.node("Sqrt", [g.node("Add", [total, g.const(1e-12, "tiny", x.dtype)],
                                  f"{c.name}/sum_eps")], f"{c.name}/norm")
    return x.named(g.node("Div", [x.name, norm], c.name))
