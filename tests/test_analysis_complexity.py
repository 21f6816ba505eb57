"""Complexity and receptive fields of whole models (cnnkit.models.complexity, summary(flops=True,
receptive_field=True), cnnkit summary --flops --rf): zoo totals against published multiply-add
figures, layer by layer against torch.utils.flop_counter.FlopCounterMode on PyTorch twins,
receptive fields against published ones and against the gradient support of one output unit
(cnnkit's own backward)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import torch_or_skip

from cnnkit import Tensor, initializers, layers, zoo
from cnnkit.cli import main
from cnnkit.models import Model, Sequential
from cnnkit.models.complexity import complexity_rows
from cnnkit.zoo import blocks

WEIGHTED = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense")

# Published multiply-adds at 224x224 (torchvision's model cards give the same GFLOPS figures:
# 0.71, 15.47, 4.09, 0.30, 0.39): AlexNet (Krizhevsky 2012, one-tower form), VGG-16 (Simonyan &
# Zisserman), ResNet-50 (He et al. 2015), MobileNet v2 (Sandler et al. 2018, 300M),
# EfficientNet-B0 (Tan & Le 2019, 0.39B).
PUBLISHED_MACS = [("alexnet", 0.71e9), ("vgg16", 15.5e9), ("resnet50", 4.1e9),
                  ("mobilenet_v2", 0.30e9), ("efficientnet_b0", 0.39e9)]


@pytest.fixture
def zero_init(monkeypatch):
    zeros = initializers.Zeros()
    monkeypatch.setattr(initializers, "get", lambda identifier=None: zeros)


@pytest.mark.parametrize("name,published", PUBLISHED_MACS, ids=[n for n, _ in PUBLISHED_MACS])
def test_zoo_multiply_adds_match_published(name, published, zero_init):
    rows = complexity_rows(zoo.get(name))
    weighted = sum(r.macs for r in rows if r.kind in WEIGHTED)
    total = sum(r.macs for r in rows)  # + BatchNorm's one multiply-add per element
    # the published figures are rounded to 2 digits (0.30G, 4.1G): 2.5% covers the rounding
    assert abs(weighted - published) <= 0.025 * published, weighted
    assert total >= weighted
    assert all(r.flops is not None for r in rows)
    flops = sum(r.flops for r in rows)
    assert 2 * weighted < flops < 2 * total + 0.05 * flops


# ----- PyTorch twins -----------------------------------------------------------------------------
def _torch_alexnet(torch):
    nn = torch.nn
    m = nn.Module()
    m.features = nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
    m.avgpool = nn.AdaptiveAvgPool2d(6)
    m.classifier = nn.Sequential(nn.Dropout(), nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(),
                                 nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))
    m.forward = lambda x: m.classifier(torch.flatten(m.avgpool(m.features(x)), 1))
    return m


def _torch_resnet18(torch):
    """torchvision's resnet18 layout and module names."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout)) if stride != 1 or cin != cout \
                else None

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for i, c in enumerate((64, 128, 256, 512)):
                setattr(self, f"layer{i + 1}", nn.Sequential(Block(cin, c, 1 if i == 0 else 2),
                                                             Block(c, c, 1)))
                cin = c
            self.fc = nn.Linear(512, 1000)

        def forward(self, x):
            x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
            for i in range(4):
                x = getattr(self, f"layer{i + 1}")(x)
            return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))

    return Net()


@pytest.mark.parametrize("name,twin", [("alexnet", _torch_alexnet),
                                       ("resnet18", _torch_resnet18)])
def test_layer_by_layer_against_flop_counter_mode(name, twin, zero_init):
    """FlopCounterMode counts 2 FLOPs per multiply-add of convolutions and matmuls (no bias,
    no BN, no activations): per module it must equal 2 * cnnkit's multiply-adds, and cnnkit's
    FLOPs must be that plus the bias it states."""
    torch = torch_or_skip()
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        ref = twin(torch).eval()
        x = torch.zeros(1, 3, 224, 224)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ref(x)
    # keys: "Global", the root's class name, then "<root>.features.0", ...
    counts = {k.split(".", 1)[1] if "." in k else k: sum(v.values())
              for k, v in counter.get_flop_counts().items()}
    model = zoo.get(name)
    rows = [r for r in complexity_rows(model) if r.kind in WEIGHTED]
    assert len(rows) == sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
                            for m in ref.modules())
    for r in rows:
        assert 2 * r.macs == counts[r.name], r.name
        module = ref.get_submodule(r.name)
        bias = int(np.prod(r.output_shape[1:])) if module.bias is not None else 0
        fused = model.get_layer(r.name).activation_name not in (None, "linear")  # ReLU
        act = int(np.prod(r.output_shape[1:])) if fused else 0
        assert r.flops == counts[r.name] + bias + act, r.name
    assert 2 * sum(r.macs for r in rows) == counts["Global"]


