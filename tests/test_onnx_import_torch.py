"""PyTorch modules exported with ``torch.onnx.export(..., dynamo=False)`` and imported with
``cnnkit.io.load_onnx``: outputs equal PyTorch's and ONNX Runtime's to 1e-4 relative (max
|difference| <= 1e-4 * max |reference|), at sizes other than the export's where the axes are
dynamic. Then the imported model trains (``fit``: the loss falls) and survives ``.cnnkit``
save and load."""

from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import torch_or_skip

torch = torch_or_skip()
pytest.importorskip("onnx", reason="onnx is not installed (test-only reference)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (test reference)")
nn = torch.nn

from cnnkit import layers as L  # noqa: E402
from cnnkit.io import load_onnx  # noqa: E402
from cnnkit.models import load_model  # noqa: E402

TOL = 1e-4


def _randomize_bn(module: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial running statistics and affine weights (fresh ones are the identity)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.uniform_(-0.5, 0.5, generator=gen)


def export(module: nn.Module, shape: tuple, dynamic: dict | None = None, opset: int = 17,
           fold: bool = True) -> bytes:
    """The module (in eval mode) as ONNX bytes, input "x" and output "y"."""
    module.eval()
    f = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, (torch.randn(*shape),), f, dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes=dynamic, opset_version=opset,
                          do_constant_folding=fold)
    return f.getvalue()


def close(ours: np.ndarray, ref: np.ndarray, what: str) -> float:
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    err = float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-12))
    assert err <= TOL, f"{what}: relative error {err:.2e} > {TOL}"
    return err


