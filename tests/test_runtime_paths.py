"""The inference plan's batch-1 convolution paths against a NumPy direct sum: a strided 1x1
convolution as a GEMM on the kept pixels, and a 3x3 convolution with many weights at few
output pixels as one im2col GEMM (both with a folded batch-norm and ReLU); and a
batch-invariant plan still gives each sample what predicting it alone gives."""

import numpy as np
import pytest

import cnnkit
from cnnkit import layers, runtime
from cnnkit.kernels.conv import dispatch
from cnnkit.kernels.conv import inference as conv_inference
from cnnkit.models import Sequential

rng = np.random.default_rng(3)


def direct(x, k, b, stride, pad):
    """z[n, i, j, o] = sum_{p, q, c} xpad[n, i*s + p, j*s + q, c] k[p, q, c, o] + b[o] in
    float64."""
    xp = np.pad(x.astype(np.float64), ((0, 0), pad[0], pad[1], (0, 0)))
    kh, kw = k.shape[:2]
    ho = (xp.shape[1] - kh) // stride + 1
    wo = (xp.shape[2] - kw) // stride + 1
    z = np.zeros((x.shape[0], ho, wo, k.shape[-1]))
    for p in range(kh):
        for q in range(kw):
            patch = xp[:, p:p + stride * ho:stride, q:q + stride * wo:stride]
            z += patch @ k[p, q].astype(np.float64)
    return z + b


def conv_bn_relu(model, i, x, stride, pad):
    conv, bn = model.layers[i], model.layers[i + 1]
    a = [t.peek()[0] for t in (conv.kernel, conv.bias, bn.gamma, bn.beta, bn.moving_mean,
                               bn.moving_variance)]
    z = direct(x, a[0], a[1], stride, pad)
    return np.maximum((z - a[4]) / np.sqrt(a[5] + bn.epsilon) * a[2] + a[3], 0)


def model_and_reference(c_big):
    model = Sequential([layers.Input((7, 7, 24)), layers.Conv2D(c_big, 1, strides=2),
                        layers.BatchNormalization(), layers.ReLU(),
                        layers.Conv2D(c_big, 3, padding="same"), layers.BatchNormalization(),
                        layers.ReLU()])
    for la in model.layers:
        if isinstance(la, layers.BatchNormalization):
            c = la.moving_mean.shape
            la.moving_mean.data[...] = rng.normal(0, 0.3, c)
            la.moving_variance.data[...] = rng.uniform(0.5, 2, c)
            la.gamma.data[...] = rng.uniform(0.5, 1.5, c)

    def reference(x):
        h = conv_bn_relu(model, 0, x, 2, ((0, 0), (0, 0)))
        return conv_bn_relu(model, 3, h, 1, ((1, 1), (1, 1)))

    return model, reference


def test_strided_pointwise_and_big_kernel_gemm_paths():
    model, reference = model_and_reference(352)  # 3x3x352x352: over small_conv_gemm_weights
    w = model.layers[3].kernel.peek()[0]
    x = rng.standard_normal((1, 7, 7, 24)).astype(np.float32)
    h = np.zeros((1, 4, 4, 352), np.float32)
    assert w.size >= dispatch.THRESHOLDS.small_conv_gemm_weights
    assert conv_inference.small_conv_applies(h, w, (1, 1), ((1, 1), (1, 1)), (1, 1))
    with cnnkit.no_grad():
        got = model(x, training=False).data
    np.testing.assert_allclose(got, reference(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("c_big", [40, 352])
def test_batch_invariant_plan_matches_one_sample_predictions(c_big):
    model, reference = model_and_reference(c_big)
    x = rng.standard_normal((5, 7, 7, 24)).astype(np.float32)
    plan = runtime.compile(model, batch_invariant=True)
    whole = plan(x)
    for i in range(len(x)):
        assert np.array_equal(whole[i:i + 1], plan(x[i:i + 1]))
    np.testing.assert_allclose(whole, reference(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape, c_out", [((1, 3, 3, 40), 96), ((2, 9, 9, 24), 16)])
def test_pointwise_column_and_row_blocks(shape, c_out):
    """Fewer pixels than output channels: column blocks (bias and ReLU per block); else rows."""
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((shape[-1], c_out)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    with dispatch.overridden(small_gemm_macs=0):
        z = conv_inference.pointwise_conv(x, w, b, lambda o, a: np.maximum(a, 0, out=o))
    want = np.maximum(direct(x, w[None, None], b, 1, ((0, 0), (0, 0))), 0)
    np.testing.assert_allclose(z, want, rtol=1e-5, atol=1e-5)
