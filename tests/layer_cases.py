"""The layer table and helpers shared by the tests/test_layers_*.py files: factory, input
shape(s), expected output shape and parameter count of every layer case (written out by hand
from the closed forms, never taken from cnnkit), and NHWC <-> NCHW conversions for PyTorch."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnkit import layers as L


@dataclass
class Case:
    id: str
    make: Callable[[], Any]
    inputs: Any  # a shape, or a list of shapes for merge layers
    out: tuple
    params: int
    int_input: bool = False


def conv_params(k, c_in, c_out, groups=1, bias=True):
    """Seeds: (prod(K) * C_in/groups + 1) * C_out."""
    return (math.prod(k) * c_in // groups + (1 if bias else 0)) * c_out


CASES = [
    # --- convolutions: (K*K*C_in/groups + 1) * C_out -----------------------------------
    Case("conv1d_valid", lambda: L.Conv1D(4, 3), (2, 9, 3), (2, 7, 4), conv_params((3,), 3, 4)),
    Case("conv1d_same_s2", lambda: L.Conv1D(4, 3, strides=2, padding="same"), (2, 9, 3),
         (2, 5, 4), conv_params((3,), 3, 4)),
    Case("conv1d_causal_d2", lambda: L.Conv1D(4, 3, padding="causal", dilation_rate=2),
         (2, 9, 3), (2, 9, 4), conv_params((3,), 3, 4)),
    Case("conv1d_groups_nobias", lambda: L.Conv1D(6, 3, groups=3, use_bias=False), (2, 8, 3),
         (2, 6, 6), conv_params((3,), 3, 6, 3, bias=False)),
    Case("conv2d_valid", lambda: L.Conv2D(5, 3, activation="relu"), (2, 8, 7, 3), (2, 6, 5, 5),
         conv_params((3, 3), 3, 5)),
    Case("conv2d_same_s2", lambda: L.Conv2D(5, (3, 2), strides=2, padding="same"),
         (2, 8, 7, 3), (2, 4, 4, 5), conv_params((3, 2), 3, 5)),
    Case("conv2d_d2_g2", lambda: L.Conv2D(4, 3, dilation_rate=2, groups=2, padding="same"),
         (2, 7, 7, 4), (2, 7, 7, 4), conv_params((3, 3), 4, 4, 2)),
    Case("conv3d_valid", lambda: L.Conv3D(3, 2), (1, 4, 5, 6, 2), (1, 3, 4, 5, 3),
         conv_params((2, 2, 2), 2, 3)),
    Case("conv3d_same_s2", lambda: L.Conv3D(3, 3, strides=2, padding="same"), (1, 5, 6, 5, 2),
         (1, 3, 3, 3, 3), conv_params((3, 3, 3), 2, 3)),
    Case("depthwise", lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (2, 7, 6, 3),
         (2, 5, 4, 6), 3 * 3 * 3 * 2 + 6),
    Case("depthwise_same_s2", lambda: L.DepthwiseConv2D(3, strides=2, padding="same",
                                                        use_bias=False),
         (2, 7, 6, 3), (2, 4, 3, 3), 27),
    Case("separable", lambda: L.SeparableConv2D(5, 3, depth_multiplier=2), (2, 7, 6, 3),
         (2, 5, 4, 5), 3 * 3 * 3 * 2 + 6 * 5 + 5),
    Case("separable_same_s2", lambda: L.SeparableConv2D(4, 3, strides=2, padding="same"),
         (2, 7, 6, 3), (2, 4, 3, 4), 27 + 3 * 4 + 4),
    # transposed: kernel (*K, filters, C_in) -> prod(K) * filters * C_in + filters
    Case("conv1d_t_valid_s2", lambda: L.Conv1DTranspose(4, 3, strides=2), (2, 5, 3),
         (2, 5 * 2 + 1, 4), 3 * 4 * 3 + 4),
    Case("conv2d_t_same_s2", lambda: L.Conv2DTranspose(4, 3, strides=2, padding="same"),
         (2, 4, 5, 3), (2, 8, 10, 4), 9 * 4 * 3 + 4),
    Case("conv2d_t_outpad", lambda: L.Conv2DTranspose(2, 3, strides=2, output_padding=1),
         (2, 3, 4, 3), (2, (3 - 1) * 2 + 3 + 1, (4 - 1) * 2 + 3 + 1, 2), 9 * 2 * 3 + 2),
    Case("conv2d_t_s_gt_k", lambda: L.Conv2DTranspose(2, 2, strides=3), (2, 3, 3, 1),
         (2, 9, 9, 2), 4 * 2 + 2),
    Case("conv2d_t_same_d2", lambda: L.Conv2DTranspose(3, 3, dilation_rate=2, padding="same"),
         (2, 5, 5, 2), (2, 5, 5, 3), 9 * 3 * 2 + 3),
    Case("conv3d_t", lambda: L.Conv3DTranspose(2, 2, strides=2), (1, 2, 3, 2, 3),
         (1, 4, 6, 4, 2), 8 * 2 * 3 + 2),
    # --- pooling ---------------------------------------------------------------------------
    Case("maxpool1d", lambda: L.MaxPooling1D(), (2, 9, 3), (2, 4, 3), 0),
    Case("maxpool1d_same", lambda: L.MaxPooling1D(3, 2, "same"), (2, 9, 3), (2, 5, 3), 0),
    Case("maxpool2d", lambda: L.MaxPooling2D(), (2, 7, 6, 3), (2, 3, 3, 3), 0),
    Case("maxpool2d_same", lambda: L.MaxPooling2D((3, 2), strides=(2, 1), padding="same"),
         (2, 7, 6, 3), (2, 4, 6, 3), 0),
    Case("maxpool3d", lambda: L.MaxPooling3D(), (1, 4, 5, 6, 2), (1, 2, 2, 3, 2), 0),
    Case("avgpool1d_same", lambda: L.AveragePooling1D(3, 2, "same"), (2, 9, 3), (2, 5, 3), 0),
    Case("avgpool2d", lambda: L.AveragePooling2D(), (2, 7, 6, 3), (2, 3, 3, 3), 0),
    Case("avgpool2d_same", lambda: L.AveragePooling2D(3, 2, "same"), (2, 7, 6, 3),
         (2, 4, 3, 3), 0),
    Case("avgpool3d_same", lambda: L.AveragePooling3D(2, padding="same"), (1, 3, 5, 5, 2),
         (1, 2, 3, 3, 2), 0),
    Case("gap1d", lambda: L.GlobalAveragePooling1D(), (2, 9, 3), (2, 3), 0),
    Case("gap2d_keep", lambda: L.GlobalAveragePooling2D(keepdims=True), (2, 5, 4, 3),
         (2, 1, 1, 3), 0),
    Case("gap3d", lambda: L.GlobalAveragePooling3D(), (1, 3, 4, 2, 3), (1, 3), 0),
    Case("gmp1d_keep", lambda: L.GlobalMaxPooling1D(keepdims=True), (2, 9, 3), (2, 1, 3), 0),
    Case("gmp2d", lambda: L.GlobalMaxPooling2D(), (2, 5, 4, 3), (2, 3), 0),
    Case("gmp3d", lambda: L.GlobalMaxPooling3D(), (1, 3, 4, 2, 3), (1, 3), 0),
    # --- batch norm: gamma, beta, moving mean, moving variance -------------------------------
    Case("bn", lambda: L.BatchNormalization(), (4, 5, 5, 3), (4, 5, 5, 3), 4 * 3),
    Case("bn_nocenter", lambda: L.BatchNormalization(center=False), (4, 5, 3), (4, 5, 3), 9),
    Case("bn_axis1", lambda: L.BatchNormalization(axis=1), (4, 3, 5), (4, 3, 5), 12),
    Case("bn_dense_plain", lambda: L.BatchNormalization(center=False, scale=False), (6, 4),
         (6, 4), 8),
    # --- merging -------------------------------------------------------------------------
    Case("add", lambda: L.Add(), [(2, 4, 3), (2, 4, 3)], (2, 4, 3), 0),
    Case("add_broadcast", lambda: L.Add(), [(2, 4, 3), (2, 1, 3), (2, 3)], (2, 4, 3), 0),
    Case("subtract", lambda: L.Subtract(), [(2, 4, 3), (2, 4, 1)], (2, 4, 3), 0),
    Case("multiply", lambda: L.Multiply(), [(2, 4, 3), (2, 4, 3), (2, 4, 3)], (2, 4, 3), 0),
    Case("average", lambda: L.Average(), [(2, 4, 3), (2, 4, 3)], (2, 4, 3), 0),
    Case("maximum", lambda: L.Maximum(), [(2, 4, 3), (2, 1, 3), (2, 4, 3)], (2, 4, 3), 0),
    Case("minimum", lambda: L.Minimum(), [(2, 4, 3), (2, 4, 3)], (2, 4, 3), 0),
    Case("concat", lambda: L.Concatenate(), [(2, 4, 3), (2, 4, 5)], (2, 4, 8), 0),
    Case("concat_axis1", lambda: L.Concatenate(axis=1), [(2, 4, 3), (2, 2, 3), (2, 1, 3)],
         (2, 7, 3), 0),
    # --- reshaping -----------------------------------------------------------------------
    Case("up1d", lambda: L.UpSampling1D(3), (2, 4, 3), (2, 12, 3), 0),
    Case("up2d", lambda: L.UpSampling2D((2, 3)), (2, 3, 4, 2), (2, 6, 12, 2), 0),
    Case("up2d_bilinear", lambda: L.UpSampling2D(interpolation="bilinear"), (2, 3, 4, 2),
         (2, 6, 8, 2), 0),
    Case("up3d", lambda: L.UpSampling3D((1, 2, 3)), (1, 2, 2, 2, 2), (1, 2, 4, 6, 2), 0),
    Case("zpad1d", lambda: L.ZeroPadding1D((1, 2)), (2, 4, 3), (2, 7, 3), 0),
    Case("zpad2d_pairs", lambda: L.ZeroPadding2D(((1, 2), (0, 3))), (2, 3, 4, 2),
         (2, 6, 7, 2), 0),
    Case("zpad2d_sym", lambda: L.ZeroPadding2D((1, 2)), (2, 3, 4, 2), (2, 5, 8, 2), 0),
    Case("zpad3d", lambda: L.ZeroPadding3D(1), (1, 2, 2, 2, 2), (1, 4, 4, 4, 2), 0),
    Case("crop1d", lambda: L.Cropping1D((1, 2)), (2, 6, 3), (2, 3, 3), 0),
    Case("crop2d_pairs", lambda: L.Cropping2D(((1, 0), (1, 2))), (2, 5, 6, 2), (2, 4, 3, 2), 0),
    Case("crop2d_int", lambda: L.Cropping2D(1), (2, 5, 6, 2), (2, 3, 4, 2), 0),
    Case("crop3d", lambda: L.Cropping3D(((1, 0), (0, 1), (1, 1))), (1, 3, 3, 4, 2),
         (1, 2, 2, 2, 2), 0),
    Case("sdrop1d", lambda: L.SpatialDropout1D(0.5), (2, 5, 3), (2, 5, 3), 0),
    Case("sdrop2d", lambda: L.SpatialDropout2D(0.3), (2, 4, 5, 3), (2, 4, 5, 3), 0),
    Case("sdrop3d", lambda: L.SpatialDropout3D(0.3), (1, 2, 3, 4, 3), (1, 2, 3, 4, 3), 0),
    # --- core layers ---------------------------------------------------------------------
    Case("dense", lambda: L.Dense(5, activation="tanh"), (2, 3), (2, 5), 3 * 5 + 5),
    Case("dense_3d_nobias", lambda: L.Dense(4, use_bias=False), (2, 3, 6), (2, 3, 4), 24),
    Case("flatten", lambda: L.Flatten(), (2, 3, 4, 2), (2, 24), 0),
    Case("reshape", lambda: L.Reshape((4, -1)), (2, 3, 4), (2, 4, 3), 0),
    Case("permute", lambda: L.Permute((2, 1)), (2, 3, 4), (2, 4, 3), 0),
    Case("activation", lambda: L.Activation("relu"), (2, 3, 4), (2, 3, 4), 0),
    Case("relu6", lambda: L.ReLU(max_value=6.0), (2, 5), (2, 5), 0),
    Case("leaky_relu", lambda: L.LeakyReLU(0.2), (2, 5), (2, 5), 0),
    Case("elu", lambda: L.ELU(0.5), (2, 5), (2, 5), 0),
    Case("softmax", lambda: L.Softmax(), (2, 3, 5), (2, 3, 5), 0),
    Case("dropout", lambda: L.Dropout(0.4), (2, 5), (2, 5), 0),
    Case("embedding", lambda: L.Embedding(10, 4), (2, 5), (2, 5, 4), 40, int_input=True),
    Case("rescaling", lambda: L.Rescaling(1 / 255, offset=-0.5), (2, 4, 3), (2, 4, 3), 0),
    Case("normalization", lambda: L.Normalization(), (2, 4, 3), (2, 4, 3), 2 * 3),
]


IDS = [c.id for c in CASES]


def make_input(case: Case, seed: int = 1) -> Any:
    r = np.random.default_rng(seed)
    if case.int_input:
        return r.integers(0, 10, size=case.inputs)
    if isinstance(case.inputs, list):
        return [r.standard_normal(s).astype(np.float32) for s in case.inputs]
    return r.standard_normal(case.inputs).astype(np.float32)


def randomize(layer, seed: int = 2) -> None:
    """Random weights (variances positive) so outputs depend on every weight."""
    r = np.random.default_rng(seed)
    vals = []
    for w in layer.weights:
        if "variance" in w.name:
            vals.append(r.uniform(0.5, 1.5, w.shape))
        else:
            vals.append(r.standard_normal(w.shape) * 0.5)
    layer.set_weights(vals)


def batchless(shape: Any) -> Any:
    if isinstance(shape, list):
        return [(None, *s[1:]) for s in shape]
    return (None, *shape[1:])


def to_nc(a):
    return np.ascontiguousarray(np.moveaxis(np.asarray(a), -1, 1))


def kernel_to_torch(w):
    """(*K, A, B) -> (B, A, *K)."""
    nd = w.ndim - 2
    return np.ascontiguousarray(np.transpose(w, (nd + 1, nd, *range(nd))))


def keras_same_pads(size, k, s, d):
    """TensorFlow "same": output ceil(W/S), the odd extra pixel of padding at the end."""
    out = -(-size // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def torch_pad(torch, xt, pads, value=0.0):
    flat = []
    for before, after in reversed(pads):
        flat += [before, after]
    return torch.nn.functional.pad(xt, flat, value=value)


def layer_pads(padding, sizes, ks, ss, ds):
    if padding == "valid":
        return [(0, 0)] * len(sizes)
    if padding == "causal":
        return [(ds[0] * (ks[0] - 1), 0)]
    return [keras_same_pads(n, k, s, d) for n, k, s, d in zip(sizes, ks, ss, ds, strict=True)]


def tup(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)
