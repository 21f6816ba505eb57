"""Your own data: image folders and single images (checked against Pillow's own decoding),
.npz and CSV files, train/validation splits, BatchIterator (epochs, seeds, drop_last,
prefetch threads, transforms, model.fit) and test-time augmentation."""

import gzip
import shutil
import threading
import time

import numpy as np
import pytest
from helpers import shared_path

from cnnkit.data import (
    BatchIterator,
    Compose,
    RandomCrop,
    RandomFlip,
    image_dataset_from_directory,
    load_csv,
    load_image,
    load_npz,
    train_val_split,
    tta_predict,
)

Image = pytest.importorskip("PIL.Image", reason="Pillow is needed for image files")


# ----- image folders --------------------------------------------------------------------------
def write_folder(root, counts=None, size=(6, 5), mode="RGB"):
    """root/<class>/<k>.png; every pixel of image k of class c is (10 c + k, 100 + k, 7)."""
    counts = counts or {"cat": 3, "dog": 4, "emu": 2}
    for c, (name, n) in enumerate(sorted(counts.items())):
        (root / name).mkdir(parents=True)
        for k in range(n):
            arr = np.empty((size[0], size[1], 3), np.uint8)
            arr[...] = (10 * c + k, 100 + k, 7)
            Image.fromarray(arr).convert(mode).save(root / name / f"{k}.png")
    return counts


