"""Keras-style layers: output shapes and parameter counts against closed forms, config
round-trips, outputs against PyTorch (conv, pooling, batch norm, upsampling) or independent
NumPy, bad inputs, and batch-norm moving statistics."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from helpers import assert_close_scaled, torch_or_skip

from cnnkit import Tensor
from cnnkit import layers as L

rng = np.random.default_rng(0)


# ----------------------------------------------------------------------------------------
# The layer table: factory, input shape(s), expected output shape and parameter count
# (written out by hand from the closed forms, never taken from cnnkit).
# ----------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------
# (1) output shape, (2) parameter count, (3) config round-trip: every layer
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_output_shape(case):
    layer = case.make()
    y = layer(make_input(case))
    assert y.shape == case.out
    assert tuple(layer.compute_output_shape(case.inputs)) == case.out
    assert tuple(layer.compute_output_shape(batchless(case.inputs))) == (None, *case.out[1:])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_symbolic_shape(case):
    layer = case.make()
    dtype = "int64" if case.int_input else "float32"
    if isinstance(case.inputs, list):
        ins = [L.Input(s[1:]) for s in case.inputs]
    else:
        ins = L.Input(case.inputs[1:], dtype=dtype)
    out = layer(ins)
    assert out.shape == (None, *case.out[1:])
    assert out.node.layer is layer


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_param_count(case):
    layer = case.make()
    layer(make_input(case))
    assert layer.count_params() == case.params
    assert sum(w.size for w in layer.weights) == case.params


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_roundtrip(case):
    layer = case.make()
    x = make_input(case)
    layer(x)
    randomize(layer)
    cfg = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(cfg)
    assert json.loads(json.dumps(clone.get_config())) == cfg
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x, training=False).data, layer(x, training=False).data)
    for a, b in zip(clone.weights, layer.weights, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype


def test_default_names_are_keras_style():
    pairs = [(L.Conv2D(1, 1), "conv2d"), (L.Conv2DTranspose(1, 1), "conv2d_transpose"),
             (L.DepthwiseConv2D(1), "depthwise_conv2d"), (L.MaxPooling2D(), "max_pooling2d"),
             (L.GlobalAveragePooling2D(), "global_average_pooling2d"),
             (L.BatchNormalization(), "batch_normalization"), (L.UpSampling2D(), "up_sampling2d"),
             (L.ZeroPadding2D(), "zero_padding2d"), (L.SpatialDropout2D(0.1), "spatial_dropout2d"),
             (L.Concatenate(), "concatenate")]
    for layer, base in pairs:
        assert re.fullmatch(rf"{base}(_\d+)?", layer.name), layer.name
    a, b = L.Conv1D(1, 1), L.Conv1D(1, 1)
    assert a.name != b.name
    assert L.Conv2D(1, 1, name="mine").name == "mine"


def test_weight_layouts_and_trainable_split():
    conv = L.Conv2D(8, (3, 2), groups=2)
    conv(np.zeros((1, 5, 5, 4), np.float32))
    assert [w.shape for w in conv.weights] == [(3, 2, 2, 8), (8,)]
    dw = L.DepthwiseConv2D(3, depth_multiplier=2)
    dw(np.zeros((1, 5, 5, 3), np.float32))
    assert [w.shape for w in dw.weights] == [(3, 3, 3, 2), (6,)]
    sep = L.SeparableConv2D(4, 3, depth_multiplier=2)
    sep(np.zeros((1, 5, 5, 3), np.float32))
    assert [w.shape for w in sep.weights] == [(3, 3, 3, 2), (1, 1, 6, 4), (4,)]
    tr = L.Conv3DTranspose(5, (2, 3, 1))
    tr(np.zeros((1, 3, 3, 3, 2), np.float32))
    assert [w.shape for w in tr.weights] == [(2, 3, 1, 5, 2), (5,)]
    bn = L.BatchNormalization()
    bn(np.zeros((2, 3, 3, 4), np.float32))
    assert [w.name.split("/")[-1] for w in bn.weights] == ["gamma", "beta", "moving_mean",
                                                           "moving_variance"]
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2


MACS = [
    # prod(output spatial) * prod(K) * C_in/groups * C_out
    (lambda: L.Conv2D(5, 3), (2, 8, 7, 3), 6 * 5 * 9 * 3 * 5),
    (lambda: L.Conv2D(4, 3, groups=2, padding="same"), (2, 7, 7, 4), 7 * 7 * 9 * 2 * 4),
    (lambda: L.Conv1D(4, 3, strides=2, padding="same"), (2, 9, 3), 5 * 3 * 3 * 4),
    (lambda: L.Conv3D(3, 2), (1, 4, 5, 6, 2), 3 * 4 * 5 * 8 * 2 * 3),
    (lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (2, 7, 6, 3), 5 * 4 * 9 * 3 * 2),
    (lambda: L.SeparableConv2D(5, 3, depth_multiplier=2), (2, 7, 6, 3),
     5 * 4 * (9 * 6 + 6 * 5)),
    # transposed: prod(input spatial) * prod(K) * C_in * C_out
    (lambda: L.Conv2DTranspose(4, 3, strides=2, padding="same"), (2, 4, 5, 3),
     4 * 5 * 9 * 3 * 4),
    (lambda: L.Dense(5), (2, 3), 15),
    (lambda: L.BatchNormalization(), (2, 4, 4, 3), 48),
    (lambda: L.MaxPooling2D(), (2, 4, 4, 3), 0),
]


@pytest.mark.parametrize("make,shape,macs", MACS)
def test_compute_macs(make, shape, macs):
    layer = make()
    y = layer(np.zeros(shape, np.float32))
    assert layer.compute_macs(shape, y.shape) == macs
    assert layer.compute_macs((None, *shape[1:]), (None, *y.shape[1:])) == macs


# ----------------------------------------------------------------------------------------
# (4) outputs against PyTorch (weights copied), float32, 1e-4 relative to output scale
# ----------------------------------------------------------------------------------------
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


CONV_CFGS = [
    (1, dict(filters=4, kernel_size=3), (2, 9, 3)),
    (1, dict(filters=4, kernel_size=4, strides=2, padding="same"), (2, 9, 3)),
    (1, dict(filters=4, kernel_size=3, dilation_rate=2, padding="causal"), (2, 8, 2)),
    (1, dict(filters=6, kernel_size=2, groups=3, padding="same"), (2, 7, 3)),
    (2, dict(filters=5, kernel_size=3), (2, 7, 8, 3)),
    (2, dict(filters=5, kernel_size=(3, 2), strides=2, padding="same"), (2, 7, 8, 3)),
    (2, dict(filters=4, kernel_size=3, strides=(2, 1), dilation_rate=(1, 2), padding="same",
             groups=2), (2, 9, 8, 4)),
    (2, dict(filters=3, kernel_size=2, use_bias=False, activation="relu"), (1, 5, 5, 2)),
    (3, dict(filters=3, kernel_size=2), (1, 4, 5, 3, 2)),
    (3, dict(filters=2, kernel_size=3, strides=2, padding="same"), (1, 5, 4, 6, 2)),
]


@pytest.mark.parametrize("nd,kw,shape", CONV_CFGS)
def test_conv_vs_torch(nd, kw, shape):
    torch = torch_or_skip()
    F = torch.nn.functional
    layer = {1: L.Conv1D, 2: L.Conv2D, 3: L.Conv3D}[nd](**kw)
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer(x)
    randomize(layer)
    y = layer(x).data
    w = layer.kernel.data
    b = None if layer.bias is None else torch.from_numpy(layer.bias.data)
    ks, ss, ds = w.shape[:nd], tup(kw.get("strides", 1), nd), tup(kw.get("dilation_rate", 1), nd)
    pads = layer_pads(kw.get("padding", "valid"), shape[1:-1], ks, ss, ds)
    xt = torch_pad(torch, torch.from_numpy(to_nc(x)), pads)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    ref = conv(xt, torch.from_numpy(kernel_to_torch(w)), b, stride=ss, dilation=ds,
               groups=kw.get("groups", 1))
    if kw.get("activation") == "relu":
        ref = torch.relu(ref)
    assert_close_scaled(y, np.moveaxis(ref.numpy(), 1, -1), tol=1e-4)


def test_conv_gradients_vs_torch():
    """Layer weights receive the same gradients as torch's (weights copied)."""
    torch = torch_or_skip()
    layer = L.Conv2D(4, 3, strides=2, padding="same")
    x = rng.standard_normal((2, 7, 6, 3)).astype(np.float32)
    layer(x)
    randomize(layer)
    gy = rng.standard_normal(layer.compute_output_shape(x.shape)).astype(np.float32)
    xt_np = Tensor(x.copy(), requires_grad=True)
    layer(xt_np).backward(gy)
    wt = torch.tensor(kernel_to_torch(layer.kernel.data), requires_grad=True)
    bt = torch.tensor(layer.bias.data, requires_grad=True)
    xt = torch.tensor(to_nc(x), requires_grad=True)
    pads = [keras_same_pads(7, 3, 2, 1), keras_same_pads(6, 3, 2, 1)]
    ref = torch.nn.functional.conv2d(torch_pad(torch, xt, pads), wt, bt, stride=2)
    ref.backward(torch.from_numpy(to_nc(gy)))
    assert_close_scaled(layer.kernel.grad, np.transpose(wt.grad.numpy(), (2, 3, 1, 0)))
    assert_close_scaled(layer.bias.grad, bt.grad.numpy())
    assert_close_scaled(xt_np.grad, np.moveaxis(xt.grad.numpy(), 1, -1))


