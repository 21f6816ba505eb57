"""The model zoo: every architecture's parameter count against the published (torchvision /
Keras / paper) figure, output shapes at the reference input size, a real forward pass, and
30 Adam steps that overfit a batch of 8 images at a reduced width or input size; the blocks
the builders share (ceil-mode pooling, count_include_pad average pooling, adaptive average
pooling) against PyTorch; the Siamese losses against their closed forms."""

from __future__ import annotations

import gc
import re

import numpy as np
import pytest
from helpers import assert_close_scaled, gradcheck, torch_or_skip

import cnnkit
from cnnkit import Tensor, initializers, layers, ops, zoo
from cnnkit.models import Model
from cnnkit.models.summary import summary_text
from cnnkit.train.optimizers import Adam
from cnnkit.zoo import blocks, count_params
from cnnkit.zoo.efficientnet import efficientnet
from cnnkit.zoo.siamese import contrastive_loss, pair_distance, triplet_loss

# ----- parameter table ---------------------------------------------------------------------------
# torchvision's figures (sum of p.numel() over parameters: BN moving statistics not counted).
TORCHVISION_COUNTS = [
    ("alexnet", 61_100_840),
    ("vgg11", 132_863_336),
    ("vgg13", 133_047_848),
    ("vgg16", 138_357_544),
    ("vgg19", 143_667_240),
    ("vgg16_bn", 138_365_992),
    ("googlenet", 6_624_904),
    ("inception_v3", 23_834_568),
    ("resnet18", 11_689_512),
    ("resnet34", 21_797_672),
    ("resnet50", 25_557_032),
    ("resnet101", 44_549_160),
    ("resnet152", 60_192_808),
    ("densenet121", 7_978_856),
    ("densenet169", 14_149_480),
    ("densenet201", 20_013_928),
    ("densenet161", 28_681_000),
    ("mobilenet_v2", 3_504_872),
    ("mobilenet_v3_small", 2_542_856),
    ("mobilenet_v3_large", 5_483_032),
    ("efficientnet_b0", 5_288_548),
    ("efficientnet_b1", 7_794_184),
    ("efficientnet_b2", 9_109_994),
    ("efficientnet_b3", 12_233_232),
    ("efficientnet_b4", 19_341_616),
    ("efficientnet_b5", 30_389_784),
    ("efficientnet_b6", 43_040_704),
    ("efficientnet_b7", 66_347_960),
    ("squeezenet1_0", 1_248_424),
    ("squeezenet1_1", 1_235_496),
]
REFERENCE_SIZE = {"inception_v3": 299, "efficientnet_b1": 240, "efficientnet_b2": 260,
                  "efficientnet_b3": 300, "efficientnet_b4": 380, "efficientnet_b5": 456,
                  "efficientnet_b6": 528, "efficientnet_b7": 600}


@pytest.fixture
def zero_init(monkeypatch):
    """Counting needs shapes, not values: every initializer becomes zeros (np.zeros is lazy),
    so building the 700 M parameters of the table stays fast and light."""
    zeros = initializers.Zeros()
    monkeypatch.setattr(initializers, "get", lambda identifier=None: zeros)


@pytest.mark.parametrize("name,expected", TORCHVISION_COUNTS, ids=[n for n, _ in
                                                                    TORCHVISION_COUNTS])
def test_torchvision_parameter_count_and_output_shape(name, expected, zero_init):
    size = REFERENCE_SIZE.get(name, 224)
    model = zoo.get(name)
    assert model.input_shape == (None, size, size, 3)
    assert count_params(model, include_moving_stats=False) == expected
    assert model.output_shape == (None, 1000)
    assert model.compute_output_shape((2, size, size, 3)) == (2, 1000)
    # one real forward pass at the reference size (zero weights: the shapes are what counts)
    y = model.predict(np.zeros((1, size, size, 3), np.float32))
    assert y.shape == (1, 1000) and np.all(np.isfinite(y))
    del model
    gc.collect()


def test_lenet5_parameter_count():
    model = zoo.get("lenet5")
    assert count_params(model) == count_params(model, include_moving_stats=True) == 61_706
    assert model(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)


