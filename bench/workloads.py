"""The benchmark's models, built twice: in cnnkit (channels-last) and in PyTorch (NCHW), with
the same structure, so that the same weights can be copied from one into the other.

cnnkit models come from ``cnnkit.zoo`` where the zoo has them (SimpleCNN, LeNet-5, mnist_cnn,
CIFAR ResNet-20, MobileNet v2); otherwise from the functional builders below, whose layer
names are the PyTorch module paths (``layer1.0.conv1``, ``features.2.conv.1.0``). The PyTorch
models are written here (no torchvision dependency) with torchvision's module names.

Weights go PyTorch -> cnnkit with :mod:`cnnkit.io.torch_weights` (sequential models:
``load_sequential_state_dict``; functional ones: layer by layer, matched by name), except
for the time-to-accuracy recipe, where cnnkit's own initial weights go cnnkit -> PyTorch
(:func:`cnnkit_to_torch`) so that both runs start from cnnkit's initialisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

# ----------------------------------------------------------------------------------------
# cnnkit builders
# ----------------------------------------------------------------------------------------
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))  # (t, c, n, s)


def _zoo_model(name: str, module: str | None = None, **kwargs: Any) -> Any | None:
    """``cnnkit.zoo.get(name)`` if the zoo has it (importing ``cnnkit.zoo.<module>`` first
    when the package does not load it yet), else None."""
    import importlib

    from cnnkit import zoo

    if name not in zoo.list() and module is not None:
        try:
            importlib.import_module(f"cnnkit.zoo.{module}")
        except ImportError:
            return None
    if name not in zoo.list():
        return None
    return zoo.get(name, **kwargs)


def _conv(x: Any, filters: int, k: int, stride: int, name: str, groups: int = 1) -> Any:
    """PyTorch ``Conv2d(k, stride, padding=k // 2, bias=False)`` as cnnkit layers: Keras
    "same" where it pads the same (stride 1), else explicit symmetric zero padding."""
    from cnnkit import layers

    pad = k // 2
    if stride == 1 or pad == 0:
        mode = "same" if pad else "valid"
    else:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
        mode = "valid"
    if groups > 1:
        return layers.DepthwiseConv2D(k, strides=stride, padding=mode, use_bias=False,
                                      name=name)(x)
    return layers.Conv2D(filters, k, strides=stride, padding=mode, use_bias=False,
                         name=name)(x)


def _bn(name: str) -> Any:
    from cnnkit import layers

    return layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=name)  # torch's BN


def cnnkit_resnet_cifar(depth: int = 20, classes: int = 10) -> Any:
    """CIFAR ResNet (He et al. 2015, 4.2) with option-A shortcuts laid out as in
    ``cnnkit.zoo.resnet20``: stride-2 subsampling, then zero channels appended at the end."""
    from cnnkit import layers
    from cnnkit.models import Model

    n = (depth - 2) // 6
    inputs = layers.Input((32, 32, 3), name="input")
    x = _conv(inputs, 16, 3, 1, "conv1")
    x = layers.ReLU(name="relu")(_bn("bn1")(x))
    for i, c in enumerate((16, 32, 64)):
        for j in range(n):
            s = 2 if i > 0 and j == 0 else 1
            name = f"layer{i + 1}.{j}"
            if s == 1 and int(x.shape[-1]) == c:
                short = x
            else:
                sub = layers.MaxPooling2D(1, strides=s, name=f"{name}.sub")(x)
                zeros = layers.Subtract(name=f"{name}.zeros")([sub, sub])
                short = layers.Concatenate(name=f"{name}.shortcut")([sub, zeros])
            y = layers.ReLU(name=f"{name}.relu1")(_bn(f"{name}.bn1")(_conv(x, c, 3, s,
                                                                          f"{name}.conv1")))
            y = _bn(f"{name}.bn2")(_conv(y, c, 3, 1, f"{name}.conv2"))
            x = layers.ReLU(name=f"{name}.relu")(layers.Add(name=f"{name}.add")([y, short]))
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    x = layers.Dense(classes, name="fc")(x)
    return Model(inputs, x, name=f"resnet{depth}")


def cnnkit_mobilenet_v2(input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000) -> Any:
    """MobileNet v2 (Sandler et al. 2018) in torchvision's form (width 1.0, ReLU6, BN eps 1e-5,
    dropout 0.2 before the classifier); 3,504,872 parameters at 1000 classes."""
    from cnnkit import layers
    from cnnkit.models import Model

    def cba(x: Any, c: int, k: int, s: int, name: str, groups: int = 1) -> Any:
        x = _conv(x, c, k, s, f"{name}.0", groups)
        x = _bn(f"{name}.1")(x)
        return layers.ReLU(max_value=6.0, name=f"{name}.2")(x)

    inputs = layers.Input(tuple(input_shape), name="input")
    x = cba(inputs, 32, 3, 2, "features.0")
    idx = 1
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            stride = s if i == 0 else 1
            cin = int(x.shape[-1])
            name = f"features.{idx}.conv"
            y, k = x, 0
            if t != 1:
                y = cba(y, cin * t, 1, 1, f"{name}.0")
                k = 1
            y = cba(y, cin * t, 3, stride, f"{name}.{k}", groups=cin * t)
            y = _conv(y, c, 1, 1, f"{name}.{k + 1}")
            y = _bn(f"{name}.{k + 2}")(y)
            if stride == 1 and cin == c:
                y = layers.Add(name=f"features.{idx}.add")([x, y])
            x, idx = y, idx + 1
    x = cba(x, 1280, 1, 1, f"features.{idx}")
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    x = layers.Dropout(0.2, name="classifier.0")(x)
    x = layers.Dense(classes, name="classifier.1")(x)
    return Model(inputs, x, name="mobilenet_v2")


def cnnkit_model(key: str, input_shape: Sequence[int] | None = None) -> tuple[Any, str]:
    """(cnnkit model, where it came from) for a model key (``input_shape``: the ImageNet
    models' (H, W, C), for the quick forms; default 224x224x3)."""
    from cnnkit import zoo

    shape = tuple(input_shape or (224, 224, 3))
    if key == "resnet50":
        return zoo.get("resnet50", input_shape=shape), "cnnkit.zoo.get('resnet50')"

    if key in ("simple_cnn", "lenet5", "mnist_cnn"):
        return zoo.get(key), f"cnnkit.zoo.get({key!r})"
    if key == "resnet20":
        m = _zoo_model("resnet20", "resnet")
        if m is not None:
            return m, "cnnkit.zoo.get('resnet20') (option A)"
        return cnnkit_resnet_cifar(20), "bench/workloads.py (option A)"
    if key == "mobilenet_v2":
        m = _zoo_model("mobilenet_v2", "mobilenet", input_shape=shape)
        if m is not None:
            return m, "cnnkit.zoo.get('mobilenet_v2')"
        return cnnkit_mobilenet_v2(shape), "bench/workloads.py (torchvision structure)"
    raise ValueError(f"unknown model key {key!r}")


# ----------------------------------------------------------------------------------------
# PyTorch models
# ----------------------------------------------------------------------------------------
def torch_model(key: str) -> Any:
    """The PyTorch twin of ``cnnkit_model(key)`` (NCHW, torch defaults otherwise)."""
    import torch
    from torch import nn

    if key == "simple_cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(7 * 7 * 64, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    if key == "lenet5":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    if key == "mnist_cnn":
        class Rescale(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x * (1 / 255.0)

        def block(cin: int, cout: int) -> list:
            # Keras BatchNormalization(momentum=0.9) defaults: eps 1e-3; torch momentum 0.1
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                    nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1), nn.ReLU()]

        return nn.Sequential(
            Rescale(), *block(1, 16), *block(16, 16), nn.MaxPool2d(2),
            *block(16, 32), *block(32, 32), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(7 * 7 * 32, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))
    if key == "resnet20":
        return TorchResNetCifar(20)
    if key == "mobilenet_v2":
        return TorchMobileNetV2()
    if key == "resnet50":
        return TorchResNet50()
    raise ValueError(f"unknown model key {key!r}")


