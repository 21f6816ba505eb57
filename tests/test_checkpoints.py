"""Checkpoints: torchvision-named state dicts loaded into the zoo (ResNet-18, MobileNet v2 and
AlexNet replicas written in PyTorch with torchvision's module names, random weights, logits
compared), the project's real .pth files classifying real MNIST digits, crafted malicious
checkpoints refused without running anything, and safetensors files."""

from __future__ import annotations

import functools
import gzip
import json
import pickle
import struct
import zipfile

import numpy as np
import pytest
from helpers import assert_close_scaled, shared_path, torch_or_skip

import cnnkit
from cnnkit import layers
from cnnkit.io import (
    UnsafeCheckpointError,
    load_safetensors,
    load_sequential_state_dict,
    load_state_dict,
    save_safetensors,
)
from cnnkit.io.torchvision_names import load_torchvision_weights
from cnnkit.models import Sequential
from cnnkit.zoo import mobilenet, resnet, vgg


# ----- torchvision replicas (module names exactly as torchvision's) ------------------------------
def _resnet18_class(torch):
    nn = torch.nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or cin != planes:
                self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet18(nn.Module):
        def __init__(self, classes):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for i, planes in enumerate((64, 128, 256, 512)):
                blocks = []
                for j in range(2):
                    blocks.append(BasicBlock(cin, planes, 2 if i and not j else 1))
                    cin = planes
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet18