def test_mobilenet_v1_keras_counts():
    """Keras applications' MobileNet (alpha 1.0): 4,253,864 total, 4,231,976 trainable;
    the difference is the BN moving statistics (2 x 10,944 channels)."""
    model = zoo.get("mobilenet")
    assert count_params(model, include_moving_stats=True) == model.count_params() == 4_253_864
    assert count_params(model, include_moving_stats=False) == 4_231_976
    assert sum(w.size for w in model.trainable_weights) == 4_231_976
    half = zoo.get("mobilenet", alpha=0.5, input_shape=(128, 128, 3))
    assert half.output_shape == (None, 1000)
    assert half.get_layer("conv_pw_13").kernel.shape == (1, 1, 512, 512)


def test_both_conventions_on_resnet18(zero_init):
    """summary() counts BN moving mean/variance as non-trainable (Keras); torchvision does
    not. ResNet-18 has 4,800 BN channels, so the two totals differ by 9,600."""
    model = zoo.get("resnet18")
    text = summary_text(model)

    def figure(label):
        return int(re.search(rf"{label} params: ([\d,]+)", text).group(1).replace(",", ""))

    bn_channels = 64 + 4 * 64 + (4 * 128 + 128) + (4 * 256 + 256) + (4 * 512 + 512)
    assert figure("Total") == count_params(model, include_moving_stats=True) == \
        model.count_params() == 11_689_512 + 2 * bn_channels
    assert figure("Trainable") == count_params(model, include_moving_stats=False) == 11_689_512
    assert figure("Non-trainable") == 2 * bn_channels == 9_600


def test_resnet50_multiply_adds(zero_init):
    """ResNet-50 at 224x224: about 4.1 G multiply-adds (He et al.; torchvision 4.09 GFLOPS)."""
    model = zoo.get("resnet50")
    macs = sum(row[4] for row in model.layer_table())
    assert abs(macs - 4.1e9) <= 0.02 * 4.1e9, macs


def cifar_resnet_params(n: int, shortcut: str = "A") -> int:
    """Closed form: conv1 + BN, three stages of n basic blocks (16, 32, 64 channels; BN has
    2 parameters per channel), fc 64 -> 10; option B adds two projection convs + BN."""
    conv = lambda cin, cout: 9 * cin * cout + 2 * cout  # noqa: E731  (conv3x3 + its BN)
    total = conv(3, 16)
    total += 2 * n * conv(16, 16)
    total += conv(16, 32) + (2 * n - 1) * conv(32, 32)
    total += conv(32, 64) + (2 * n - 1) * conv(64, 64)
    total += 64 * 10 + 10
    if shortcut == "B":
        total += (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    return total


@pytest.mark.parametrize("depth", [20, 32, 44, 56])
def test_cifar_resnet_counts(depth):
    n = (depth - 2) // 6
    model = zoo.get(f"resnet{depth}")
    assert count_params(model, include_moving_stats=False) == cifar_resnet_params(n)
    assert model.output_shape == (None, 10)
    if depth == 20:
        assert cifar_resnet_params(3) == 269_722  # "0.27M" in the paper
        b = zoo.get("resnet20", shortcut="B")
        assert count_params(b, include_moving_stats=False) == cifar_resnet_params(3, "B")
        # the real forward at the reference size (32x32), option A and B
        x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
        assert model(x).shape == (2, 10) and b(x).shape == (2, 10)


def test_include_top_false_shapes(zero_init):
    assert zoo.get("resnet50", include_top=False).output_shape == (None, 7, 7, 2048)
    assert zoo.get("resnet50", include_top=False, pooling="avg").output_shape == (None, 2048)
    assert zoo.get("vgg16", include_top=False).output_shape == (None, 7, 7, 512)
    assert zoo.get("inception_v3", include_top=False).output_shape == (None, 8, 8, 2048)
    assert zoo.get("densenet121", include_top=False, pooling="max").output_shape == (None,
                                                                                    1024)
    assert zoo.get("efficientnet_b0", include_top=False).output_shape == (None, 7, 7, 1280)
    assert zoo.get("googlenet", include_top=False).output_shape == (None, 7, 7, 1024)


def test_real_forward_at_reference_size():
    """Full models small enough to run at 224x224 in a unit test."""
    cnnkit.random.seed(0)
    x = np.random.default_rng(1).standard_normal((1, 224, 224, 3)).astype(np.float32)
    for name in ("mobilenet_v3_small", "squeezenet1_1"):
        model = zoo.get(name)
        y = model(x)
        assert y.shape == (1, 1000) and np.all(np.isfinite(y.data))


# ----- overfitting one batch ---------------------------------------------------------------------
def _overfit(model, x, y, steps=30, lr=1e-3, loss_fn=None):
    loss_fn = loss_fn or (lambda out: ops.softmax_cross_entropy(out, y))
    opt = Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(x, training=True))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.data))
    return losses