def _torch_resnet_class() -> type:
    """torch ResNet for CIFAR: option-A (strided, zero-padded identity) shortcuts."""
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch import nn

    class BasicBlockA(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.extra = stride, cout - cin

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            short = x
            if self.stride != 1 or self.extra:
                short = x[:, :, ::self.stride, ::self.stride]
                short = F.pad(short, (0, 0, 0, 0, 0, self.extra))  # zero channels at the end
            return F.relu(y + short)

    class ResNetCifar(nn.Module):
        def __init__(self, depth: int = 20, classes: int = 10):
            super().__init__()
            n = (depth - 2) // 6
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            cin = 16
            for i, c in enumerate((16, 32, 64)):
                blocks = []
                for j in range(n):
                    blocks.append(BasicBlockA(cin, c, 2 if i > 0 and j == 0 else 1))
                    cin = c
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.fc = nn.Linear(64, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(x.mean((2, 3)))

    return ResNetCifar


def _torch_mobilenet_class() -> type:
    """torch MobileNet v2 with torchvision's module structure."""
    import torch
    from torch import nn

    def cba(cin: int, cout: int, k: int, s: int, groups: int = 1) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU6())

    class InvertedResidual(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, t: int):
            super().__init__()
            mid = cin * t
            mods = [cba(cin, mid, 1, 1)] if t != 1 else []
            mods += [cba(mid, mid, 3, stride, groups=mid), nn.Conv2d(mid, cout, 1, bias=False),
                     nn.BatchNorm2d(cout)]
            self.conv = nn.Sequential(*mods)
            self.residual = stride == 1 and cin == cout

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.conv(x) if self.residual else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self, classes: int = 1000):
            super().__init__()
            feats: list[nn.Module] = [cba(3, 32, 3, 2)]
            cin = 32
            for t, c, n, s in MOBILENET_V2_SETTINGS:
                for i in range(n):
                    feats.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                    cin = c
            feats.append(cba(cin, 1280, 1, 1))
            self.features = nn.Sequential(*feats)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(self.features(x).mean((2, 3)))

    return MobileNetV2


