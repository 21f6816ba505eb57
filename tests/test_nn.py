"""cnnkit.nn builders against torch.nn: the same weights (copied with the layout transposes of
cnnkit.io.torch_weights) give the same outputs, the parameter counts are torch's, and
BatchNorm2d's running statistics follow torch's momentum 0.1 and unbiased variance."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import torch_or_skip

from cnnkit import nn
from cnnkit.io.torch_weights import conv_kernel, linear_kernel

torch = torch_or_skip()
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
RNG = np.random.default_rng(12)


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().transpose(0, 2, 3, 1)


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _trainable(layer) -> int:
    return sum(w.size for w in layer.parameters())


def _copy_conv(ours, theirs) -> None:
    values = [conv_kernel(theirs.weight.detach().numpy())]
    if theirs.bias is not None:
        values.append(theirs.bias.detach().numpy())
    ours.set_weights(values)


CONV_CASES = [
    dict(in_channels=3, out_channels=8, kernel_size=3, padding=1),
    dict(in_channels=3, out_channels=8, kernel_size=3, stride=2, padding=1),
    dict(in_channels=4, out_channels=6, kernel_size=(3, 5), stride=(1, 2), padding=(0, 2)),
    dict(in_channels=4, out_channels=6, kernel_size=3, padding=2, dilation=2, groups=2),
    dict(in_channels=2, out_channels=5, kernel_size=5, stride=1, padding=0, bias=False),
    dict(in_channels=2, out_channels=5, kernel_size=4, padding="same"),
]


@pytest.mark.parametrize("kw", CONV_CASES,
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_conv2d_matches_torch(kw):
    theirs = torch.nn.Conv2d(**kw)
    ours = nn.Conv2d(**kw)
    assert _trainable(ours) == _n_params(theirs)
    _copy_conv(ours, theirs)
    x = RNG.standard_normal((2, 11, 12, kw["in_channels"])).astype(np.float32)
    np.testing.assert_allclose(ours(x).data, _nhwc(theirs(_nchw(x))), rtol=1e-4, atol=1e-5)


def test_linear_matches_torch_and_torch_init_bounds():
    theirs = torch.nn.Linear(50, 7)
    ours = nn.Linear(50, 7)
    assert _trainable(ours) == _n_params(theirs) == 50 * 7 + 7
    bound = 1 / np.sqrt(50)  # torch's kaiming_uniform_(a=sqrt(5)) and bias bound
    for w in ours.parameters():
        assert np.abs(w.data).max() <= bound + 1e-7
    assert np.abs(ours.kernel.data).max() > 0.8 * bound
    ours.set_weights([linear_kernel(theirs.weight.detach().numpy()),
                      theirs.bias.detach().numpy()])
    x = RNG.standard_normal((4, 50)).astype(np.float32)
    np.testing.assert_allclose(ours(x).data, theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_flatten_then_linear_needs_the_feature_reorder():
    theirs = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 5, 6))
    ours = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 5, 6))
    w = theirs[1].weight.detach().numpy()
    ours.set_weights([linear_kernel(w, flatten_from=(4, 5, 3)), theirs[1].bias.detach().numpy()])
    x = RNG.standard_normal((2, 4, 5, 3)).astype(np.float32)
    expected = theirs(_nchw(x)).detach().numpy()
    np.testing.assert_allclose(ours(x).data, expected, rtol=1e-5, atol=1e-6)
    ours.set_weights([linear_kernel(w), theirs[1].bias.detach().numpy()])  # no reorder: wrong
    assert not np.allclose(ours(x).data, expected, atol=1e-3)


def test_batchnorm2d_training_step_and_running_stats_match_torch():
    theirs = torch.nn.BatchNorm2d(6)
    ours = nn.BatchNorm2d(6)
    assert _trainable(ours) == _n_params(theirs) == 12
    assert ours.count_params() == 12 + theirs.running_mean.numel() + theirs.running_var.numel()
    assert ours.momentum == pytest.approx(0.9) and ours.epsilon == 1e-5
    theirs.train()
    for step in range(3):
        x = (RNG.standard_normal((3, 5, 4, 6)) * (step + 2) + step).astype(np.float32)
        np.testing.assert_allclose(ours(x, training=True).data, _nhwc(theirs(_nchw(x))),
                                   rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.moving_mean.data, theirs.running_mean.numpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.data, theirs.running_var.numpy(), rtol=1e-5)
    theirs.eval()
    x = RNG.standard_normal((2, 3, 3, 6)).astype(np.float32)
    np.testing.assert_allclose(ours(x).data, _nhwc(theirs(_nchw(x))), rtol=1e-4, atol=1e-5)


def test_batchnorm1d_running_stats_match_torch():
    theirs, ours = torch.nn.BatchNorm1d(5, momentum=0.3), nn.BatchNorm1d(5, momentum=0.3)
    x = (RNG.standard_normal((8, 5)) * 3 + 1).astype(np.float32)
    np.testing.assert_allclose(ours(x, training=True).data,
                               theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(ours.moving_variance.data, theirs.running_var.numpy(), rtol=1e-5)


@pytest.mark.parametrize("ours, theirs", [
    (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2)),
    (lambda: nn.MaxPool2d(3, stride=2), lambda: torch.nn.MaxPool2d(3, stride=2)),
    (lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1), lambda: torch.nn.AvgPool2d(3, 2, padding=1)),
    (lambda: nn.AdaptiveAvgPool2d(3), lambda: torch.nn.AdaptiveAvgPool2d(3)),
    (lambda: nn.ReLU(inplace=True), lambda: torch.nn.ReLU()),
    (lambda: nn.LeakyReLU(), lambda: torch.nn.LeakyReLU()),
    (lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid()),
    (lambda: nn.Tanh(), lambda: torch.nn.Tanh()),
    (lambda: nn.Identity(), lambda: torch.nn.Identity()),
], ids=["max2", "max3s2", "avg2", "avg3s2p1", "adaptive3", "relu", "leaky", "sigmoid", "tanh",
        "identity"])
def test_parameter_free_layers_match_torch(ours, theirs):
    x = RNG.standard_normal((2, 9, 10, 3)).astype(np.float32)
    np.testing.assert_allclose(ours()(x).data, _nhwc(theirs()(_nchw(x))), rtol=1e-5, atol=1e-6)


def test_dropout_training_and_inference():
    x = np.ones((200, 100), np.float32)
    layer = nn.Dropout(0.25)
    np.testing.assert_array_equal(layer(x).data, x)  # inference: identity, as torch's eval()
    y = layer(x, training=True).data
    kept = y != 0
    assert 0.70 < kept.mean() < 0.80  # 20,000 draws: 0.75 +- 0.01 (3 sigma)
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)  # torch's 1/(1-p) scaling


def test_softmax_is_over_the_class_axis():
    x = RNG.standard_normal((4, 7)).astype(np.float32)
    expected = torch.nn.Softmax(dim=1)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(nn.Softmax(dim=1)(x).data, expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="class axis"):
        nn.Softmax(dim=0)


class _TorchLeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, kernel_size=5, stride=1, padding=2)
        self.conv2 = torch.nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = torch.nn.Linear(16 * 5 * 5, 120)
        self.fc2 = torch.nn.Linear(120, 10)

    def forward(self, x):
        x = torch.nn.functional.avg_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.nn.functional.avg_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class _LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, stride=1, padding=2)
        self.pool = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 10)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


def test_module_forward_matches_torch_module():
    theirs, ours = _TorchLeNet(), _LeNet()
    assert _trainable(ours) == _n_params(theirs)
    _copy_conv(ours.conv1, theirs.conv1)
    _copy_conv(ours.conv2, theirs.conv2)
    ours.fc1.set_weights([linear_kernel(theirs.fc1.weight.detach().numpy(), (5, 5, 16)),
                          theirs.fc1.bias.detach().numpy()])
    ours.fc2.set_weights([linear_kernel(theirs.fc2.weight.detach().numpy()),
                          theirs.fc2.bias.detach().numpy()])
    x = RNG.standard_normal((3, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(ours(x).data, theirs(_nchw(x)).detach().numpy(), rtol=1e-4,
                               atol=1e-5)


def test_training_flag_reaches_layers_called_inside_forward():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return self.drop(x)

    x = np.ones((50, 40), np.float32)
    net = Net()
    np.testing.assert_array_equal(net(x).data, x)
    assert (net(x, training=True).data == 0).any()


def test_unsupported_torch_arguments_say_so():
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(1, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="-inf"):
        nn.MaxPool2d(3, padding=1)
    with pytest.raises(ValueError, match="momentum=None"):
        nn.BatchNorm2d(4, momentum=None)
    with pytest.raises(ValueError, match="start_dim"):
        nn.Flatten(2)


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_conv1d_matches_torch(padding):
    theirs, ours = torch.nn.Conv1d(4, 6, 3, padding=padding), nn.Conv1d(4, 6, 3, padding=padding)
    assert _trainable(ours) == _n_params(theirs)
    _copy_conv(ours, theirs)
    x = RNG.standard_normal((2, 9, 4)).astype(np.float32)
    expected = theirs(torch.from_numpy(x.transpose(0, 2, 1).copy())).detach().numpy()
    np.testing.assert_allclose(ours(x).data, expected.transpose(0, 2, 1), rtol=1e-4, atol=1e-5)


def test_embedding_looks_up_torch_rows():
    theirs, ours = torch.nn.Embedding(20, 5), nn.Embedding(20, 5)
    assert _trainable(ours) == _n_params(theirs)
    ours.set_weights([theirs.weight.detach().numpy()])
    ids = RNG.integers(0, 20, (3, 7))
    np.testing.assert_allclose(ours(ids).data, theirs(torch.from_numpy(ids)).detach().numpy())


def test_nn_built_model_saves_and_loads(tmp_path):
    from cnnkit import models

    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    x = RNG.standard_normal((2, 8, 8, 1)).astype(np.float32)
    model(x, training=True)  # moves the running statistics away from their initial values
    model.save(tmp_path / "m.cnnkit")
    loaded = models.load_model(tmp_path / "m.cnnkit")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    bn = [la for la in loaded.layers if type(la).__name__ == "BatchNormalization"][0]
    assert bn.unbiased_variance and bn.momentum == pytest.approx(0.9)
