"""The byte (u8 x s8, vpmaddubsw) convolution path, the vectorised depthwise kernel and the
element-wise int8 C kernels (add, quantize, 2x2 max pooling) against references written
here: the int64 definition of the convolution, and the float32 formulas of the module
docstrings evaluated with NumPy step by step. The C helper must give the same integers."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from cnnkit.kernels import qarith, qconv
from cnnkit.kernels import quantize as qk
from cnnkit.kernels.native import qarith as native_a
from cnnkit.kernels.native import qconv as native_q

RNG = np.random.default_rng(77)
needs_qconv = pytest.mark.skipif(not native_q.available(),
                                 reason="the native int8 convolution helper is not built")
needs_qarith = pytest.mark.skipif(not native_a.available(),
                                  reason="the native int8 element-wise helper is not built")


def _params(wq, xz, out_dtype, rng=RNG):
    cout = wq.shape[-1]
    bias = rng.integers(-20000, 20000, cout).astype(np.int32)
    mult = (rng.random(cout) * 3e-4 + 1e-5).astype(np.float32)
    lo, hi = (-128, 127) if out_dtype == np.int8 else (3, 255)
    return qconv.QuantConvParams(wq, bias, mult, xz, 2, lo, hi)


def _acc(xq, wq, xz, strides, pads, dilation, depthwise=False):
    """The convolution's int64 sums by the definition (padding reads xz)."""
    n, h, w, c = xq.shape
    kh, kw = wq.shape[:2]
    (pt, pb), (pl, pr) = pads
    xp = np.full((n, h + pt + pb, w + pl + pr, c), xz, np.int64)
    xp[:, pt:pt + h, pl:pl + w] = xq
    oh = (h + pt + pb - dilation[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (w + pl + pr - dilation[1] * (kw - 1) - 1) // strides[1] + 1
    acc = np.zeros((n, oh, ow, c if depthwise else wq.shape[-1]), np.int64)
    for i in range(kh):
        for j in range(kw):
            v = xp[:, i * dilation[0]:i * dilation[0] + strides[0] * (oh - 1) + 1:strides[0],
                   j * dilation[1]:j * dilation[1] + strides[1] * (ow - 1) + 1:strides[1]]
            w = wq[i, j].astype(np.int64)
            acc += v * w if depthwise else v @ w
    return acc


def _requant(acc, p, out_dtype):
    t = (acc + p.bias).astype(np.float32) * p.mult
    if out_dtype == np.float32:
        return t
    return np.clip(np.rint(t).astype(np.int64) + p.yz, p.lo, p.hi).astype(out_dtype)


BYTE_CASES = [  # n, h, w, c, cout, kh, kw, strides, pads, dilation, input dtype
    (2, 9, 7, 3, 20, 3, 3, (1, 1), ((1, 1), (1, 1)), (1, 1), np.uint8),
    (3, 8, 8, 16, 16, 3, 3, (2, 2), ((1, 0), (0, 1)), (1, 1), np.uint8),
    (1, 6, 5, 1, 33, 3, 3, (1, 2), ((0, 0), (0, 0)), (1, 1), np.int8),
    (2, 9, 9, 5, 7, 3, 3, (1, 1), ((2, 2), (2, 2)), (2, 2), np.int8),
    (2, 4, 5, 36, 17, 1, 1, (1, 1), ((0, 0), (0, 0)), (1, 1), np.uint8),  # rows read in place
    (2, 4, 5, 37, 17, 1, 1, (1, 1), ((0, 0), (0, 0)), (1, 1), np.uint8),
    (1, 11, 10, 13, 48, 5, 3, (3, 2), ((2, 1), (1, 1)), (1, 1), np.int8),
    (3, 7, 7, 64, 31, 2, 2, (1, 1), ((0, 1), (1, 0)), (1, 2), np.uint8),
]


@needs_qconv
@pytest.mark.parametrize("case", BYTE_CASES)
@pytest.mark.parametrize("out_dtype", [np.uint8, np.int8, np.float32])
def test_byte_path_gives_the_integers_of_the_definition(case, out_dtype):
    n, h, w, c, cout, kh, kw, strides, pads, dil, xdt = case
    lo_in, hi_in = qk.qrange(xdt)
    xq = RNG.integers(lo_in, hi_in + 1, (n, h, w, c)).astype(xdt)
    wq = RNG.integers(-64, 65, (kh, kw, c, cout)).astype(np.int8)
    p = _params(wq, int(RNG.integers(lo_in, hi_in)), out_dtype)
    assert p.fits_u8_path()
    want = _requant(_acc(xq, wq, p.xz, strides, pads, dil), p, out_dtype)
    got = qconv.conv2d(xq, p, strides, pads, dil, out_dtype, use_native=True)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(qconv.conv2d(xq, p, strides, pads, dil, out_dtype,
                                               use_native=False), want)


@needs_qconv
@pytest.mark.parametrize("xdt", [np.uint8, np.int8])
def test_byte_path_at_the_saturation_edge_is_exact(xdt):
    """Inputs at the code range's ends and weights +-64 in same-sign pairs: a vpmaddubsw pair
    sum reaches 2 * 255 * 64 = 32640 (uint8; int8 inputs enter as x + 128), just below the
    int16 limit 32767; one more in a weight would saturate, so 65 takes the int16 path."""
    lo_in, hi_in = qk.qrange(xdt)
    for edge in (hi_in, lo_in):
        xq = np.full((2, 6, 6, 8), edge, xdt)
        xq[0, ::2] = hi_in + lo_in - edge  # the other end in every second row
        wq = np.full((3, 3, 8, 16), 64, np.int8)
        wq[..., 1::2] = -64
        for wmax in (64, 65):
            wq[0, 0, 0, 0] = wmax
            p = _params(wq, 0 if xdt == np.int8 else 128, np.float32)
            assert p.fits_u8_path() == (wmax <= qconv.WQ_U8_MAX)
            want = _requant(_acc(xq, wq, p.xz, (1, 1), ((1, 1), (1, 1)), (1, 1)), p,
                            np.float32)
            got = qconv.conv2d(xq, p, (1, 1), ((1, 1), (1, 1)), out_dtype=np.float32,
                               use_native=True)
            np.testing.assert_array_equal(got, want)


@needs_qconv
@pytest.mark.parametrize("c", [1, 7, 8, 33, 40, 77])
@pytest.mark.parametrize("xdt,stride,pad,dil", [(np.uint8, 1, 1, 1), (np.int8, 2, 1, 1),
                                                (np.uint8, 2, 0, 1), (np.int8, 1, 2, 2)])
def test_depthwise_kernel_matches_the_definition(c, xdt, stride, pad, dil):
    lo_in, hi_in = qk.qrange(xdt)
    xq = RNG.integers(lo_in, hi_in + 1, (2, 9, 8, c)).astype(xdt)
    wq = RNG.integers(-127, 128, (3, 3, c)).astype(np.int8)
    out_dtype = np.int8 if xdt == np.int8 else np.uint8
    p = _params(wq, int(RNG.integers(lo_in, hi_in)), out_dtype)
    pads = ((pad, pad), (pad, pad))
    acc = _acc(xq, wq, p.xz, (stride, stride), pads, (dil, dil), depthwise=True)
    for od in (out_dtype, np.float32):
        got = qconv.depthwise2d(xq, p, (stride, stride), pads, (dil, dil), od,
                                use_native=True)
        np.testing.assert_array_equal(got, _requant(acc, p, od))


@needs_qconv
@pytest.mark.parametrize("c,rows", [(300, 13), (128, 1), (31, 5)])
def test_dense_byte_path_matches_the_matrix_product(c, rows):
    xq = RNG.integers(0, 256, (rows, c)).astype(np.uint8)
    wq = RNG.integers(-63, 64, (1, 1, c, 21)).astype(np.int8)
    p = _params(wq, 9, np.float32)
    want = _requant(xq.astype(np.int64) @ wq[0, 0].astype(np.int64), p, np.float32)
    np.testing.assert_array_equal(qconv.dense(xq, p, np.float32, use_native=True), want)


def _add_formula(a, b, qa, qb, qy, lo, hi, dt):
    ma = np.float32(np.float32(qa[0]) / np.float32(qy[0]))
    mb = np.float32(np.float32(qb[0]) / np.float32(qy[0]))
    ta = np.float32(a.astype(np.int64) - qa[1]).astype(np.float32) * ma  # one rounding each
    tb = (b.astype(np.int64) - qb[1]).astype(np.float32) * mb
    t = (ta + tb).astype(np.float32)
    return np.clip(np.rint(t).astype(np.int64) + qy[1], lo, hi).astype(dt)


@needs_qarith
@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_add_kernel_rounds_as_the_float32_formula(dt):
    """Every pair of codes (65,536) under scales whose ratios make many exact .5 ties: a
    fused multiply-add (one rounding) would differ from the formula's two roundings."""
    lo, hi = qk.qrange(dt)
    a = np.repeat(np.arange(lo, hi + 1), 256).astype(dt)
    b = np.tile(np.arange(lo, hi + 1), 256).astype(dt)
    for qa, qb, qy in [((0.5, 0), (0.25, 3), (1.0, 0)), ((0.1, 7), (0.3, -9), (0.7, 5)),
                       ((1 / 3, 1), (2 / 3, 1), (0.5, -3)), ((0.013, 2), (0.021, 0), (0.05, 1))]:
        zs = [z if dt == np.int8 else z + 100 for z in (qa[1], qb[1], qy[1])]
        qa, qb, qy = (qa[0], zs[0]), (qb[0], zs[1]), (qy[0], zs[2])
        got = qarith.add(a, b, qa, qb, qy, dt, lo + 1, hi)
        np.testing.assert_array_equal(got, _add_formula(a, b, qa, qb, qy, lo + 1, hi, dt))


@needs_qarith
@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_quantize_kernel_matches_the_formula(dt):
    qmin, qmax = qk.qrange(dt)
    x = (RNG.standard_normal((3, 5, 7, 11)) * 4).astype(np.float32)
    x.flat[:8] = [1e30, -1e30, 0.5, 1.5, -2.5, 2.5, 0.0, -0.0]  # clamps and ties
    for s, z in [(0.5, 0), (0.03, qmin + 7), (0.11, qmax - 3)]:
        inv = np.float32(1) / np.float32(s)
        want = np.clip(np.rint(x * inv).astype(np.float64) + z, qmin, qmax).astype(dt)
        np.testing.assert_array_equal(qk.quantize(x, s, z, dt), want)


@needs_qarith
@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("shape", [(2, 8, 6, 5), (1, 7, 9, 70), (3, 4, 4, 32)])
def test_max_pool_kernel_matches_the_window_max(dt, shape):
    lo, hi = qk.qrange(dt)
    q = RNG.integers(lo, hi + 1, shape).astype(dt)
    oh, ow = shape[1] // 2, shape[2] // 2
    want = q[:, :2 * oh, :2 * ow].reshape(shape[0], oh, 2, ow, 2, shape[3]).max(axis=(2, 4))
    np.testing.assert_array_equal(qarith.max_pool(q, (2, 2), (2, 2), "valid", lo), want)
    limits = (lo + 20, hi - 30)
    np.testing.assert_array_equal(qarith.max_pool(q, (2, 2), (2, 2), "valid", lo, limits),
                                  np.clip(want, *limits))


def test_weight_bits_sets_the_symmetric_code_range():
    w = RNG.standard_normal((3, 3, 4, 5)).astype(np.float32)
    for bits, qmax in ((8, 127), (7, 63)):
        wq, s = qk.quantize_weights(w, -1, qk.weight_qmax(bits))
        m = np.abs(w).reshape(-1, 5).max(axis=0)
        np.testing.assert_allclose(s, m / qmax, rtol=1e-6)
        np.testing.assert_array_equal(wq, np.rint(w / (m / qmax).astype(np.float32)))
        assert np.abs(wq).max() == qmax
    with pytest.raises(ValueError, match="weight_bits must be 7 or 8"):
        qk.weight_qmax(6)


def test_quantize_weight_bits_choose_the_codes_and_both_models_run(tmp_path):
    """weight_bits=7 gives codes within +-63 (the byte kernel's range) and weight_bits=8
    within +-127; a dense layer's codes are rint(w / (max|w| / qmax)) per output channel,
    the model stays close to the float model, and the file keeps it."""
    from test_quantize import _cnn, _sqnr

    from cnnkit.deploy import load_quantized, quantize

    m, x = _cnn()
    y = m.predict(x)
    for bits, qmax in ((7, 63), (8, 127)):
        q = quantize(m, x, method="minmax", weight_bits=bits)
        for w in q.graph.weights.values():
            assert np.abs(w.wq).max() == qmax
        kernel = np.asarray(next(layer for layer in m.layers if layer.name == "d1").kernel.data)
        (wq,) = [w.wq for w in q.graph.weights.values() if w.wq.shape[-2:] == kernel.shape]
        step = (np.abs(kernel).max(axis=0) / qmax).astype(np.float32)  # d1 has no batch norm
        np.testing.assert_array_equal(wq[0, 0], np.rint(kernel / step))
        assert _sqnr(y, q.predict(x)) > 25
        q.save(tmp_path / f"q{bits}.cnnkit")
        np.testing.assert_array_equal(load_quantized(tmp_path / f"q{bits}.cnnkit").predict(x),
                                      q.predict(x))
    for bad in (6, 9, True, "7"):
        with pytest.raises(ValueError, match="weight_bits must be 7 or 8"):
            quantize(m, x, weight_bits=bad)


@needs_qconv
def test_vnni_self_check_catches_a_kernel_that_saturates(monkeypatch):
    """The VNNI kernel is opt-in and checked at switch-on against the NumPy path. Routing
    8-bit weights to the byte path without VNNI (the vpmaddubsw kernel, which saturates on
    weights beyond +-64) is a wrong kernel the check must catch."""
    if native_q.variant() == "baseline":
        pytest.skip("the baseline build's byte kernel is scalar int32: nothing saturates")
    monkeypatch.setitem(qconv._VNNI, "mode", 1)
    monkeypatch.setitem(qconv._VNNI, "checked", True)
    native_q.switch_vnni(False)
    assert not qconv._vnni_self_check()
    monkeypatch.setitem(qconv._VNNI, "mode", 0)
    assert qconv._vnni_self_check()


@needs_qconv
def test_vnni_kernel_gives_the_integers_of_the_definition():
    """Runs only on a CPU with AVX512-VNNI or AVX-VNNI (not the AMD Zen 3 it was written on,
    and Debian's QEMU 7.2 cannot execute vpdpbusd): full 8-bit weights by the byte path."""
    if os.environ.get("CNNKIT_INT8_VNNI") != "1":
        pytest.skip("the VNNI kernel is opt-in (CNNKIT_INT8_VNNI=1) until it has run on a VNNI "
                    "CPU; set it to test the kernel there")
    cpu_mode = native_q.switch_vnni(True)
    native_q.switch_vnni(False)
    if cpu_mode == 0:
        pytest.skip("this CPU has neither AVX512-VNNI nor AVX-VNNI")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a failed self-check warns: fail here
            assert qconv.set_vnni(True) == cpu_mode
        for case in BYTE_CASES:
            n, h, w, c, cout, kh, kw, strides, pads, dil, xdt = case
            lo_in, hi_in = qk.qrange(xdt)
            xq = RNG.integers(lo_in, hi_in + 1, (n, h, w, c)).astype(xdt)
            wq = RNG.integers(-127, 128, (kh, kw, c, cout)).astype(np.int8)
            p = _params(wq, int(RNG.integers(lo_in, hi_in)), np.float32)
            want = _requant(_acc(xq, wq, p.xz, strides, pads, dil), p, np.float32)
            got = qconv.conv2d(xq, p, strides, pads, dil, np.float32, use_native=True)
            np.testing.assert_array_equal(got, want)
    finally:
        qconv.set_vnni(False)