# (name, builder kwargs, input shape, required final/initial loss ratio). Reduced widths or
# input sizes keep each run around a second; dropout-heavy heads get dropout 0 so that a batch
# of 8 can be memorised. SqueezeNet's logits come from a ReLU, so dead units slow it down.
TRAIN_CASES = [
    ("lenet5", {}, (28, 28, 1), 0.5),
    ("alexnet", dict(input_shape=(64, 64, 3), width_mult=0.125, dropout=0.0), (64, 64, 3), 0.5),
    ("vgg11", dict(input_shape=(32, 32, 3), width_mult=0.125, dropout=0.0), (32, 32, 3), 0.5),
    ("vgg16_bn", dict(input_shape=(32, 32, 3), width_mult=0.125, dropout=0.0), (32, 32, 3),
     0.5),
    ("googlenet", dict(input_shape=(32, 32, 3), width_mult=0.125), (32, 32, 3), 0.5),
    ("inception_v3", dict(input_shape=(75, 75, 3), width_mult=0.0625), (75, 75, 3), 0.5),
    ("resnet18", dict(input_shape=(32, 32, 3), width_mult=0.125), (32, 32, 3), 0.5),
    ("resnet50", dict(input_shape=(32, 32, 3), width_mult=0.125), (32, 32, 3), 0.5),
    ("resnet20", dict(width_mult=0.25), (32, 32, 3), 0.5),
    ("densenet121", dict(input_shape=(32, 32, 3), growth_rate=4, num_init_features=8),
     (32, 32, 3), 0.5),
    ("mobilenet", dict(input_shape=(32, 32, 3), alpha=0.25), (32, 32, 3), 0.5),
    ("mobilenet_v2", dict(input_shape=(32, 32, 3), width_mult=0.25), (32, 32, 3), 0.5),
    ("mobilenet_v3_small", dict(input_shape=(32, 32, 3), width_mult=0.25), (32, 32, 3), 0.5),
    ("mobilenet_v3_large", dict(input_shape=(32, 32, 3), width_mult=0.25), (32, 32, 3), 0.5),
    ("squeezenet1_0", dict(input_shape=(48, 48, 3), width_mult=0.25, dropout=0.0), (48, 48, 3),
     0.9),
    ("squeezenet1_1", dict(input_shape=(48, 48, 3), width_mult=0.25, dropout=0.0), (48, 48, 3),
     0.9),
]


