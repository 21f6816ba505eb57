"""The engine's fused steps (batch-norm folded into conv / dense, zero padding merged into
the conv's pads, activations and merges written in place, intermediates released early) give
the layer-by-layer results, never write into arrays the caller or a later step still reads,
and follow weight changes; ``model(x)`` under ``no_grad`` runs the same plan."""

import dataclasses
import tracemalloc

import numpy as np
import pytest

import cnnkit
from cnnkit import layers, zoo
from cnnkit.deploy import InferenceEngine
from cnnkit.models import Model, Sequential

rng = np.random.default_rng(0)


def layer_by_layer(model, x):
    """The reference: every layer's own call on Tensors (gradients enabled, so no plan)."""
    with cnnkit.enable_grad():
        out = model(x, training=False)
    return [o.data for o in out] if isinstance(out, list) else out.data


def no_grad_call(model, x):
    with cnnkit.no_grad():
        out = model(x)
    return [o.data for o in out] if isinstance(out, list) else out.data


def randomise(model):
    """Batch-norm statistics and affine weights away from their defaults, recursively."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.moving_mean.shape
            layer.moving_mean.data[...] = rng.standard_normal(c) * 0.3
            layer.moving_variance.data[...] = rng.uniform(0.3, 2.0, c)
            if layer.gamma is not None:
                layer.gamma.data[...] = rng.uniform(0.5, 1.5, c)
            if layer.beta is not None:
                layer.beta.data[...] = rng.standard_normal(c) * 0.3
        elif hasattr(layer, "layers"):
            randomise(layer)


def check_all_paths(model, x, rtol=1e-5, atol=1e-6):
    ref = layer_by_layer(model, x)
    x_before = [a.copy() for a in x] if isinstance(x, list) else x.copy()
    outs = [InferenceEngine(model)(x), no_grad_call(model, x),
            model.predict(x, batch_size=len(x[0]) if isinstance(x, list) else len(x))]
    for out in outs:
        for a, b in zip(out if isinstance(out, list) else [out],
                        ref if isinstance(ref, list) else [ref], strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    # the caller's arrays are never written
    for a, b in zip(x if isinstance(x, list) else [x],
                    x_before if isinstance(x, list) else [x_before], strict=True):
        np.testing.assert_array_equal(a, b)
    return ref


def _conv_bn_net():
    """Every fusion pattern, and the cases where fusing would be wrong."""
    a = layers.Input((10, 10, 3))
    h = layers.ZeroPadding2D(((1, 2), (0, 1)))(a)  # merged into the conv's pads
    h = layers.Conv2D(6, 3, padding="same", use_bias=True)(h)
    h = layers.BatchNormalization()(h)  # folded
    h = layers.ReLU()(h)  # in place
    d = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False)(h)
    d = layers.BatchNormalization(epsilon=1e-5)(d)  # folded into the depthwise kernel (C, M)
    d = layers.ReLU(max_value=6.0)(d)
    c = layers.Conv2D(12, 1)(h)  # read twice: not folded
    bn = layers.BatchNormalization(center=False)(c)
    c2 = layers.Activation("relu")(c)  # second reader of c
    s = layers.Add()([d, bn])  # may write into a dead operand
    s = layers.ReLU(max_value=3.0)(s)
    s = layers.Subtract()([s, c2])
    p = layers.ZeroPadding2D(1)(s)  # read twice: not merged
    q = layers.Conv2D(4, 3, strides=2)(p)
    r = layers.MaxPooling2D(2)(p)
    r = layers.Conv2D(4, 1, activation="relu")(r)  # conv's own ReLU: no fold of the next BN
    r = layers.BatchNormalization()(r)
    e = layers.Conv2D(4, 3, activation="elu")(layers.ZeroPadding2D(1)(s))  # own call
    q = layers.Concatenate()([q, r])
    f = layers.Flatten()(q)
    f = layers.Dense(8, use_bias=False)(f)
    f = layers.BatchNormalization(scale=False)(f)  # folded into the dense kernel
    f = layers.Activation("tanh")(f)
    return Model(a, [layers.Dense(5, activation="softmax")(f), e])


def test_fused_plan_equals_layer_by_layer_and_follows_weights():
    cnnkit.random.seed(3)
    model = _conv_bn_net()
    randomise(model)
    x = rng.standard_normal((3, 10, 10, 3)).astype(np.float32)
    check_all_paths(model, x)
    # weights and statistics changed in place are seen by the folded kernels
    model.set_weights([w * 1.3 + 0.05 for w in model.get_weights()])
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.moving_variance.data *= 1.7
    check_all_paths(model, x)


def test_in_place_steps_never_touch_inputs_outputs_or_views():
    a = layers.Input((4, 4, 2))
    r = layers.ReLU()(a)  # reads the model input: must not write into it
    n = layers.BatchNormalization()(a)
    m = layers.Add()([r, n])
    f = layers.Flatten()(m)  # a view of m ...
    g = layers.ReLU()(m)  # ... while m is read again: no in-place on m
    h = layers.Add()([f, layers.Flatten()(g)])  # f first: m is viewed, then read again
    out2 = layers.Activation("relu")(h)  # h is also a model output: not overwritten
    model = Model(a, [h, out2, f])
    randomise(model)
    x = rng.standard_normal((2, 4, 4, 2)).astype(np.float32)
    check_all_paths(model, x)


def test_sequential_chain_and_nested_models():
    inner = Sequential([layers.Input((8, 8, 4)), layers.Conv2D(4, 3, padding="same"),
                        layers.BatchNormalization(), layers.ReLU()])
    a = layers.Input((8, 8, 4))
    h = inner(a)
    h = layers.Add()([h, a])
    model = Model(a, layers.GlobalAveragePooling2D()(h))
    randomise(model)
    x = rng.standard_normal((2, 8, 8, 4)).astype(np.float32)
    check_all_paths(model, x)
    seq = Sequential([layers.Input((9, 9, 1)), layers.ZeroPadding2D(2),
                      layers.Conv2D(3, 5, use_bias=False), layers.BatchNormalization(),
                      layers.ReLU(), layers.AveragePooling2D(2), layers.Flatten(),
                      layers.Dense(4), layers.BatchNormalization(), layers.Activation("relu")])
    randomise(seq)
    x = rng.standard_normal((3, 9, 9, 1)).astype(np.float32)
    check_all_paths(seq, x)
    # the activation moves after max pooling (max commutes with ReLU / ReLU6)
    seq = Sequential([layers.Input((11, 11, 2)), layers.Conv2D(4, 3, activation="relu"),
                      layers.MaxPooling2D(2), layers.Conv2D(5, 3, padding="same"),
                      layers.BatchNormalization(), layers.ReLU(max_value=6.0),
                      layers.MaxPooling2D(3, strides=2, padding="same"), layers.Flatten()])
    randomise(seq)
    x = rng.standard_normal((2, 11, 11, 2)).astype(np.float32) * 4
    check_all_paths(seq, x)


@pytest.mark.parametrize("name,kwargs,shape", [
    ("resnet20", {}, (2, 32, 32, 3)),
    ("resnet18", dict(width_mult=0.25, input_shape=(64, 64, 3)), (2, 64, 64, 3)),
    ("mobilenet_v2", dict(width_mult=0.35, input_shape=(64, 64, 3)), (2, 64, 64, 3)),
    ("efficientnet_b0", dict(input_shape=(48, 48, 3)), (1, 48, 48, 3)),
    ("densenet121", dict(input_shape=(48, 48, 3)), (1, 48, 48, 3)),
    ("lenet5", {}, (5, 28, 28, 1)),
    ("simple_cnn", {}, (5, 28, 28, 1)),
])
def test_zoo_models_through_the_plan(name, kwargs, shape):
    cnnkit.random.seed(0)
    model = zoo.get(name, **kwargs)
    randomise(model)
    x = rng.standard_normal(shape).astype(np.float32)
    check_all_paths(model, x, rtol=1e-4, atol=1e-5)


def test_plan_matches_pytorch_conv_bn_relu_block():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    tm = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 8, 3, stride=2, bias=False),
                       nn.BatchNorm2d(8), nn.ReLU6(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                       nn.BatchNorm2d(8), nn.ReLU())
    with torch.no_grad():
        for m in tm:
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    tm.eval()
    model = Sequential([layers.Input((9, 9, 3)), layers.ZeroPadding2D(((0, 1), (0, 1))),
                        layers.Conv2D(8, 3, strides=2, use_bias=False),
                        layers.BatchNormalization(epsilon=1e-5), layers.ReLU(max_value=6.0),
                        layers.DepthwiseConv2D(3, padding="same"),
                        layers.BatchNormalization(epsilon=1e-5), layers.ReLU()])
    sd = {k: v.numpy() for k, v in tm.state_dict().items()}
    model.layers[1].kernel.data[...] = sd["1.weight"].transpose(2, 3, 1, 0)
    model.layers[4].kernel.data[...] = sd["4.weight"].transpose(2, 3, 0, 1)
    model.layers[4].bias.data[...] = sd["4.bias"]
    for i, j in ((2, "2"), (5, "5")):
        bn = model.layers[i]
        bn.gamma.data[...], bn.beta.data[...] = sd[f"{j}.weight"], sd[f"{j}.bias"]
        bn.moving_mean.data[...], bn.moving_variance.data[...] = (sd[f"{j}.running_mean"],
                                                                  sd[f"{j}.running_var"])
    x = rng.standard_normal((2, 9, 9, 3)).astype(np.float32)
    with torch.no_grad():
        expected = tm(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(no_grad_call(model, x), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-5)


def test_intermediates_are_released():
    """The plan's peak is well under the sum of all activations (what keeping every node's
    output until the end costs, as the layer-by-layer path does)."""
    cnnkit.random.seed(0)
    model = zoo.get("resnet20")
    x = rng.standard_normal((16, 32, 32, 3)).astype(np.float32)
    engine = InferenceEngine(model)
    engine(x)

    def peak(fn):
        tracemalloc.start()
        fn(x)
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p

    total = sum(16 * int(np.prod(t.shape[1:])) * 4 for n in model._nodes
                for t in n.output_tensors)
    assert peak(engine) < 0.25 * total
    assert peak(lambda a: layer_by_layer(model, a)) > 0.5 * total  # what the plan avoids


def test_no_grad_call_keeps_the_layer_path_when_it_must():
    model = Sequential([layers.Input((4,)), layers.Dense(3), layers.BatchNormalization()])
    x = rng.standard_normal((5, 4)).astype(np.float32)
    with cnnkit.no_grad():
        y = model(x, training=True)  # batch statistics: not the inference plan
    with cnnkit.enable_grad():
        ref = model(x, training=True)
    np.testing.assert_allclose(y.data, ref.data, rtol=1e-5, atol=1e-6)
    assert isinstance(no_grad_call(model, x), np.ndarray)
    with cnnkit.no_grad():
        out = model(cnnkit.Tensor(x))
    assert out.shape == (5, 3) and not out.requires_grad


def test_elementwise_steps_split_over_threads(monkeypatch):
    """The in-place activation / merge / batch-norm passes cut into pieces (forced on small
    arrays) give the same results."""
    from cnnkit.kernels import parallel
    from cnnkit.kernels.conv import dispatch
    from cnnkit.runtime import activations

    monkeypatch.setattr(activations, "ELEMENTWISE_PARALLEL_BYTES", 0)
    monkeypatch.setattr(dispatch, "THRESHOLDS", dataclasses.replace(
        dispatch.THRESHOLDS, small_gemm_macs=0, pointwise_block_bytes=64))
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel, "PIECE_BYTES", 256)
    a = layers.Input((6, 6, 4))
    h = layers.Conv2D(4, 3, padding="same")(a)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    g = layers.BatchNormalization()(layers.ReLU(max_value=6.0)(a))  # not foldable
    h = layers.ReLU()(layers.Add()([h, g]))
    h = layers.Multiply()([h, layers.Activation("relu")(g)])
    p = layers.Conv2D(6, 1, use_bias=False)(h)  # 1x1: row blocks with the folded BN + ReLU6
    p = layers.ReLU(max_value=6.0)(layers.BatchNormalization()(p))
    q = layers.Conv2D(5, 1, activation="sigmoid")(p)
    model = Model(a, [layers.Conv2D(3, 1)(p), q, layers.Dense(2)(layers.Flatten()(q))])
    randomise(model)
    x = rng.standard_normal((3, 6, 6, 4)).astype(np.float32) * 5
    check_all_paths(model, x)


def test_a_copied_model_runs_its_own_weights():
    import copy

    model = zoo.get("lenet5")
    x = rng.random((2, 28, 28, 1)).astype(np.float32)
    no_grad_call(model, x)  # compiles and caches the plan
    twin = copy.deepcopy(model)
    twin.set_weights([w * 2 for w in twin.get_weights()])
    np.testing.assert_allclose(no_grad_call(twin, x), layer_by_layer(twin, x), rtol=1e-5,
                               atol=1e-6)


def test_layer_path_under_no_grad_releases_values_and_agrees(monkeypatch):
    """Where the plan is not taken (here forced off), ``Model.call`` under ``no_grad`` drops
    each value after its last reader: same results, lower peak."""
    cnnkit.random.seed(0)
    model = zoo.get("resnet20")
    x = rng.standard_normal((8, 32, 32, 3)).astype(np.float32)
    ref = layer_by_layer(model, x)
    monkeypatch.setattr(Model, "_run_plan", lambda self, inputs: None)
    tracemalloc.start()
    out = no_grad_call(model, x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    total = sum(8 * int(np.prod(t.shape[1:])) * 4 for n in model._nodes
                for t in n.output_tensors)
    assert peak < 0.5 * total
    # outputs that are also read by later nodes, and a node reading one value twice
    a = layers.Input((5,))
    h = layers.Dense(4)(a)
    s = layers.Add()([h, h])
    model = Model(a, [h, layers.Dense(2)(s), s])
    xs = rng.standard_normal((3, 5)).astype(np.float32)
    for o, r in zip(no_grad_call(model, xs), layer_by_layer(model, xs), strict=True):
        np.testing.assert_allclose(o, r, rtol=1e-6)


@pytest.mark.parametrize("pixels", [0, 10**6])
def test_small_convolutions_by_one_gemm(monkeypatch, pixels):
    """The im2col + GEMM path for small 2-D convolutions (forced on for every one, or off)
    against the layers: strides, dilation, "same" and merged zero padding, folded BN."""
    from cnnkit.kernels.conv import dispatch

    monkeypatch.setattr(dispatch, "THRESHOLDS", dataclasses.replace(
        dispatch.THRESHOLDS, small_conv_pixels=pixels, small_conv_channels=1))
    a = layers.Input((9, 8, 3))
    h = layers.Conv2D(5, 3, strides=(2, 1), padding="same")(a)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    h = layers.Conv2D(4, (3, 2), dilation_rate=(1, 2), padding="same", use_bias=False)(h)
    h = layers.Conv2D(6, 2, strides=2)(layers.ZeroPadding2D(((1, 0), (0, 1)))(h))
    model = Model(a, layers.BatchNormalization()(h))
    randomise(model)
    for n in (1, 3):
        x = rng.standard_normal((n, 9, 8, 3)).astype(np.float32)
        check_all_paths(model, x)
