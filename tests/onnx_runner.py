"""Run a one-node ONNX model with ``cnnkit.ops`` (test helper for ``test_onnx_cases.py``).

Each ONNX operator is translated into calls of ``cnnkit.ops``: NCHW inputs become NHWC (and
NCL/NCDHW become NLC/NDHWC), OIHW weights become cnnkit's kernel layouts, ONNX ``pads``
become per-axis (before, after) pairs, and the results are turned back into ONNX's layout.
A feature the translation cannot express raises :class:`Unsupported`; the test file lists
every such case by name with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from helpers import onnx_node_cases

from cnnkit import ops

# ONNX operators this harness translates (selected by the node's op_type).
OP_TYPES = (
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "BatchNormalization", "Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid",
    "HardSwish", "Tanh", "Softmax", "LogSoftmax", "Gemm", "MatMul", "Flatten", "Add", "Concat",
    "Reshape", "Pad", "Resize",
)


class Unsupported(Exception):
    """The node uses a feature cnnkit.ops does not have (a dtype, a mode, an output)."""


def collect_cases() -> list[Any]:
    """The onnx node test cases whose model is one node of an op in :data:`OP_TYPES`."""
    return onnx_node_cases(OP_TYPES, skip_if_none=False)


def node_of(case: Any) -> Any:
    return case.model.graph.node[0]


def attributes(node: Any) -> dict[str, Any]:
    """The node's attributes as Python values (bytes decoded to str)."""
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list):
            v = [x.decode() if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def node_inputs(node: Any, arrays: Sequence[np.ndarray]) -> list[np.ndarray | None]:
    """One entry per declared node input; omitted optional inputs ("") are None."""
    it = iter(arrays)
    return [next(it) if name else None for name in node.input]


def run_case(case: Any, data_set: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(cnnkit outputs, expected outputs) for one data set of a case."""
    node = node_of(case)
    inputs, expected = case.data_sets[data_set]
    outs = run_node(node, node_inputs(node, inputs), len(node.output))
    return outs, list(expected)


def run_node(node: Any, inputs: list[np.ndarray | None], n_outputs: int) -> list[np.ndarray]:
    """Outputs of ``node`` computed by cnnkit.ops, as NumPy arrays in ONNX layout."""
    fn = _TRANSLATIONS.get(node.op_type)
    if fn is None:
        raise Unsupported(f"no translation for op {node.op_type}")
    attrs = attributes(node)
    outs = fn(attrs, inputs, n_outputs)
    return [np.asarray(o.data if hasattr(o, "data") and not isinstance(o, np.ndarray) else o)
            for o in outs]


# ---------------------------------------------------------------------------------------------
# Layout helpers


def to_channels_last(x: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) -> (N, *spatial, C)."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def to_channels_first(t: Any) -> Any:
    """(N, *spatial, C) -> (N, C, *spatial) with ops.transpose (keeps the Tensor)."""
    nd = t.ndim
    return ops.transpose(t, (0, nd - 1, *range(1, nd - 1)))


def conv_kernel(w: np.ndarray) -> np.ndarray:
    """ONNX Conv weight (C_out, C_in/groups, *K) -> cnnkit (*K, C_in/groups, C_out)."""
    nd = w.ndim
    return np.ascontiguousarray(np.transpose(w, (*range(2, nd), 1, 0)))


def conv_transpose_kernel(w: np.ndarray) -> np.ndarray:
    """ONNX ConvTranspose weight (C_in, C_out, *K) (one group) -> cnnkit (*K, C_out, C_in)."""
    nd = w.ndim
    return np.ascontiguousarray(np.transpose(w, (*range(2, nd), 1, 0)))


def pad_pairs(pads: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """ONNX [x1_begin, x2_begin, ..., x1_end, x2_end] -> ((x1_begin, x1_end), ...)."""
    n = len(pads) // 2
    return tuple((int(pads[i]), int(pads[i + n])) for i in range(n))


def same_pairs(sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
               dilations: Sequence[int], upper: bool) -> tuple[tuple[int, int], ...]:
    """ONNX SAME_UPPER / SAME_LOWER: output ceil(W/S); odd extra pixel at the end / start."""
    pairs = []
    for w, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
        out = -(-w // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - w, 0)
        small, big = total // 2, total - total // 2
        pairs.append((small, big) if upper else (big, small))
    return tuple(pairs)


def window_padding(attrs: dict[str, Any], sizes: Sequence[int], kernel: Sequence[int],
                   strides: Sequence[int], dilations: Sequence[int]) -> Any:
    """cnnkit ``padding`` for a Conv/pool node: "same" for SAME_UPPER, else explicit pairs."""
    auto_pad = attrs.get("auto_pad", "NOTSET")
    n = len(sizes)
    if auto_pad == "SAME_UPPER":
        return "same"  # Keras "same": the odd extra pixel at the end
    if auto_pad == "SAME_LOWER":
        return same_pairs(sizes, kernel, strides, dilations, upper=False)
    if auto_pad == "VALID":
        return "valid"
    if auto_pad != "NOTSET":
        raise Unsupported(f"auto_pad {auto_pad!r}")
    return pad_pairs(attrs.get("pads", [0] * (2 * n)))


def _ints(v: Any, n: int, default: int) -> tuple[int, ...]:
    return tuple(int(a) for a in v) if v is not None else (default,) * n


# ---------------------------------------------------------------------------------------------
# Convolution


def _conv(attrs: dict, inputs: list, n_out: int) -> list:
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    n = x.ndim - 2
    kernel = tuple(w.shape[2:])
    if "kernel_shape" in attrs and tuple(attrs["kernel_shape"]) != kernel:
        raise Unsupported("kernel_shape differs from the weight's shape")
    strides = _ints(attrs.get("strides"), n, 1)
    dil = _ints(attrs.get("dilations"), n, 1)
    groups = int(attrs.get("group", 1))
    padding = window_padding(attrs, x.shape[2:], kernel, strides, dil)
    y = ops.conv(to_channels_last(x), conv_kernel(w), bias=b, strides=strides, padding=padding,
                 dilation_rate=dil, groups=groups)
    return [to_channels_first(y)]


def _conv_transpose(attrs: dict, inputs: list, n_out: int) -> list:
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    n = x.ndim - 2
    kernel = tuple(w.shape[2:])
    if "kernel_shape" in attrs and tuple(attrs["kernel_shape"]) != kernel:
        raise Unsupported("kernel_shape differs from the weight's shape")
    strides = _ints(attrs.get("strides"), n, 1)
    dil = _ints(attrs.get("dilations"), n, 1)
    groups = int(attrs.get("group", 1))
    out_pad = list(_ints(attrs.get("output_padding"), n, 0))
    sizes = x.shape[2:]
    # Full (uncropped) length of the transposed convolution along each axis.
    full = [s * (i - 1) + d * (k - 1) + 1 + p
            for s, i, d, k, p in zip(strides, sizes, dil, kernel, out_pad, strict=True)]
    auto_pad = attrs.get("auto_pad", "NOTSET")
    out_shape = attrs.get("output_shape")
    padding: Any
    if auto_pad in ("SAME_UPPER", "SAME_LOWER") and "pads" not in attrs:
        target = list(out_shape) if out_shape else [i * s for i, s in zip(sizes, strides,
                                                                          strict=True)]
        total = [f - t for f, t in zip(full, target, strict=True)]
        if auto_pad == "SAME_UPPER" and not out_shape and not any(out_pad):
            padding = "same"  # Keras "same": output W*S, the odd extra crop at the end
        else:
            upper = auto_pad == "SAME_UPPER"
            padding = tuple((t // 2, t - t // 2) if upper else (t - t // 2, t // 2)
                            for t in total)
    elif auto_pad in ("NOTSET", "VALID"):
        pairs = pad_pairs(attrs.get("pads", [0] * (2 * n)))
        if out_shape:
            # The output grows (zeros of no tap) or is cut at the end to output_shape.
            natural = [f - a - c for f, (a, c) in zip(full, pairs, strict=True)]
            extra = [int(t) - m for t, m in zip(out_shape, natural, strict=True)]
            if any(e < 0 for e in extra):
                raise Unsupported("output_shape smaller than the padded output")
            out_pad = [p + e for p, e in zip(out_pad, extra, strict=True)]
        padding = pairs
    else:
        raise Unsupported(f"auto_pad {auto_pad!r}")
    xl = to_channels_last(x)
    op_arg = tuple(out_pad) if any(out_pad) else None

    def one(xg: Any, wg: np.ndarray, bg: Any) -> Any:
        fn = getattr(ops, f"conv{n}d_transpose", None) or ops.conv_transpose
        return fn(xg, conv_transpose_kernel(wg), bias=bg, strides=strides, padding=padding,
                  output_padding=op_arg, dilation_rate=dil)

    if groups == 1:
        y = one(xl, w, b)
    else:
        # ONNX weight (C_in, C_out/groups, *K): group g maps input channels g*ci..(g+1)*ci to
        # output channels g*co..(g+1)*co; run each group and join along channels.
        ci, co = x.shape[1] // groups, w.shape[1]
        parts = [one(xl[..., g * ci:(g + 1) * ci], w[g * ci:(g + 1) * ci],
                     None if b is None else b[g * co:(g + 1) * co]) for g in range(groups)]
        y = ops.concatenate(parts, axis=-1)
    return [to_channels_first(y)]


# ---------------------------------------------------------------------------------------------
# Pooling


def _pool_args(attrs: dict, x: np.ndarray) -> tuple:
    n = x.ndim - 2
    kernel = tuple(int(k) for k in attrs["kernel_shape"])
    strides = _ints(attrs.get("strides"), n, 1)  # ONNX default stride 1, not pool_size
    dil = _ints(attrs.get("dilations"), n, 1)
    padding = window_padding(attrs, x.shape[2:], kernel, strides, dil)
    return kernel, strides, dil, padding, bool(attrs.get("ceil_mode", 0))


def _max_pool(attrs: dict, inputs: list, n_out: int) -> list:
    x = inputs[0]
    if n_out > 1:
        raise Unsupported("second output Indices")
    if attrs.get("storage_order", 0):
        raise Unsupported("storage_order")
    kernel, strides, dil, padding, ceil = _pool_args(attrs, x)
    y = ops.max_pool(to_channels_last(x), kernel, strides=strides, padding=padding,
                     dilation_rate=dil, ceil_mode=ceil)
    return [to_channels_first(y)]


def _avg_pool(attrs: dict, inputs: list, n_out: int) -> list:
    x = inputs[0]
    kernel, strides, dil, padding, ceil = _pool_args(attrs, x)
    y = ops.avg_pool(to_channels_last(x), kernel, strides=strides, padding=padding,
                     count_include_pad=bool(attrs.get("count_include_pad", 0)),
                     dilation_rate=dil, ceil_mode=ceil)
    return [to_channels_first(y)]


def _global_avg_pool(attrs: dict, inputs: list, n_out: int) -> list:
    y = ops.global_average_pool(to_channels_last(inputs[0]), keepdims=True)
    return [to_channels_first(y)]


def _global_max_pool(attrs: dict, inputs: list, n_out: int) -> list:
    y = ops.global_max_pool(to_channels_last(inputs[0]), keepdims=True)
    return [to_channels_first(y)]


# ---------------------------------------------------------------------------------------------
# Normalisation


def _batch_norm(attrs: dict, inputs: list, n_out: int) -> list:
    x, scale, bias, mean, var = inputs[:5]
    training = bool(attrs.get("training_mode", 0))
    eps = float(np.float32(attrs.get("epsilon", 1e-5)))
    momentum = float(np.float32(attrs.get("momentum", 0.9)))
    from cnnkit import Tensor

    # ONNX and Keras share the convention moving = moving*momentum + batch*(1 - momentum)
    # with the biased batch variance.
    mm, mv = Tensor(mean.copy()), Tensor(var.copy())
    res = ops.batch_norm(to_channels_last(x), scale, bias, mm, mv, training=training,
                         momentum=momentum, epsilon=eps, axis=-1)
    if isinstance(res, tuple):
        y, new_mean, new_var = res[0], res[1], res[2]
    else:
        y, new_mean, new_var = res, mm, mv
    outs = [to_channels_first(y)]
    if n_out > 1:
        outs += [new_mean, new_var][: n_out - 1]
    return outs


# ---------------------------------------------------------------------------------------------
# Activations


def _f32(v: Any) -> float:
    """An ONNX float attribute as the float32 value the reference used."""
    return float(np.float32(v))


def _selu(attrs: dict, inputs: list, n_out: int) -> list:
    alpha = _f32(attrs.get("alpha", 1.67326319217681884765625))
    gamma = _f32(attrs.get("gamma", 1.05070102214813232421875))
    if np.float32(alpha) == np.float32(1.67326319217681884765625) and \
            np.float32(gamma) == np.float32(1.05070102214813232421875):
        return [ops.selu(inputs[0])]
    # selu with other constants: gamma * elu(x, alpha).
    return [ops.multiply(ops.elu(inputs[0], alpha=alpha), np.float32(gamma))]


def _softmax_like(fn: Callable[..., Any]) -> Callable[[dict, list, int], list]:
    def run(attrs: dict, inputs: list, n_out: int) -> list:
        return [fn(inputs[0], axis=int(attrs.get("axis", -1)))]

    return run


# ---------------------------------------------------------------------------------------------
# Linear algebra and shape


def _gemm(attrs: dict, inputs: list, n_out: int) -> list:
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    if attrs.get("transA", 0):
        a = ops.transpose(a)
    if attrs.get("transB", 0):
        b = ops.transpose(b)
    y = ops.matmul(a, b)
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    if alpha != 1.0:
        y = ops.multiply(y, np.float32(alpha))
    if c is not None:
        y = ops.add(y, c if beta == 1.0 else ops.multiply(c, np.float32(beta)))
    return [y]


def _add(attrs: dict, inputs: list, n_out: int) -> list:
    return [ops.add(inputs[0], inputs[1])]


def _flatten(attrs: dict, inputs: list, n_out: int) -> list:
    x = inputs[0]
    axis = int(attrs.get("axis", 1))
    axis = axis + x.ndim if axis < 0 else axis  # ONNX axis is in [-r, r]
    if axis == 1:
        return [ops.flatten(x)]
    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [ops.reshape(x, (lead, -1 if lead else int(np.prod(x.shape[axis:]))))]


def _reshape(attrs: dict, inputs: list, n_out: int) -> list:
    x, shape = inputs[0], [int(s) for s in inputs[1]]
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [ops.reshape(x, shape)]


def _pad(attrs: dict, inputs: list, n_out: int) -> list:
    x, pads = inputs[0], [int(p) for p in inputs[1]]
    value = inputs[2] if len(inputs) > 2 and inputs[2] is not None else None
    axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else None
    mode = attrs.get("mode", "constant")  # cnnkit.ops.pad itself rejects modes it lacks
    axes = list(range(x.ndim)) if axes is None else [int(a) % x.ndim for a in axes]
    width = [(0, 0)] * x.ndim
    k = len(axes)
    for i, ax in enumerate(axes):
        width[ax] = (pads[i], pads[i + k])
    cval = 0.0 if value is None else value.item()
    return [ops.pad(x, width, mode=mode, constant_values=cval)]


# ---------------------------------------------------------------------------------------------
# Resize


def _resize(attrs: dict, inputs: list, n_out: int) -> list:
    x = inputs[0]
    roi = inputs[1] if len(inputs) > 1 else None
    scales = inputs[2] if len(inputs) > 2 else None
    sizes = inputs[3] if len(inputs) > 3 else None
    r = x.ndim
    axes = [int(a) % r for a in attrs.get("axes", range(r))]
    spatial = list(range(2, r))
    # Per-axis values over all r axes; axes not listed keep their size (scale 1, roi 0..1).
    full_scales: list[float] | None = None
    full_sizes: list[int] | None = None
    if sizes is not None and sizes.size:
        full_sizes = list(x.shape)
        for i, ax in enumerate(axes):
            full_sizes[ax] = int(sizes[i])
        policy = attrs.get("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch" and sorted(axes) != spatial:
            raise Unsupported("keep_aspect_ratio_policy over axes other than the spatial ones")
    elif scales is not None and scales.size:
        full_scales = [1.0] * r
        for i, ax in enumerate(axes):
            full_scales[ax] = float(scales[i])
    else:
        raise Unsupported("neither scales nor sizes")
    if (full_sizes and full_sizes[:2] != list(x.shape[:2])) or \
            (full_scales and full_scales[:2] != [1.0, 1.0]):
        raise Unsupported("resizing the batch or channel axis")
    ctm = attrs.get("coordinate_transformation_mode", "half_pixel")
    kwargs: dict[str, Any] = {
        "method": attrs.get("mode", "nearest"),
        "coordinate_transformation_mode": ctm,
        "nearest_mode": attrs.get("nearest_mode", "round_prefer_floor"),
        "cubic_coeff_a": _f32(attrs.get("cubic_coeff_a", -0.75)),
        "exclude_outside": bool(attrs.get("exclude_outside", 0)),
        "antialias": bool(attrs.get("antialias", 0)),
        "extrapolation_value": _f32(attrs.get("extrapolation_value", 0.0)),
        "keep_aspect_ratio_policy": attrs.get("keep_aspect_ratio_policy", "stretch"),
    }
    if ctm == "tf_crop_and_resize":
        # ONNX roi: [start_a for a in axes] + [end_a for a in axes] -> (start, end) per axis.
        starts, ends = [0.0] * r, [1.0] * r
        k = len(axes)
        for i, ax in enumerate(axes):
            starts[ax], ends[ax] = float(roi[i]), float(roi[i + k])
        if starts[:2] != [0.0, 0.0] or ends[:2] != [1.0, 1.0]:
            raise Unsupported("roi cropping the batch or channel axis")
        kwargs["roi"] = [(starts[a], ends[a]) for a in spatial]
    if full_sizes is not None:
        kwargs["size"] = tuple(full_sizes[2:])
    else:
        kwargs["scales"] = tuple(full_scales[2:])
    y = ops.resize(to_channels_last(x), **kwargs)
    return [to_channels_first(y)]


_TRANSLATIONS: dict[str, Callable[[dict, list, int], list]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _max_pool,
    "AveragePool": _avg_pool,
    "GlobalAveragePool": _global_avg_pool,
    "GlobalMaxPool": _global_max_pool,
    "BatchNormalization": _batch_norm,
    "Relu": lambda a, i, n: [ops.relu(i[0])],
    "LeakyRelu": lambda a, i, n: [ops.leaky_relu(i[0], alpha=_f32(a.get("alpha", 0.01)))],
    "Elu": lambda a, i, n: [ops.elu(i[0], alpha=_f32(a.get("alpha", 1.0)))],
    "Selu": _selu,
    "Sigmoid": lambda a, i, n: [ops.sigmoid(i[0])],
    "HardSigmoid": lambda a, i, n: [ops.hard_sigmoid(i[0], alpha=_f32(a.get("alpha", 0.2)),
                                                     beta=_f32(a.get("beta", 0.5)))],
    "HardSwish": lambda a, i, n: [ops.hard_swish(i[0])],
    "Tanh": lambda a, i, n: [ops.tanh(i[0])],
    "Softmax": _softmax_like(lambda x, axis: ops.softmax(x, axis=axis)),
    "LogSoftmax": _softmax_like(lambda x, axis: ops.log_softmax(x, axis=axis)),
    "Gemm": _gemm,
    "MatMul": lambda a, i, n: [ops.matmul(i[0], i[1])],
    "Flatten": _flatten,
    "Add": _add,
    "Concat": lambda a, i, n: [ops.concatenate(i, axis=int(a["axis"]))],
    "Reshape": _reshape,
    "Pad": _pad,
    "Resize": _resize,
}