@pytest.mark.parametrize("name,kwargs,shape,ratio", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_overfits_a_batch(name, kwargs, shape, ratio):
    cnnkit.random.seed(0)
    model = zoo.get(name, classes=10, **kwargs)
    x = np.random.default_rng(0).standard_normal((8, *shape)).astype(np.float32)
    y = np.arange(8) % 10
    # the real forward gives the shape compute_output_shape promises
    assert model(x).shape == model.compute_output_shape(x.shape) == (8, 10)
    losses = _overfit(model, x, y)
    assert np.all(np.isfinite(losses))
    assert losses[-1] < ratio * losses[0], losses


def test_efficientnet_scaled_down_overfits():
    """EfficientNet-B0's depth at a quarter of its width, with stochastic depth active."""
    cnnkit.random.seed(0)
    model = efficientnet(0.25, 1.0, input_shape=(32, 32, 3), classes=10)
    assert any(la.name.endswith("stochastic_depth") for la in model.layers)
    x = np.random.default_rng(0).standard_normal((8, 32, 32, 3)).astype(np.float32)
    losses = _overfit(model, x, np.arange(8) % 10)
    assert losses[-1] < 0.5 * losses[0], losses


# ----- U-Net, TextCNN, Siamese -------------------------------------------------------------------
def unet_params(cin: int, classes: int, depth: int, f: int, bn: bool = False) -> int:
    """Closed form: double convs (3x3 with a bias, or without one and with BN's 2 parameters
    per channel) down and up, 2x2 transposed convs, 1x1 head."""
    per_channel = 2 if bn else 1

    def dc(a: int, b: int) -> int:
        return (9 * a + per_channel) * b + (9 * b + per_channel) * b

    total, c = 0, cin
    for d in range(depth):
        total += dc(c, f * 2 ** d)
        c = f * 2 ** d
    total += dc(c, f * 2 ** depth)
    c = f * 2 ** depth
    for d in reversed(range(depth)):
        out = f * 2 ** d
        total += (4 * c + 1) * out      # Conv2DTranspose 2x2
        total += dc(2 * out, out)       # after concatenation with the skip
        c = out
    return total + (c + 1) * classes


def test_unet_paper_size_and_training():
    paper = zoo.get("unet", input_shape=(64, 64, 1), classes=2, depth=4, base_filters=64)
    assert count_params(paper) == unet_params(1, 2, 4, 64) == 31_030_658
    assert paper.output_shape == (None, 64, 64, 2)
    del paper
    cnnkit.random.seed(0)
    model = zoo.get("unet", input_shape=(32, 32, 3), classes=3, depth=2, base_filters=8,
                    batch_norm=True)
    assert count_params(model, include_moving_stats=False) == unet_params(3, 3, 2, 8, bn=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 32, 32, 3)).astype(np.float32)
    y = (x[..., 0] > 0).astype(np.int64) + (x[..., 1] > 0.5)  # a per-pixel function of x
    out = model(x)
    assert out.shape == (4, 32, 32, 3)
    losses = _overfit(model, x, y, lr=1e-2)
    assert losses[-1] < 0.5 * losses[0], losses
    with pytest.raises(ValueError, match="divisible by 16"):
        zoo.get("unet", input_shape=(40, 40, 1))


def test_textcnn_counts_and_training():
    vocab, dim, filters, ks, classes = 50, 16, 8, (3, 4, 5), 3
    model = zoo.get("textcnn", vocab_size=vocab, sequence_length=20, embedding_dim=dim,
                    filters=filters, kernel_sizes=ks, classes=classes)
    expected = vocab * dim + sum((k * dim + 1) * filters for k in ks) + (
        len(ks) * filters + 1) * classes
    assert count_params(model) == expected
    paper = zoo.get("textcnn")  # Kim's defaults: 300-d, 100 maps of widths 3/4/5
    assert count_params(paper) == 20000 * 300 + sum((k * 300 + 1) * 100 for k in (3, 4, 5)) \
        + 301 * 2
    cnnkit.random.seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab, (8, 20))
    y = np.arange(8) % classes
    assert model(x).shape == (8, classes)
    losses = _overfit(model, x, y, lr=1e-2)
    assert losses[-1] < 0.5 * losses[0], losses


