"""Hostile safetensors files: built by hand, byte by byte, whose right answer (the values, or a
refusal naming what is wrong) is known by construction; truncations and seeded byte flips that
must give CheckpointFormatError and nothing else; an oversized header read without allocating.
PyTorch checkpoints: test_io_hostile_torch.py."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from helpers import traced_peak

from cnnkit.io import CheckpointFormatError, load_safetensors


def _peak_of(fn):
    """(result or the CheckpointFormatError raised, tracemalloc peak in bytes) of fn()."""
    return traced_peak(fn, CheckpointFormatError)


# ----- safetensors -------------------------------------------------------------------------------
def _st(header: dict, body: bytes, pad: bytes = b"") -> bytes:
    head = json.dumps(header).encode() + pad
    return struct.pack("<Q", len(head)) + head + body


def _st_file(tmp_path, header, body, name="x.safetensors"):
    path = tmp_path / name
    path.write_bytes(_st(header, body))
    return path


def test_safetensors_dtypes_by_construction(tmp_path):
    f16 = np.array([0.5, -2.0], "<f2")
    i8 = np.array([-128, 7, 127], "<i1")
    u64 = np.array([1 << 63, 5], "<u8")
    body = f16.tobytes() + i8.tobytes() + bytes([0, 2, 1]) + u64.tobytes() + b"\x80\x3f"
    header = {"f16": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
              "i8": {"dtype": "I8", "shape": [3], "data_offsets": [4, 7]},
              "b": {"dtype": "BOOL", "shape": [3], "data_offsets": [7, 10]},
              "u64": {"dtype": "U64", "shape": [2, 1], "data_offsets": [10, 26]},
              "bf": {"dtype": "BF16", "shape": [], "data_offsets": [26, 28]},
              "z": {"dtype": "F32", "shape": [0, 4], "data_offsets": [28, 28]},
              "__metadata__": {"k": "v"}}
    out = load_safetensors(_st_file(tmp_path, header, body))
    assert list(out) == ["f16", "i8", "b", "u64", "bf", "z"]
    np.testing.assert_array_equal(out["f16"], [0.5, -2.0])
    np.testing.assert_array_equal(out["i8"], [-128, 7, 127])
    np.testing.assert_array_equal(out["b"], [False, True, True])
    assert out["u64"].dtype == np.uint64 and out["u64"][0, 0] == 1 << 63
    assert out["bf"].dtype == np.float32 and out["bf"] == 1.0
    assert out["z"].shape == (0, 4)


def _two(a, b, data_len=24):
    return ({"a": {"dtype": "F32", "shape": [(a[1] - a[0]) // 4], "data_offsets": a},
             "b": {"dtype": "F32", "shape": [(b[1] - b[0]) // 4], "data_offsets": b}},
            bytes(data_len))


@pytest.mark.parametrize("header_body,what", [
    (_two([0, 16], [8, 24]), "overlaps"),
    (_two([0, 16], [0, 16], 16), "overlaps"),
    (_two([0, 8], [16, 24]), "gap"),
    (_two([8, 16], [16, 24]), "gap"),
    (_two([0, 8], [8, 16]), "cover 16 data bytes but the file holds 24"),
    (_two([0, 8], [8, 32]), "outside the data"),
    (({"a": {"dtype": "U8", "shape": [8], "data_offsets": [16, 8]}}, bytes(8)),
     "0 <= begin <= end"),
])
def test_safetensors_offsets_must_tile_the_data(header_body, what, tmp_path):
    path = _st_file(tmp_path, *header_body)
    with pytest.raises(CheckpointFormatError, match=what):
        load_safetensors(path)


def _one(**entry):
    base = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    return {"fc.weight": {**base, **entry}}


@pytest.mark.parametrize("header,what", [
    (_one(dtype="C64"), "'fc.weight' has dtype 'C64'"),
    (_one(dtype="F8_E4M3"), "'fc.weight' has dtype 'F8_E4M3'"),
    (_one(dtype="STR"), "has dtype 'STR'"),
    (_one(dtype="float32"), "has dtype 'float32'"),
    (_one(dtype=5), "has dtype 5"),
    (_one(shape=[-2]), "non-negative ints"),
    (_one(shape=[2.0]), "non-negative ints"),
    (_one(shape=[True, 2]), "non-negative ints"),
    (_one(shape="2"), "non-negative ints"),
    (_one(shape=[3]), "hold 8 bytes, its F32 shape \\[3\\] needs 12"),
    (_one(shape=[0, 1 << 62]), "impossibly large"),
    (_one(shape=[1 << 40, 1 << 40]), "impossibly large"),
    (_one(shape=[1 << 20, 1 << 20]), "needs 4398046511104"),
    (_one(data_offsets=[0]), "begin, end"),
    (_one(data_offsets=[0, 8.0]), "begin, end"),
    (_one(extra=1), "exactly the keys"),
    ({"w": [1, 2]}, "exactly the keys"),
    ({**_one(), "__metadata__": {"k": 1}}, "__metadata__"),
    ({**_one(), "__metadata__": [1]}, "__metadata__"),
])
def test_safetensors_bad_entries_are_named(header, what, tmp_path):
    path = _st_file(tmp_path, header, bytes(8))
    with pytest.raises(CheckpointFormatError, match=what):
        load_safetensors(path)


@pytest.mark.parametrize("raw,what", [
    (b"", "too short"), (b"\x01\x00", "too short"),
    (struct.pack("<Q", 1 << 63) + b"{}", "exceeds the file size"),
    (struct.pack("<Q", 10) + b"{}", "exceeds the file size"),
    (struct.pack("<Q", 2) + b"[]", "not an object"),
    (struct.pack("<Q", 4) + b"\xff{}}", "unreadable header"),
    (struct.pack("<Q", 0), "unreadable header"),
    (struct.pack("<Q", 9) + b'{"a":NaN}', "unreadable header"),
    (struct.pack("<Q", 200_001) + b"[" * 100_000 + b"]" * 100_001, "unreadable header"),
    (struct.pack("<Q", 16) + b'{"a":{},"a":{}} ', "appears twice"),
])
def test_safetensors_bad_headers(raw, what, tmp_path):
    path = tmp_path / "h.safetensors"
    path.write_bytes(raw)
    with pytest.raises(CheckpointFormatError, match=what):
        load_safetensors(path)


def test_safetensors_truncations_and_flips_are_format_errors(tmp_path):
    header = {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
              "b": {"dtype": "I64", "shape": [1], "data_offsets": [16, 24]}}
    whole = _st(header, np.arange(3, dtype="<f8").tobytes())
    path = tmp_path / "w.safetensors"
    for cut in range(len(whole)):
        path.write_bytes(whole[:cut])
        with pytest.raises(CheckpointFormatError):
            load_safetensors(path)
    rng = np.random.default_rng(5)
    for _ in range(300):
        data = bytearray(whole)
        data[int(rng.integers(0, len(data)))] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(data))
        try:
            load_safetensors(path)
        except CheckpointFormatError:
            pass


def test_safetensors_header_over_limit_reads_nothing(tmp_path):
    path = tmp_path / "big.safetensors"
    path.write_bytes(struct.pack("<Q", 100_000_001) + b" " * 16)
    err, peak = _peak_of(lambda: load_safetensors(path))
    assert isinstance(err, CheckpointFormatError) and peak < 1 << 20
