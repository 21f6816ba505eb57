"""Data sets: the embedded MNIST subset, the IDX format, and how Fashion-MNIST/MNIST files are
found, verified and (failing that) reported."""

import gzip
import hashlib
import shutil

import numpy as np
import pytest
from helpers import shared_path

from cnnkit.datasets import _idx_sets, fashion_mnist, idx, mnist, mnist5k


def test_mnist5k_embedded_split():
    (xt, yt), (xv, yv) = mnist5k.load_data()
    assert xt.shape == (4000, 28, 28) and xv.shape == (1000, 28, 28)
    assert xt.dtype == np.uint8 and yt.dtype == np.uint8
    assert np.bincount(yt).tolist() == [400] * 10
    assert np.bincount(yv).tolist() == [100] * 10
    # train and test are disjoint and together are the 5,000 digits of the shared CSV
    flat = np.concatenate([xt, xv]).reshape(5000, -1)
    assert len({r.tobytes() for r in flat}) == 5000


def test_mnist5k_matches_shared_csv():
    path = shared_path("datasets", "mnist5k", "mnist_5k.csv.gz")
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64)
    (xt, yt), (xv, yv) = mnist5k.load_data()
    ours = {(x.tobytes(), int(y)) for x, y in zip(np.concatenate([xt, xv]).reshape(5000, -1),
                                                   np.concatenate([yt, yv]), strict=True)}
    theirs = {(r[:784].astype(np.uint8).tobytes(), int(r[784])) for r in rows}
    assert ours == theirs


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    a = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    if dtype == np.uint8:
        a = np.abs(a).astype(dtype)
    p = tmp_path / f"a.idx{suffix}"
    idx.write_idx(p, a)
    b = idx.read_idx(p)
    assert b.dtype == a.dtype and np.array_equal(a, b)


def test_idx_header_by_hand():
    # magic 0x00000801 (uint8, 1 dim), length 3, data 7 8 9: the MNIST label file layout
    data = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])
    assert idx.parse_idx(data).tolist() == [7, 8, 9]
    assert idx.idx_bytes(np.array([7, 8, 9], np.uint8)) == data
    with pytest.raises(ValueError, match="bad magic"):
        idx.parse_idx(b"\x01\x00\x08\x01")
    with pytest.raises(ValueError, match="promises shape"):
        idx.parse_idx(data[:-1])
    with pytest.raises(TypeError, match="cannot store"):
        idx.idx_bytes(np.array([1 + 2j]))


def test_fashion_mnist_from_shared_files():
    folder = shared_path("datasets", "fashion-mnist")
    (xt, yt), (xv, yv) = fashion_mnist.load_data(data_dir=folder)
    assert xt.shape == (60000, 28, 28) and xv.shape == (10000, 28, 28)
    assert np.bincount(yt).tolist() == [6000] * 10 and np.bincount(yv).tolist() == [1000] * 10


def test_search_order_env_and_cache(tmp_path, monkeypatch):
    folder = shared_path("datasets", "fashion-mnist")
    env_dir = tmp_path / "envdata" / "fashion-mnist"
    env_dir.mkdir(parents=True)
    for f in folder.iterdir():
        shutil.copy(f, env_dir / f.name)
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path / "envdata"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(_idx_sets.urllib.request, "urlopen", _no_network)
    (xt, _), _ = fashion_mnist.load_data()
    assert xt.shape == (60000, 28, 28)
    dirs = _idx_sets.candidate_dirs(fashion_mnist.SPEC, "/explicit")
    assert [str(d) for d in dirs[:3]] == ["/explicit", str(env_dir), str(tmp_path / "envdata")]
    assert dirs[3] == tmp_path / "cache" / "cnnkit" / "fashion-mnist"
    assert str(dirs[-1]) == "/usr/share/datasets/fashion-mnist"


def _no_network(*args, **kwargs):
    raise OSError("network is unreachable")


def test_no_files_no_network_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNKIT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(_idx_sets.urllib.request, "urlopen", _no_network)
    monkeypatch.setattr(mnist, "SPEC", mnist.SPEC.__class__(
        mnist.SPEC.name, mnist.SPEC.urls, mnist.SPEC.sha256, (str(tmp_path / "nowhere"),)))
    with pytest.raises(FileNotFoundError) as e:
        mnist.load_data()
    msg = str(e.value)
    assert "could not be downloaded" in msg and "train-images-idx3-ubyte.gz" in msg
    assert str(tmp_path / "cache" / "cnnkit" / "mnist") in msg
    assert not list((tmp_path / "cache" / "cnnkit" / "mnist").glob("*"))  # nothing half-written


def test_download_verifies_sha256(tmp_path, monkeypatch):
    """A mirror serving the wrong bytes is rejected; one serving the right bytes is kept."""
    payload = idx.idx_bytes(np.arange(5, dtype=np.uint8))
    good = {stem: hashlib.sha256(payload).hexdigest() for stem in _idx_sets.FILES}
    spec = _idx_sets.IdxSet("toy", ("http://bad.invalid", "http://good.invalid"), good)

    class Response:
        def __init__(self, data):
            self.data = data

        def read(self, n=-1):
            out, self.data = self.data, b""
            return out

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def fake_urlopen(url, timeout=None):
        body = payload if "good" in url else idx.idx_bytes(np.zeros(5, np.uint8))
        return Response(gzip.compress(body))

    monkeypatch.setattr(_idx_sets.urllib.request, "urlopen", fake_urlopen)
    _idx_sets.download(spec, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f + ".gz"
                                                               for f in _idx_sets.FILES)
    (xt, _), _ = _idx_sets.load(spec, tmp_path, download_missing=False)
    assert xt.tolist() == [0, 1, 2, 3, 4]
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x01\0\0\0\0"))
    with pytest.raises(ValueError, match="SHA-256"):
        _idx_sets.load(spec, tmp_path, download_missing=False)