@pytest.mark.parametrize("kw,shape", [
    (dict(kernel_size=3, depth_multiplier=2), (2, 7, 6, 3)),
    (dict(kernel_size=(3, 2), strides=2, padding="same"), (2, 7, 8, 3)),
    (dict(kernel_size=3, dilation_rate=2, padding="same", depth_multiplier=3), (1, 6, 7, 2)),
])
def test_depthwise_vs_torch(kw, shape):
    torch = torch_or_skip()
    layer = L.DepthwiseConv2D(**kw)
    x = rng.standard_normal(shape).astype(np.float32)
    layer(x)
    randomize(layer)
    y = layer(x).data
    w = layer.kernel.data  # (KH, KW, C, M) -> torch (C*M, 1, KH, KW), channel c*M + m
    kh, kw_, c, m = w.shape
    wt = np.ascontiguousarray(w.reshape(kh, kw_, c * m).transpose(2, 0, 1)[:, None])
    ss, ds = tup(kw.get("strides", 1), 2), tup(kw.get("dilation_rate", 1), 2)
    pads = layer_pads(kw.get("padding", "valid"), shape[1:3], (kh, kw_), ss, ds)
    xt = torch_pad(torch, torch.from_numpy(to_nc(x)), pads)
    ref = torch.nn.functional.conv2d(xt, torch.from_numpy(wt), torch.from_numpy(layer.bias.data),
                                     stride=ss, dilation=ds, groups=c)
    assert_close_scaled(y, np.moveaxis(ref.numpy(), 1, -1), tol=1e-4)


