"""The inference runtime (:mod:`cnnkit.runtime`): which steps the fusion passes make (counted
by construction), a layer that brings its own inference step, per-request batching, the
im2col / 1x1 inference kernels with the C helper on and off against a direct sum and against
PyTorch, and the import layering (runtime below models, models not importing deploy)."""

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import cnnkit
from cnnkit import layers, runtime
from cnnkit.kernels import native
from cnnkit.kernels.conv import dispatch
from cnnkit.kernels.conv import inference as conv_inference
from cnnkit.layers import Layer
from cnnkit.models import Model, Sequential
from cnnkit.runtime import steps

rng = np.random.default_rng(0)
SRC = Path(cnnkit.__file__).parent


def layer_by_layer(model, x):
    with cnnkit.enable_grad():
        out = model(x, training=False)
    return [o.data for o in out] if isinstance(out, list) else out.data


def randomise_bn(model):
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.moving_mean.shape
            layer.moving_mean.data[...] = rng.standard_normal(c) * 0.3
            layer.moving_variance.data[...] = rng.uniform(0.3, 2.0, c)


def kinds(plan):
    return [type(s.step).__name__ for s in plan.steps]


# ----- fusion: one step per pattern ----------------------------------------------------------
def test_each_fusion_pattern_gives_one_step():
    a = layers.Input((8, 8, 3))
    h = layers.ZeroPadding2D(1)(a)  # pad + conv + BN + ReLU: one step
    h = layers.Conv2D(4, 3, use_bias=False)(h)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    g = layers.ReLU(max_value=6.0)(layers.BatchNormalization()(a))  # BN + ReLU6: one step
    g = layers.Conv2D(4, 1)(g)
    s = layers.ReLU()(layers.Add()([h, g]))  # merge + ReLU: one step
    p = layers.MaxPooling2D(2)(layers.Conv2D(4, 3, padding="same", activation="relu")(s))
    model = Model(a, layers.Flatten()(p))
    randomise_bn(model)
    plan = runtime.compile(model)
    assert kinds(plan) == ["Conv", "ChannelAffine", "Conv", "Merge", "ConvPool", "View"]
    conv, affine, _, merge, conv_pool, _ = (s.step for s in plan.steps)
    assert conv.extra_pads == ((1, 1), (1, 1)) and conv.affine is not None
    assert conv.act is steps.activation(cnnkit.ops.relu)
    assert affine.act is not None and merge.act is not None
    conv2, pool, _ = conv_pool.unfused()  # conv -> max pool: one step
    assert conv2.act is None and pool.act is not None  # ReLU moved after the max pooling
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(plan(x), layer_by_layer(model, x), rtol=1e-5, atol=1e-6)