def test_small_model_flops_closed_form():
    """Every stated rule, counted by hand for conv(relu) -> BN -> maxpool -> residual add ->
    global average pool -> dense -> softmax."""
    inp = layers.Input((8, 8, 2))
    c = layers.Conv2D(4, 3, padding="same", activation="relu", name="c")(inp)
    b = layers.BatchNormalization(name="bn")(c)
    p = layers.MaxPooling2D(2, name="pool")(b)
    q = layers.Conv2D(4, 1, use_bias=False, name="q")(p)
    a = layers.Add(name="add")([p, q])
    g = layers.GlobalAveragePooling2D(name="gap")(a)
    d = layers.Dense(3, name="d")(g)
    s = layers.Softmax(name="sm")(d)
    rows = {r.name: r for r in complexity_rows(Model(inp, s))}
    conv_macs = 8 * 8 * 3 * 3 * 2 * 4
    assert rows["c"].flops == 2 * conv_macs + 256 + 256  # bias + relu per output
    assert rows["bn"].flops == 2 * 256
    assert rows["pool"].flops == 4 * 4 * 4 * 3
    assert rows["q"].flops == 2 * 4 * 4 * 4 * 4
    assert rows["add"].flops == 64
    assert rows["gap"].flops == 64  # 15 adds + 1 divide per channel
    assert rows["d"].flops == 2 * 12 + 3
    assert rows["sm"].flops == 9
    assert rows["c"].memory == 8 * 8 * 4 * 4


def test_unknown_layer_is_named_not_zero():
    model = Sequential([layers.Input((4, 4, 1)), layers.Lambda(lambda x: x * 2, name="twice"),
                        layers.Flatten(), layers.Dense(2)])
    rows = complexity_rows(model)
    assert rows[0].flops is None and rows[0].rf is None
    text = model.summary(print_fn=lambda s: None, flops=True, receptive_field=True)
    assert "Not counted (no FLOP rule for these layers): twice" in text


# ----- receptive fields --------------------------------------------------------------------------
@pytest.mark.parametrize("name,layer,size", [("alexnet", "features.12", 195),
                                             ("vgg16", "features.30", 212),
                                             ("resnet50", "layer4.2.relu", 427),
                                             ("inception_v3", "Mixed_7c.concat", 1311),
                                             ("mobilenet", "conv_pw_13_relu", 315)])
def test_published_receptive_fields(name, layer, size, zero_init):
    """Araujo et al. (Distill 2019), table: AlexNet 195, VGG-16 212 after the last pooling
    layer; ResNet-50 427 for torchvision's v1.5 layout (483 with the stride in the 1x1);
    Inception v3 1311 and MobileNet v1 315 at the last feature map (multi-path joins)."""
    rows = {r.name: r for r in complexity_rows(zoo.get(name))}
    assert rows[layer].rf[0][0] == rows[layer].rf[1][0] == size
    assert rows[layer].rf[0][1] == 32  # five halvings


def _positive_weights(model):
    """Weights that keep every activation positive (so ReLU passes every gradient): kernels
    1/fan-in, biases 0, BN the identity."""
    for la in model.layers:
        for w in la.weights:
            name = w.name.split("/")[-1]
            if "kernel" in name:
                w.data[...] = 1.0 / np.prod(w.shape[:-1])
            elif "variance" in name or "gamma" in name:
                w.data[...] = 1.0
            else:
                w.data[...] = 0.0


