"""PyTorch's data and device habits: DataLoader / TensorDataset against torch.utils.data,
torchvision-style transforms against their formulas, MNIST-style datasets against the IDX
bytes, ``device`` / ``.to()``, and Tensor comparisons against torch."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
from helpers import shared_path, torch_or_skip

import cnnkit
from cnnkit import Tensor, datasets, nn
from cnnkit.data import DataLoader, TensorDataset
from cnnkit.data import transforms as T

rng = np.random.default_rng(0)


@pytest.mark.parametrize("n, bs, drop", [(10, 3, False), (10, 3, True), (9, 3, False),
                                         (2, 5, False)])
def test_dataloader_batches_equal_torch(n, bs, drop):
    torch = torch_or_skip()
    x = rng.standard_normal((n, 4, 4, 1)).astype(np.float32)
    y = rng.integers(0, 10, n)
    ours = DataLoader(TensorDataset(x, y), batch_size=bs, drop_last=drop)
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=bs, drop_last=drop)
    assert len(ours) == len(theirs)
    got, want = list(ours), list(theirs)
    assert len(got) == len(want)
    for (a, b), (ta, tb) in zip(got, want, strict=True):
        np.testing.assert_array_equal(a.numpy(), ta.numpy())
        np.testing.assert_array_equal(b.numpy(), tb.numpy())
        assert a.dtype == np.float32 and b.dtype == np.int64 == tb.numpy().dtype


def test_dataloader_shuffles_each_pass_without_repeats():
    y = np.arange(23)
    loader = DataLoader(TensorDataset(y), batch_size=5, shuffle=True,
                        generator=np.random.default_rng(1))
    first = np.concatenate([b.numpy() for (b,) in loader])
    second = np.concatenate([b.numpy() for (b,) in loader])
    assert sorted(first) == sorted(second) == list(range(23))
    assert not np.array_equal(first, second) and not np.array_equal(first, y)


def test_dataloader_per_item_path_and_errors():
    class Squares:  # a plain Python dataset, as users write for torch
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return np.full((2,), i, np.float32), i * i

    xs, ys = zip(*DataLoader(Squares(), batch_size=4), strict=True)
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x in xs])[:, 0], np.arange(7))
    np.testing.assert_array_equal(np.concatenate([y.numpy() for y in ys]), np.arange(7) ** 2)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DataLoader(Squares(), batch_size=0)
    with pytest.raises(TypeError, match="__len__ and __getitem__"):
        DataLoader(5)
    with pytest.raises(ValueError, match="same length"):
        TensorDataset(np.zeros(3), np.zeros(4))


def test_to_tensor_and_normalize_formulas():
    img = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    t = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.5))])(img)
    want = (img.astype(np.float64) / 255 - [0.5, 0.4, 0.3]) / [0.2, 0.25, 0.5]
    assert isinstance(t, Tensor) and t.shape == (5, 6, 3)  # channels-last, the one rule
    np.testing.assert_allclose(t.numpy(), want, rtol=1e-5, atol=1e-6)
    gray = T.ToTensor()(img[:, :, 0])
    assert gray.shape == (5, 6, 1)
    with pytest.raises(TypeError, match="put ToTensor"):
        T.Normalize((0.5,), (0.5,))(img)


@pytest.mark.parametrize("h, w, size", [(100, 120, 64), (120, 100, 64), (50, 50, 20),
                                        (37, 91, 16)])
def test_resize_shorter_side_and_center_crop(h, w, size):
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = T.Resize(size)(img)
    short, long = min(h, w), max(h, w)
    expect_long = int(size * long / short)  # torchvision's rule, written out
    assert out.shape == ((size, expect_long, 3) if h <= w else (expect_long, size, 3))
    assert out.dtype == np.uint8  # pixels stay 0-255 until ToTensor
    crop = T.CenterCrop(size)(out)
    top, left = (out.shape[0] - size) // 2, (out.shape[1] - size) // 2
    np.testing.assert_array_equal(crop, out[top:top + size, left:left + size])


def test_random_transforms_keep_shape_and_range():
    cnnkit.random.seed(3)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    pipe = T.Compose([T.RandomResizedCrop(32), T.RandomHorizontalFlip(), T.RandomRotation(15),
                      T.ColorJitter(0.2, 0.2, 0.2, 0.1), T.RandomAffine(0, translate=(0.1, 0.1)),
                      T.ToTensor(), T.ColorJitter(brightness=0.5)])
    out = pipe(img)
    assert out.shape == (32, 32, 3) and 0 <= out.numpy().min() and out.numpy().max() <= 1
    flipped = T.RandomHorizontalFlip(p=1.0)(img)
    np.testing.assert_array_equal(flipped, img[:, ::-1])


def _idx_labels(path):
    raw = gzip.open(path).read()
    assert int.from_bytes(raw[:4], "big") == 2049  # IDX magic of a uint8 vector
    n = int.from_bytes(raw[4:8], "big")
    return np.frombuffer(raw, np.uint8, n, 8)


def test_fashion_mnist_dataset_reads_the_idx_files():
    root = shared_path("datasets", "fashion-mnist")
    ds = datasets.FashionMNIST(root=root, train=False, transform=T.ToTensor())
    labels = _idx_labels(root / "t10k-labels-idx1-ubyte.gz")
    assert len(ds) == len(labels) == 10000
    img, label = ds[17]
    assert label == labels[17] and img.shape == (28, 28, 1) and img.dtype == np.float32
    x, y = next(iter(DataLoader(ds, batch_size=64)))
    np.testing.assert_array_equal(y.numpy(), labels[:64])
    assert x.shape == (64, 28, 28, 1)


def test_device_habits():
    dev = cnnkit.device("cuda" if cnnkit.cuda.is_available() else "cpu")
    assert dev == cnnkit.device("cpu") and str(cnnkit.device("cpu:0")) == "cpu:0"
    model = nn.Sequential(nn.Linear(3, 2))
    assert model.to(dev) is model
    t = Tensor(np.ones(3, np.float32))
    assert t.to(dev) is t and t.to("cpu") is t
    with pytest.raises(ValueError, match="only 'cpu' is available"):
        t.to("cuda")
    with pytest.raises(ValueError, match="only 'cpu' is available"):
        model.to(cnnkit.device("cuda:0"))


def test_comparisons_and_max_match_torch():
    torch = torch_or_skip()
    a = rng.standard_normal((6, 5)).astype(np.float32)
    b = rng.integers(0, 5, 6)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    _, pred = Tensor(a).max(1)
    _, tpred = ta.max(1)
    np.testing.assert_array_equal(pred.numpy(), tpred.numpy())
    for name in ("eq", "ne", "gt", "lt", "ge", "le"):
        np.testing.assert_array_equal(getattr(pred, name)(Tensor(b)).numpy(),
                                      getattr(tpred, name)(tb).numpy())
    assert pred.eq(Tensor(b)).sum().item() == tpred.eq(tb).sum().item()
    assert isinstance(pred.eq(Tensor(b)).sum().item(), int)
    np.testing.assert_array_equal((pred == b).numpy(), (tpred == tb).numpy())
    np.testing.assert_array_equal((b == pred).numpy(), (tb == tpred).numpy())
    assert Tensor(a).unsqueeze(0).shape == tuple(ta.unsqueeze(0).shape)
    assert Tensor(a[:1]).squeeze(0).shape == tuple(ta[:1].squeeze(0).shape)
    assert Tensor(a).argmax(1).numpy().tolist() == ta.argmax(1).tolist()


def test_tensor_truth_and_hash():
    t = Tensor(np.ones(3, np.float32))
    assert {t: 1}[t] == 1 and t in [t]
    assert bool(Tensor(np.array([2.0])))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(t)
    assert math.isclose(float(Tensor(np.float32(2.5))), 2.5)
