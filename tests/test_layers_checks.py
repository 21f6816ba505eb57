"""Argument and input checks shared by the layers (layers/_utils.py): channel and rank
mismatches, windows larger than the input, bad arguments, with the messages documented."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import layers as L

rng = np.random.default_rng(0)


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
