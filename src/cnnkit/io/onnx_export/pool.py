"""Pooling: MaxPool / AveragePool (Keras "same" pads; padded cells left out of an average,
ONNX's count_include_pad=0), GlobalAveragePool / GlobalMaxPool (then Flatten unless
keepdims), and PyTorch's adaptive average pooling: the identity, an AveragePool when the
sizes divide, else two MatMuls with the bin matrices (row i averages input cells
[floor(i*n/out), ceil((i+1)*n/out)))."""

from __future__ import annotations

import numpy as np

from ... import layers
from ...kernels.padding import resolve_padding
from .errors import OnnxExportError
from .graph import Value
from .layout import as_cf
from .registry import Call, exports


def _pool_pads(c: Call) -> dict:
    la = c.layer
    sizes = c.x.shape[1:-1]
    if la.padding == "same" and any(d is None for d in sizes):
        return {"auto_pad": "SAME_UPPER"}
    known = [1 if d is None else int(d) for d in sizes]
    pads = resolve_padding(la.padding, known, la.pool_size, la.strides)
    return {"pads": [p[0] for p in pads] + [p[1] for p in pads]}


@exports(layers.MaxPooling1D, layers.MaxPooling2D, layers.MaxPooling3D,
         layers.AveragePooling1D, layers.AveragePooling2D, layers.AveragePooling3D)
def pool(c: Call) -> Value:
    la = c.layer
    x = as_cf(c.g, c.x)
    op = "MaxPool" if la.takes_max else "AveragePool"
    y = c.g.node(op, [x.name], c.name, kernel_shape=list(la.pool_size),
                 strides=list(la.strides), **_pool_pads(c))
    return c.out(y, cf=True)


@exports(layers.GlobalAveragePooling1D, layers.GlobalAveragePooling2D,
         layers.GlobalAveragePooling3D, layers.GlobalMaxPooling1D, layers.GlobalMaxPooling2D,
         layers.GlobalMaxPooling3D)
def global_pool(c: Call) -> Value:
    la = c.layer
    x = as_cf(c.g, c.x)
    takes_max = isinstance(la, (layers.GlobalMaxPooling1D, layers.GlobalMaxPooling2D,
                                layers.GlobalMaxPooling3D))
    op = "GlobalMaxPool" if takes_max else "GlobalAveragePool"
    if la.keepdims:
        return c.out(c.g.node(op, [x.name], c.name), cf=True)
    y = c.g.node(op, [x.name], f"{c.name}/pool")
    return c.out(c.g.node("Flatten", [y], c.name, axis=1), cf=False)


def _bins(n: int, out: int, dtype: np.dtype) -> np.ndarray:
    m = np.zeros((out, n), dtype=dtype)
    for i in range(out):
        lo, hi = (i * n) // out, -(-((i + 1) * n) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


@exports(layers.AdaptiveAveragePooling2D)
def adaptive_pool(c: Call) -> Value:
    _, h, w, _ = c.x.shape
    oh, ow = c.layer.output_size
    if h is None or w is None:
        raise OnnxExportError(f"AdaptiveAveragePooling2D '{c.layer.name}' needs a known input "
                              f"height and width to be exported, got input shape {c.x.shape}")
    x = as_cf(c.g, c.x)
    if (h, w) == (oh, ow):
        return c.out(c.g.node("Identity", [x.name], c.name), cf=True)
    if h % oh == 0 and w % ow == 0:
        k = [h // oh, w // ow]
        return c.out(c.g.node("AveragePool", [x.name], c.name, kernel_shape=k, strides=k),
                     cf=True)
    rows = c.weight("rows", _bins(h, oh, np.dtype(c.dtype)))
    cols = c.weight("cols", np.ascontiguousarray(_bins(w, ow, np.dtype(c.dtype)).T))
    y = c.g.node("MatMul", [rows, x.name], f"{c.name}/rows")  # (oh, H) @ (N, C, H, W)
    return c.out(c.g.node("MatMul", [y, cols], c.name), cf=True)