def _torch_resnet50_class() -> type:
    """torch ResNet-50 (v1.5: the stride on the bottleneck's 3x3) with torchvision's module
    names: conv1, bn1, layer1-4.{j}.conv1-3 / bn1-3 / downsample.0-1, fc."""
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, width: int, stride: int):
            super().__init__()
            cout = 4 * width
            self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                nn.BatchNorm2d(cout))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet50(nn.Module):
        def __init__(self, classes: int = 1000):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1, self.relu = nn.BatchNorm2d(64), nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for i, (width, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3),
                                               strict=True)):
                blocks = []
                for j in range(n):
                    blocks.append(Bottleneck(cin, width, 2 if i > 0 and j == 0 else 1))
                    cin = 4 * width
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.fc = nn.Linear(2048, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(x.mean((2, 3)))

    return ResNet50


def TorchResNet50(classes: int = 1000) -> Any:  # noqa: N802
    """torchvision's ``resnet50()`` structure and module names, written out here."""
    return _torch_resnet50_class()(classes)


def TorchResNetCifar(depth: int = 20, classes: int = 10) -> Any:  # noqa: N802
    """CIFAR ResNet with option-A shortcuts, module names as torchvision's ResNets."""
    return _torch_resnet_class()(depth, classes)


def TorchMobileNetV2(classes: int = 1000) -> Any:  # noqa: N802
    """torchvision's ``mobilenet_v2()`` structure and module names, written out here."""
    return _torch_mobilenet_class()(classes)


# ----------------------------------------------------------------------------------------
# weights
# ----------------------------------------------------------------------------------------
def torch_state_numpy(model: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def copy_torch_to_cnnkit(ck: Any, pt: Any) -> None:
    """Set the cnnkit model's weights from the PyTorch twin's (layouts converted)."""
    from cnnkit.io import torch_weights as tw

    state = torch_state_numpy(pt)
    if type(ck).__name__ == "Sequential":
        tw.load_sequential_state_dict(ck, state)
        return
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        if leaf != "num_batches_tracked":
            groups.setdefault(module, {})[leaf] = value
    used = set()
    for layer in ck.layers:
        if not layer.weights:
            continue
        if layer.name not in groups:
            raise ValueError(f"no PyTorch module named {layer.name!r} for cnnkit layer "
                             f"{type(layer).__name__} {layer.name!r}")
        layer.set_weights(tw.convert_module(layer, groups[layer.name], layer.name))
        used.add(layer.name)
    missing = sorted(set(groups) - used)
    if missing:
        raise ValueError(f"PyTorch modules without a cnnkit layer: {missing}")


def cnnkit_to_torch(ck: Any, pt: Any) -> None:
    """Set a PyTorch sequential twin's weights from the cnnkit Sequential's (conv, dense and
    batch-norm layers paired in order; a Dense after a Flatten gets its rows reordered from
    channels-last (H, W, C) to PyTorch's (C, H, W))."""
    import torch

    weighted: list[tuple[Any, tuple | None]] = []
    shape, flat = ck.input_shape, None
    for layer in ck.layers:
        kind = type(layer).__name__
        if kind == "Flatten":
            flat = tuple(shape[1:])
        elif layer.weights:
            weighted.append((layer, flat if kind == "Dense" else None))
            flat = None
        shape = layer.compute_output_shape(shape)
    mods = [m for m in pt.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear,
                                                      torch.nn.BatchNorm2d))]
    if len(mods) != len(weighted):
        raise ValueError(f"{len(weighted)} cnnkit layers with weights, {len(mods)} PyTorch "
                         f"modules")
    with torch.no_grad():
        for (layer, flat), mod in zip(weighted, mods, strict=True):
            ws = [w.numpy() if hasattr(w, "numpy") else np.asarray(w)
                  for w in layer.get_weights()]
            if isinstance(mod, torch.nn.BatchNorm2d):
                for dst, src in zip((mod.weight, mod.bias, mod.running_mean, mod.running_var),
                                    ws, strict=True):
                    dst.copy_(torch.from_numpy(np.ascontiguousarray(src)))
                continue
            k = ws[0]
            if isinstance(mod, torch.nn.Conv2d):
                k = k.transpose(3, 2, 0, 1)
            else:
                k = k.T
                if flat is not None:
                    *sp, c = flat
                    k = k.reshape(k.shape[0], *sp, c).transpose(0, 3, 1, 2).reshape(
                        k.shape[0], -1)
            mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(k)))
            if mod.bias is not None:
                mod.bias.copy_(torch.from_numpy(np.ascontiguousarray(ws[1])))


