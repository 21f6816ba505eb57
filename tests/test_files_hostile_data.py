"""Hostile data files: IDX (.gz bombs, truncation, wrong hashes), images (decompression bombs,
truncation), NPZ (odd dtypes, lying headers) and CSV. Each file is built by hand, so the right
answer (ValueError naming the file, bounded memory) is known by construction."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import resource
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib

import numpy as np
import pytest
from helpers import traced_peak

from cnnkit.data import files as data_files
from cnnkit.datasets import _idx_sets, idx

MB = 1 << 20


def _peak_mb(fn):
    return traced_peak(fn)[1] / MB


def _raises_value_error(fn, match):
    def go():
        with pytest.raises(ValueError, match=match):
            fn()
    return _peak_mb(go)


def _idx_header(dims, code=0x08):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


def _gz_with_zeros(path, header, n_zeros):
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header)
        block = bytes(MB)
        for _ in range(n_zeros // MB):
            f.write(block)
        f.write(bytes(n_zeros % MB))
    return path


# ----- IDX --------------------------------------------------------------------------------
def test_idx_header_declaring_more_than_the_cap_is_refused_unread(tmp_path):
    p = _gz_with_zeros(tmp_path / "huge.gz", _idx_header([60000, 60000, 2]), 4 * MB)
    assert _raises_value_error(lambda: idx.read_idx(p), r"huge.gz.*above the limit") < 1
    small = _gz_with_zeros(tmp_path / "small.gz", _idx_header([10, 10]), 100)
    with pytest.raises(ValueError, match="above the limit of 50 bytes"):
        idx.read_idx(small, max_bytes=50)
    assert idx.read_idx(small).shape == (10, 10)


def test_gz_stream_longer_than_the_header_is_refused_after_reading_the_declared_size(
        tmp_path):
    p = _gz_with_zeros(tmp_path / "bomb.gz", _idx_header([1000, 1000]), 64 * MB)
    assert p.stat().st_size < MB
    assert _raises_value_error(lambda: idx.read_idx(p), "bomb.gz: the file holds more") < 6


def test_gz_stream_shorter_than_the_header_is_refused(tmp_path):
    p = _gz_with_zeros(tmp_path / "short.gz", _idx_header([64, 1000, 1000]), 2 * MB)
    assert _raises_value_error(lambda: idx.read_idx(p), "short.gz: truncated IDX") < 8
    raw = tmp_path / "short.idx"
    raw.write_bytes(_idx_header([5, 5]) + bytes(24))
    with pytest.raises(ValueError, match="short.idx: truncated"):
        idx.read_idx(raw)
    raw.write_bytes(_idx_header([5, 5]) + bytes(26))
    with pytest.raises(ValueError, match="short.idx: the file holds more"):
        idx.read_idx(raw)


def test_truncated_and_damaged_gz_give_value_error_naming_the_file(tmp_path):
    a = (np.arange(3000) % 251).astype(np.uint8).reshape(30, 100)
    good = tmp_path / "a.idx.gz"
    idx.write_idx(good, a)
    data = good.read_bytes()
    bad = tmp_path / "cut.idx.gz"
    for cut in range(0, len(data), max(1, len(data) // 40)):
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cut.idx.gz"):
            idx.read_idx(bad)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="cut.idx.gz"):
        idx.read_idx(bad)
    with pytest.raises(FileNotFoundError):
        idx.read_idx(tmp_path / "none.gz")


def _fake_set(tmp_path):
    arrays = {"train-images-idx3-ubyte": np.full((2, 28, 28), 7, np.uint8),
              "train-labels-idx1-ubyte": np.array([1, 2], np.uint8),
              "t10k-images-idx3-ubyte": np.full((1, 28, 28), 9, np.uint8),
              "t10k-labels-idx1-ubyte": np.array([3], np.uint8)}
    for stem, a in arrays.items():
        idx.write_idx(tmp_path / f"{stem}.gz", a)
    sha = {stem: hashlib.sha256(idx.idx_bytes(a)).hexdigest() for stem, a in arrays.items()}
    return _idx_sets.IdxSet(name="fake", urls=(), sha256=sha)


def test_data_dir_with_truncated_or_wrong_files_names_the_file(tmp_path):
    spec = _fake_set(tmp_path)
    (xt, yt), (xv, yv) = _idx_sets.load(spec, tmp_path, download_missing=False)
    assert xt.shape == (2, 28, 28) and yv.tolist() == [3]
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    good = labels.read_bytes()
    labels.write_bytes(good[: len(good) - 5])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
        _idx_sets.load(spec, tmp_path, download_missing=False)
    idx.write_idx(labels, np.array([4], np.uint8))  # well formed, but not the right data
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: SHA-256"):
        _idx_sets.load(spec, tmp_path, download_missing=False)


_LIMITED = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))
    from cnnkit.datasets import idx
    from cnnkit.models import load_model
    for loader, path in ((idx.read_idx, sys.argv[1]), (load_model, sys.argv[2])):
        try:
            loader(path)
        except ValueError as e:
            print("ValueError", str(e)[:60])
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is for Linux")
def test_bombs_stay_within_an_address_space_limit(tmp_path):
    # 1.9 GB declared (under the 4 GiB cap), 8 MB of zeros in the stream
    gz = _gz_with_zeros(tmp_path / "b.gz", _idx_header([1900, 1000, 1000]), 8 * MB)
    z = tmp_path / "b.cnnkit"
    meta = {"format": "cnnkit-model", "version": 1, "kind": "model",
            "model": {"class_name": "Sequential", "config": {
                "name": "s", "input_shape": [None, 100000],
                "layers": [{"class_name": "Dense", "config": {"units": 8_000_000}}]}}}
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(__import__("json").dumps(meta).encode(), np.uint8))
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("__meta__.npy", buf.getvalue())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CNNKIT_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _LIMITED, str(gz), str(z)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("ValueError") == 2, out.stdout
    assert resource  # the child sets the limit


# ----- images -----------------------------------------------------------------------------
def _png(width, height, mode_byte=0, bit_depth=8, idat=b""):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, mode_byte, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(idat))
            + chunk(b"IEND", b""))


def test_decompression_bombs_are_value_errors_naming_the_file(tmp_path):
    pytest.importorskip("PIL")
    huge = tmp_path / "huge.png"  # 900 M pixels: Pillow's error threshold
    huge.write_bytes(_png(30000, 30000))
    big = tmp_path / "big.png"  # 100 M pixels: Pillow's warning threshold
    big.write_bytes(_png(10000, 10000))
    for p in (huge, big):
        peak = _raises_value_error(lambda p=p: data_files.load_image(p),
                                   f"{p.name} as an image: .*decompression bomb")
        assert peak < 4
    folder = tmp_path / "set" / "cats"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(_png(30000, 30000))
    with pytest.raises(ValueError, match="a.png"):
        data_files.image_dataset_from_directory(tmp_path / "set")


def test_truncated_and_foreign_images_are_value_errors(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    good = tmp_path / "g.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(good)
    data = good.read_bytes()
    bad = tmp_path / "cut.png"
    # (a cut within the last checksums may still hold every pixel: Pillow reads it)
    for cut in range(0, len(data) - 24, max(1, len(data) // 30)):
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cut.png"):
            data_files.load_image(bad)
    text = tmp_path / "text.png"
    text.write_text("hello")
    with pytest.raises(ValueError, match="text.png as an image: not an image"):
        data_files.load_image(text)
    assert data_files.load_image(good).shape == (40, 40, 3)


# ----- NPZ --------------------------------------------------------------------------------
def _npz(path, members, deflate=()):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data, zipfile.ZIP_DEFLATED if name in deflate
                       else zipfile.ZIP_STORED)
    return path


def _npy(a, pickle=False):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=pickle)
    return buf.getvalue()


@pytest.mark.parametrize("dtype", [object, np.complex128, "U4", "S4", [("a", "i4")], "M8[s]"])
def test_npz_arrays_of_odd_dtypes_are_refused(tmp_path, dtype):
    p = _npz(tmp_path / "odd.npz", {"x.npy": _npy(np.zeros(3, dtype=dtype), pickle=True),
                                    "y.npy": _npy(np.zeros(3))})
    with pytest.raises(ValueError, match="odd.npz.*dtype"):
        data_files.load_npz(p)


def test_npz_header_promising_more_than_stored_is_refused_unread(tmp_path):
    buf = io.BytesIO()  # a header declaring 4 GB of float32
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f4", "fortran_order": False, "shape": (100000, 10000)})
    header = buf.getvalue()
    p = _npz(tmp_path / "liar.npz", {"x.npy": header + bytes(64), "y.npy": _npy(np.zeros(3))})
    assert _raises_value_error(lambda: data_files.load_npz(p), "liar.npz.*declares shape") < 1


def test_npz_reads_only_the_arrays_asked_for(tmp_path):
    x, y = np.arange(12, dtype=np.float32).reshape(4, 3), np.arange(4)
    bomb = _npy(np.zeros(48 * MB, np.uint8))
    p = _npz(tmp_path / "d.npz", {"x.npy": _npy(x), "y.npy": _npy(y), "junk.npy": bomb},
             deflate={"junk.npy"})
    peak = _peak_mb(lambda: data_files.load_npz(p))
    assert peak < 2
    gx, gy = data_files.load_npz(p)
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)
    gx[0, 0] = 5  # writable


def test_npz_truncations_and_flips_are_value_errors(tmp_path):
    good = tmp_path / "g.npz"
    np.savez_compressed(good, x=np.arange(200.0).reshape(20, 10), y=np.arange(20))
    data = good.read_bytes()
    bad = tmp_path / "bad.npz"
    for cut in range(0, len(data), max(1, len(data) // 40)):
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="bad.npz"):
            data_files.load_npz(bad)
    rng = np.random.default_rng(2)
    for _ in range(40):
        b = bytearray(data)
        b[rng.integers(len(b))] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(b))
        try:
            data_files.load_npz(bad)
        except (ValueError, KeyError):
            pass


# ----- CSV --------------------------------------------------------------------------------
def test_csv_damaged_gz_and_binary_are_value_errors(tmp_path):
    good = tmp_path / "t.csv.gz"
    with gzip.open(good, "wt") as f:
        f.write("a,b,label\n" + "".join(f"{i},{i + 1},{i % 2}\n" for i in range(500)))
    x, y = data_files.load_csv(good)
    assert x.shape == (500, 2) and y[:3].tolist() == [0, 1, 0]
    data = good.read_bytes()
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="bad.csv.gz"):
        data_files.load_csv(bad)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="bin.csv"):
        data_files.load_csv(binary)
