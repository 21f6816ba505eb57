"""Upsampling, resize, zero padding and cropping: finite differences (float64) and PyTorch
(float32, forward and backward)."""

import numpy as np
import pytest
from helpers import assert_close_scaled, gradcheck, torch_or_skip

from cnnkit import Tensor, ops

rng = np.random.default_rng(0)

COORDS = ["half_pixel", "pytorch_half_pixel", "half_pixel_symmetric", "align_corners",
          "asymmetric"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


# ----- finite differences (float64) -------------------------------------------------------------
@pytest.mark.parametrize("size", [2, 3, (1, 2), (3, 1)])
@pytest.mark.parametrize("interp", ["nearest", "bilinear"])
def test_upsampling2d_fd(size, interp):
    x = rng.standard_normal((2, 3, 2, 2))
    gradcheck(lambda t: ops.upsampling2d(t, size, interpolation=interp), x)


@pytest.mark.parametrize("interp", ["nearest", "linear"])
def test_upsampling1d_fd(interp):
    gradcheck(lambda t: ops.upsampling1d(t, 3, interpolation=interp),
              rng.standard_normal((2, 5, 2)))


@pytest.mark.parametrize("interp", ["nearest", "trilinear"])
def test_upsampling3d_fd(interp):
    gradcheck(lambda t: ops.upsampling3d(t, (2, 1, 3), interpolation=interp),
              rng.standard_normal((1, 2, 3, 2, 2)))


@pytest.mark.parametrize("method", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("size", [(5, 2), (2, 7), (1, 3)])
def test_resize_fd(method, coord, size):
    x = rng.standard_normal((1, 3, 4, 2))
    gradcheck(lambda t: ops.resize(t, size=size, method=method,
                                   coordinate_transformation_mode=coord), x)


@pytest.mark.parametrize("mode", NEAREST)
@pytest.mark.parametrize("scales", [(1.7, 0.6), (2.5, 3.0)])
def test_resize_nearest_modes_fd(mode, scales):
    x = rng.standard_normal((2, 3, 5, 1))
    gradcheck(lambda t: ops.resize(t, scales=scales, coordinate_transformation_mode="asymmetric",
                                   nearest_mode=mode), x)


@pytest.mark.parametrize("method", ["linear", "cubic"])
@pytest.mark.parametrize("exclude", [False, True])
def test_resize_antialias_exclude_outside_fd(method, exclude):
    x = rng.standard_normal((1, 7, 6, 2))
    gradcheck(lambda t: ops.resize(t, size=(3, 8), method=method, antialias=True,
                                   exclude_outside=exclude), x)


@pytest.mark.parametrize("method", ["nearest", "linear"])
def test_resize_tf_crop_and_resize_fd(method):
    x = rng.standard_normal((1, 4, 5, 2))
    roi = [(0.2, 1.3), (-0.1, 0.7)]  # partly outside: extrapolated cells get no gradient
    gradcheck(lambda t: ops.resize(t, size=(3, 4), method=method, roi=roi,
                                   coordinate_transformation_mode="tf_crop_and_resize",
                                   extrapolation_value=2.5), x)


def test_resize_1d_3d_and_large_axis_fd():
    gradcheck(lambda t: ops.resize(t, size=7, method="linear"), rng.standard_normal((2, 4, 2)))
    gradcheck(lambda t: ops.resize(t, scales=(1.5, 0.5, 2.0), method="linear"),
              rng.standard_normal((1, 3, 4, 2, 1)))
    # long axes take the gather path (forward and backward) instead of the dense product
    gradcheck(lambda t: ops.resize(t, scales=2.0, method="linear"),
              rng.standard_normal((1, 170, 1)))
    gradcheck(lambda t: ops.resize(t, size=350), rng.standard_normal((1, 170, 1)))


@pytest.mark.parametrize("padding", [1, (2, 0), ((0, 3),)])
def test_zero_padding_cropping_1d_fd(padding):
    x = rng.standard_normal((2, 5, 3))
    gradcheck(lambda t: ops.zero_padding1d(t, padding), x)
    gradcheck(lambda t: ops.cropping1d(t, padding), x)


@pytest.mark.parametrize("padding", [1, (2, 0), ((1, 2), (0, 1)), (0, (2, 1))])
def test_zero_padding_cropping_2d_fd(padding):
    x = rng.standard_normal((2, 5, 4, 2))
    gradcheck(lambda t: ops.zero_padding2d(t, padding), x)
    gradcheck(lambda t: ops.cropping2d(t, padding), x)


@pytest.mark.parametrize("padding", [1, (1, 0, 2), ((0, 1), (1, 0), (1, 1))])
def test_zero_padding_cropping_3d_fd(padding):
    x = rng.standard_normal((1, 3, 4, 5, 2))
    gradcheck(lambda t: ops.zero_padding3d(t, padding), x)
    gradcheck(lambda t: ops.cropping3d(t, padding), x)


# ----- exact values ------------------------------------------------------------------------------
def test_upsampling_nearest_is_repeat():
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    expect = np.repeat(np.repeat(x, 2, axis=1), 3, axis=2)
    np.testing.assert_array_equal(ops.upsampling2d(x, (2, 3)).data, expect)
    np.testing.assert_array_equal(ops.upsampling1d(x[:, 0], 4).data, np.repeat(x[:, 0], 4, 1))
    v = rng.standard_normal((1, 2, 3, 2, 2))
    np.testing.assert_array_equal(ops.upsampling3d(v, (1, 2, 3)).data,
                                  np.repeat(np.repeat(v, 2, axis=2), 3, axis=3))
    t = Tensor(x, requires_grad=True)
    ops.upsampling2d(t, (2, 3)).backward(np.ones((2, 6, 12, 5), np.float32))
    np.testing.assert_array_equal(t.grad, np.full_like(x, 6.0))  # each input feeds a 2x3 block


def test_zero_padding_and_cropping_values():
    x = rng.standard_normal((2, 3, 4, 1))
    y = ops.zero_padding2d(x, ((1, 2), (0, 3))).data
    assert y.shape == (2, 6, 7, 1)
    np.testing.assert_array_equal(y[:, 1:4, 0:4], x)
    assert np.count_nonzero(y) == np.count_nonzero(x)
    np.testing.assert_array_equal(ops.cropping2d(x, ((1, 0), (1, 2))).data, x[:, 1:, 1:2])
    np.testing.assert_array_equal(ops.cropping1d(x[..., 0], (0, 2)).data, x[:, :1, :, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype):
    x = Tensor(rng.standard_normal((1, 3, 3, 2)).astype(dtype), requires_grad=True)
    for f in [lambda t: ops.upsampling2d(t, 2, "bilinear"), lambda t: ops.upsampling2d(t),
              lambda t: ops.resize(t, size=(5, 2), method="cubic"),
              lambda t: ops.zero_padding2d(t, 1), lambda t: ops.cropping2d(t, 1)]:
        x.grad = None
        y = f(x)
        assert y.dtype == dtype
        y.backward(np.ones(y.shape, dtype))
        assert x.grad.dtype == dtype
    assert ops.upsampling1d(np.arange(6).reshape(1, 3, 2), 2).dtype == np.float32


# ----- PyTorch (float32, forward and backward) ------------------------------------------------
def _against_torch(ours, theirs, x):
    """Compare ours(Tensor NHWC) with theirs(torch NCHW tensor): outputs and input gradients."""
    torch = torch_or_skip()
    xt = torch.tensor(np.moveaxis(x, -1, 1).copy(), requires_grad=True)
    yt = theirs(xt)
    t = Tensor(x, requires_grad=True)
    y = ours(t)
    expect = np.moveaxis(yt.detach().numpy(), 1, -1)
    assert_close_scaled(y.data, expect, tol=1e-4, what="forward")
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.tensor(np.moveaxis(g, -1, 1).copy()))
    y.backward(g)
    assert_close_scaled(t.grad, np.moveaxis(xt.grad.numpy(), 1, -1), tol=1e-4, what="backward")


def _x(*shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("factor", [(2, 2), (3, 2), (1, 5)])
def test_upsampling2d_vs_torch(factor):
    torch = torch_or_skip()
    F = torch.nn.functional
    x = _x(2, 5, 3, 3)
    _against_torch(lambda t: ops.upsampling2d(t, factor),
                   lambda t: F.interpolate(t, scale_factor=factor, mode="nearest"), x)
    _against_torch(lambda t: ops.upsampling2d(t, factor, interpolation="bilinear"),
                   lambda t: F.interpolate(t, scale_factor=factor, mode="bilinear",
                                           align_corners=False), x)


def test_upsampling1d_3d_vs_torch():
    torch = torch_or_skip()
    F = torch.nn.functional
    x = _x(2, 7, 3)
    for mode, interp in [("nearest", "nearest"), ("linear", "linear")]:
        _against_torch(lambda t, i=interp: ops.upsampling1d(t, 3, interpolation=i),
                       lambda t, m=mode: F.interpolate(t, scale_factor=3, mode=m), x)
    v = _x(1, 3, 4, 5, 2)
    for mode, interp in [("nearest", "nearest"), ("trilinear", "trilinear")]:
        _against_torch(lambda t, i=interp: ops.upsampling3d(t, (2, 3, 1), interpolation=i),
                       lambda t, m=mode: F.interpolate(t, scale_factor=(2, 3, 1), mode=m), v)


@pytest.mark.parametrize("scale", [(2.0, 3.0), (1.5, 0.5), (0.75, 2.5)])
def test_resize_nearest_scales_vs_torch(scale):
    """torch "nearest" = asymmetric coordinates + floor; "nearest-exact" = half-pixel + round
    half up; both use the given scale factor."""
    torch = torch_or_skip()
    F = torch.nn.functional
    x = _x(2, 6, 5, 2)
    _against_torch(lambda t: ops.resize(t, scales=scale, method="nearest",
                                        coordinate_transformation_mode="asymmetric",
                                        nearest_mode="floor"),
                   lambda t: F.interpolate(t, scale_factor=scale, mode="nearest"), x)
    _against_torch(lambda t: ops.resize(t, scales=scale, method="nearest",
                                        nearest_mode="round_prefer_ceil"),
                   lambda t: F.interpolate(t, scale_factor=scale, mode="nearest-exact"), x)


@pytest.mark.parametrize("size", [(9, 4), (3, 11), (1, 1), (5, 5)])
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("method", ["linear", "cubic"])
def test_resize_bilinear_bicubic_vs_torch(size, align, method):
    torch = torch_or_skip()
    F = torch.nn.functional
    coord = "align_corners" if align else "half_pixel"
    mode = "bilinear" if method == "linear" else "bicubic"
    _against_torch(lambda t: ops.resize(t, size=size, method=method,
                                        coordinate_transformation_mode=coord),
                   lambda t: F.interpolate(t, size=size, mode=mode, align_corners=align),
                   _x(2, 5, 7, 3))


@pytest.mark.parametrize("scale", [1.6, 0.45])
def test_resize_bilinear_scale_factor_vs_torch(scale):
    torch = torch_or_skip()
    F = torch.nn.functional
    _against_torch(lambda t: ops.resize(t, scales=scale, method="bilinear"),
                   lambda t: F.interpolate(t, scale_factor=scale, mode="bilinear"),
                   _x(1, 9, 7, 2))


def test_resize_linear_1d_and_trilinear_vs_torch():
    torch = torch_or_skip()
    F = torch.nn.functional
    for align in [False, True]:
        coord = "align_corners" if align else "half_pixel"
        _against_torch(lambda t, c=coord: ops.resize(t, size=11, method="linear",
                                                     coordinate_transformation_mode=c),
                       lambda t, a=align: F.interpolate(t, size=11, mode="linear",
                                                        align_corners=a), _x(2, 4, 3))
        _against_torch(lambda t, c=coord: ops.resize(t, size=(3, 7, 2), method="trilinear",
                                                     coordinate_transformation_mode=c),
                       lambda t, a=align: F.interpolate(t, size=(3, 7, 2), mode="trilinear",
                                                        align_corners=a), _x(1, 5, 4, 3, 2))


def test_resize_long_axis_vs_torch():
    """Axes long enough for the gather path (forward and backward)."""
    torch = torch_or_skip()
    F = torch.nn.functional
    x = _x(2, 203, 3)
    _against_torch(lambda t: ops.upsampling1d(t, 2, interpolation="linear"),
                   lambda t: F.interpolate(t, scale_factor=2, mode="linear"), x)
    _against_torch(lambda t: ops.resize(t, size=(4, 600), method="cubic"),
                   lambda t: F.interpolate(t, size=(4, 600), mode="bicubic"), _x(1, 3, 300, 2))
    _against_torch(lambda t: ops.resize(t, size=450),
                   lambda t: F.interpolate(t, size=450, mode="nearest"), x[:, :150])


@pytest.mark.parametrize("size", [(3, 2), (4, 9)])
@pytest.mark.parametrize("method", ["linear", "cubic"])
def test_resize_antialias_vs_torch(size, method):
    """torch's antialias filters only in-range pixels (= exclude_outside) and uses Keys
    a = -0.5 for bicubic."""
    torch = torch_or_skip()
    F = torch.nn.functional
    mode = "bilinear" if method == "linear" else "bicubic"
    _against_torch(lambda t: ops.resize(t, size=size, method=method, antialias=True,
                                        exclude_outside=True, cubic_coeff_a=-0.5),
                   lambda t: F.interpolate(t, size=size, mode=mode, antialias=True),
                   _x(2, 8, 5, 2))


@pytest.mark.parametrize("padding,pads", [
    (1, ((1, 1), (1, 1))), ((2, 0), ((2, 2), (0, 0))), (((1, 3), (0, 2)), ((1, 3), (0, 2)))])
def test_zero_padding_cropping_2d_vs_torch(padding, pads):
    torch = torch_or_skip()
    F = torch.nn.functional
    (t0, t1), (l0, l1) = pads
    x = _x(2, 6, 5, 3)
    _against_torch(lambda t: ops.zero_padding2d(t, padding),
                   lambda t: F.pad(t, (l0, l1, t0, t1)), x)
    _against_torch(lambda t: ops.cropping2d(t, padding),
                   lambda t: t[:, :, t0:6 - t1, l0:5 - l1], x)


def test_zero_padding_cropping_1d_3d_vs_torch():
    torch = torch_or_skip()
    F = torch.nn.functional
    x = _x(2, 7, 3)
    _against_torch(lambda t: ops.zero_padding1d(t, (2, 1)), lambda t: F.pad(t, (2, 1)), x)
    _against_torch(lambda t: ops.cropping1d(t, (2, 1)), lambda t: t[:, :, 2:6], x)
    v = _x(1, 4, 5, 3, 2)
    _against_torch(lambda t: ops.zero_padding3d(t, ((1, 0), 2, (0, 3))),
                   lambda t: F.pad(t, (0, 3, 2, 2, 1, 0)), v)
    _against_torch(lambda t: ops.cropping3d(t, ((1, 0), 2, (0, 1))),
                   lambda t: t[:, :, 1:, 2:3, 0:2], v)


# ----- bad input ---------------------------------------------------------------------------------
def test_bad_input():
    x = np.zeros((1, 4, 4, 2), np.float32)
    with pytest.raises(ValueError, match=r"upsampling2d expects x of rank 4 \(N, H, W, C\), "
                                         r"got rank 3"):
        ops.upsampling2d(x[0])
    with pytest.raises(ValueError, match="upsampling1d expects x of rank 3"):
        ops.upsampling1d(x)
    with pytest.raises(ValueError, match="upsampling3d expects x of rank 5"):
        ops.upsampling3d(x)
    with pytest.raises(ValueError, match="size must be >= 1"):
        ops.upsampling2d(x, (0, 2))
    with pytest.raises(ValueError, match="size must be an int or a sequence of 2 ints"):
        ops.upsampling2d(x, (2, 2, 2))
    with pytest.raises(ValueError, match="interpolation must be one of"):
        ops.upsampling2d(x, 2, interpolation="area")
    with pytest.raises(ValueError, match=r"resize expects x of rank >= 3"):
        ops.resize(x[0, 0], size=3)
    with pytest.raises(ValueError, match="method must be one of"):
        ops.resize(x, size=3, method="lanczos")
    with pytest.raises(ValueError, match="coordinate_transformation_mode must be one of"):
        ops.resize(x, size=3, coordinate_transformation_mode="corners")
    with pytest.raises(ValueError, match="nearest_mode must be one of"):
        ops.resize(x, size=3, nearest_mode="round")
    with pytest.raises(ValueError, match="exactly one of size and scales"):
        ops.resize(x)
    with pytest.raises(ValueError, match="exactly one of size and scales"):
        ops.resize(x, size=3, scales=2.0)
    with pytest.raises(ValueError, match="every output length must be >= 1"):
        ops.resize(x, scales=0.2)
    with pytest.raises(ValueError, match="scales must be finite and > 0"):
        ops.resize(x, scales=(2.0, -1.0))
    with pytest.raises(ValueError, match="one per spatial axis"):
        ops.resize(x, size=(2, 3, 4))
    with pytest.raises(ValueError, match="size must be one int"):
        ops.resize(x, size=3.0)
    with pytest.raises(ValueError, match="roi must hold one"):
        ops.resize(x, size=3, roi=[0, 1], coordinate_transformation_mode="tf_crop_and_resize")
    with pytest.raises(ValueError, match="needs roi"):
        ops.resize(x, size=3, coordinate_transformation_mode="tf_crop_and_resize")
    with pytest.raises(ValueError, match="antialias applies to"):
        ops.resize(x, size=3, antialias=True)
    with pytest.raises(ValueError, match="keep_aspect_ratio_policy"):
        ops.resize(x, size=3, keep_aspect_ratio_policy="fit")
    with pytest.raises(ValueError, match="zero_padding2d: padding must be >= 0"):
        ops.zero_padding2d(x, (1, -1))
    with pytest.raises(ValueError, match="zero_padding1d: padding must be >= 0"):
        ops.zero_padding1d(x[0], (-2, 0))
    with pytest.raises(ValueError, match="zero_padding3d expects x of rank 5"):
        ops.zero_padding3d(x, 1)
    with pytest.raises(ValueError, match=r"padding must be an int, 2 ints or 2 \(before, after\)"):
        ops.zero_padding2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match=r"cropping2d: cropping \(2, 2\) removes 4 of the 4"):
        ops.cropping2d(x, ((2, 2), (0, 0)))
    with pytest.raises(ValueError, match="cropping1d: cropping .* removes 5 of the 4"):
        ops.cropping1d(x[0], (5, 0))
    with pytest.raises(ValueError, match="cropping3d: cropping must be >= 0"):
        ops.cropping3d(np.zeros((1, 3, 3, 3, 1)), (1, -1, 0))