def _mobilenet_v2_class(torch):
    nn = torch.nn

    class ConvBNReLU6(nn.Sequential):  # torchvision's Conv2dNormActivation
        def __init__(self, cin, cout, k=3, stride=1, groups=1):
            super().__init__(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups,
                                       bias=False), nn.BatchNorm2d(cout), nn.ReLU6())

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, t):
            super().__init__()
            hidden = int(round(cin * t))
            self.use_res = stride == 1 and cin == cout
            mods = [ConvBNReLU6(cin, hidden, 1)] if t != 1 else []
            mods += [ConvBNReLU6(hidden, hidden, 3, stride, hidden),
                     nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
            self.conv = nn.Sequential(*mods)

        def forward(self, x):
            return x + self.conv(x) if self.use_res else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self, classes):
            super().__init__()
            feats, cin = [ConvBNReLU6(3, 32, 3, 2)], 32
            for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                               (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
                for i in range(n):
                    feats.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                    cin = c
            feats.append(ConvBNReLU6(cin, 1280, 1))
            self.features = nn.Sequential(*feats)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
            return self.classifier(torch.flatten(x, 1))

    return MobileNetV2


def _alexnet_class(torch):
    nn = torch.nn

    class AlexNet(nn.Module):  # torchvision's layout, every width divided by 8
        def __init__(self, classes):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(8, 24, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(24, 48, 3, padding=1), nn.ReLU(),
                nn.Conv2d(48, 32, 3, padding=1), nn.ReLU(),
                nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(
                nn.Dropout(0.5), nn.Linear(32 * 36, 512), nn.ReLU(), nn.Dropout(0.5),
                nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return AlexNet


def _torch_modules():
    torch = torch_or_skip()
    return torch, {"resnet18": _resnet18_class(torch), "mobilenet_v2": _mobilenet_v2_class(torch),
                   "alexnet": _alexnet_class(torch)}


def _randomize_bn(torch, module):
    """Non-trivial BN statistics and affine parameters, so eval-mode BN matters."""
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)


CASES = [
    ("resnet18", lambda: resnet.resnet18(input_shape=(64, 64, 3), classes=10), 64),
    ("mobilenet_v2", lambda: mobilenet.mobilenet_v2(input_shape=(64, 64, 3), classes=10), 64),
    ("alexnet", lambda: vgg.alexnet(input_shape=(224, 224, 3), classes=10, width_mult=0.125),
     224),
    ("alexnet", lambda: vgg.alexnet(input_shape=(127, 127, 3), classes=10, width_mult=0.125),
     127),
]


@pytest.mark.parametrize("name,build,size", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_torchvision_state_dict_reproduces_logits(name, build, size, tmp_path):
    torch, modules = _torch_modules()
    torch.manual_seed(0)
    tm = modules[name](10)
    _randomize_bn(torch, tm)
    tm.eval()
    path = tmp_path / f"{name}.pth"
    torch.save(tm.state_dict(), path)
    x = np.random.default_rng(0).standard_normal((2, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        ref = tm(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    model = build()
    load_torchvision_weights(model, path)  # read by cnnkit's own reader, no torch involved
    assert_close_scaled(model(x).data, ref, tol=1e-4, what=name)
    if name == "resnet18":  # a dict of torch tensors works too
        other = build()
        load_torchvision_weights(other, tm.state_dict())
        assert_close_scaled(other(x).data, ref, tol=1e-4)


def test_torchvision_loading_is_strict(tmp_path):
    torch, modules = _torch_modules()
    tm = modules["resnet18"](10)
    state = {k: v.numpy() for k, v in tm.state_dict().items()}
    model = resnet.resnet18(input_shape=(32, 32, 3), classes=10)
    before = [w.copy() for w in model.get_weights()]
    missing = {k: v for k, v in state.items() if not k.startswith("layer4.1.conv2")}
    with pytest.raises(ValueError, match=r"layers without a checkpoint module: \['layer4.1.conv2'"):
        load_torchvision_weights(model, missing)
    with pytest.raises(ValueError, match=r"checkpoint modules without a layer: \['head'\]"):
        load_torchvision_weights(model, {**state, "head.weight": np.zeros((2, 2), np.float32)})
    wrong = dict(state, **{"fc.weight": np.zeros((7, 512), np.float32)})
    with pytest.raises(ValueError, match="fc"):
        load_torchvision_weights(model, wrong)
    for w, b in zip(model.get_weights(), before, strict=True):  # nothing was assigned
        np.testing.assert_array_equal(w, b)
    load_torchvision_weights(model, missing, strict=False)


# ----- the project's real checkpoints ------------------------------------------------------------
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def _mnist5k():
    return _read_mnist5k(shared_path("datasets", "mnist5k", "mnist_5k.csv.gz"))


@functools.lru_cache(maxsize=1)
def _read_mnist5k(path):
    """(images (5000, 28, 28, 1) uint8, labels): 784 pixels then the label on each row."""
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    assert data.shape == (5000, 785)
    return data[:, :784].reshape(-1, 28, 28, 1), data[:, 784]


def _normalise():
    """(x/255 - 0.1307) / 0.3081 as one Rescaling layer."""
    return layers.Rescaling(1 / (255 * MNIST_STD), -MNIST_MEAN / MNIST_STD)


def _accuracy(model, x, y):
    pred = np.concatenate([model(x[i:i + 1000]).data.argmax(-1) for i in range(0, len(x),
                                                                                  1000)])
    return float((pred == y).mean())


def test_digit_recognizer_checkpoint_classifies_mnist():
    """3 x [conv3x3 pad 1 -> ReLU -> maxpool2] (32/64/128) -> 1152 -> 256 -> 10;
    28 -> 14 -> 7 -> 3 with floor pooling, so 3*3*128 = 1152 features."""
    state = load_state_dict(shared_path("weights", "digit_recognizer_handwriting_model.pth"))
    model = Sequential([
        layers.Input((28, 28, 1)), _normalise(),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(256, activation="relu"), layers.Dense(10),
    ])
    load_sequential_state_dict(model, state)
    x, y = _mnist5k()
    acc = _accuracy(model, x, y)
    print(f"digit_recognizer_handwriting_model.pth: {acc:.2%} of 5,000 MNIST digits")
    assert acc >= 0.99


def test_ccexam_mnist_checkpoint_classifies_mnist():
    """features.0 conv 1->32, features.3 conv 32->64 (conv-ReLU-pool twice, pad 1: 28 -> 14
    -> 7), classifier.0 3136 -> 128, classifier.2 128 -> 10. Its training normalisation is
    MNIST's mean/std: x/255 alone gives about 95% of the 5,000, (x/255 - 0.1307)/0.3081
    99.86%."""
    state = load_state_dict(shared_path("weights", "ccexam_mnist.pth"))
    assert state["classifier.0.weight"].shape == (128, 3136)

    def build(norm):
        return Sequential([
            layers.Input((28, 28, 1)), norm,
            layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10),
        ])

    x, y = _mnist5k()
    model = build(_normalise())
    load_sequential_state_dict(model, state)
    acc = _accuracy(model, x, y)
    plain = build(layers.Rescaling(1 / 255))
    load_sequential_state_dict(plain, state)
    acc_plain = _accuracy(plain, x[:2000], y[:2000])
    print(f"ccexam_mnist.pth: {acc:.2%} of 5,000 MNIST digits with MNIST mean/std; "
          f"{acc_plain:.2%} of the first 2,000 with x/255")
    assert acc >= 0.99
    assert acc_plain < acc


def test_ccexam_usps_checkpoint_matches_pytorch():
    """16x16 USPS net with BN: [conv 1->32 pad 1, BN, ReLU, pool] [conv 32->64, BN, ReLU,
    pool] -> flatten 4*4*64 = 1024 -> 128 -> ReLU -> dropout -> 10."""
    torch = torch_or_skip()
    nn = torch.nn
    path = shared_path("weights", "ccexam_usps.pth")
    tm = nn.Module()
    tm.features = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                                nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))
    tm.classifier = nn.Sequential(nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(), nn.Dropout(0.5),
                                  nn.Linear(128, 10))
    tm.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    tm.eval()
    model = Sequential([
        layers.Input((16, 16, 1)),
        layers.Conv2D(32, 3, padding="same"), layers.BatchNormalization(epsilon=1e-5),
        layers.ReLU(), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same"), layers.BatchNormalization(epsilon=1e-5),
        layers.ReLU(), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.5),
        layers.Dense(10),
    ])
    load_sequential_state_dict(model, load_state_dict(path))
    digits, labels = _mnist5k()
    # MNIST digits with the 4-pixel border cropped (USPS digits fill their frame), resized to
    # 16x16 and normalised with USPS' mean/std; plus plain random inputs
    crop = digits[:64, 4:24, 4:24].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    small = (torch.nn.functional.interpolate(torch.from_numpy(crop), size=(16, 16),
                                             mode="bilinear", align_corners=False)
             - 0.2469) / 0.2989
    rnd = torch.from_numpy(np.random.default_rng(0).standard_normal((8, 1, 16, 16)).astype(
        np.float32))
    for xt in (small, rnd):
        with torch.no_grad():
            ref = tm.classifier(tm.features(xt)).numpy()
        out = model(xt.numpy().transpose(0, 2, 3, 1)).data
        assert_close_scaled(out, ref, tol=1e-4)
    agree = (model(small.numpy().transpose(0, 2, 3, 1)).data.argmax(-1) == labels[:64]).mean()
    print(f"ccexam_usps.pth on 64 MNIST digits resized to 16x16: {agree:.0%} correct "
          f"(a different data set: informational only)")


# ----- malicious checkpoints ---------------------------------------------------------------------
def _write_pth(path, pkl: bytes) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")


def _payloads(marker):
    m = str(marker)
    return {
        # protocol 0: GLOBAL os.system, MARK, UNICODE arg, TUPLE, REDUCE
        "os.system": b"cos\nsystem\n(V" + f"touch {m}".encode() + b"\ntR.",
        "builtins.eval": b"cbuiltins\neval\n(V" + f"open({m!r}, 'w').close()".encode()
                         + b"\ntR.",
        # a dict holding the payload, protocol 2 with a nested GLOBAL
        "nested": b"\x80\x02}q\x00X\x06\x00\x00\x00weightq\x01cos\nsystem\n(V"
                  + f"touch {m}".encode() + b"\ntRs.",
        "collections.Counter": b"ccollections\nCounter\n)R.",
        "numpy._reconstruct": b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n"
                              b"(I0\ntc_codecs\nencode\n(Vb\nVlatin1\ntRtR.",
    }


class _Exploit:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "nested", "collections.Counter",
                                  "numpy._reconstruct", "stack_global"])