def check(module: nn.Module, blob: bytes, x: np.ndarray) -> object:
    """load_onnx(blob) against the module and ONNX Runtime on ``x``; the imported model."""
    model = load_onnx(blob)
    ours = model.predict(x)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    rt = ort.InferenceSession(blob, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    close(ours, ref, "vs PyTorch")
    close(ours, rt, "vs ONNX Runtime")
    return model


class Residual(nn.Module):
    """ResNet basic block with a projection shortcut, pooled into a linear head."""

    def __init__(self, c_in: int = 3, c: int = 8, classes: int = 5):
        super().__init__()
        self.c1 = nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(c)
        self.sc = nn.Sequential(nn.Conv2d(c_in, c, 1, stride=2, bias=False), nn.BatchNorm2d(c))
        self.head = nn.Linear(c, classes)

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        y = torch.relu(self.b2(self.c2(y)) + self.sc(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, r: int = 4):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // r, 1), nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))


class DepthwiseSeparable(nn.Module):
    """MobileNetV3-style: depthwise 3x3, BN, HardSwish, squeeze-excite, pointwise, BN, then a
    view(N, -1) + Linear head reading a 4x4 map (its weight rows follow cnnkit's layout)."""

    def __init__(self, c: int = 8, out: int = 16):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.dw = nn.Conv2d(c, c, 3, stride=2, padding=1, groups=c, bias=False)
        self.bn1, self.act = nn.BatchNorm2d(c), nn.Hardswish()
        self.se = SqueezeExcite(c)
        self.pw = nn.Conv2d(c, out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(out * 16, 10)

    def forward(self, x):
        y = self.act(self.bn1(self.dw(self.act(self.stem(x)))))
        y = self.bn2(self.pw(self.se(y)))
        y = self.pool(y)  # x.view(x.size(0), -1): Shape, Gather, Concat, Reshape
        return torch.log_softmax(self.fc(y.view(y.size(0), -1)), dim=1)


class Decoder(nn.Module):
    """U-Net-style upsampling: a transposed convolution, bilinear and nearest Resize, a skip
    concatenation and a sigmoid mask."""

    def __init__(self, c: int = 6):
        super().__init__()
        self.down = nn.Conv2d(3, c, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(c, c, 2, stride=2)
        self.mix = nn.Conv2d(c + 3, 4, 3, padding=1)
        self.out = nn.Conv2d(4, 1, 1)

    def forward(self, x):
        d = torch.relu(self.down(x))
        u = torch.relu(self.up(d))
        u = u + nn.functional.interpolate(d, scale_factor=2, mode="bilinear",
                                          align_corners=False)
        y = torch.relu(self.mix(torch.cat([u, x], dim=1)))
        y = nn.functional.interpolate(y, scale_factor=0.5, mode="nearest")
        y = nn.functional.interpolate(y, size=(x.shape[2], x.shape[3]), mode="bilinear",
                                      align_corners=True)
        return torch.sigmoid(self.out(y))


class ChannelShuffle(nn.Module):
    """ShuffleNet's grouped 1x1 convolutions around a channel shuffle (view, transpose, view),
    which cnnkit does on its channels-last layout: one transpose per shuffle."""

    def __init__(self, c: int = 12, groups: int = 3):
        super().__init__()
        self.groups = groups
        self.a = nn.Conv2d(3, c, 1)
        self.b = nn.Conv2d(c, c, 3, padding=1, groups=groups)
        self.c = nn.Conv2d(c, 4, 1)

    def forward(self, x):
        y = torch.relu(self.b(self.a(x)))
        n, c, h, w = y.shape
        y = y.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.c(y)


class PoolsAndUpsample(nn.Module):
    """ReLU6 (Clip), PyTorch's pooling options (ceil_mode, padding, count_include_pad=False),
    nn.Upsample, PReLU, LeakyReLU, ELU, Dropout and a linear head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=1, padding=(1, 2), bias=True)
        self.bn = nn.BatchNorm2d(6)
        self.max = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.prelu = nn.PReLU(6)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(6, 3))

    def forward(self, x):
        y = nn.functional.relu6(self.bn(self.conv(x)))
        y = self.up(self.avg(self.max(y)))
        y = nn.functional.elu(nn.functional.leaky_relu(self.prelu(y), 0.1))
        return self.head(y.mean((2, 3)))


def _module(cls: type, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = cls()
    _randomize_bn(m, torch.Generator().manual_seed(seed))
    return m.eval()


def test_residual_block_dynamic_batch_and_size():
    m = _module(Residual)
    blob = export(m, (2, 3, 16, 16), {"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n"}})
    x = np.random.default_rng(0).standard_normal((3, 3, 20, 12)).astype(np.float32)
    model = check(m, blob, x)
    assert model.input_shape == (None, 3, None, None)
    assert model.inputs[0].name == "x" and model.outputs[0].node.layer.name == "y"
    # the layout pass: one transpose, at the input; no batch-norm left unfused by PyTorch
    assert sum(isinstance(la, L.Permute) for la in model.layers) == 1


def test_residual_block_keeps_batch_norm_without_folding_opset_11():
    m = _module(Residual, 1)
    blob = export(m, (1, 3, 16, 16), {"x": {0: "n"}, "y": {0: "n"}}, opset=11, fold=False)
    x = np.random.default_rng(1).standard_normal((4, 3, 16, 16)).astype(np.float32)
    model = check(m, blob, x)
    assert sum(isinstance(la, L.BatchNormalization) for la in model.layers) == 3


def test_depthwise_separable_hardswish_squeeze_excite():
    m = _module(DepthwiseSeparable)
    blob = export(m, (2, 3, 16, 16), {"x": {0: "n"}, "y": {0: "n"}}, opset=13)
    x = np.random.default_rng(2).standard_normal((5, 3, 16, 16)).astype(np.float32)
    model = check(m, blob, x)
    kinds = {type(la).__name__ for la in model.layers}
    assert {"DepthwiseConv2D", "Multiply", "Dense", "Flatten"} <= kinds, kinds
    assert sum(isinstance(la, L.Permute) for la in model.layers) == 1


@pytest.mark.parametrize("opset", [11, 17])
def test_decoder_conv_transpose_and_resize(opset):
    m = _module(Decoder)
    blob = export(m, (1, 3, 16, 16), {"x": {0: "n"}, "y": {0: "n"}}, opset=opset)
    x = np.random.default_rng(3).standard_normal((2, 3, 16, 16)).astype(np.float32)
    model = check(m, blob, x)
    kinds = [type(la).__name__ for la in model.layers]
    assert "Conv2DTranspose" in kinds and kinds.count("Resize") == 3
    assert model.output_shape == (None, 1, 16, 16)


@pytest.mark.parametrize("opset", [9, 13])
def test_relu6_pytorch_pooling_and_upsample(opset):
    m = _module(PoolsAndUpsample)
    blob = export(m, (1, 3, 15, 13), {"x": {0: "n"}, "y": {0: "n"}}, opset=opset)
    x = np.random.default_rng(6).standard_normal((4, 3, 15, 13)).astype(np.float32)
    check(m, blob, x)


def test_channel_shuffle_stays_channels_last():
    m = _module(ChannelShuffle)
    blob = export(m, (2, 3, 8, 8), {"x": {0: "n"}, "y": {0: "n"}}, opset=13)
    x = np.random.default_rng(5).standard_normal((3, 3, 8, 8)).astype(np.float32)
    model = check(m, blob, x)
    # the input's transpose, the shuffle's own one, the 4-D output's
    assert sum(isinstance(la, L.Permute) for la in model.layers) == 3


def test_imported_model_trains_and_round_trips(tmp_path):
    """fit lowers the loss of an imported model; save/load as .cnnkit keeps its outputs."""
    import cnnkit

    cnnkit.random.seed(0)  # the shuffling of fit
    m = _module(Residual, 2)
    model = load_onnx(export(m, (2, 3, 16, 16), {"x": {0: "n"}, "y": {0: "n"}}, fold=False))
    rng = np.random.default_rng(4)
    x = rng.standard_normal((64, 3, 16, 16)).astype(np.float32)
    y = (x[:, 0].mean((1, 2)) > 0).astype(np.int64) + 2 * (x[:, 1].mean((1, 2)) > 0)
    model.compile(optimizer=_adam(0.01), loss=_logits_loss())
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=10, batch_size=16, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    loss0 = before[0] if isinstance(before, list) else before
    loss1 = after[0] if isinstance(after, list) else after
    assert loss1 < 0.6 * loss0, (loss0, loss1)
    path = tmp_path / "imported.cnnkit"
    model.save(path)
    again = load_model(path)
    np.testing.assert_allclose(again.predict(x[:8]), model.predict(x[:8]), rtol=1e-5,
                               atol=1e-6)
    again.summary()


def _logits_loss():
    from cnnkit.train import losses

    return losses.SparseCategoricalCrossentropy(from_logits=True)


def _adam(lr: float):
    from cnnkit.optimizers import Adam

    return Adam(learning_rate=lr)
