"""The pieces of the training recipes: random erasing (torchvision's sampling rule, written out
here), label smoothing in the sparse cross-entropy (PyTorch), the small residual network
(a closed-form parameter count) and the recipes' test-time augmentation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import torch_or_skip

from cnnkit import zoo
from cnnkit.data import RandomElastic, RandomErasing, deserialize, serialize
from cnnkit.data.elastic import gaussian_smooth
from cnnkit.train import losses as L


# ----- random erasing ------------------------------------------------------------------------
def _torchvision_rule(h: int, w: int, p: float, scale: tuple, ratio: tuple,
                      rng: np.random.Generator) -> tuple[int, int]:
    """One draw of torchvision's RandomErasing.get_params (box height, width; 0, 0 when the
    image is kept), written from its documentation as a plain loop."""
    if rng.random() >= p:
        return 0, 0
    for _ in range(10):
        target = h * w * rng.uniform(scale[0], scale[1])
        r = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        bh, bw = int(round(math.sqrt(target * r))), int(round(math.sqrt(target / r)))
        if bh < h and bw < w:
            return bh, bw
    return 0, 0


def _boxes_of(out: np.ndarray, marker: float) -> list[tuple[int, int]]:
    """(height, width) of the marked rectangle of each image; (0, 0) where none; asserts the
    marked pixels form one full axis-aligned rectangle in every channel."""
    sizes = []
    for img in out:
        r, c = np.nonzero(img[..., 0] == marker)
        if len(r) == 0:
            sizes.append((0, 0))
            continue
        bh, bw = r.max() - r.min() + 1, c.max() - c.min() + 1
        assert len(r) == bh * bw
        assert (img[r.min():r.max() + 1, c.min():c.max() + 1] == marker).all()
        sizes.append((int(bh), int(bw)))
    return sizes


def test_random_erasing_box_sizes_follow_torchvisions_rule():
    n, h, w = 6000, 28, 20
    scale, ratio, p = (0.02, 0.4), (0.3, 3.3), 0.7
    x = np.ones((n, h, w, 2), np.float32)
    out, y = RandomErasing(p=p, scale=scale, ratio=ratio, value=-1.0)(x, np.arange(n), rng=3)
    assert y.tolist() == list(range(n)) and out.dtype == np.float32
    got = np.array(_boxes_of(out, -1.0), float)
    rng = np.random.default_rng(11)
    ref = np.array([_torchvision_rule(h, w, p, scale, ratio, rng) for _ in range(n)], float)
    # erased fraction p (less the draws where no box fits: none here, h * w * 0.4 is small)
    assert (got[:, 0] > 0).mean() == pytest.approx((ref[:, 0] > 0).mean(), abs=0.03)
    kept = got[got[:, 0] > 0]
    ref_kept = ref[ref[:, 0] > 0]
    for k in (0, 1):  # box height and width: mean and quartiles as the rule's
        assert kept[:, k].mean() == pytest.approx(ref_kept[:, k].mean(), rel=0.03)
        assert np.percentile(kept[:, k], [25, 50, 75]) == pytest.approx(
            np.percentile(ref_kept[:, k], [25, 50, 75]), abs=1.01)
    area = kept[:, 0] * kept[:, 1] / (h * w)
    assert area.min() >= 0.005 and area.max() <= 0.55  # the scale range widened by rounding


def test_random_erasing_positions_are_uniform_and_inside():
    n = 4000
    x = np.zeros((n, 10, 10, 1), np.uint8)
    out, _ = RandomErasing(p=1.0, scale=(0.04, 0.04), ratio=(1.0, 1.0), value=9)(x, rng=0)
    assert out.dtype == np.uint8
    tops = []
    for img in out:  # every box is 2x2 (area 4 of 100, ratio 1); corners in 0..8
        r, c = np.nonzero(img[..., 0] == 9)
        assert len(r) == 4 and r.max() - r.min() == 1 and c.max() - c.min() == 1
        tops.append(r.min())
    counts = np.bincount(tops, minlength=9)
    assert len(counts) == 9 and counts.min() > n / 9 * 0.8 and counts.max() < n / 9 * 1.2


def test_random_erasing_values_and_edge_cases():
    x = np.full((8, 6, 6, 3), 100, np.uint8)
    assert (RandomErasing(p=0.0)(x, rng=0)[0] == x).all()
    # no box fits: scale 1 with ratio 1 asks for a 6x6 box, which is not smaller than 6x6
    assert (RandomErasing(p=1.0, scale=(1.0, 1.0), ratio=(1.0, 1.0))(x, rng=0)[0] == x).all()
    per_channel = RandomErasing(p=1.0, value=(1, 2, 3))(x.astype(np.float32), rng=0)[0]
    changed = (per_channel != 100).any(axis=-1)
    assert changed.any(axis=(1, 2)).all()
    assert (per_channel[changed] == [1, 2, 3]).all()
    noisy = RandomErasing(p=1.0, value="random")(np.zeros((64, 12, 12, 1), np.float32),
                                                 rng=0)[0]
    inside = noisy[noisy != 0]
    assert inside.size > 64 and abs(inside.mean()) < 0.2 and 0.8 < inside.std() < 1.2
    aug = RandomErasing(p=0.25, scale=(0.1, 0.2), ratio=(0.5, 2.0), value=(1, 2, 3))
    assert serialize(deserialize(serialize(aug))) == serialize(aug)


@pytest.mark.parametrize("kwargs, message", [
    ({"p": 1.5}, "p must lie in"),
    ({"scale": (0.3, 0.1)}, "scale must be"),
    ({"scale": (0.1, 1.5)}, "scale must lie in"),
    ({"ratio": (0.0, 2.0)}, "ratio must be"),
    ({"value": "noise"}, "value must be"),
])
def test_random_erasing_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RandomErasing(**kwargs)
    with pytest.raises(TypeError, match="pair"):
        RandomErasing(scale=0.2)
    with pytest.raises(ValueError, match="3 entries, the images 1 channels"):
        RandomErasing(value=(1, 2, 3))(np.zeros((2, 5, 5, 1)), rng=0)


# ----- elastic distortion -------------------------------------------------------------------
def test_gaussian_smooth_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage", reason="scipy is not installed")
    f = np.random.default_rng(0).uniform(-1, 1, (3, 28, 20))
    for sigma in (0.8, 4.0):
        ref = np.stack([ndimage.gaussian_filter(g, sigma, mode="mirror") for g in f])
        np.testing.assert_allclose(gaussian_smooth(f, sigma), ref, atol=1e-12)


def test_random_elastic_moves_pixels_as_scipy_map_coordinates():
    ndimage = pytest.importorskip("scipy.ndimage", reason="scipy is not installed")
    x = np.random.default_rng(1).uniform(0, 255, (4, 28, 28, 2)).astype(np.float32)
    aug = RandomElastic(alpha=34.0, sigma=4.0, p=0.5, fill_value=3.0)
    out, _ = aug(x, rng=np.random.default_rng(7))
    dy, dx = aug.displacements(4, 28, 28, np.random.default_rng(7))  # the same draws
    assert np.abs(dy).max() > 0.5 and np.abs(dx).max() > 0.5  # pixels really move
    rows, cols = np.mgrid[0:28, 0:28].astype(np.float64)
    for n in range(4):
        for c in range(2):
            ref = ndimage.map_coordinates(x[n, ..., c].astype(np.float64),
                                          [rows + dy[n], cols + dx[n]], order=1,
                                          mode="grid-constant", cval=3.0)
            np.testing.assert_allclose(out[n, ..., c], ref, rtol=1e-5, atol=1e-3)
    assert out.dtype == np.float32
    assert (RandomElastic(alpha=0.0)(x, rng=0)[0] == x).all()
    assert (RandomElastic(p=0.0)(x, rng=0)[0] == x).all()
    assert serialize(deserialize(serialize(aug))) == serialize(aug)
    for kwargs, message in (({"alpha": -1}, "alpha"), ({"sigma": 0}, "sigma"),
                            ({"p": 2}, "p must")):
        with pytest.raises(ValueError, match=message):
            RandomElastic(**kwargs)


# ----- label smoothing -----------------------------------------------------------------------
@pytest.mark.parametrize("smooth", [0.0, 0.1, 0.3])
def test_sparse_cross_entropy_label_smoothing_matches_torch(smooth):
    torch = torch_or_skip()
    from cnnkit import Tensor

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (7, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 7)
    x = Tensor(logits, requires_grad=True)
    loss = L.SparseCategoricalCrossentropy(from_logits=True, label_smoothing=smooth)(labels, x)
    loss.backward()
    xt = torch.tensor(logits, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(xt, torch.tensor(labels), label_smoothing=smooth)
    ref.backward()
    assert float(loss.data) == pytest.approx(ref.item(), rel=1e-5)
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-5, atol=1e-7)
    # probabilities in: -sum_c t_c log p_c with t = (1 - e) onehot + e / C, written out here
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    t = (1 - smooth) * np.eye(5)[labels] + smooth / 5
    expect = -(t * np.log(probs)).sum(-1).mean()
    got = L.SparseCategoricalCrossentropy(label_smoothing=smooth)(labels, probs)
    assert float(got.data) == pytest.approx(expect, rel=1e-5)


def test_sparse_cross_entropy_label_smoothing_with_ignored_positions_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (9, 4)).astype(np.float32)
    labels = rng.integers(0, 4, 9)
    labels[[1, 5]] = 3
    loss = L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=3,
                                           label_smoothing=0.2)(labels, logits)
    ref = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels),
                                            ignore_index=3, label_smoothing=0.2)
    assert float(loss.data) == pytest.approx(float(ref), rel=1e-5)


def test_label_smoothing_config_and_errors():
    loss = L.SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    assert L.SparseCategoricalCrossentropy(**{
        k: v for k, v in loss.get_config().items() if k != "reduction" or v}).label_smoothing \
        == 0.1
    assert "label_smoothing" not in L.SparseCategoricalCrossentropy().get_config()
    with pytest.raises(ValueError, match=r"label_smoothing must lie in \[0, 1\], got 1.5"):
        L.SparseCategoricalCrossentropy(label_smoothing=1.5)


# ----- small_resnet --------------------------------------------------------------------------
def _conv_bn(cin: int, cout: int, k: int) -> int:
    return k * k * cin * cout + 2 * cout  # bias-free conv, BN gamma and beta


def _expected_params(widths: tuple, blocks: tuple, channels: int, classes: int) -> int:
    """Trainable parameters of small_resnet counted by hand from its docstring."""
    total, cin = _conv_bn(channels, widths[0], 3), widths[0]
    for w, n in zip(widths, blocks, strict=True):
        for _ in range(n):
            total += _conv_bn(cin, w, 3) + _conv_bn(w, w, 3)
            if cin != w:
                total += _conv_bn(cin, w, 1)
            cin = w
    return total + cin * classes + classes


@pytest.mark.parametrize("widths, blocks, shape", [
    ((32, 64, 128), (1, 1, 1), (28, 28, 1)),
    ((16, 32), (2, 1), (32, 32, 3)),
])
def test_small_resnet_parameter_count_and_shape(widths, blocks, shape):
    model = zoo.get("small_resnet", input_shape=shape, classes=7, widths=widths,
                    blocks=blocks)
    assert zoo.count_params(model) == _expected_params(widths, blocks, shape[-1], 7)
    out = model.predict(np.zeros((2, *shape), np.float32))
    assert out.shape == (2, 7)
    with pytest.raises(ValueError, match="one entry per stage"):
        zoo.get("small_resnet", widths=(8, 16), blocks=(1,))


def test_small_resnet16_is_the_16_32_64_network():
    model = zoo.get("small_resnet16")
    assert zoo.count_params(model) == _expected_params((16, 32, 64), (1, 1, 1), 1, 10) == 77754
    assert model.name == "small_resnet16"


# ----- the command line's recipe options -----------------------------------------------------
def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _moved(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[i, j] = x[i - dy, j - dx], zero outside: a window of the 1-pixel zero-padded x."""
    h, w = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return padded[:, 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]