def test_siamese_shares_one_tower_and_trains():
    cnnkit.random.seed(0)
    model = zoo.get("siamese", input_shape=(16, 16, 1), embedding_dim=8)
    tower = model.get_layer("embedding")
    assert len(model.weights) == len(tower.weights) == 6  # conv, conv, dense: kernels + biases
    assert count_params(model) == (9 * 32 + 32) + (9 * 32 * 64 + 64) + (64 * 8 + 8)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 16, 16, 1)).astype(np.float32)
    ea, eb = model([a, a])
    np.testing.assert_array_equal(ea.data, eb.data)
    b = rng.standard_normal((8, 16, 16, 1)).astype(np.float32)
    same = np.array([1, 0, 1, 0, 1, 0, 1, 0], dtype=np.float32)
    b[same == 1] = a[same == 1] + 0.1 * b[same == 1]

    def loss_fn(outs):
        return contrastive_loss(same, outs[0], outs[1], margin=1.0)

    losses = _overfit(model, [a, b], None, lr=3e-3, loss_fn=loss_fn)
    assert losses[-1] < 0.5 * losses[0], losses
    unit = zoo.get("siamese", input_shape=(16, 16, 1), embedding_dim=8, l2_normalize=True)
    ua, ub = unit([a, b])
    np.testing.assert_allclose(np.linalg.norm(ua.data, axis=1), 1.0, rtol=1e-5)
    clone = Model.from_config(unit.get_layer("embedding").get_config())
    clone.set_weights(unit.get_layer("embedding").get_weights())
    np.testing.assert_array_equal(clone(b).data, ub.data)


def test_contrastive_loss_closed_form_and_gradient():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    b[0] = a[0] + 0.01
    y = np.array([1, 0, 1, 0, 0, 1], dtype=np.float64)
    m = 3.0
    d = np.sqrt(((a - b) ** 2).sum(1))
    expected = 0.5 * np.mean(y * d ** 2 + (1 - y) * np.maximum(m - d, 0) ** 2)
    got = contrastive_loss(y, Tensor(a), Tensor(b), margin=m, epsilon=0.0)
    assert abs(float(got.data) - expected) < 1e-12
    np.testing.assert_allclose(pair_distance(a, b, epsilon=0.0).data, d, rtol=1e-12)
    assert np.any(d < m) and np.any(d > m)  # both sides of the hinge are exercised
    gradcheck(lambda p, q: contrastive_loss(y, p, q, margin=m), a, b)
    with pytest.raises(ValueError, match="one label per pair"):
        contrastive_loss([1, 0], a, b)
    with pytest.raises(ValueError, match=r"shape \(batch, dim\)"):
        contrastive_loss(y, a[0], b[0])


