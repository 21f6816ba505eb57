"""The int8 kernels against independent references: integer convolutions against the
formula written here in int64, the C helper against the NumPy path (same integers), the
affine quantization and fake quantization against PyTorch, calibration thresholds against
direct computations."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import torch_or_skip

from cnnkit.kernels import calibrate, qarith, qconv
from cnnkit.kernels import quantize as qk
from cnnkit.kernels.native import qconv as native_q

RNG = np.random.default_rng(1234)


def _params(wq, xz, yz=0, lo=0, hi=255, rng=RNG):
    cout = wq.shape[-1]
    bias = rng.integers(-20000, 20000, cout).astype(np.int32)
    mult = (rng.random(cout) * 3e-4 + 1e-5).astype(np.float32)
    packed = qconv.pack_weights(wq) if wq.ndim == 4 else None
    return qconv.QuantConvParams(wq, bias, mult, xz, yz, lo, hi, packed)


def _reference_conv(xq, wq, xz, strides, pads, dilation, depthwise=False):
    """acc[n, oy, ox, o] by the definition, int64, padding read as xz."""
    n, h, w, c = xq.shape
    kh, kw = wq.shape[:2]
    (pt, pb), (pl, pr) = pads
    xp = np.full((n, h + pt + pb, w + pl + pr, c), xz, np.int64)
    xp[:, pt:pt + h, pl:pl + w] = xq
    oh = (h + pt + pb - dilation[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (w + pl + pr - dilation[1] * (kw - 1) - 1) // strides[1] + 1
    acc = np.zeros((n, oh, ow, wq.shape[-1] if not depthwise else c), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            for i in range(kh):
                for j in range(kw):
                    v = xp[:, oy * strides[0] + i * dilation[0], ox * strides[1] + j * dilation[1]]
                    if depthwise:
                        acc[:, oy, ox] += v * wq[i, j].astype(np.int64)
                    else:
                        acc[:, oy, ox] += v @ wq[i, j].astype(np.int64)
    return acc


def _reference_requant(acc, p, out_dtype):
    t = np.float32(1) * (acc + p.bias.astype(np.int64)).astype(np.float32) * p.mult
    if out_dtype == np.float32:
        return t.astype(np.float32)
    return np.clip(np.rint(t) + p.yz, p.lo, p.hi).astype(out_dtype)


CASES = [  # n, h, w, c, cout, k, stride, pads, dilation, input dtype
    (2, 9, 7, 3, 20, 3, (1, 1), ((1, 1), (1, 1)), (1, 1), np.uint8),
    (3, 8, 8, 16, 16, 3, (2, 2), ((1, 0), (0, 1)), (1, 1), np.uint8),
    (1, 6, 5, 1, 33, 3, (1, 2), ((0, 0), (0, 0)), (1, 1), np.int8),
    (2, 9, 9, 5, 7, 3, (1, 1), ((2, 2), (2, 2)), (2, 2), np.int8),
    (2, 4, 4, 37, 17, 1, (1, 1), ((0, 0), (0, 0)), (1, 1), np.uint8),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("out_dtype", [np.uint8, np.int8, np.float32])
def test_int8_conv_numpy_matches_int64_formula(case, out_dtype):
    n, h, w, c, cout, k, strides, pads, dil, xdt = case
    lo_in, hi_in = qk.qrange(xdt)
    xq = RNG.integers(lo_in, hi_in + 1, (n, h, w, c)).astype(xdt)
    wq = RNG.integers(-127, 128, (k, k, c, cout)).astype(np.int8)
    xz = 7 if xdt == np.uint8 else -3
    lo, hi = qk.qrange(out_dtype) if out_dtype != np.float32 else (0, 0)
    p = _params(wq, xz, yz=5 if out_dtype == np.uint8 else -2, lo=lo + 1, hi=hi)
    got = qconv.conv2d(xq, p, strides, pads, dil, out_dtype, use_native=False)
    acc = _reference_conv(xq, wq, xz, strides, pads, dil)
    np.testing.assert_array_equal(got, _reference_requant(acc, p, out_dtype))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("out_dtype", [np.uint8, np.int8, np.float32])
def test_int8_conv_native_gives_the_numpy_integers(case, out_dtype):
    if not native_q.available():
        pytest.skip("the native int8 helper is not built")
    n, h, w, c, cout, k, strides, pads, dil, xdt = case
    lo_in, hi_in = qk.qrange(xdt)
    xq = RNG.integers(lo_in, hi_in + 1, (n, h, w, c)).astype(xdt)
    wq = RNG.integers(-127, 128, (k, k, c, cout)).astype(np.int8)
    p = _params(wq, int(RNG.integers(lo_in, hi_in)), yz=3, lo=3 if out_dtype == np.uint8
                else -128, hi=255 if out_dtype == np.uint8 else 127)
    a = qconv.conv2d(xq, p, strides, pads, dil, out_dtype, use_native=False)
    b = qconv.conv2d(xq, p, strides, pads, dil, out_dtype, use_native=True)
    np.testing.assert_array_equal(a, b)


def test_int8_conv_extreme_values_are_exact():
    """Every input 255 and every weight -127 over K = 3*3*64: the largest sums the kernel
    meets (|acc| = 18.7 M > 2**24, so the NumPy path switches to float64)."""
    xq = np.full((1, 5, 5, 64), 255, np.uint8)
    wq = np.full((3, 3, 64, 20), -127, np.int8)
    p = qconv.QuantConvParams(wq, np.zeros(20, np.int32), np.ones(20, np.float32), 0,
                              packed=qconv.pack_weights(wq))
    want = _reference_conv(xq, wq, 0, (1, 1), ((1, 1), (1, 1)), (1, 1)).astype(np.float32)
    for native in ([False, True] if native_q.available() else [False]):
        got = qconv.conv2d(xq, p, (1, 1), ((1, 1), (1, 1)), out_dtype=np.float32,
                           use_native=native)
        np.testing.assert_array_equal(got, want)
    assert want.min() == -255 * 127 * 9 * 64


@pytest.mark.parametrize("stride,pad", [(1, 1), (2, 1), (2, 0)])
def test_int8_depthwise_matches_formula_and_native(stride, pad):
    xq = RNG.integers(0, 256, (2, 9, 8, 24)).astype(np.uint8)
    wq = RNG.integers(-127, 128, (3, 3, 24)).astype(np.int8)
    p = _params(wq, 11, yz=4, lo=4, hi=200)
    pads = ((pad, pad), (pad, pad))
    got = qconv.depthwise2d(xq, p, (stride, stride), pads, use_native=False)
    acc = _reference_conv(xq, wq, 11, (stride, stride), pads, (1, 1), depthwise=True)
    np.testing.assert_array_equal(got, _reference_requant(acc, p, np.uint8))
    if native_q.available():
        np.testing.assert_array_equal(
            qconv.depthwise2d(xq, p, (stride, stride), pads, use_native=True), got)


def test_int8_dense_matches_formula_and_native():
    xq = RNG.integers(0, 256, (13, 300)).astype(np.uint8)
    wq = RNG.integers(-127, 128, (1, 1, 300, 21)).astype(np.int8)
    p = _params(wq, 9)
    acc = (xq.astype(np.int64) - 0) @ wq[0, 0].astype(np.int64)
    want = _reference_requant(acc, p, np.float32)
    np.testing.assert_array_equal(qconv.dense(xq, p, np.float32, use_native=False), want)
    if native_q.available():
        np.testing.assert_array_equal(qconv.dense(xq, p, np.float32, use_native=True), want)


def test_quantize_matches_torch_per_tensor_and_per_channel():
    torch = torch_or_skip()
    x = RNG.standard_normal((4, 5, 6, 8)).astype(np.float32) * 3
    got = qk.quantize(x, 0.05, 100, np.uint8)
    want = torch.quantize_per_tensor(torch.from_numpy(x), 0.05, 100, torch.quint8)
    np.testing.assert_array_equal(got, want.int_repr().numpy())
    np.testing.assert_allclose(qk.dequantize(got, 0.05, 100), want.dequantize().numpy(),
                               rtol=1e-6, atol=1e-7)
    w = RNG.standard_normal((3, 3, 4, 8)).astype(np.float32)
    wq, s = qk.quantize_weights(w, -1)
    np.testing.assert_allclose(s, np.abs(w).max(axis=(0, 1, 2)) / 127, rtol=1e-6)
    tw = torch.quantize_per_channel(torch.from_numpy(w), torch.from_numpy(s.astype(np.float64)),
                                    torch.zeros(8, dtype=torch.int64), 3, torch.qint8)
    np.testing.assert_array_equal(wq, tw.int_repr().numpy())


def test_choose_qparams_keeps_zero_exact_and_covers_the_range():
    for lo, hi, dt in [(-1.3, 4.2, np.uint8), (0.0, 6.0, np.uint8), (0.5, 2.0, np.uint8),
                       (-3.0, -1.0, np.int8), (-2.0, 7.0, np.int8)]:
        s, z = qk.choose_qparams(lo, hi, dt)
        qmin, qmax = qk.qrange(dt)
        assert qmin <= z <= qmax
        assert qk.dequantize(np.array([z], dt), s, z)[0] == 0.0
        assert s == pytest.approx((max(hi, 0) - min(lo, 0)) / 255)
        assert (qmin - z) * s <= min(lo, 0) + s / 2 and (qmax - z) * s >= max(hi, 0) - s / 2


@pytest.mark.parametrize("axis", [None, 1])
def test_fake_quantize_forward_and_ste_gradient_match_torch(axis):
    torch = torch_or_skip()
    x = RNG.standard_normal((6, 5, 4)).astype(np.float32) * 2
    x[0, 0, 0] = 0.125 * 3 + 0.0625  # a tie is resolved the same way
    if axis is None:
        scale, zero = 0.03, 120
        y, mask = qk.fake_quantize_forward(x, scale, zero, 0, 255)
        tx = torch.from_numpy(x).requires_grad_()
        ty = torch.fake_quantize_per_tensor_affine(tx, scale, zero, 0, 255)
    else:
        scale = np.array([0.01, 0.02, 0.05, 0.03, 0.015], np.float32)
        zero = np.array([0, 3, -2, 1, 0], np.int32)
        y, mask = qk.fake_quantize_forward(x, scale, zero, -128, 127, axis=1)
        tx = torch.from_numpy(x).requires_grad_()
        ty = torch.fake_quantize_per_channel_affine(tx, torch.from_numpy(scale),
                                                    torch.from_numpy(zero), 1, -128, 127)
    g = RNG.standard_normal(x.shape).astype(np.float32)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(qk.fake_quantize_backward(g, mask), tx.grad.numpy())


def test_percentile_threshold_matches_numpy_percentile():
    x = RNG.standard_normal(100_000).astype(np.float32)
    obs = calibrate.Observer()
    obs.update(x)
    obs.update_histogram(x)
    lo, hi = obs.range("percentile", 99.9)
    want = np.percentile(np.abs(x), 99.9)
    width = obs.absmax / calibrate.BINS
    assert hi == pytest.approx(want, abs=width) and lo == pytest.approx(-want, abs=width)
    assert obs.range("minmax") == (float(x.min()), float(x.max()))


def _kl_reference(hist, i, levels):
    """KL(P || Q) for candidate i, written out bin by bin (TensorRT's description: P with
    the outliers in its last bin, Q from the bins without them)."""
    bins = [float(v) for v in hist[:i]]
    p = list(bins)
    p[-1] += float(sum(hist[i:]))
    q = [0.0] * i
    for g in range(levels):
        a, b = g * i // levels, (g + 1) * i // levels
        total = sum(bins[a:b])
        used = [t for t in range(a, b) if bins[t] > 0]
        for t in used:
            q[t] = total / len(used)
    sp, sq = sum(p), sum(q)
    if any(pv > 0 and qv == 0 for pv, qv in zip(p, q, strict=True)):
        return float("inf")
    return sum((pv / sp) * np.log((pv / sp) / (qv / sq)) for pv, qv in zip(p, q, strict=True)
               if pv > 0)


def test_entropy_threshold_matches_a_direct_kl_search():
    hist = np.maximum(0, (1000 * np.exp(-np.arange(64) / 6.0)).astype(np.int64))
    hist[60] = 3  # an outlier the threshold should cut
    levels = 8
    flat = hist.copy()
    flat[0] = flat[1]  # the first bin set to the second (the ReLU zero spike removed)
    kls = {i: _kl_reference(flat, i, levels) for i in range(levels, 65)}
    best = min(kls, key=kls.get)
    assert calibrate.entropy_threshold(hist, 0.5, levels) == pytest.approx(best * 0.5)
    assert best < 60


def test_mse_threshold_minimises_the_actual_error():
    x = np.abs(RNG.standard_normal(50_000)).astype(np.float32)
    x[:3] = 20.0
    obs = calibrate.Observer()
    obs.update(x)
    obs.update_histogram(x)
    _, t = obs.range("mse")

    def actual_mse(th):
        s = th / 255
        return float(np.mean((np.clip(np.rint(x / s), 0, 255) * s - x) ** 2))

    grid = np.linspace(0.5, 20, 80)
    assert actual_mse(t) <= min(actual_mse(g) for g in grid) * 1.05
    assert t < 20


def test_int_max_pool_and_add_in_the_code_domain():
    q = RNG.integers(0, 256, (2, 7, 6, 3)).astype(np.uint8)
    got = qarith.max_pool(q, (3, 3), (2, 2), "same", 0)
    s, z = 0.1, 17
    deq = (q.astype(np.float64) - z) * s
    xp = np.full((2, 9, 7, 3), -np.inf)  # "same": 7 -> 4 rows (pads 1, 1), 6 -> 3 (0, 1)
    xp[:, 1:8, :6] = deq
    want = np.stack([np.stack([xp[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(1, 2))
                               for j in range(3)], 1) for i in range(4)], 1)
    np.testing.assert_allclose((got.astype(np.float64) - z) * s, want)
    a = RNG.integers(0, 256, (50,)).astype(np.uint8)
    b = RNG.integers(0, 256, (50,)).astype(np.uint8)
    y = qarith.add(a, b, (0.02, 10), (0.05, 128), (0.06, 100), np.uint8, 100, 255)
    real = (a.astype(np.float64) - 10) * 0.02 + (b.astype(np.float64) - 128) * 0.05
    want = np.clip(np.rint(real / 0.06) + 100, 100, 255)
    assert np.abs(y.astype(np.float64) - want).max() <= 1  # float32 ties may round apart
    assert np.mean(y == want) > 0.95


def test_fake_quantize_op_records_the_straight_through_gradient():
    torch = torch_or_skip()
    from cnnkit import Tensor, ops

    w = RNG.standard_normal((3, 3, 4, 6)).astype(np.float32)
    t = Tensor(w, requires_grad=True)
    y = ops.fake_quantize_weights(t)
    g = RNG.standard_normal(w.shape).astype(np.float32)
    (y * Tensor(g)).sum().backward()
    s = np.abs(w).max(axis=(0, 1, 2)) / 127
    tw = torch.from_numpy(w).requires_grad_()
    ty = torch.fake_quantize_per_channel_affine(tw, torch.from_numpy(s.astype(np.float32)),
                                                torch.zeros(6, dtype=torch.int32), 3, -127,
                                                127)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(t.grad, tw.grad.numpy())
    with pytest.raises(ValueError, match="scales"):
        ops.fake_quantize(t, 0.0, 0, 0, 255)