def test_train_with_label_smoothing_and_shift_tta(tmp_path, capsys):
    from cnnkit.cli import main
    from cnnkit.datasets import mnist5k
    from cnnkit.models import load_model

    out_dir = tmp_path / "run"
    code = main(["train", "--model", "lenet5", "--epochs", "1", "--lr", "2e-3", "--quiet",
                 "--augment", "light-erase", "--label-smoothing", "0.1", "--tta", "shift",
                 "--out", str(out_dir)])
    out = capsys.readouterr().out
    assert code == 0 and "with shift TTA:" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["recipe"]["label_smoothing"] == 0.1 and metrics["recipe"]["tta"] == "shift"
    assert metrics["train_cpu_seconds"] > 0
    # the TTA accuracy again: the saved model's softmax averaged over the five views
    model = load_model(out_dir / "model.cnnkit")
    (_, _), (xv, yv) = mnist5k.load_data()
    xv = xv.reshape(-1, 28, 28, 1).astype(np.float32)
    views = [xv] + [_moved(xv, dy, dx) for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    mean = np.mean([_softmax(np.asarray(model.predict(v), np.float64)) for v in views], 0)
    assert metrics["test_accuracy_tta"] == pytest.approx((mean.argmax(-1) == yv).mean())
    assert metrics["test_accuracy"] > 0.4  # one epoch of LeNet-5 on raw pixels; chance is 0.1