def test_crafted_checkpoint_is_refused_without_running(kind, tmp_path):
    marker = tmp_path / "pwned"
    pkl = (pickle.dumps({"w": _Exploit(marker)}, protocol=4) if kind == "stack_global"
           else _payloads(marker)[kind])
    path = tmp_path / "evil.pth"
    _write_pth(path, pkl)
    with pytest.raises(UnsafeCheckpointError, match="refusing to load"):
        load_state_dict(path)
    assert not marker.exists()


def test_crafted_payloads_are_live(tmp_path):
    """Control: the same bytes given to the standard unpickler do run their code."""
    for kind in ("os.system", "builtins.eval"):
        marker = tmp_path / f"ran_{kind}"
        pickle.loads(_payloads(marker)[kind])
        assert marker.exists(), kind


# ----- safetensors -------------------------------------------------------------------------------
def test_safetensors_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"conv.weight": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
               "bn.running_var": rng.random(4),
               "half": rng.standard_normal((5,)).astype(np.float16),
               "ids": np.arange(6, dtype=np.int64).reshape(2, 3),
               "mask": np.array([True, False, True])}
    path = tmp_path / "w.safetensors"
    save_safetensors(tensors, path, metadata={"format": "np"})
    back = load_safetensors(path)
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)
    n = struct.unpack("<Q", path.read_bytes()[:8])[0]
    header = json.loads(path.read_bytes()[8:8 + n])
    assert header["__metadata__"] == {"format": "np"}
    assert (8 + n) % 8 == 0  # the data starts 8-byte aligned