def test_no_fusion_across_a_second_reader_or_a_model_output():
    a = layers.Input((6, 6, 2))
    c = layers.Conv2D(3, 3)(a)
    b = layers.BatchNormalization()(c)  # c is read twice: BN stays its own step
    r = layers.ReLU()(c)
    model = Model(a, [b, r, layers.ReLU()(b)])  # b is an output: its ReLU stays apart
    randomise_bn(model)
    plan = runtime.compile(model)
    assert kinds(plan) == ["Conv", "ChannelAffine", "Activate", "Activate"]
    x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    for got, want in zip(plan(x), layer_by_layer(model, x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ----- the hook: a layer brings its own inference form ----------------------------------------
class Cube(Layer):
    """y = x ** 3; its inference form is an array function (no runtime edit needed)."""

    calls = 0

    def call(self, inputs, training=False):
        return inputs * inputs * inputs

    def inference_step(self, steps, rank):
        def cube(x):
            Cube.calls += 1
            return x * x * x

        return steps.ArrayFn(cube)


class Halve(Layer):
    """y = x / 2 with no inference form: the plan runs its own call."""

    def call(self, inputs, training=False):
        return inputs * 0.5


def test_a_new_layer_brings_its_own_step_and_others_fall_back():
    model = Sequential([layers.Input((5,)), layers.Dense(4), Cube(), Halve(),
                        layers.Activation("relu")])
    plan = runtime.compile(model)
    assert kinds(plan) == ["Dense", "ArrayFn", "LayerCall", "Activate"]
    x = rng.standard_normal((3, 5)).astype(np.float32)
    Cube.calls = 0
    out = plan(x)
    assert Cube.calls == 1
    w, b = model.layers[0].kernel.data, model.layers[0].bias.data
    np.testing.assert_allclose(out, np.maximum((x @ w + b) ** 3 * 0.5, 0), rtol=1e-5,
                               atol=1e-6)


# ----- per-request batching ------------------------------------------------------------------
def test_requests_are_batched_together_and_split_back():
    cnnkit.random.seed(0)
    model = cnnkit.zoo.get("lenet5")
    plan = runtime.compile(model)
    requests = [rng.standard_normal((n, 28, 28, 1)).astype(np.float32) for n in (1, 3, 2, 5)]
    outs = plan.run_requests(requests, max_batch=4)
    assert [len(o) for o in outs] == [1, 3, 2, 5]
    for req, out in zip(requests, outs, strict=True):
        np.testing.assert_allclose(out, layer_by_layer(model, req), rtol=1e-5, atol=1e-6)
    assert plan.run_requests([]) == []
    with pytest.raises(ValueError, match="max_batch must be a positive integer, got 0"):
        plan.run_batched(requests[0], 0)


def test_requests_with_several_inputs_and_outputs():
    a, b = layers.Input((4,)), layers.Input((4,))
    s = layers.Add()([layers.Dense(3)(a), layers.Dense(3)(b)])
    model = Model([a, b], [s, layers.ReLU()(s)])
    plan = runtime.compile(model)
    reqs = [[rng.standard_normal((n, 4)).astype(np.float32) for _ in range(2)] for n in (2, 3)]
    for req, out in zip(reqs, plan.run_requests(reqs, max_batch=2), strict=True):
        for got, want in zip(out, layer_by_layer(model, req), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ----- the inference convolution kernels, C helper on and off --------------------------------
def direct_conv(x, w, b, strides, pads, dilation):
    """Z[n, i, j, o] = sum_{p, q, c} Xpad[n, i*S0 + p*D0, j*S1 + q*D1, c] W[p, q, c, o] + b[o]
    as a sum over the kernel taps (float64)."""
    (pt, pb), (pl, pr) = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kh, kw = w.shape[:2]
    ho = (xp.shape[1] - dilation[0] * (kh - 1) - 1) // strides[0] + 1
    wo = (xp.shape[2] - dilation[1] * (kw - 1) - 1) // strides[1] + 1
    z = np.zeros((x.shape[0], ho, wo, w.shape[-1]))
    for p in range(kh):
        for q in range(kw):
            r0, c0 = p * dilation[0], q * dilation[1]
            patch = xp[:, r0:r0 + strides[0] * (ho - 1) + 1:strides[0],
                       c0:c0 + strides[1] * (wo - 1) + 1:strides[1]]
            z += patch @ w[p, q].astype(np.float64)
    return z + (0 if b is None else b)


@pytest.mark.parametrize("use_native", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_conv2d_against_a_direct_sum(monkeypatch, use_native, dtype):
    monkeypatch.setattr(native, "available", lambda: use_native)
    x = rng.standard_normal((2, 7, 6, 16)).astype(dtype)
    w = rng.standard_normal((3, 2, 16, 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    args = ((2, 1), ((1, 1), (0, 2)), (1, 2))
    z = conv_inference.small_conv2d(x, w, b, *args)
    if use_native and dtype == np.float32:
        assert z is None  # the C helper's kernels take it
        return
    np.testing.assert_allclose(z, direct_conv(x, w, b, *args), rtol=1e-4, atol=1e-4)
    big = np.zeros((4, 20, 20, 16), dtype)  # 1600 output pixels: over SMALL_CONV_PIXELS
    assert conv_inference.small_conv2d(big, w, b, (1, 1), ((0, 0), (0, 0)), (1, 1)) is None


@pytest.mark.parametrize("blocks", [False, True])
def test_pointwise_conv_with_in_place_activation(monkeypatch, blocks):
    if blocks:  # force the row-block path over the kernel threads
        monkeypatch.setattr(dispatch, "THRESHOLDS", dataclasses.replace(
            dispatch.THRESHOLDS, small_gemm_macs=0, pointwise_block_bytes=64))
    x = rng.standard_normal((2, 5, 3, 6)).astype(np.float32)
    w = rng.standard_normal((6, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    want = np.maximum(direct_conv(x, w[None, None], b, (1, 1), ((0, 0), (0, 0)), (1, 1)), 0)
    z = conv_inference.pointwise_conv(x, w, b, lambda o, a: np.maximum(a, 0, out=o))
    np.testing.assert_allclose(z, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_native", [True, False])
def test_plan_matches_pytorch_with_and_without_the_c_helper(use_native):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    native.set_enabled(use_native)
    try:
        torch.manual_seed(0)
        tm = nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(16, 8, 3, bias=False), nn.BatchNorm2d(8),
                           nn.ReLU(), nn.Conv2d(8, 6, 1), nn.ReLU6(), nn.MaxPool2d(2))
        with torch.no_grad():
            tm[2].running_mean.uniform_(-0.5, 0.5)
            tm[2].running_var.uniform_(0.5, 2.0)
        tm.eval()
        model = Sequential([layers.Input((8, 8, 16)), layers.ZeroPadding2D(1),
                            layers.Conv2D(8, 3, use_bias=False),
                            layers.BatchNormalization(epsilon=1e-5), layers.ReLU(),
                            layers.Conv2D(6, 1), layers.ReLU(max_value=6.0),
                            layers.MaxPooling2D(2)])
        sd = {k: v.numpy() for k, v in tm.state_dict().items()}
        model.layers[1].kernel.data[...] = sd["1.weight"].transpose(2, 3, 1, 0)
        bn = model.layers[2]
        bn.gamma.data[...], bn.beta.data[...] = sd["2.weight"], sd["2.bias"]
        bn.moving_mean.data[...], bn.moving_variance.data[...] = (sd["2.running_mean"],
                                                                  sd["2.running_var"])
        model.layers[4].kernel.data[...] = sd["4.weight"].transpose(2, 3, 1, 0)
        model.layers[4].bias.data[...] = sd["4.bias"]
        x = rng.standard_normal((1, 8, 8, 16)).astype(np.float32)
        with torch.no_grad():
            want = tm(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
        plan = runtime.compile(model)
        assert kinds(plan) == ["Conv", "Conv", "Pool"]
        np.testing.assert_allclose(plan(x), want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(model.predict(x), want, rtol=1e-4, atol=1e-5)
    finally:
        native.set_enabled(None)


# ----- layering ------------------------------------------------------------------------------
def imported_packages(folder):
    """The cnnkit subpackages named by relative imports in the modules of ``folder``."""
    found = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2 and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.level >= 2:
                found.update(a.name for a in node.names)
    return found


def test_runtime_sits_below_models_and_models_do_not_import_deploy():
    assert not imported_packages(SRC / "runtime") & {"models", "deploy", "train", "zoo", "io"}
    assert "deploy" not in imported_packages(SRC / "models")
    assert not imported_packages(SRC / "layers") & {"runtime", "models", "deploy"}


def test_average_pool_takes_a_following_relu_but_a_one_tap_pool_does_not():
    a = layers.Input((6, 6, 2))
    p = layers.ReLU()(layers.AveragePooling2D(2)(a))
    q = layers.ReLU()(layers.MaxPooling2D(1, strides=2)(layers.Conv2D(2, 1)(a)))  # a view
    model = Model(a, [p, q])
    plan = runtime.compile(model)
    assert kinds(plan) == ["Pool", "Conv", "Pool", "Activate"]
    x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    for got, want in zip(plan(x), layer_by_layer(model, x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_threads_sharing_a_plan_get_the_serial_results_bit_for_bit():
    import threading

    cnnkit.random.seed(2)
    model = cnnkit.zoo.get("resnet20")
    randomise_bn(model)
    plan = runtime.compile(model)
    xs = [rng.standard_normal((2, 32, 32, 3)).astype(np.float32) for _ in range(8)]
    serial = [plan(x) for x in xs]
    mismatches = []

    def worker(i):
        for _ in range(10):
            if not np.array_equal(plan(xs[i]), serial[i]):
                mismatches.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not mismatches


def test_compile_layer_computes_each_layer_alone():
    from cnnkit.deploy import compile_layer

    x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    singles = [layers.Conv2D(3, 3, padding="same", activation="relu"),
               layers.DepthwiseConv2D(3, depth_multiplier=2), layers.BatchNormalization(),
               layers.MaxPooling2D(2), layers.AveragePooling2D(3, strides=1, padding="same"),
               layers.ReLU(max_value=2.5), layers.Activation("sigmoid"),
               layers.ZeroPadding2D(((1, 0), (2, 1))), layers.Dense(5, activation="elu"),
               layers.GlobalMaxPooling2D(), layers.Flatten(), layers.Rescaling(0.5, 1.0)]
    for layer in singles:
        want = layer_by_layer(layer, x)
        before = x.copy()
        np.testing.assert_allclose(compile_layer(layer)(x), want, rtol=1e-5, atol=1e-6,
                                   err_msg=layer.name)
        np.testing.assert_array_equal(x, before)  # the input is never written
    pair = [x, rng.standard_normal(x.shape).astype(np.float32)]
    for layer in (layers.Add(), layers.Subtract(), layers.Multiply(), layers.Concatenate()):
        np.testing.assert_allclose(compile_layer(layer)(pair), layer_by_layer(layer, pair),
                                   rtol=1e-6, err_msg=layer.name)