def test_image_folder_loads_labels_with_their_images(tmp_path):
    write_folder(tmp_path)
    (tmp_path / "cat" / "notes.txt").write_text("not an image, skipped by extension")
    (tmp_path / "dog" / ".hidden.png").write_bytes(b"skipped: hidden")
    x, y, names = image_dataset_from_directory(tmp_path, seed=0)
    assert names == ["cat", "dog", "emu"]
    assert x.shape == (9, 6, 5, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [3, 4, 2]
    np.testing.assert_array_equal(x[:, 0, 0, 0] // 10, y)  # the pixel encodes the class
    assert sorted(x[:, 0, 0, 0].tolist()) == [0, 1, 2, 10, 11, 12, 13, 20, 21]
    x2, y2, _ = image_dataset_from_directory(tmp_path, shuffle=False)
    np.testing.assert_array_equal(y2, [0, 0, 0, 1, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(x2[:, 0, 0, 0], [0, 1, 2, 10, 11, 12, 13, 20, 21])
    x3, y3, names3 = image_dataset_from_directory(tmp_path, class_names=["emu", "cat"],
                                                  shuffle=False)
    assert names3 == ["emu", "cat"]
    np.testing.assert_array_equal(y3, [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(x3[:, 0, 0, 0], [20, 21, 0, 1, 2])


def test_image_folder_grayscale_and_resize_match_pillow(tmp_path):
    write_folder(tmp_path, {"a": 1, "b": 1}, size=(9, 11))
    big = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "a" / "z.png")
    x, y, _ = image_dataset_from_directory(tmp_path, image_size=(4, 6), color_mode="grayscale",
                                           shuffle=False)
    assert x.shape == (3, 4, 6, 1)
    ref = Image.fromarray(big).convert("L").resize((6, 4), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(x[1, ..., 0], np.asarray(ref))


def test_image_folder_validation_split(tmp_path):
    write_folder(tmp_path, {"a": 10, "b": 7, "c": 3})
    kw = {"validation_split": 0.25, "seed": 3}
    xt, yt, _ = image_dataset_from_directory(tmp_path, subset="training", **kw)
    xv, yv, _ = image_dataset_from_directory(tmp_path, subset="validation", **kw)
    assert len(xt) == 15 and len(xv) == 5
    codes = sorted(xt[:, 0, 0, 0].tolist() + xv[:, 0, 0, 0].tolist())
    assert codes == sorted(list(range(10)) + list(range(10, 17)) + list(range(20, 23)))
    (xt2, yt2), (xv2, yv2), _ = image_dataset_from_directory(tmp_path, subset="both", **kw)
    assert sorted(xt2[:, 0, 0, 0].tolist()) == sorted(xt[:, 0, 0, 0].tolist())
    assert sorted(xv2[:, 0, 0, 0].tolist()) == sorted(xv[:, 0, 0, 0].tolist())
    np.testing.assert_array_equal(xv2[:, 0, 0, 0] // 10, yv2)


def test_jpeg_from_shared_images(tmp_path):
    src = shared_path("images", "grace_hopper.jpg")
    (tmp_path / "person").mkdir()
    shutil.copy(src, tmp_path / "person" / "hopper.jpg")
    with Image.open(src) as im:
        ref = np.asarray(im.convert("RGB"))
        ref_small = np.asarray(im.convert("RGB").resize((32, 24), Image.Resampling.BILINEAR))
    x, y, names = image_dataset_from_directory(tmp_path)
    assert names == ["person"] and y.tolist() == [0]
    np.testing.assert_array_equal(x[0], ref)
    img = load_image(src, target_size=(24, 32))
    assert img.shape == (24, 32, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, ref_small)
    assert load_image(src, color_mode="grayscale").shape == ref.shape[:2] + (1,)


def test_image_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file: .*missing.png"):
        load_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_text("this is not a PNG")
    with pytest.raises(ValueError, match="cannot read .*bad.png as an image"):
        load_image(bad)
    with pytest.raises(ValueError, match="color_mode must be one of"):
        load_image(bad, color_mode="cmyk")
    root = tmp_path / "data"
    write_folder(root, {"a": 2, "b": 2})
    shutil.copy(bad, root / "b" / "broken.jpg")
    with pytest.raises(ValueError, match="cannot read .*broken.jpg as an image"):
        image_dataset_from_directory(root)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="has no class sub-folders"):
        image_dataset_from_directory(empty)
    (empty / "a").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        image_dataset_from_directory(empty)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        image_dataset_from_directory(tmp_path / "nowhere")
    mixed = tmp_path / "mixed"
    write_folder(mixed, {"a": 1})
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(mixed / "a" / "small.png")
    with pytest.raises(ValueError, match="images differ in size .*pass image_size"):
        image_dataset_from_directory(mixed)
    with pytest.raises(ValueError, match="a seed is required"):
        image_dataset_from_directory(mixed, validation_split=0.5, subset="training")
    with pytest.raises(ValueError, match="go together"):
        image_dataset_from_directory(mixed, validation_split=0.5)
    with pytest.raises(ValueError, match=r"class_names \['zebra'\] have no sub-folder"):
        image_dataset_from_directory(mixed, class_names=["zebra"])


# ----- npz and CSV ----------------------------------------------------------------------------
def test_load_npz(tmp_path):
    x = np.arange(24, dtype=np.float32).reshape(4, 3, 2)
    y = np.array([1, 0, 1, 2])
    np.savez(tmp_path / "d.npz", x=x, y=y, images=x + 1)
    xl, yl = load_npz(tmp_path / "d.npz")
    np.testing.assert_array_equal(xl, x)
    np.testing.assert_array_equal(yl, y)
    xi, none = load_npz(tmp_path / "d.npz", x_key="images", y_key=None)
    assert none is None and np.array_equal(xi, x + 1)
    with pytest.raises(KeyError, match="has no array 'labels' .*x, y, images"):
        load_npz(tmp_path / "d.npz", y_key="labels")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(ValueError, match="without pickle"):
        load_npz(tmp_path / "obj.npz")
    np.savez(tmp_path / "short.npz", x=x, y=y[:3])
    with pytest.raises(ValueError, match="4 samples but 'y' has 3"):
        load_npz(tmp_path / "short.npz")
    with pytest.raises(FileNotFoundError):
        load_npz(tmp_path / "none.npz")


def test_load_csv(tmp_path):
    rows = [[1, 2, 3, 4, 0], [5, 6, 7, 8, 2], [9, 10, 11, 12, 1]]
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    x, y = load_csv(plain, image_shape=(2, 2, 1))
    assert x.shape == (3, 2, 2, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 2, 1])
    np.testing.assert_array_equal(x[1, :, :, 0], [[5, 6], [7, 8]])
    named = tmp_path / "named.csv.gz"
    with gzip.open(named, "wt") as f:
        f.write("label,p0,p1,p2\n0.5,1,2,3\n1.5,4,5,6\n")
    x, y = load_csv(named, label_column="label")
    np.testing.assert_array_equal(x, [[1, 2, 3], [4, 5, 6]])
    assert y.dtype == np.float32 and y.tolist() == [0.5, 1.5]
    x, y = load_csv(named, label_column=None)
    assert x.shape == (2, 4) and y is None
    with pytest.raises(ValueError, match="no column 'target'"):
        load_csv(named, label_column="target")
    with pytest.raises(ValueError, match="cannot be reshaped to image_shape"):
        load_csv(plain, image_shape=(3, 3))
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n4,x,6\n")
    with pytest.raises(ValueError, match="bad.csv is not a numeric table"):
        load_csv(bad)
    with pytest.raises(ValueError, match="out of range for 5 columns"):
        load_csv(plain, label_column=7)


def test_load_csv_mnist5k_matches_embedded_set():
    from cnnkit.datasets import mnist5k

    path = shared_path("datasets", "mnist5k", "mnist_5k.csv.gz")
    x, y = load_csv(path, label_column=-1, image_shape=(28, 28))
    assert x.shape == (5000, 28, 28) and np.bincount(y).tolist() == [500] * 10
    (xtr, ytr), (xte, yte) = mnist5k.load_data()
    table = {img.astype(np.uint8).tobytes(): lab for img, lab in zip(x, y, strict=True)}
    for img, lab in zip(np.concatenate([xtr[:50], xte[:50]]), np.concatenate([ytr[:50],
                                                                              yte[:50]]),
                        strict=True):
        assert table[img.tobytes()] == lab


# ----- splitting ------------------------------------------------------------------------------
def test_train_val_split_stratified():
    y = np.repeat(np.arange(4), [40, 30, 20, 10])
    x = np.arange(100)  # x encodes the sample index
    (xt, yt), (xv, yv) = train_val_split(x, y, 0.2, seed=0)
    assert len(xv) == 20 and len(xt) == 80
    assert np.bincount(yv).tolist() == [8, 6, 4, 2]
    np.testing.assert_array_equal(y[xt], yt)
    np.testing.assert_array_equal(y[xv], yv)
    assert sorted(np.concatenate([xt, xv]).tolist()) == list(range(100))
    again = train_val_split(x, y, 0.2, seed=0)
    np.testing.assert_array_equal(again[1][0], xv)
    other = train_val_split(x, y, 0.2, seed=1)
    assert not np.array_equal(np.sort(other[1][0]), np.sort(xv))
    onehot = np.eye(4)[y]
    (_, _), (_, yv1) = train_val_split(x, onehot, 0.3, seed=0)
    assert yv1.sum(axis=0).tolist() == [12, 9, 6, 3]
    (xt2, yt2), (xv2, yv2) = train_val_split(x, None, 0.1, seed=0, stratify=False)
    assert len(xv2) == 10 and yt2 is None and yv2 is None


def test_train_val_split_rounds_to_exact_total():
    y = np.repeat(np.arange(3), [5, 5, 5])
    (_, yt), (_, yv) = train_val_split(np.zeros((15, 2)), y, 0.2, seed=0)
    assert len(yv) == 3 and np.bincount(yv, minlength=3).tolist() == [1, 1, 1]
    (_, _), (_, yv) = train_val_split(np.zeros(15), y, 0.5, seed=0)
    assert len(yv) == 8 and sorted(np.bincount(yv).tolist()) == [2, 3, 3]


def test_train_val_split_errors():
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\)"):
        train_val_split(np.zeros(10), np.zeros(10), 1.0)
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        train_val_split(np.zeros(10), np.zeros(9), 0.5)
    with pytest.raises(ValueError, match="stratify=False"):
        train_val_split(np.zeros(10), np.linspace(0, 1, 10), 0.5)
    with pytest.raises(ValueError, match="empty validation set"):
        train_val_split(np.zeros(10), None, 0.01)


# ----- BatchIterator --------------------------------------------------------------------------
def coded(n=23):
    """Sample i is an image filled with i; its label is 1000 + i."""
    x = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 4, 4, 1))
    return x.copy(), 1000 + np.arange(n)


def epoch_batches(it):
    return [(xb.copy(), None if yb is None else yb.copy()) for xb, yb in it]


def test_batch_iterator_len_and_drop_last():
    x, y = coded(23)
    it = BatchIterator(x, y, batch_size=5, seed=0)
    assert len(it) == 5
    sizes = [len(xb) for xb, _ in it]
    assert sizes == [5, 5, 5, 5, 3]
    it = BatchIterator(x, y, batch_size=5, seed=0, drop_last=True)
    assert len(it) == 4 and [len(xb) for xb, _ in it] == [5, 5, 5, 5]
    assert len(BatchIterator(x, batch_size=23)) == 1 and len(BatchIterator(x, batch_size=50)) == 1


def test_batch_iterator_epochs_cover_data_and_keep_labels():
    x, y = coded(23)
    it = BatchIterator(x, y, batch_size=4, seed=1)
    orders = []
    for _ in range(3):
        seen = []
        for xb, yb in it:
            np.testing.assert_array_equal(xb[:, 0, 0, 0] + 1000, yb)
            seen += yb.tolist()
        assert sorted(seen) == list(range(1000, 1023))
        orders.append(seen)
    assert orders[0] != orders[1] != orders[2]  # reshuffled every epoch
    plain = [yb.tolist() for _, yb in BatchIterator(x, y, batch_size=10, shuffle=False)]
    assert plain == [list(range(1000, 1010)), list(range(1010, 1020)), [1020, 1021, 1022]]
    xs_only = list(BatchIterator(x, batch_size=10, shuffle=False))
    assert xs_only[0][1] is None and xs_only[2][0].shape == (3, 4, 4, 1)


def test_batch_iterator_same_seed_same_batches():
    x, y = coded(30)
    aug = Compose([RandomFlip("horizontal_and_vertical"), RandomCrop(3, 3, padding=1)])
    a = BatchIterator(x, y, batch_size=8, seed=5, transform=aug)
    b = BatchIterator(x, y, batch_size=8, seed=5, transform=aug)
    c = BatchIterator(x, y, batch_size=8, seed=6, transform=aug)
    for _ in range(2):
        ea, eb, ec = epoch_batches(a), epoch_batches(b), epoch_batches(c)
        for (xa, ya), (xb, yb) in zip(ea, eb, strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
        assert any(not np.array_equal(ya, yc) for (_, ya), (_, yc) in zip(ea, ec, strict=True))
    a.set_epoch(1)
    again = epoch_batches(a)
    b.set_epoch(1)
    for (xa, ya), (xb, yb) in zip(again, epoch_batches(b), strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_batch_iterator_transform_gets_rng_and_labels_follow():
    x, y = coded(20)
    x[:, 0, 0, 0] = -1  # a marker corner: flips move it, the label code stays in the centre

    def transform(xb, yb, rng):
        assert isinstance(rng, np.random.Generator)
        return xb * 2, yb - 1000

    for xb, yb in BatchIterator(x, y, batch_size=6, seed=0,
                                transform=Compose([RandomFlip("horizontal_and_vertical",
                                                              p=0.5), transform])):
        np.testing.assert_array_equal(xb[:, 1, 1, 0], 2 * yb)
        assert ((xb == -2).sum(axis=(1, 2, 3)) == 1).all()


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "cnnkit-BatchIterator-prefetch"]


def wait_no_prefetch_threads():
    for _ in range(100):
        if not prefetch_threads():
            return
        time.sleep(0.02)
    raise AssertionError(f"prefetch threads left running: {prefetch_threads()}")


def test_batch_iterator_prefetch_same_batches_and_no_leaked_threads():
    x, y = coded(40)
    aug = RandomFlip("horizontal_and_vertical")
    plain = epoch_batches(BatchIterator(x, y, batch_size=3, seed=2, transform=aug))
    pre = BatchIterator(x, y, batch_size=3, seed=2, transform=aug, prefetch=2)
    for (xa, ya), (xb, yb) in zip(plain, epoch_batches(pre), strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    wait_no_prefetch_threads()
    for _, _ in pre:  # abandon the pass early: the producer must stop
        assert len(prefetch_threads()) == 1
        break
    wait_no_prefetch_threads()
    gen = iter(pre)
    next(gen)
    gen.close()
    wait_no_prefetch_threads()


def test_batch_iterator_prefetch_reraises_transform_errors():
    x, y = coded(10)

    def broken(xb, yb, rng):
        if yb.min() >= 0:
            raise RuntimeError("augmentation failed")
        return xb, yb

    with pytest.raises(RuntimeError, match="augmentation failed"):
        list(BatchIterator(x, y, batch_size=4, transform=broken, prefetch=3))
    wait_no_prefetch_threads()


def test_batch_iterator_errors():
    x, y = coded(10)
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        BatchIterator(x, y[:9])
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        BatchIterator(x, y, batch_size=0)
    with pytest.raises(ValueError, match="prefetch must be >= 0"):
        BatchIterator(x, y, prefetch=-1)
    with pytest.raises(TypeError, match="transform must be callable"):
        BatchIterator(x, y, transform="flip")


def test_fit_accepts_batch_iterator():
    from cnnkit import layers
    from cnnkit.models import Sequential

    rng = np.random.default_rng(0)
    x = rng.random((40, 6, 6, 1), dtype=np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    model = Sequential([layers.Input((6, 6, 1)), layers.Flatten(), layers.Dense(2)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    it = BatchIterator(x, y, batch_size=8, seed=0, transform=RandomFlip(), prefetch=1)
    history = model.fit(it, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and it.epoch == 2
    wait_no_prefetch_threads()


# ----- test-time augmentation -----------------------------------------------------------------
def test_tta_predict():
    x = np.random.default_rng(0).random((3, 4, 5, 2)).astype(np.float32)

    def left_column(batch):
        return batch[:, :, 0, :].mean(axis=(1, 2))

    mean = tta_predict(left_column, x)
    np.testing.assert_allclose(mean, (x[:, :, 0].mean(axis=(1, 2)) +
                                      x[:, :, -1].mean(axis=(1, 2))) / 2, rtol=1e-6)
    stacked = tta_predict(left_column, x, ["identity", "vertical_flip", "rot180",
                                           lambda b: b * 2], reduce=None)
    assert stacked.shape == (4, 3)
    np.testing.assert_allclose(stacked[1], stacked[0], rtol=1e-6)
    np.testing.assert_allclose(stacked[3], 2 * stacked[0], rtol=1e-6)
    np.testing.assert_allclose(tta_predict(left_column, x, ["identity", "horizontal_flip"],
                                           reduce="max"),
                               np.maximum(stacked[0], stacked[2]), rtol=1e-6)
    flip_aug = tta_predict(left_column, x, [RandomFlip(p=1.0)])
    np.testing.assert_allclose(flip_aug, x[:, :, -1].mean(axis=(1, 2)), rtol=1e-6)
    with pytest.raises(ValueError, match="reduce must be"):
        tta_predict(left_column, x, reduce="median")
    with pytest.raises(ValueError, match="unknown view 'rot45'"):
        tta_predict(left_column, x, ["rot45"])