def test_safetensors_written_by_hand(tmp_path):
    """A file assembled byte by byte from the format's description."""
    w = np.array([[1.5, -2.0], [0.25, 3.0]], dtype="<f4")
    ids = np.array([7, -1, 1 << 40], dtype="<i8")
    bf16 = np.array([0x3F80, 0xC000], dtype="<u2")  # 1.0 and -2.0 in bfloat16
    scalar = np.array(0.5, dtype="<f8")
    body = w.tobytes() + ids.tobytes() + bf16.tobytes() + scalar.tobytes()
    header = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
              "ids": {"dtype": "I64", "shape": [3], "data_offsets": [16, 40]},
              "b": {"dtype": "BF16", "shape": [2], "data_offsets": [40, 44]},
              "s": {"dtype": "F64", "shape": [], "data_offsets": [44, 52]},
              "__metadata__": {"source": "hand"}}
    head = json.dumps(header).encode()
    path = tmp_path / "hand.safetensors"
    path.write_bytes(struct.pack("<Q", len(head)) + head + body)
    back = load_safetensors(path)
    np.testing.assert_array_equal(back["w"], w)
    np.testing.assert_array_equal(back["ids"], ids)
    np.testing.assert_array_equal(back["b"], np.array([1.0, -2.0], dtype=np.float32))
    assert back["s"].shape == () and back["s"] == 0.5
    bad = dict(header, w={"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 99]})
    head = json.dumps(bad).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + body)
    with pytest.raises(ValueError, match="outside the data"):
        load_safetensors(path)


def test_zoo_weights_round_trip_through_safetensors(tmp_path):
    cnnkit.random.seed(0)
    model = resnet.resnet20(width_mult=0.25)
    tensors = {w.name: w.data for w in model.weights}
    save_safetensors(tensors, tmp_path / "r20.safetensors")
    other = resnet.resnet20(width_mult=0.25)
    back = load_safetensors(tmp_path / "r20.safetensors")
    other.set_weights([back[w.name] for w in other.weights])
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(other(x).data, model(x).data)
