"""The fused inference step convolution -> 2x2 max or average pooling (``steps.ConvPool``):
the C helper pools the convolution's rows as it makes them. Checked against PyTorch's
conv2d + ReLU + max_pool2d / avg_pool2d, against the same plan with the two steps apart
(bit for bit: the same kernel computes the same sums, pooled in the same order), with the
C helper switched off, and for the patterns it must leave alone (other pools, a non-clamp
activation, batch-invariant plans, the int8 converter's view of the plan)."""

import numpy as np
import pytest

from cnnkit import deploy, layers, runtime, zoo
from cnnkit.kernels import native
from cnnkit.models import Model, Sequential

rng = np.random.default_rng(0)
needs_native = pytest.mark.skipif(not native.available(), reason="C helper not built")

# (input shape, Conv2D keyword arguments, torch padding, a ReLU(max_value) layer after,
# pooling: "max", "avg" or "avg_relu" (average, then a ReLU))
CASES = {
    "w1_first_layer": ((9, 28, 28, 1), dict(filters=32, kernel_size=3, padding="same",
                                           activation="relu"), 1, None),
    "winograd_odd_size": ((8, 13, 13, 32), dict(filters=32, kernel_size=3, padding="same",
                                               activation="relu"), 1, None),
    "strided_valid_relu6": ((4, 15, 15, 3), dict(filters=8, kernel_size=3, strides=2), 0, 6.0),
    "dilated_no_activation": ((3, 12, 10, 5), dict(filters=10, kernel_size=3,
                                                  dilation_rate=2, padding="same"), 2, None),
    "one_image_5x5": ((1, 11, 11, 4), dict(filters=12, kernel_size=5, activation="relu"), 0,
                      None),
    "avg_lenet_first_layer": ((9, 28, 28, 1), dict(filters=6, kernel_size=5, padding="same",
                                                  activation="relu"), 2, None, "avg"),
    "avg_winograd_then_relu": ((8, 14, 15, 32), dict(filters=40, kernel_size=3,
                                                    padding="same"), 1, None, "avg_relu"),
    "avg_strided_relu6": ((4, 15, 15, 3), dict(filters=8, kernel_size=3, strides=2), 0, 6.0,
                          "avg"),
}


def pooling(case):
    return CASES[case][4] if len(CASES[case]) > 4 else "max"


def conv_pool_model(case):
    shape, conv_kw, _, cap = CASES[case][:4]
    tail = [layers.ReLU(max_value=cap)] if cap is not None else []
    kind = pooling(case)
    pool = layers.MaxPooling2D(2) if kind == "max" else layers.AveragePooling2D(2)
    after = [layers.ReLU()] if kind == "avg_relu" else []
    model = Sequential([layers.Input(shape[1:]), layers.Conv2D(**conv_kw), *tail, pool,
                        *after])
    conv = model.layers[0]
    conv.bias.data[...] = rng.standard_normal(conv.bias.shape) * 0.5
    return model


def torch_reference(model, x, case):
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    _, conv_kw, padding, cap = CASES[case][:4]
    conv = model.layers[0]
    w = torch.from_numpy(conv.kernel.data.transpose(3, 2, 0, 1).copy())
    z = f.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), w,
                 torch.from_numpy(conv.bias.data), stride=conv_kw.get("strides", 1),
                 padding=padding, dilation=conv_kw.get("dilation_rate", 1))
    if conv_kw.get("activation") == "relu":
        z = f.relu(z)
    if cap is not None:
        z = z.clamp(0.0, cap)
    kind = pooling(case)
    p = f.max_pool2d(z, 2) if kind == "max" else f.avg_pool2d(z, 2)
    if kind == "avg_relu":
        p = f.relu(p)
    return p.numpy().transpose(0, 2, 3, 1)


def kinds(plan):
    return [type(s.step).__name__ for s in plan.steps]


@pytest.fixture
def fused_calls(monkeypatch):
    """How often the C helper's fused kernel ran (a spy around native.forward_pool)."""
    calls = []
    real = native.forward_pool

    def spy(*args, **kw):
        calls.append(args[0].shape)
        return real(*args, **kw)

    monkeypatch.setattr(native, "forward_pool", spy)
    return calls