@pytest.mark.parametrize("kw,shape", [
    (dict(filters=5, kernel_size=3, depth_multiplier=2), (2, 7, 6, 3)),
    (dict(filters=4, kernel_size=3, strides=2, padding="same", activation="relu"), (2, 8, 7, 3)),
])
def test_separable_vs_torch(kw, shape):
    torch = torch_or_skip()
    F = torch.nn.functional
    layer = L.SeparableConv2D(**kw)
    x = rng.standard_normal(shape).astype(np.float32)
    layer(x)
    randomize(layer)
    y = layer(x).data
    wd, wp = layer.depthwise_kernel.data, layer.pointwise_kernel.data
    kh, kw_, c, m = wd.shape
    wdt = np.ascontiguousarray(wd.reshape(kh, kw_, c * m).transpose(2, 0, 1)[:, None])
    wpt = np.ascontiguousarray(wp[0, 0].T[:, :, None, None])
    ss = tup(kw.get("strides", 1), 2)
    pads = layer_pads(kw.get("padding", "valid"), shape[1:3], (kh, kw_), ss, (1, 1))
    xt = torch_pad(torch, torch.from_numpy(to_nc(x)), pads)
    mid = F.conv2d(xt, torch.from_numpy(wdt), None, stride=ss, groups=c)
    ref = F.conv2d(mid, torch.from_numpy(wpt), torch.from_numpy(layer.bias.data))
    if kw.get("activation") == "relu":
        ref = torch.relu(ref)
    assert_close_scaled(y, np.moveaxis(ref.numpy(), 1, -1), tol=1e-4)


def keras_deconv_length(w, k, s, d, padding, output_padding):
    """keras.utils.conv_utils.deconv_output_length."""
    e = d * (k - 1) + 1
    if output_padding is None:
        return w * s + max(e - s, 0) if padding == "valid" else w * s
    pad = 0 if padding == "valid" else e // 2
    return (w - 1) * s + e - 2 * pad + output_padding


@pytest.mark.parametrize("nd,kw,shape", [
    (1, dict(filters=4, kernel_size=3, strides=2), (2, 5, 3)),
    (1, dict(filters=2, kernel_size=2, strides=3, padding="same"), (2, 4, 3)),
    (2, dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 4, 5, 3)),
    (2, dict(filters=2, kernel_size=3, strides=2, output_padding=1), (2, 3, 4, 3)),
    (2, dict(filters=2, kernel_size=(4, 3), strides=2, output_padding=(1, 0), padding="same"),
     (1, 3, 4, 2)),
    (2, dict(filters=3, kernel_size=3, dilation_rate=2, padding="same"), (2, 5, 4, 2)),
    (2, dict(filters=2, kernel_size=2, strides=3), (2, 3, 3, 1)),
    (3, dict(filters=2, kernel_size=2, strides=2, padding="same"), (1, 2, 3, 2, 3)),
])
def test_conv_transpose_vs_torch(nd, kw, shape):
    """Reference: torch's full transposed convolution (no padding), then the Keras window
    [pad_before, pad_before + L) of it (zero-extended when L is longer), plus the bias."""
    torch = torch_or_skip()
    F = torch.nn.functional
    cls = {1: L.Conv1DTranspose, 2: L.Conv2DTranspose, 3: L.Conv3DTranspose}[nd]
    layer = cls(**kw)
    x = rng.standard_normal(shape).astype(np.float32)
    layer(x)
    randomize(layer)
    y = layer(x).data
    w = layer.kernel.data
    ks = w.shape[:nd]
    ss, ds = tup(kw.get("strides", 1), nd), tup(kw.get("dilation_rate", 1), nd)
    op = kw.get("output_padding")
    ops_ = [None] * nd if op is None else list(tup(op, nd))
    padding = kw.get("padding", "valid")
    lengths = [keras_deconv_length(shape[1 + a], ks[a], ss[a], ds[a], padding, ops_[a])
               for a in range(nd)]
    assert y.shape == (shape[0], *lengths, kw["filters"])
    full = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd](
        torch.from_numpy(to_nc(x)), torch.from_numpy(kernel_to_torch(w)), None, stride=ss,
        dilation=ds).numpy()
    full = np.moveaxis(full, 1, -1)
    ref = np.zeros(y.shape, np.float64)
    src = [slice(None)]
    dst = [slice(None)]
    for a in range(nd):
        before = 0 if padding == "valid" else keras_same_pads(lengths[a], ks[a], ss[a], ds[a])[0]
        n = min(lengths[a], full.shape[1 + a] - before)
        src.append(slice(before, before + n))
        dst.append(slice(0, n))
    ref[tuple(dst)] = full[tuple(src)]
    ref += layer.bias.data
    assert_close_scaled(y, ref, tol=1e-4)


POOL_CFGS = [
    (1, "max", dict(), (2, 9, 3)),
    (1, "max", dict(pool_size=3, strides=2, padding="same"), (2, 8, 3)),
    (1, "avg", dict(pool_size=3, strides=2, padding="same"), (2, 9, 3)),
    (2, "max", dict(), (2, 7, 6, 3)),
    (2, "max", dict(pool_size=(3, 2), strides=(2, 1), padding="same"), (2, 7, 6, 3)),
    (2, "avg", dict(pool_size=3), (2, 7, 6, 3)),
    (2, "avg", dict(pool_size=3, strides=2, padding="same"), (2, 8, 7, 3)),
    (3, "max", dict(pool_size=2, padding="same"), (1, 3, 5, 4, 2)),
    (3, "avg", dict(pool_size=(2, 3, 2), strides=1), (1, 3, 5, 4, 2)),
    (3, "avg", dict(pool_size=2, padding="same"), (1, 3, 5, 5, 2)),
]