def test_triplet_loss_closed_form_and_gradient():
    rng = np.random.default_rng(1)
    a, p, n = (rng.standard_normal((7, 3)) for _ in range(3))
    margin = 0.5
    gap = ((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + margin
    expected = np.mean(np.maximum(gap, 0))
    assert np.any(gap > 0) and np.any(gap < 0)
    assert abs(float(triplet_loss(a, p, n, margin).data) - expected) < 1e-12
    gradcheck(lambda x, y, z: triplet_loss(x, y, z, margin), a, p, n)
    with pytest.raises(ValueError, match="one shape"):
        triplet_loss(a, p, n[:3])


# ----- blocks against PyTorch --------------------------------------------------------------------
def _single(fn, shape):
    inp = layers.Input(shape)
    return Model(inp, fn(inp))


@pytest.mark.parametrize("size", [7, 8, 13, 14, 112, 55])
@pytest.mark.parametrize("k,s,p", [(3, 2, 0), (2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_ceil_mode_max_pool_matches_torch(size, k, s, p):
    torch = torch_or_skip()
    x = np.abs(np.random.default_rng(size).standard_normal((2, size, size + 1, 3))
               ).astype(np.float32)  # after a ReLU, as everywhere in the zoo
    model = _single(lambda t: blocks.max_pool(t, k, s, p, ceil_mode=True, name="pool"),
                    x.shape[1:])
    ref = torch.nn.MaxPool2d(k, s, p, ceil_mode=True)(torch.from_numpy(
        x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    assert model.output_shape[1:3] == ref.shape[1:3]
    np.testing.assert_array_equal(model(x).data, ref)


@pytest.mark.parametrize("size", [8, 17, 35])
def test_avg_pool_counts_padding_like_torch(size):
    torch = torch_or_skip()
    x = np.random.default_rng(size).standard_normal((2, size, size, 4)).astype(np.float32)
    model = _single(lambda t: blocks.avg_pool(t, 3, 1, 1, name="pool"), x.shape[1:])
    ref = torch.nn.functional.avg_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), 3, 1, 1)
    assert_close_scaled(model(x).data, ref.numpy().transpose(0, 2, 3, 1), tol=1e-6)


@pytest.mark.parametrize("hw,out", [((5, 7), (3, 2)), ((1, 1), (6, 6)), ((12, 12), (6, 6)),
                                    ((6, 6), (6, 6)), ((13, 9), (7, 7))])
def test_adaptive_average_pooling_matches_torch(hw, out):
    torch = torch_or_skip()
    x = np.random.default_rng(0).standard_normal((2, *hw, 3)).astype(np.float32)
    layer = blocks.AdaptiveAveragePooling2D(out)
    y = layer(x)
    assert y.shape == layer.compute_output_shape(x.shape) == (2, *out, 3)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2)).requires_grad_(True)
    ref = torch.nn.functional.adaptive_avg_pool2d(xt, out)
    assert_close_scaled(y.data, ref.detach().numpy().transpose(0, 2, 3, 1), tol=1e-5)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    xc = Tensor(x, requires_grad=True)
    layer(xc).backward(g)
    ref.backward(torch.from_numpy(g.transpose(0, 3, 1, 2)))
    assert_close_scaled(xc.grad, xt.grad.numpy().transpose(0, 2, 3, 1), tol=1e-5)
    pool64 = blocks.AdaptiveAveragePooling2D(out, dtype="float64")
    gradcheck(lambda t: pool64(t), x[:1, :, :, :2])


def test_stride2_convolution_pads_like_torch():
    """Keras "same" puts stride 2's odd pad cell at the end; torch pads 1 on both sides."""
    torch = torch_or_skip()
    x = np.random.default_rng(0).standard_normal((1, 10, 10, 3)).astype(np.float32)
    model = _single(lambda t: blocks.conv2d(t, 4, 3, 2, 1, name="c"), x.shape[1:])
    conv = torch.nn.Conv2d(3, 4, 3, 2, 1)
    layer = model.get_layer("c")
    layer.set_weights([conv.weight.detach().numpy().transpose(2, 3, 1, 0),
                       conv.bias.detach().numpy()])
    ref = conv(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy()
    assert_close_scaled(model(x).data, ref.transpose(0, 2, 3, 1), tol=1e-5)
    assert model.get_layer("c_pad") is not None


def test_functional_config_round_trip_with_adaptive_pool():
    cnnkit.random.seed(0)
    model = zoo.get("alexnet", input_shape=(63, 63, 3), classes=5, width_mult=0.0625)
    clone = Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(0).standard_normal((2, 63, 63, 3)).astype(np.float32)
    np.testing.assert_array_equal(clone(x).data, model(x).data)


# ----- registry and errors -----------------------------------------------------------------------
def test_registry_lists_every_architecture():
    names = set(zoo.list())
    for n in ["alexnet", "vgg16_bn", "googlenet", "inception_v3", "resnet152", "resnet56",
              "densenet201", "mobilenet", "mobilenet_v2", "mobilenet_v3_small",
              "efficientnet_b7", "squeezenet1_1", "unet", "textcnn", "siamese", "lenet5"]:
        assert n in names
    with pytest.raises(ValueError, match="unknown architecture 'resnet19'"):
        zoo.get("resnet19")


def test_builder_errors():
    with pytest.raises(ValueError, match="at least 75x75"):
        zoo.get("inception_v3", input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="6n \\+ 2"):
        zoo.resnet.resnet_cifar(21)
    with pytest.raises(ValueError, match="'A' or 'B'"):
        zoo.get("resnet20", shortcut="C")
    with pytest.raises(ValueError, match="ceil_mode pooling needs a known spatial size"):
        zoo.get("squeezenet1_1", input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="pooling must be None, 'avg' or 'max'"):
        zoo.get("resnet18", include_top=False, pooling="sum")
    with pytest.raises(ValueError, match="sequence_length 4 is shorter"):
        zoo.get("textcnn", sequence_length=4)
