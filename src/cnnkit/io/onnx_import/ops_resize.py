"""Resize (opsets 10 to 19) and Upsample (opsets 7 to 9) as cnnkit's Resize layer over the
spatial axes (channels-last): nearest, linear and cubic, every coordinate transformation
mode PyTorch and Paddle export, nearest rounding modes, antialias and keep_aspect_ratio."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import layers as L
from .context import Context, OnnxNode
from .values import Dim, Partial, Sym


def _per_axis(ctx: Context, values: np.ndarray, axes: list[int] | None, rank: int,
              fill: Any) -> list[Any]:
    values = [v for v in np.asarray(values).reshape(-1)]
    if axes is None:
        if len(values) != rank:
            raise ctx.unsupported(f"{len(values)} scales/sizes for a rank-{rank} input")
        return values
    out = list(fill)
    for a, v in zip(axes, values, strict=True):
        out[a % rank] = v
    return out


def _sizes(ctx: Context, node: OnnxNode, x: Sym) -> np.ndarray | None:
    """The sizes input; one computed from the input's shape may name its batch size, which
    the output keeps whatever it is."""
    if len(node.inputs) <= 3 or not node.inputs[3]:
        return None
    v = ctx.get(node.inputs[3])
    if isinstance(v, Partial) and not v.known:
        if any(isinstance(d, Dim) for d in v.values[1:]):
            raise ctx.unsupported("sizes that depend on spatial sizes known only when the "
                                  "model runs")
        return np.asarray([x.onnx_shape[0] or 1, *v.values[1:]], np.int64)
    return ctx.const(node.inputs[3], "sizes")


def _spatial(ctx: Context, x: Sym, scales: Any, sizes: Any) -> tuple[Any, Any]:
    """(sizes or None, scales or None) for the spatial axes; N and C must stay."""
    shape = x.onnx_shape
    if sizes is not None:
        if (shape[0] is not None and int(sizes[0]) != shape[0]) or (
                shape[1] is not None and int(sizes[1]) != shape[1]):
            raise ctx.unsupported(f"sizes {list(sizes)} resize the batch or channel axis")
        return [int(v) for v in sizes[2:]], None
    if float(scales[0]) != 1.0 or float(scales[1]) != 1.0:
        raise ctx.unsupported(f"scales {list(scales)} resize the batch or channel axis")
    return None, [float(v) for v in scales[2:]]


def _modes(ctx: Context, node: OnnxNode) -> dict[str, Any]:
    mode = str(node.attr("mode", "nearest")).lower()
    mode = {"bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    if node.op_type == "Upsample" or node.opset < 11:
        return {"method": mode, "coordinate_transformation_mode": "asymmetric",
                "nearest_mode": "floor"}
    out = {"method": mode,
           "coordinate_transformation_mode": node.attr("coordinate_transformation_mode",
                                                       "half_pixel"),
           "nearest_mode": node.attr("nearest_mode", "round_prefer_floor"),
           "cubic_coeff_a": float(node.attr("cubic_coeff_a", -0.75)),
           "exclude_outside": bool(node.attr("exclude_outside", 0)),
           "extrapolation_value": float(node.attr("extrapolation_value", 0.0)),
           "antialias": bool(node.attr("antialias", 0)),
           "keep_aspect_ratio_policy": node.attr("keep_aspect_ratio_policy", "stretch")}
    return out


def _roi(ctx: Context, node: OnnxNode, rank: int, axes: list[int] | None) -> list | None:
    """tf_crop_and_resize's region of interest, (start, end) per spatial axis."""
    roi = ctx.optional_const(node, 1, "roi")
    if roi is None:
        raise ctx.unsupported("tf_crop_and_resize without a roi")
    roi = np.asarray(roi, np.float64).reshape(-1)
    n = len(roi) // 2
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    if n != len(axes):
        raise ctx.unsupported(f"a roi of {len(roi)} values for axes {axes}")
    pairs = {a: (roi[i], roi[i + n]) for i, a in enumerate(axes)}
    return [list(pairs.get(a, (0.0, 1.0))) for a in range(2, rank)]


def resize(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.channels_last(ctx.sym(node.inputs[0]))
    if x.rank < 3:
        raise ctx.unsupported(f"an input of rank {x.rank} (cnnkit resizes spatial axes)")
    if node.op_type == "Upsample" and node.opset < 9:
        scales, sizes = node.attr("scales"), None
    elif node.op_type == "Upsample" or node.opset < 11:
        scales, sizes = ctx.const(node.inputs[1], "scales"), None
    else:
        scales = ctx.optional_const(node, 2, "scales")
        sizes = _sizes(ctx, node, x)
        if scales is not None and np.asarray(scales).size == 0:
            scales = None
        if sizes is not None and np.asarray(sizes).size == 0:
            sizes = None
    if (scales is None) == (sizes is None):
        raise ctx.unsupported("neither or both of scales and sizes")
    axes = node.attr("axes")
    onnx_shape = x.onnx_shape
    if sizes is not None:
        sizes = _per_axis(ctx, sizes, axes, x.rank, [d or 1 for d in onnx_shape])
    else:
        scales = _per_axis(ctx, scales, axes, x.rank, [1.0] * x.rank)
    sz, sc = _spatial(ctx, x, scales, sizes)
    modes = _modes(ctx, node)
    if modes["method"] not in ("nearest", "linear", "cubic"):
        raise ctx.unsupported(f"mode {modes['method']!r} (nearest, linear and cubic are)")
    roi = None
    if modes.get("coordinate_transformation_mode") == "tf_crop_and_resize":
        roi = _roi(ctx, node, x.rank, axes)
    return [ctx.apply(L.Resize, x, x.perm, sizes=sz, scales=sc, roi=roi, **modes)]


CONVERTERS = {"Resize": resize, "Upsample": resize}