def _gradient_support(model, layer_name, size, channels):
    """Bounding box (per axis) of the input pixels whose gradient reaches the centre unit of
    ``layer_name``'s output, and that unit's index."""
    sub = Model(model.inputs, model.get_layer(layer_name).output)
    x = Tensor(np.random.default_rng(0).uniform(0.5, 1.5, (1, size, size, channels))
               .astype(np.float32), requires_grad=True)
    y = sub(x, training=False)
    centre = y.shape[1] // 2, y.shape[2] // 2
    mask = np.zeros(y.shape, np.float32)
    mask[0, centre[0], centre[1], :] = 1
    (y * Tensor(mask)).sum().backward()
    hit = np.abs(x.grad[0]).sum(-1) > 0
    rows, cols = np.nonzero(hit.any(1))[0], np.nonzero(hit.any(0))[0]
    return (rows.min(), rows.max()), (cols.min(), cols.max()), centre


def _expected_box(rf, centre):
    out = []
    for (r, j, s), c in zip(rf, centre, strict=True):
        mid = s + c * j
        out.append((mid - (r - 1) / 2, mid + (r - 1) / 2))
    return out


def _multi_path_model():
    """Residual, Inception-style branches of different kernels, dilation, asymmetric 'same'
    padding, strides, cropping and padding: every rule of the graph walk."""
    inp = layers.Input((64, 64, 1))
    x = layers.Conv2D(2, 3, strides=2, padding="same", name="stem")(inp)
    a = layers.Conv2D(2, 5, padding="same", name="b5")(x)
    b = layers.Conv2D(2, 3, padding="same", dilation_rate=3, name="dil")(x)
    c = layers.AveragePooling2D(3, strides=1, padding="same", name="pool")(x)
    x = layers.Concatenate(name="cat")([a, b, c])
    y = layers.ZeroPadding2D(((2, 0), (1, 1)), name="pad")(x)
    y = layers.Conv2D(6, 3, strides=2, name="down")(y)
    s = layers.AveragePooling2D(2, name="short")(x)
    s = layers.Cropping2D(((0, 1), (0, 0)), name="crop")(s)
    s = layers.ZeroPadding2D(((1, 0), (0, 0)), name="back")(s)
    z = layers.Add(name="add")([y, s])
    z = layers.Conv2D(3, 3, strides=2, padding="valid", name="last")(z)
    return Model(inp, z)


@pytest.mark.parametrize("layer", ["stem", "dil", "cat", "down", "crop", "add", "last"])
def test_receptive_field_equals_gradient_support_multi_path(layer):
    model = _multi_path_model()
    _positive_weights(model)
    rf = {r.name: r.rf for r in complexity_rows(model)}[layer]
    rows, cols, centre = _gradient_support(model, layer, 64, 1)
    lo_hi = _expected_box(rf, centre)
    # the dilated branch's field has holes, the box does not
    assert (rows, cols) == tuple((int(lo), int(hi)) for lo, hi in lo_hi), (rf, rows, cols)


def test_resnet50_receptive_field_equals_gradient_support(monkeypatch):
    """ResNet-50 at 1/32 width (the field does not depend on width), 448x448 so that the
    427-pixel field of a layer4 unit lies inside the image. Max pooling passes a gradient to
    one cell of its window only, so the brute force builds the pooling layer as an average
    pooling of the same geometry."""
    monkeypatch.setattr(blocks, "max_pool", lambda x, k, s=None, p=0, *, name: blocks.avg_pool(
        x, k, s, p, name=name))
    from cnnkit.zoo import resnet

    monkeypatch.setattr(resnet, "max_pool", blocks.max_pool)
    model = zoo.get("resnet50", input_shape=(448, 448, 3), width_mult=1 / 32)
    _positive_weights(model)
    rf = {r.name: r.rf for r in complexity_rows(model)}["layer4.2.relu"]
    assert rf[0][0] == 427
    rows, cols, centre = _gradient_support(model, "layer4.2.relu", 448, 3)
    assert (rows, cols) == tuple((int(lo), int(hi)) for lo, hi in _expected_box(rf, centre))


def test_summary_columns_and_cli(capsys, zero_init):
    model = zoo.get("alexnet")
    text = model.summary(print_fn=lambda s: None, flops=True, receptive_field=True)
    line = next(t for t in text.splitlines() if t.startswith("features.12 "))
    assert line.split()[-3:] == ["195", "32", "31"]
    assert "FLOPs per sample:" in text and "a multiply-add is 2 FLOPs" in text
    plain = model.summary(print_fn=lambda s: None)
    assert "FLOPs" not in plain
    assert main(["summary", "alexnet", "--flops", "--rf"]) == 0
    out = capsys.readouterr().out
    assert "Araujo" in out and "FLOPs per sample: 1,43" in out
