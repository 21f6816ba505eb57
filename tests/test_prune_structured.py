"""Structured pruning: a pruned model equals the original with the removed channels' inputs
zeroed (done here, on the original layers), tied channels (residual Add, Concatenate offsets,
depthwise, Flatten rows) are removed together, and parameter counts match the closed form."""

import numpy as np
import pytest

from cnnkit import Tensor, layers, zoo
from cnnkit import random as crandom
from cnnkit.deploy import prune
from cnnkit.models import Model, Sequential, deserialize, serialize

MIXERS = (layers.Conv2D, layers.Dense, layers.SeparableConv2D)


def _randomise_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for la in model.layers:
        if isinstance(la, layers.BatchNormalization):
            la.gamma.data[...] = rng.uniform(0.5, 1.5, la.gamma.shape)
            la.beta.data[...] = rng.normal(0, 0.3, la.beta.shape)
            la.moving_mean.data[...] = rng.normal(0, 0.3, la.beta.shape)
            la.moving_variance.data[...] = rng.uniform(0.5, 2, la.beta.shape)


def _masked_original(model, kept_in):
    """A copy of the original architecture whose channel-mixing layers ignore the removed
    input channels (their input rows zeroed)."""
    clone = deserialize(serialize(model))
    for a, b in zip(model.layers, clone.layers, strict=True):
        b.set_weights(a.get_weights())
        if isinstance(b, MIXERS) and b.name in kept_in:
            w = b.depthwise_kernel if isinstance(b, layers.SeparableConv2D) else b.kernel
            removed = np.setdiff1d(np.arange(w.shape[-2]), kept_in[b.name])
            w.data[..., removed, :] = 0
    return clone


def _check_equivalent(model, plan, shape, tol=2e-4):
    x = np.random.default_rng(1).standard_normal((4, *shape)).astype(np.float32)
    pruned = plan.apply()
    want = _masked_original(model, plan.kept_in).predict(x)
    got = pruned.predict(x)
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= tol * max(scale, 1), np.abs(got - want).max()
    return pruned


def _branchy():
    crandom.seed(3)
    inp = layers.Input((8, 8, 3))
    a = layers.ReLU()(layers.BatchNormalization(name="bn_a")(
        layers.Conv2D(6, 3, padding="same", name="conv_a")(inp)))
    b = layers.BatchNormalization(name="bn_b")(layers.Conv2D(6, 3, padding="same",
                                                             name="conv_b")(a))
    c = layers.ReLU()(layers.Add(name="add")([a, b]))
    d = layers.DepthwiseConv2D(3, padding="same", name="dw")(c)
    e = layers.Conv2D(4, 1, name="conv_e", activation="relu")(d)
    f = layers.Concatenate(name="cat")([c, e])
    g = layers.Conv2D(5, 3, padding="same", name="conv_g", activation="relu")(f)
    h = layers.Flatten()(layers.MaxPooling2D(2)(g))
    out = layers.Dense(3, name="head")(layers.Dense(8, activation="relu", name="hidden")(h))
    model = Model(inp, out)
    _randomise_bn(model)
    return model


def test_residual_concat_depthwise_flatten_pruned_equals_masked_original():
    model = _branchy()
    plan = prune.plan_channels(model, 0.5)
    ko, ki = plan.kept_out, plan.kept_in
    # the Add ties conv_a and conv_b: the same channels go from both, and from all readers
    np.testing.assert_array_equal(ko["conv_a"], ko["conv_b"])
    np.testing.assert_array_equal(ki["conv_b"], ko["conv_a"])
    np.testing.assert_array_equal(ki["dw"], ko["conv_a"])
    np.testing.assert_array_equal(ki["conv_e"], ko["conv_a"])
    # Concatenate: conv_g reads c's kept channels, then e's at offset 6
    np.testing.assert_array_equal(ki["conv_g"], np.concatenate([ko["conv_a"],
                                                                ko["conv_e"] + 6]))
    # Flatten (4x4 positions, channels last): row p * 5 + c for each kept channel c of conv_g
    rows = sorted(p * 5 + c for p in range(16) for c in ko["conv_g"])
    np.testing.assert_array_equal(ki["hidden"], rows)
    assert [len(ko[n]) for n in ("conv_a", "conv_e", "conv_g", "hidden")] == [3, 2, 2, 4]
    np.testing.assert_array_equal(ko["head"], np.arange(3))  # the output stays whole
    pruned = _check_equivalent(model, plan, (8, 8, 3))
    # closed form: (K*K*C_in + 1) * C_out per conv, 4 * C per BN, 9 * C + C for the depthwise
    n = (27 + 1) * 3 + 4 * 3 + (27 + 1) * 3 + 4 * 3 + (9 + 1) * 3 + (3 + 1) * 2 \
        + (9 * 5 + 1) * 2 + (16 * 2 + 1) * 4 + (4 + 1) * 3
    assert pruned.count_params() == n


def test_sequential_bn_separable_gap_pruned_equals_masked_original():
    crandom.seed(4)
    model = Sequential([layers.Input((9, 9, 2)), layers.Conv2D(8, 3, use_bias=False),
                        layers.BatchNormalization(), layers.ReLU(),
                        layers.SeparableConv2D(6, 3, depth_multiplier=2, activation="relu"),
                        layers.GlobalAveragePooling2D(), layers.Dropout(0.2), layers.Dense(4)])
    _randomise_bn(model)
    plan = prune.plan_channels(model, 0.5)
    pruned = _check_equivalent(model, plan, (9, 9, 2))
    # conv 18*4, BN 4*4, separable 9*4*2 + (4*2)*3 + 3, dense 3*4 + 4
    assert pruned.count_params() == 18 * 4 + 16 + 72 + 24 + 3 + 16