@pytest.mark.parametrize("nd,kind,kw,shape", POOL_CFGS)
def test_pooling_vs_torch(nd, kind, kw, shape):
    """Keras "same": max pads with -inf; average counts only real cells (sum / count)."""
    torch = torch_or_skip()
    F = torch.nn.functional
    cls = {("max", 1): L.MaxPooling1D, ("max", 2): L.MaxPooling2D, ("max", 3): L.MaxPooling3D,
           ("avg", 1): L.AveragePooling1D, ("avg", 2): L.AveragePooling2D,
           ("avg", 3): L.AveragePooling3D}[kind, nd]
    layer = cls(**kw)
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer(x).data
    ps = tup(kw.get("pool_size", 2), nd)
    ss = tup(kw.get("strides") or ps, nd)
    pads = layer_pads(kw.get("padding", "valid"), shape[1:-1], ps, ss, (1,) * nd)
    xt = torch.from_numpy(to_nc(x))
    if kind == "max":
        pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
        ref = pool(torch_pad(torch, xt, pads, -np.inf), ps, ss)
    else:
        pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
        ref = pool(torch_pad(torch, xt, pads), ps, ss) / pool(
            torch_pad(torch, torch.ones_like(xt), pads), ps, ss)
    assert_close_scaled(y, np.moveaxis(ref.numpy(), 1, -1), tol=1e-4)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_vs_numpy(nd, keepdims):
    shape = {1: (2, 9, 3), 2: (2, 5, 4, 3), 3: (1, 3, 4, 2, 3)}[nd]
    x = rng.standard_normal(shape).astype(np.float32)
    axes = tuple(range(1, nd + 1))
    for cls, ref in [({1: L.GlobalAveragePooling1D, 2: L.GlobalAveragePooling2D,
                       3: L.GlobalAveragePooling3D}[nd], x.mean(axis=axes, keepdims=keepdims)),
                     ({1: L.GlobalMaxPooling1D, 2: L.GlobalMaxPooling2D,
                       3: L.GlobalMaxPooling3D}[nd], x.max(axis=axes, keepdims=keepdims))]:
        assert_close_scaled(cls(keepdims=keepdims)(x).data, ref, tol=1e-6)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("shape", [(4, 5, 6, 3), (5, 7, 2), (6, 4)])
def test_batchnorm_vs_torch(training, shape):
    """Keras momentum 0.99 = torch momentum 0.01; torch's running variance is unbiased."""
    torch = torch_or_skip()
    layer = L.BatchNormalization(momentum=0.9, epsilon=1e-3)
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    layer(x)
    randomize(layer)
    gamma, beta, mm, mv = layer.get_weights()
    y = layer(x, training=training).data
    rm, rv = torch.from_numpy(mm.copy()), torch.from_numpy(mv.copy())
    ref = torch.nn.functional.batch_norm(
        torch.from_numpy(to_nc(x)), rm, rv, torch.from_numpy(gamma), torch.from_numpy(beta),
        training=training, momentum=0.1, eps=1e-3)
    assert_close_scaled(y, np.moveaxis(ref.numpy(), 1, -1), tol=1e-4)
    assert_close_scaled(layer.moving_mean.data, rm.numpy(), tol=1e-5)
    if training:
        n = x.size // shape[-1]
        x64 = x.reshape(-1, shape[-1]).astype(np.float64)
        # torch moved with the unbiased variance (ddof=1); Keras moves with the biased one
        expected = rv.numpy() - 0.1 * x64.var(axis=0, ddof=1) + 0.1 * x64.var(axis=0)
        assert n > 1 and not np.allclose(expected, rv.numpy())
        assert_close_scaled(layer.moving_variance.data, expected, tol=1e-5)
    else:
        np.testing.assert_array_equal(layer.moving_variance.data, mv)


def test_batchnorm_gradients_vs_torch():
    torch = torch_or_skip()
    layer = L.BatchNormalization()
    x = rng.standard_normal((3, 4, 5, 2)).astype(np.float32)
    layer(x)
    randomize(layer)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    xt_np = Tensor(x.copy(), requires_grad=True)
    layer(xt_np, training=True).backward(gy)
    g = torch.tensor(layer.gamma.data.copy(), requires_grad=True)
    b = torch.tensor(layer.beta.data.copy(), requires_grad=True)
    xt = torch.tensor(to_nc(x), requires_grad=True)
    torch.nn.functional.batch_norm(xt, None, None, g, b, training=True, eps=1e-3).backward(
        torch.from_numpy(to_nc(gy)))
    assert_close_scaled(layer.gamma.grad, g.grad.numpy())
    assert_close_scaled(layer.beta.grad, b.grad.numpy())
    assert_close_scaled(xt_np.grad, np.moveaxis(xt.grad.numpy(), 1, -1))


def test_batchnorm_moving_stats_closed_form():
    """moving = momentum * moving + (1 - momentum) * batch statistic (biased variance)."""
    layer = L.BatchNormalization(momentum=0.8)
    xs = [(rng.standard_normal((6, 3, 3, 2)) * s + s).astype(np.float32) for s in (1.0, 3.0)]
    layer(xs[0], training=False)
    mm, mv = np.zeros(2), np.ones(2)
    for x in xs:
        flat = x.reshape(-1, 2).astype(np.float64)
        layer(x, training=True)
        mm = 0.8 * mm + 0.2 * flat.mean(axis=0)
        mv = 0.8 * mv + 0.2 * flat.var(axis=0)
        np.testing.assert_allclose(layer.moving_mean.data, mm, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.moving_variance.data, mv, rtol=1e-5, atol=1e-6)
    before = layer.get_weights()
    layer(xs[0], training=False)
    for a, b in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_batchnorm_frozen_keeps_stats_and_uses_them():
    layer = L.BatchNormalization()
    x = (rng.standard_normal((8, 4, 4, 3)) * 2 + 5).astype(np.float32)
    layer(x)
    randomize(layer)
    layer.trainable = False
    before = layer.get_weights()
    y_train = layer(x, training=True).data
    for a, b in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    gamma, beta, mm, mv = before
    expected = gamma * (x - mm) / np.sqrt(mv + 1e-3) + beta
    assert_close_scaled(y_train, expected, tol=1e-5)
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 4
    layer.trainable = True
    layer(x, training=True)
    assert not np.allclose(layer.moving_mean.data, mm)