# ----------------------------------------------------------------------------------------
# the workloads
# ----------------------------------------------------------------------------------------
@dataclass
class Case:
    """One workload's model and data in one or both frameworks."""

    key: str
    batch: int
    x: np.ndarray  # (N, H, W, C) float32
    y: np.ndarray  # (N,) int64
    ck: Any = None
    pt: Any = None
    xt: Any = None  # (N, C, H, W) torch tensor
    yt: Any = None
    source: str = ""
    macs: int = 0  # multiply-adds per sample (conv and dense layers, cnnkit's count)
    dropout: bool = False


@dataclass
class Workload:
    key: str  # W1, W2, ...
    title: str
    model: str
    input_shape: tuple[int, int, int]
    batch: int
    modes: tuple[str, ...]  # "train", "infer"
    notes: list[str] = field(default_factory=list)
    quick: tuple[tuple[int, int, int], int] | None = None  # --quick: (input shape, batch)
    conv_rate: bool = False  # report the conv layers' GFLOP/s against the SGEMM rate
    grad_batch: int | None = None  # samples of the batch in the float64 gradient check

    def quick_form(self) -> Workload:
        """The workload as ``--quick`` runs it: smaller inputs and batch where ``quick`` is
        set (the title says so), else itself."""
        if self.quick is None:
            return self
        shape, batch = self.quick
        return replace(self, title=f"{self.title} [quick: {shape[0]}x{shape[1]}, batch "
                                   f"{batch}]", input_shape=shape, batch=batch, quick=None)