def test_l1_and_bn_importance_keep_the_largest():
    crandom.seed(5)
    model = Sequential([layers.Input((5, 5, 1)), layers.Conv2D(4, 3), layers.BatchNormalization(),
                        layers.ReLU(), layers.Flatten(), layers.Dense(2)])
    conv, bn = model.layers[0], model.layers[1]
    conv.kernel.data[...] = np.array([1.0, 4.0, 2.0, 3.0])  # L1 order: 1, 3, 2, 0
    bn.gamma.data[...] = [5.0, 0.1, 3.0, 0.2]  # |gamma| order: 0, 2, 3, 1
    np.testing.assert_array_equal(prune.plan_channels(model, 0.5, "l1").kept_out[conv.name],
                                  [1, 3])
    np.testing.assert_array_equal(prune.plan_channels(model, 0.5, "bn").kept_out[conv.name],
                                  [0, 2])


def test_taylor_importance_is_grad_times_weight(tmp_path):
    """|sum over the filter of dL/dw * w|, dL/dw from PyTorch here."""
    torch = pytest.importorskip("torch", reason="PyTorch (torch==2.13.0) is not installed")
    crandom.seed(6)
    model = Sequential([layers.Input((6,)), layers.Dense(5, activation="relu"), layers.Dense(3)])
    x = np.random.default_rng(0).standard_normal((16, 6)).astype(np.float32)
    y = np.arange(16) % 3
    k1, b1, k2, b2 = (torch.tensor(w, requires_grad=True) for w in model.get_weights())
    out = torch.relu(torch.tensor(x) @ k1 + b1) @ k2 + b2
    torch.nn.functional.cross_entropy(out, torch.tensor(y)).backward()
    score = (k1.grad * k1).sum(0).abs().detach().numpy()
    plan = prune.plan_channels(model, 0.4, "taylor", batches=[(x, y)])
    np.testing.assert_array_equal(plan.kept_out[model.layers[0].name],
                                  np.sort(np.argsort(-score)[:3]))
    assert all(w.grad is None for w in model.weights)


def test_resnet20_pruned_through_residual_blocks_runs_and_trains():
    crandom.seed(7)
    model = zoo.get("resnet20")
    _randomise_bn(model)
    plan = prune.plan_channels(model, 0.5)
    ko = plan.kept_out
    # option-A shortcuts tie each stage's stream to the previous one's: all blocks agree
    for stage, width in (("layer1", 16), ("layer2", 32), ("layer3", 64)):
        for i in range(3):
            np.testing.assert_array_equal(ko[f"{stage}.{i}.conv2"], ko[f"{stage}.0.conv2"])
        assert len(ko[f"{stage}.0.conv1"]) == width // 2
    np.testing.assert_array_equal(ko["layer1.0.conv2"], ko["conv1"])
    pruned = _check_equivalent(model, plan, (32, 32, 3), tol=1e-3)
    assert pruned.count_params() < model.count_params() / 3.5
    x = np.random.default_rng(0).standard_normal((8, 32, 32, 3)).astype(np.float32)
    y = np.arange(8) % 10
    pruned.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=[])
    pruned.loss_fns[0].from_logits = True
    losses = [pruned.train_on_batch(x, y)["loss"] for _ in range(4)]
    assert losses[-1] < losses[0]


def test_iterative_prune_calls_fine_tune_each_round():
    model = _branchy()
    rounds = []
    final = prune.iterative_prune(model, 0.75, 2, fine_tune=lambda m: rounds.append(
        m.count_params()))
    assert len(rounds) == 2 and rounds[0] > rounds[1] == final.count_params()
    assert final.get_layer("conv_a").filters == 2  # 6 -> 3 -> 2 (rounding each half)


def test_exclude_and_bad_arguments():
    model = _branchy()
    plan = prune.plan_channels(model, 0.5, exclude=["hidden"])
    assert len(plan.kept_out["hidden"]) == 8
    with pytest.raises(ValueError, match="amount"):
        prune.plan_channels(model, 1.0)
    with pytest.raises(ValueError, match="importance"):
        prune.plan_channels(model, 0.5, "random")
    with pytest.raises(ValueError, match="does not have"):
        prune.plan_channels(model, 0.5, exclude=["nope"])
    with pytest.raises(ValueError, match="needs data"):
        prune.plan_channels(model, 0.5, "taylor")


def test_unknown_layers_block_pruning_of_what_they_touch():
    crandom.seed(8)
    inp = layers.Input((4, 4, 2))
    a = layers.Conv2D(4, 1, name="a")(inp)
    b = layers.Reshape((4, 4, 4))(a)  # not understood: a's channels stay
    c = layers.Conv2D(4, 1, name="c")(b)
    model = Model(inp, layers.Dense(2)(layers.Flatten()(c)))
    plan = prune.plan_channels(model, 0.5)
    assert len(plan.kept_out["a"]) == 4 and len(plan.kept_out["c"]) == 2
    _check_equivalent(model, plan, (4, 4, 2))
    x = Tensor(np.zeros((1, 4, 4, 2), np.float32))
    assert plan.apply()(x).shape == (1, 2)