@pytest.mark.parametrize("case", list(CASES))
def test_fused_step_matches_pytorch_and_the_unfused_plan(case, fused_calls):
    model = conv_pool_model(case)
    x = rng.standard_normal(CASES[case][0]).astype(np.float32)
    x[0, 3, 4, 0] = np.nan  # NaN propagates through the pooling, as in both references
    plan = runtime.compile(model)
    assert kinds(plan) == ["ConvPool"]
    got = plan(x)
    apart = plan.with_nodes(plan.node_list(), plan.n_slots)  # the conv and pool steps
    assert kinds(apart) == ["Conv", "Pool"]
    np.testing.assert_array_equal(got, apart(x))  # bit for bit (NaN == NaN here)
    want = torch_reference(model, x, case)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(want), rtol=1e-5, atol=1e-5)
    assert len(fused_calls) >= (1 if native.available() else 0)


@pytest.mark.parametrize("case", ["w1_first_layer", "winograd_odd_size",
                                  "avg_lenet_first_layer"])
def test_fallback_without_the_c_helper(case, fused_calls):
    model = conv_pool_model(case)
    x = rng.standard_normal(CASES[case][0]).astype(np.float32)
    plan = runtime.compile(model)
    native.set_enabled(False)
    try:
        got = plan(x)
    finally:
        native.set_enabled(None)
    assert fused_calls == []
    np.testing.assert_allclose(got, torch_reference(model, x, case), rtol=1e-5, atol=1e-5)


@needs_native
@pytest.mark.parametrize("name, inputs", [("simple_cnn", {(28, 28, 1), (14, 14, 32)}),
                                          ("lenet5", {(28, 28, 1), (14, 14, 6)})])
def test_zoo_models_run_both_pairs_fused_and_equal_the_unfused_plan(name, inputs,
                                                                     fused_calls):
    model = zoo.get(name)
    x = rng.uniform(0, 255, (16, 28, 28, 1)).astype(np.float32)
    plan = runtime.compile(model)
    assert kinds(plan)[:2] == ["ConvPool", "ConvPool"]
    apart = plan.with_nodes(plan.node_list(), plan.n_slots)
    np.testing.assert_array_equal(plan(x), apart(x))
    assert {s[1:] for s in fused_calls} == inputs  # (in batch blocks)
    assert sum(s[0] for s in fused_calls) == 2 * len(x)


def test_patterns_left_apart():
    a = layers.Input((12, 12, 4))
    c = layers.Conv2D(6, 3, padding="same")
    outs = [layers.MaxPooling2D(3)(c(a)),
            layers.AveragePooling2D(2, strides=1)(layers.Conv2D(6, 3, activation="relu")(a)),
            layers.MaxPooling2D(2, padding="same")(layers.Conv2D(6, 3)(a)),
            layers.MaxPooling2D(2)(layers.Conv2D(6, 3, activation="sigmoid")(a)),
            layers.MaxPooling2D(2)(layers.Conv2D(6, 1)(a))]  # 1x1: a GEMM
    model = Model(a, outs)
    plan = runtime.compile(model)
    assert "ConvPool" not in kinds(plan)
    x = rng.standard_normal((2, 12, 12, 4)).astype(np.float32)
    for got, want in zip(plan(x), model.predict(x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_batch_invariant_plans_and_the_int8_view_keep_the_steps_apart():
    model = conv_pool_model("w1_first_layer")
    x = rng.standard_normal((5, 28, 28, 1)).astype(np.float32)
    invariant = runtime.compile(model, batch_invariant=True)
    assert kinds(invariant) == ["Conv", "Pool"]
    np.testing.assert_array_equal(invariant(x)[2:3], invariant(x[2:3]))
    plan = runtime.compile(model)
    conv, pool = plan.node_list()
    assert (type(conv.step).__name__, type(pool.step).__name__) == ("Conv", "Pool")
    assert conv.args == 0 and pool.args == conv.outs[0] and pool.outs == [plan.graph.outputs[0]]
    q = deploy.quantize(model, x, method="minmax")
    assert [type(s.step).__name__ for s in q.plan.steps if "Quantized" in
            type(s.step).__name__] == ["QuantizedConv", "QuantizedMaxPool"]
    assert np.abs(q.predict(x) - plan(x)).max() < 0.05 * np.abs(plan(x)).max()