WORKLOADS = [
    Workload("W1", "SimpleCNN 28x28x1, batch 128", "simple_cnn", (28, 28, 1), 128,
             ("train", "infer"), conv_rate=True),
    Workload("W2", "LeNet-5 28x28x1, batch 128", "lenet5", (28, 28, 1), 128,
             ("train", "infer")),
    Workload("W3", "ResNet-20 (CIFAR) 32x32x3, batch 128", "resnet20", (32, 32, 3), 128,
             ("train", "infer"), conv_rate=True),
    Workload("W4", "MobileNet v2 224x224x3, batch 8", "mobilenet_v2", (224, 224, 3), 8,
             ("infer",)),
    Workload("W5a", "LeNet-5 28x28x1, batch 1 (latency)", "lenet5", (28, 28, 1), 1,
             ("infer",)),
    Workload("W5b", "ResNet-20 32x32x3, batch 1 (latency)", "resnet20", (32, 32, 3), 1,
             ("infer",)),
    Workload("W7", "ResNet-50 224x224x3, batch 16", "resnet50", (224, 224, 3), 16,
             ("train",), quick=((64, 64, 3), 2), conv_rate=True, grad_batch=2),
    Workload("W8", "MobileNet v2 224x224x3, batch 16", "mobilenet_v2", (224, 224, 3), 16,
             ("train",), quick=((64, 64, 3), 2), grad_batch=2),
    Workload("W9a", "ResNet-50 224x224x3, batch 1", "resnet50", (224, 224, 3), 1,
             ("infer",), quick=((64, 64, 3), 1)),
    Workload("W9b", "ResNet-50 224x224x3, batch 8", "resnet50", (224, 224, 3), 8,
             ("infer",), quick=((64, 64, 3), 2)),
]
BY_KEY = {w.key: w for w in WORKLOADS}
IMAGENET_MODELS = ("mobilenet_v2", "resnet50")


def make_case(w: Workload, frameworks: Sequence[str] = ("cnnkit", "torch"), seed: int = 0,
              copy_weights: bool = True) -> Case:
    """Build the workload's models (PyTorch's weights copied into cnnkit's when both are
    built) and one batch of random inputs and labels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((w.batch, *w.input_shape), dtype=np.float32)
    classes = 1000 if w.model in IMAGENET_MODELS else 10
    y = rng.integers(0, classes, w.batch).astype(np.int64)
    case = Case(w.model, w.batch, x, y)
    if "torch" in frameworks:
        import torch

        torch.manual_seed(seed)
        case.pt = torch_model(w.model)
        case.xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        case.yt = torch.from_numpy(y)
    if "cnnkit" in frameworks:
        case.ck, case.source = cnnkit_model(w.model, w.input_shape)
        case.macs = int(sum(row[4] for row in case.ck.layer_table()))
        case.dropout = any(type(la).__name__ == "Dropout" for la in _leaf_layers(case.ck))
        if case.pt is not None and copy_weights:
            copy_torch_to_cnnkit(case.ck, case.pt)
    return case


def _leaf_layers(model: Any) -> list[Any]:
    out = []
    for la in model.layers:
        out += _leaf_layers(la) if hasattr(la, "layers") and la is not model else [la]
    return out