def test_upsampling_vs_torch_and_numpy():
    torch = torch_or_skip()
    F = torch.nn.functional
    x2 = rng.standard_normal((2, 3, 4, 2)).astype(np.float32)
    for size in [(2, 2), (2, 3), (3, 1)]:
        y = L.UpSampling2D(size, interpolation="bilinear")(x2).data
        ref = F.interpolate(torch.from_numpy(to_nc(x2)), scale_factor=size, mode="bilinear",
                            align_corners=False)
        assert_close_scaled(y, np.moveaxis(ref.numpy(), 1, -1), tol=1e-4)
        y = L.UpSampling2D(size)(x2).data
        ref = F.interpolate(torch.from_numpy(to_nc(x2)), scale_factor=size, mode="nearest")
        np.testing.assert_array_equal(y, np.moveaxis(ref.numpy(), 1, -1))
    x1 = rng.standard_normal((2, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(L.UpSampling1D(3)(x1).data, np.repeat(x1, 3, axis=1))
    x3 = rng.standard_normal((1, 2, 3, 2, 2)).astype(np.float32)
    ref = np.repeat(np.repeat(np.repeat(x3, 2, axis=1), 1, axis=2), 3, axis=3)
    np.testing.assert_array_equal(L.UpSampling3D((2, 1, 3))(x3).data, ref)


def test_padding_and_cropping_vs_numpy():
    x1 = rng.standard_normal((2, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(L.ZeroPadding1D((1, 2))(x1).data,
                                  np.pad(x1, ((0, 0), (1, 2), (0, 0))))
    np.testing.assert_array_equal(L.ZeroPadding1D(2)(x1).data,
                                  np.pad(x1, ((0, 0), (2, 2), (0, 0))))
    np.testing.assert_array_equal(L.Cropping1D((1, 2))(x1).data, x1[:, 1:4])
    x2 = rng.standard_normal((2, 5, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(L.ZeroPadding2D(((1, 2), (0, 3)))(x2).data,
                                  np.pad(x2, ((0, 0), (1, 2), (0, 3), (0, 0))))
    np.testing.assert_array_equal(L.ZeroPadding2D((1, 2))(x2).data,
                                  np.pad(x2, ((0, 0), (1, 1), (2, 2), (0, 0))))
    np.testing.assert_array_equal(L.Cropping2D(((1, 0), (1, 2)))(x2).data, x2[:, 1:, 1:4])
    np.testing.assert_array_equal(L.Cropping2D((2, 1))(x2).data, x2[:, 2:3, 1:5])
    x3 = rng.standard_normal((1, 3, 3, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(L.ZeroPadding3D(((0, 1), 2, (1, 0)))(x3).data,
                                  np.pad(x3, ((0, 0), (0, 1), (2, 2), (1, 0), (0, 0))))
    np.testing.assert_array_equal(L.Cropping3D(((1, 0), (0, 1), (1, 1)))(x3).data,
                                  x3[:, 1:, :2, 1:3])


def test_merges_vs_numpy():
    a = rng.standard_normal((2, 4, 3)).astype(np.float32)
    b = rng.standard_normal((2, 1, 3)).astype(np.float32)
    c = rng.standard_normal((2, 3)).astype(np.float32)  # lower rank: (2, 1, 3) per Keras
    c3 = c[:, None, :]
    np.testing.assert_allclose(L.Add()([a, b, c]).data, a + b + c3, rtol=1e-6)
    np.testing.assert_allclose(L.Subtract()([a, b]).data, a - b, rtol=1e-6)
    np.testing.assert_allclose(L.Multiply()([a, b, c]).data, a * b * c3, rtol=1e-6)
    np.testing.assert_allclose(L.Average()([a, b, c]).data, (a + b + c3) / 3, rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_array_equal(L.Maximum()([a, b, c]).data,
                                  np.maximum(np.maximum(a, b), c3))
    np.testing.assert_array_equal(L.Minimum()([a, b]).data, np.minimum(a, b))
    d = rng.standard_normal((2, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(L.Concatenate()([a, d]).data, np.concatenate([a, d], -1))
    np.testing.assert_array_equal(L.Concatenate(axis=1)([a, b]).data,
                                  np.concatenate([a, b], 1))


def test_merge_gradients():
    """Broadcast inputs receive gradients reduced back to their shapes."""
    a = Tensor(rng.standard_normal((2, 4, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal((2, 1, 3)), requires_grad=True)
    L.Add()([a, b]).backward(np.ones((2, 4, 3)))
    np.testing.assert_allclose(a.grad, np.ones((2, 4, 3)))
    np.testing.assert_allclose(b.grad, np.full((2, 1, 3), 4.0))
    a.zero_grad()
    b.zero_grad()
    y = L.Maximum()([a, b])
    y.backward(np.ones((2, 4, 3)))
    picked_a = a.data > b.data
    np.testing.assert_allclose(a.grad, picked_a.astype(float))
    np.testing.assert_allclose(b.grad, (~picked_a).sum(axis=1, keepdims=True))
    a.zero_grad()
    b.zero_grad()
    L.Concatenate(axis=1)([a, b]).backward(np.arange(2 * 5 * 3.0).reshape(2, 5, 3))
    g = np.arange(2 * 5 * 3.0).reshape(2, 5, 3)
    np.testing.assert_allclose(a.grad, g[:, :4])
    np.testing.assert_allclose(b.grad, g[:, 4:])


def test_spatial_dropout_drops_whole_channels():
    for cls, shape in [(L.SpatialDropout1D, (4, 6, 8)), (L.SpatialDropout2D, (4, 3, 5, 8)),
                       (L.SpatialDropout3D, (2, 2, 3, 3, 8))]:
        x = rng.uniform(1, 2, shape).astype(np.float32)
        layer = cls(0.5, seed=3)
        np.testing.assert_array_equal(layer(x).data, x)
        y = layer(x, training=True).data
        ratio = y / x
        spatial = tuple(range(1, len(shape) - 1))
        first = ratio[(slice(None),) + (0,) * len(spatial)]
        np.testing.assert_allclose(ratio, np.broadcast_to(np.expand_dims(first, spatial), shape),
                                   rtol=1e-6)
        assert set(np.round(np.unique(first), 5)) <= {0.0, 2.0}
        assert 0 < (first == 0).mean() < 1
        y2 = cls(0.5, seed=3)(x, training=True).data
        np.testing.assert_array_equal(y, y2)


def core_reference(case_id: str, layer, x):
    w = layer.get_weights()
    if case_id == "dense":
        return np.tanh(x @ w[0] + w[1])
    if case_id == "dense_3d_nobias":
        return x @ w[0]
    if case_id == "flatten":
        return x.reshape(x.shape[0], -1)
    if case_id == "reshape":
        return x.reshape(x.shape[0], 4, -1)
    if case_id == "permute":
        return x.transpose(0, 2, 1)
    if case_id == "activation":
        return np.maximum(x, 0)
    if case_id == "relu6":
        return np.clip(x, 0, 6)  # the test scales x by 4 to reach the cap
    if case_id == "leaky_relu":
        return np.where(x > 0, x, 0.2 * x)
    if case_id == "elu":
        return np.where(x > 0, x, 0.5 * (np.exp(x) - 1))
    if case_id == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if case_id == "dropout":
        return x
    if case_id == "embedding":
        return w[0][x]
    if case_id == "rescaling":
        return x / 255 - 0.5
    if case_id == "normalization":
        return (x - w[0]) / np.sqrt(w[1])
    raise KeyError(case_id)


CORE = ["dense", "dense_3d_nobias", "flatten", "reshape", "permute", "activation", "relu6",
        "leaky_relu", "elu", "softmax", "dropout", "embedding", "rescaling", "normalization"]


@pytest.mark.parametrize("case", [c for c in CASES if c.id in CORE], ids=CORE)
def test_core_layers_vs_numpy(case):
    layer = case.make()
    x = make_input(case)
    if case.id == "relu6":
        x = x * 4
    layer(x)
    randomize(layer)
    y = layer(x).data
    assert_close_scaled(y, core_reference(case.id, layer, x), tol=1e-5)


def test_keras_positional_argument_order():
    """Positional arguments land where Keras puts them."""
    c = L.Conv2D(4, 3, 2, "same", "channels_last", 1, 2)
    assert (c.strides, c.padding, c.groups) == ((2, 2), "same", 2)
    t = L.Conv2DTranspose(4, 3, 2, "same", 1)
    assert (t.strides, t.padding, t.output_padding) == ((2, 2), "same", (1, 1))
    d = L.DepthwiseConv2D(3, 1, "valid", 2)
    assert d.depth_multiplier == 2
    s = L.SeparableConv2D(4, 3, 1, "valid", None, 1, 3)
    assert s.depth_multiplier == 3
    assert L.SpatialDropout2D(0.2, "channels_last", 7).seed == 7
    assert L.SpatialDropout1D(0.2, 7).seed == 7
    assert L.BatchNormalization(1, 0.9, 1e-5).momentum == 0.9
    assert L.MaxPooling2D(3, 1, "same").strides == (1, 1)


@pytest.mark.parametrize("make,shape", [
    (lambda: L.Conv2D(3, 3, strides=2, padding="same", dtype="float64"), (2, 5, 4, 2)),
    (lambda: L.Conv1DTranspose(2, 3, strides=2, dtype="float64"), (2, 3, 2)),
    (lambda: L.DepthwiseConv2D(2, depth_multiplier=2, dtype="float64"), (1, 3, 3, 2)),
    (lambda: L.AveragePooling2D(3, 2, "same", dtype="float64"), (2, 5, 4, 2)),
])
def test_float64_layers_gradcheck(make, shape):
    """float64 layers run in float64, and the input gradient through the layer matches
    central differences."""
    from helpers import gradcheck

    layer = make()
    x = rng.standard_normal(shape)
    layer(x)
    assert all(w.dtype == np.float64 for w in layer.weights)
    gradcheck(lambda t: layer(t), x)


def test_batchnorm_float64_gradcheck():
    from helpers import gradcheck

    layer = L.BatchNormalization(dtype="float64")
    x = rng.standard_normal((3, 2, 2, 2))
    layer(x)
    randomize(layer)
    layer.moving_mean.data[...] = 0.0  # training calls move the statistics; output ignores them
    gradcheck(lambda t: layer(t, training=True), x)


def test_dropout_training_scales_kept_units():
    x = rng.uniform(1, 2, (50, 40)).astype(np.float32)
    y = L.Dropout(0.25, seed=0)(x, training=True).data
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-6)
    assert 0.65 < kept.mean() < 0.85


def test_normalization_adapt():
    x = (rng.standard_normal((40, 3)) * [1, 2, 3] + [0, 1, 2]).astype(np.float32)
    layer = L.Normalization()
    layer.adapt(x)
    y = layer(x).data
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=0), 1, atol=1e-4)


# ----------------------------------------------------------------------------------------
# (5) bad inputs
# ----------------------------------------------------------------------------------------
CHANNEL_LAYERS = [
    (lambda: L.Conv1D(2, 3), (2, 6, 3)),
    (lambda: L.Conv2D(2, 3), (2, 6, 6, 3)),
    (lambda: L.Conv3D(2, 2), (1, 3, 3, 3, 3)),
    (lambda: L.DepthwiseConv2D(3), (2, 6, 6, 3)),
    (lambda: L.SeparableConv2D(2, 3), (2, 6, 6, 3)),
    (lambda: L.Conv1DTranspose(2, 3), (2, 6, 3)),
    (lambda: L.Conv2DTranspose(2, 3), (2, 6, 6, 3)),
    (lambda: L.Conv3DTranspose(2, 2), (1, 3, 3, 3, 3)),
    (lambda: L.BatchNormalization(), (2, 6, 6, 3)),
]


@pytest.mark.parametrize("make,shape", CHANNEL_LAYERS)
def test_channel_mismatch_on_second_call(make, shape):
    layer = make()
    layer(np.zeros(shape, np.float32))
    bad = (*shape[:-1], 1)
    msg = (rf"{type(layer).__name__} '{layer.name}' expects 3 input channels, got 1 "
           rf"\(input shape \({', '.join(map(str, bad))}\)\)")
    with pytest.raises(ValueError, match=msg):
        layer(np.zeros(bad, np.float32))
    with pytest.raises(ValueError, match="expects 3 input channels, got 1"):
        layer(L.Input(bad[1:]))


def test_channel_message_as_documented():
    layer = L.Conv2D(8, 3, name="conv2d_doc")
    layer(np.zeros((1, 28, 28, 3), np.float32))
    with pytest.raises(ValueError) as e:
        layer(np.zeros((32, 28, 28, 1), np.float32))
    assert str(e.value) == ("Conv2D 'conv2d_doc' expects 3 input channels, got 1 "
                            "(input shape (32, 28, 28, 1))")


RANKED = [
    (lambda: L.Conv1D(2, 3), (2, 6, 6, 3), 3), (lambda: L.Conv2D(2, 3), (6, 6, 3), 4),
    (lambda: L.Conv3D(2, 2), (1, 3, 3, 3), 5), (lambda: L.DepthwiseConv2D(3), (2, 6, 3), 4),
    (lambda: L.SeparableConv2D(2, 3), (2, 6, 3), 4),
    (lambda: L.Conv2DTranspose(2, 3), (2, 6, 3), 4),
    (lambda: L.MaxPooling1D(), (2, 6, 6, 3), 3), (lambda: L.AveragePooling2D(), (2, 6, 3), 4),
    (lambda: L.MaxPooling3D(), (2, 6, 6, 3), 5),
    (lambda: L.GlobalAveragePooling2D(), (2, 6, 3), 4),
    (lambda: L.GlobalMaxPooling1D(), (2, 3), 3),
    (lambda: L.UpSampling2D(), (2, 6, 3), 4), (lambda: L.ZeroPadding1D(), (2, 6, 6, 3), 3),
    (lambda: L.Cropping3D(), (2, 6, 6, 3), 5), (lambda: L.SpatialDropout2D(0.2), (2, 6, 3), 4),
]


@pytest.mark.parametrize("make,shape,rank", RANKED)
def test_wrong_rank(make, shape, rank):
    layer = make()
    msg = rf"{type(layer).__name__} '{layer.name}' expects inputs of rank {rank} .* got rank "
    with pytest.raises(ValueError, match=msg + str(len(shape))):
        layer(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=msg + str(len(shape))):
        layer.compute_output_shape(shape)
    with pytest.raises(ValueError, match=msg + str(len(shape))):
        layer(L.Input(shape[1:]))


@pytest.mark.parametrize("make,shape", [
    (lambda: L.Conv2D(2, 5), (1, 4, 6, 3)),
    (lambda: L.Conv1D(2, 3, dilation_rate=3), (1, 6, 3)),
    (lambda: L.Conv3D(2, (1, 1, 4)), (1, 3, 3, 3, 2)),
    (lambda: L.DepthwiseConv2D((2, 7)), (1, 6, 6, 3)),
    (lambda: L.SeparableConv2D(2, 7), (1, 6, 6, 3)),
    (lambda: L.MaxPooling2D(4), (1, 3, 6, 2)),
    (lambda: L.AveragePooling1D(5, padding="valid"), (1, 4, 2)),
])
def test_window_larger_than_input(make, shape):
    layer = make()
    with pytest.raises(ValueError, match=rf"{type(layer).__name__} '{layer.name}'.*larger "
                                         rf"than the padded input"):
        layer(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match="larger than the padded input"):
        layer.compute_output_shape(shape)


def test_cropping_too_much():
    with pytest.raises(ValueError, match=r"Cropping2D '.*': cropping \(2, 2\) removes 4 of the 4"):
        L.Cropping2D(2)(np.zeros((1, 4, 6, 1), np.float32))


@pytest.mark.parametrize("make,match", [
    (lambda: L.Conv2D(4, 3, data_format="channels_first"), "only data_format='channels_last'"),
    (lambda: L.MaxPooling2D(data_format="channels_first"), "only data_format='channels_last'"),
    (lambda: L.GlobalAveragePooling2D(data_format="channels_first"), "channels_last"),
    (lambda: L.UpSampling2D(data_format="channels_first"), "channels_last"),
    (lambda: L.SpatialDropout3D(0.1, data_format="channels_first"), "channels_last"),
    (lambda: L.Conv2D(4, 3, padding="causal"), r"padding must be one of \('valid', 'same'\)"),
    (lambda: L.Conv1D(4, 3, padding="full"), "padding must be one of"),
    (lambda: L.MaxPooling2D(padding="causal"), "padding must be one of"),
    (lambda: L.Conv2D(5, 3, groups=2), r"filters \(5\) must be divisible by groups \(2\)"),
    (lambda: L.Conv2D(0, 3), "filters must be a positive integer"),
    (lambda: L.Conv2D(4, (3, 3, 3)), "kernel_size must be an int or a sequence of 2 ints"),
    (lambda: L.Conv2D(4, 3, strides=0), "strides must be >= 1"),
    (lambda: L.DepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier must be a positive"),
    (lambda: L.Conv2DTranspose(4, 3, strides=2, output_padding=2),
     "output_padding .* must be smaller than the strides"),
    (lambda: L.Conv2DTranspose(4, 3, padding="causal"), "padding must be one of"),
    (lambda: L.BatchNormalization(momentum=1.5), "momentum must be in"),
    (lambda: L.BatchNormalization(axis="c"), "axis must be an int"),
    (lambda: L.UpSampling2D(interpolation="cubic"), "interpolation must be one of"),
    (lambda: L.UpSampling2D(size=0), "size must be >= 1"),
    (lambda: L.ZeroPadding2D(((1, 2, 3), 1)), "padding must be"),
    (lambda: L.Cropping1D(-1), "cropping must be >= 0"),
    (lambda: L.SpatialDropout1D(1.0), r"rate must be in \[0, 1\)"),
    (lambda: L.Concatenate(axis=1.5), "axis must be an int"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_group_channels_and_unknown_channels():
    with pytest.raises(ValueError, match=r"groups=2 needs input channels divisible by 2, got 3"):
        L.Conv2D(4, 3, groups=2)(np.zeros((1, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="needs a known channel axis"):
        L.Conv2D(4, 3)(L.Input((5, 5, None)))
    with pytest.raises(ValueError, match="out of range"):
        L.BatchNormalization(axis=3)(np.zeros((2, 4, 3), np.float32))


def test_merge_bad_inputs():
    a = np.zeros((2, 4, 3), np.float32)
    with pytest.raises(ValueError, match=r"Add '.*' must be called on a list of inputs"):
        L.Add()(a)
    with pytest.raises(ValueError, match=r"cannot broadcast inputs of shapes \(2, 4, 3\), "
                                         r"\(2, 4, 2\)"):
        L.Add()([a, np.zeros((2, 4, 2), np.float32)])
    with pytest.raises(ValueError, match="same batch size"):
        L.Multiply()([a, np.zeros((3, 4, 3), np.float32)])
    with pytest.raises(ValueError, match="expects exactly 2 inputs, got 3"):
        L.Subtract()([a, a, a])
    with pytest.raises(ValueError, match=r"match on every axis except the concatenation axis "
                                         r"-1, got shapes \(2, 4, 3\), \(2, 5, 3\)"):
        L.Concatenate()([a, np.zeros((2, 5, 3), np.float32)])
    with pytest.raises(ValueError, match="same rank"):
        L.Concatenate()([a, np.zeros((2, 3), np.float32)])
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        L.Concatenate(axis=3)([a, a])
    with pytest.raises(ValueError, match="expects a single input"):
        L.Conv1D(2, 1)([a, a])
    with pytest.raises(ValueError, match="cannot broadcast"):
        L.Maximum()([L.Input((4, 3)), L.Input((5, 3))])


def test_unknown_spatial_sizes_propagate():
    assert L.Conv2D(4, 3, strides=2)(L.Input((None, 9, 3))).shape == (None, None, 4, 4)
    assert L.Conv2DTranspose(4, 3, strides=2)(L.Input((None, 5, 3))).shape == (None, None, 11, 4)
    assert L.MaxPooling2D()(L.Input((None, 9, 3))).shape == (None, None, 4, 3)
    assert L.UpSampling2D()(L.Input((None, 3, 2))).shape == (None, None, 6, 2)
    assert L.Concatenate(axis=1)([L.Input((None, 3)), L.Input((2, 3))]).shape == (None, None, 3)
    assert L.Conv2D(4, 3).compute_macs((None, None, 9, 3), (None, None, 7, 4)) == 0


def test_functional_model_with_new_layers():
    """A small graph built from these layers runs, and its shapes agree with the layers'."""
    models = pytest.importorskip("cnnkit.models")
    inp = L.Input((9, 8, 3))
    a = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    b = L.BatchNormalization()(a)
    c = L.DepthwiseConv2D(3, padding="same")(b)
    d = L.Add()([b, c])
    e = L.Concatenate()([d, L.SeparableConv2D(2, 3, padding="same")(d)])
    f = L.MaxPooling2D(padding="same")(e)
    g = L.Conv2DTranspose(3, 2, strides=2)(f)
    h = L.Cropping2D(((0, 1), 0))(L.ZeroPadding2D(0)(g))
    out = L.Dense(2)(L.GlobalAveragePooling2D()(L.SpatialDropout2D(0.2)(h)))
    model = models.Model(inp, out)
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
    y = model(x, training=True)
    assert y.shape == (2, 2) == (2, *out.shape[1:])
    assert h.shape == (None, 9, 8, 3)
    y.backward(np.ones(y.shape, np.float32))
    assert all(w.grad is not None for w in model.trainable_weights)
