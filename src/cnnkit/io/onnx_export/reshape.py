"""Shape layers: Flatten, Reshape, Permute, ZeroPadding, Cropping, UpSampling, Resizing and
CenterCrop.

A Flatten of a channels-first image flattens in (C, H, W) order and records the permutation
(order[j] = the channels-last feature at position j), which a following Dense folds into its
kernel rows: no transpose inside the graph. UpSampling is Resize "nearest" (asymmetric
coordinates, floor: each cell repeated) or "linear" with half-pixel centres (bilinear,
align_corners=False); Resizing is Resize to a size, with the same modes as cnnkit's.
"""

from __future__ import annotations

import numpy as np

from ... import layers
from .errors import OnnxExportError
from .graph import Value, to_last
from .layout import as_cf, as_last, flatten_order, in_order
from .registry import Call, exports

INT64_MAX = 2**63 - 1


@exports(layers.Flatten)
def flatten(c: Call) -> Value:
    x = in_order(c.g, c.x)
    known = all(d is not None for d in x.shape[1:])
    if x.cf and not known:  # the order needs the sizes: flatten channels-last
        x = as_last(c.g, x)
    y = c.g.node("Flatten", [x.name], c.name, axis=1)
    if not x.cf or all(d == 1 for d in x.shape[1:-1]):
        return c.out(y, cf=False, order=None)
    return c.out(y, cf=False, order=flatten_order(x.shape))


@exports(layers.Reshape)
def reshape(c: Call) -> Value:
    """Reshape in cnnkit's order; a result (N, 1, ..., 1, C) is written channels-first."""
    g, x = c.g, in_order(c.g, c.x)
    if x.cf and not all(d == 1 for d in x.shape[1:-1]):
        x = as_last(g, x)  # (with 1 x 1 spatial the two layouts share one order)
    out = tuple(c.out_shape)
    if len(out) >= 3 and all(d == 1 for d in out[1:-1]) and out[-1] is not None:
        shape, cf = [0, int(out[-1]), *(1 for _ in out[1:-1])], True
    else:
        shape, cf = [0, *c.layer.target_shape], False
    return c.out(g.node("Reshape", [x.name, g.ints(shape, "shape")], c.name), cf=cf,
                 order=None)


@exports(layers.Permute)
def permute(c: Call) -> Value:
    x = in_order(c.g, c.x)
    perm = (0, *c.layer.dims)
    if x.cf:
        back = to_last(x.rank)
        perm = tuple(back[p] for p in perm)
    return c.out(c.g.transpose(x.name, perm, c.name), cf=False, order=None)


def _spatial_pads(c: Call, pairs: tuple) -> list[int]:
    """ONNX pads (all begins, then all ends) of a channels-first tensor."""
    return [0, 0, *(p[0] for p in pairs), 0, 0, *(p[1] for p in pairs)]


@exports(layers.ZeroPadding1D, layers.ZeroPadding2D, layers.ZeroPadding3D)
def zero_padding(c: Call) -> Value:
    x = as_cf(c.g, c.x)
    return c.out(c.g.pad(x.name, _spatial_pads(c, c.layer.padding), x.dtype, c.name), cf=True)


def _crop(c: Call, x: Value, pairs: list[tuple[int, int]]) -> Value:
    axes = list(range(2, 2 + len(pairs)))
    ends = [-a if a else INT64_MAX for _, a in pairs]
    return c.out(c.g.slice(x.name, [b for b, _ in pairs], ends, axes, c.name), cf=True)


@exports(layers.Cropping1D, layers.Cropping2D, layers.Cropping3D)
def cropping(c: Call) -> Value:
    return _crop(c, as_cf(c.g, c.x), list(c.layer.cropping))


@exports(layers.CenterCrop)
def center_crop(c: Call) -> Value:
    _, h, w, _ = c.x.shape
    if h is None or w is None:
        raise OnnxExportError(f"CenterCrop '{c.layer.name}' needs a known input height and "
                              f"width to be exported, got input shape {c.x.shape}")
    top, left = (h - c.layer.height) // 2, (w - c.layer.width) // 2
    return _crop(c, as_cf(c.g, c.x), [(top, h - c.layer.height - top),
                                      (left, w - c.layer.width - left)])


@exports(layers.UpSampling1D, layers.UpSampling2D, layers.UpSampling3D)
def upsampling(c: Call) -> Value:
    g, la = c.g, c.layer
    x = as_cf(g, c.x)
    scales = g.const(np.asarray([1, 1, *la.size], np.float32), "scales")
    if la.interpolation == "nearest":
        if g.opset == 10:  # Resize 10: nearest with asymmetric coordinates (floor)
            return c.out(g.node("Resize", [x.name, scales], c.name, mode="nearest"), cf=True)
        g.need(10, f"UpSampling '{la.name}' (Resize)")
        return c.out(g.resize(x.name, c.name, "nearest", "asymmetric", scales=scales), cf=True)
    g.need(11, f"{type(la).__name__} '{la.name}' with bilinear interpolation (Resize with "
               f"half_pixel coordinates)")
    return c.out(g.resize(x.name, c.name, "linear", "half_pixel", scales=scales), cf=True)


@exports(layers.Resizing)
def resizing(c: Call) -> Value:
    """Resize to (height, width): sizes for the spatial axes alone (opset 18), or the input's
    (N, C) joined to them."""
    g, la = c.g, c.layer
    g.need(11, f"Resizing '{la.name}' (Resize with coordinate modes)")
    x = as_cf(g, c.x)
    linear = la.interpolation == "bilinear"
    mode, coords = ("linear", "half_pixel") if linear else ("nearest", "asymmetric")
    hw = g.ints([la.height, la.width], "size")
    if g.opset >= 18:
        nearest = {} if linear else {"nearest_mode": "floor"}
        y = g.node("Resize", [x.name, "", "", hw], c.name, mode=mode, axes=[2, 3],
                   coordinate_transformation_mode=coords, **nearest)
        return c.out(y, cf=True)
    sizes = g.node("Concat", [g.shape_of(x.name, 0, 2, c.name), hw], f"{c.name}/sizes",
                   axis=0)
    return c.out(g.resize(x.name, c.name, mode, coords, sizes=sizes), cf=True)
