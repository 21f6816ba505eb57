"""Hostile PyTorch checkpoints: files built by hand, byte by byte, whose right answer (the
values, or a refusal) is known by construction; genuine torch.save files compared with torch's
own values; truncations and seeded byte flips that must give CheckpointFormatError and nothing
else; a bounded memory peak on zip bombs; state-dict errors naming the layer and key.
Safetensors files: test_io_hostile_safetensors.py."""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from helpers import torch_or_skip, traced_peak

from cnnkit import layers
from cnnkit.io import (
    CheckpointFormatError,
    UnsafeCheckpointError,
    load_sequential_state_dict,
    load_state_dict,
    load_torch_checkpoint,
)
from cnnkit.models import Sequential


# ----- a protocol-2 pickle writer for torch's layout ---------------------------------------------
def _int(v: int) -> bytes:
    raw = v.to_bytes((v.bit_length() + 8) // 8 or 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1: any sign, any size


def _str(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE


def _tuple(values) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def _tensor(key="0", size=(10,), stride=(1,), offset=0, numel=10, stype="FloatStorage",
            location="cpu") -> bytes:
    """The opcodes torch.save writes for one tensor: _rebuild_tensor_v2(storage, offset, size,
    stride, requires_grad=False, hooks=OrderedDict())."""
    pid = (b"(" + _str("storage") + b"ctorch\n" + stype.encode() + b"\n" + _str(key)
           + _str(location) + _int(numel) + b"tQ")
    hooks = b"ccollections\nOrderedDict\n)R"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + _int(offset) + _tuple(size)
            + _tuple(stride) + b"\x89" + hooks + b"tR")


def _state_dict(tensors: dict[str, bytes]) -> bytes:
    return (b"\x80\x02}(" + b"".join(_str(k) + v for k, v in tensors.items()) + b"u.")


def _write_pt(path, pkl: bytes, storages: dict[str, bytes], compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            z.writestr(f"archive/data/{key}", raw, compress_type=compress)
        z.writestr("archive/version", "3\n")
    return path


F10 = np.arange(10, dtype="<f4")


# ----- legal layouts -----------------------------------------------------------------------------
LEGAL = [  # size, stride, offset: every element inside a 10-float storage
    ((2, 3), (1, 2), 1), ((3, 2), (3, 1), 2), ((10,), (1,), 0), ((4,), (2,), 3),
    ((3, 4), (0, 1), 5), ((1, 5), (12345, 1), 5), ((), (), 9), ((0, 7), (1, 1), 0),
    ((2, 2, 2), (4, 2, 1), 1), ((5,), (0,), 9),
]


def _by_hand(size, stride, offset):
    """storage[offset + sum(i_k * stride_k)] by explicit loops over the index space."""
    out = np.zeros(size, dtype=np.float32)
    for idx in np.ndindex(*size):
        out[idx] = F10[offset + sum(i * s for i, s in zip(idx, stride, strict=True))]
    return out


@pytest.mark.parametrize("size,stride,offset", LEGAL)
def test_legal_layouts_read_by_construction(size, stride, offset, tmp_path):
    path = _write_pt(tmp_path / "ok.pt", _state_dict({"w": _tensor(size=size, stride=stride,
                                                                   offset=offset)}),
                     {"0": F10.tobytes()})
    w = load_state_dict(path)["w"]
    assert w.shape == size and w.dtype == np.float32
    np.testing.assert_array_equal(w, _by_hand(size, stride, offset))


def test_hand_built_files_match_torch(tmp_path):
    """torch.load reads the hand-built files to the same values (the writer is faithful)."""
    torch = torch_or_skip()
    for i, (size, stride, offset) in enumerate(LEGAL):
        path = _write_pt(tmp_path / f"ok{i}.pt",
                         _state_dict({"w": _tensor(size=size, stride=stride, offset=offset)}),
                         {"0": F10.tobytes()})
        ref = torch.load(path, weights_only=True)["w"]
        np.testing.assert_array_equal(load_state_dict(path)["w"], ref.numpy())


def test_torch_saved_layouts_read_back_equal(tmp_path):
    torch = torch_or_skip()
    obj = {"t": torch.arange(12.).reshape(3, 4).t(), "x": torch.arange(3.).expand(4, 3),
           "s": torch.arange(20.)[5:15:2], "e": torch.zeros(0, 5),
           "bf": torch.tensor([1.5, -2.0, 3.25], dtype=torch.bfloat16),
           "h": torch.tensor([0.5, -1.0], dtype=torch.float16), "i": torch.arange(5),
           "b": torch.tensor([True, False]), "p": torch.nn.Parameter(torch.ones(2, 2)),
           "c": torch.randn(2, 3, 4, 5).permute(0, 2, 3, 1)[:, 1:, ::2]}
    path = tmp_path / "t.pt"
    torch.save(obj, path)
    out = load_state_dict(path)
    for k, v in obj.items():
        ref = v.detach().float() if v.dtype == torch.bfloat16 else v.detach()
        assert out[k].shape == tuple(v.shape), k
        np.testing.assert_array_equal(out[k], ref.numpy(), err_msg=k)


# ----- layouts the bytes do not back -------------------------------------------------------------
HOSTILE = [  # size, stride, offset on a 10-float storage
    ((100, 100), (-100000, 1), 0),  # the reported segfault
    ((100,), (-1,), 99), ((100,), (-1,), 0), ((5,), (1,), -3), ((1,), (1,), 10 ** 7),
    ((11,), (1,), 0), ((2, 2), (9, 1), 0), ((3,), (1 << 62,), 0), ((2,), (1,), 9),
    ((1,), (-1,), 0), ((4,), (3,), 2),
]


@pytest.mark.parametrize("size,stride,offset", HOSTILE)
def test_layouts_outside_the_storage_are_refused(size, stride, offset, tmp_path):
    path = _write_pt(tmp_path / "bad.pt", _state_dict({"conv.weight": _tensor(
        size=size, stride=stride, offset=offset)}), {"0": F10.tobytes()})
    with pytest.raises(UnsafeCheckpointError, match="tensor 'conv.weight'"):
        load_state_dict(path)


@pytest.mark.parametrize("size,stride", [((1 << 29,), (0,)), ((1 << 20, 1 << 20), (0, 0)),
                                         ((1 << 40, 10), (0, 1))])
def test_stride_zero_bomb_is_refused_before_allocating(size, stride, tmp_path):
    path = _write_pt(tmp_path / "bomb.pt", _state_dict({"w": _tensor(size=size, stride=stride)}),
                     {"0": F10.tobytes()})
    tracemalloc.start()
    try:
        with pytest.raises(UnsafeCheckpointError, match="tensor 'w'.*justifies"):
            load_state_dict(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_many_views_of_one_storage_are_bounded(tmp_path):
    """300 full views of a 1 MiB storage would take 300 MiB from a ~1 MiB file."""
    n = 1 << 18
    views = {f"v{i}": _tensor(size=(n,), stride=(1,), numel=n) for i in range(300)}
    path = _write_pt(tmp_path / "views.pt", _state_dict(views),
                     {"0": np.zeros(n, "<f4").tobytes()})
    with pytest.raises(UnsafeCheckpointError, match="justifies"):
        load_state_dict(path)


# ----- storage members ---------------------------------------------------------------------------
def _peak_of(fn):
    """(result or the CheckpointFormatError raised, tracemalloc peak in bytes) of fn()."""
    return traced_peak(fn, CheckpointFormatError)


def _deflate(path, nbytes, numel):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", _state_dict({"w": _tensor(size=(numel,), numel=numel)}))
        with z.open("archive/data/0", "w") as f:
            chunk = bytes(1 << 20)
            for _ in range(nbytes >> 20):
                f.write(chunk)
    return path


def test_deflate_bomb_member_not_matching_its_declared_size(tmp_path):
    path = _deflate(tmp_path / "bomb.pt", 64 << 20, 10)
    err, peak = _peak_of(lambda: load_state_dict(path))
    assert isinstance(err, CheckpointFormatError) and "archive/data/0" in str(err)
    assert "67108864 bytes, expected 40" in str(err)
    assert peak < 4 << 20


def test_deflate_bomb_declared_in_full_is_over_budget(tmp_path):
    path = _deflate(tmp_path / "bomb.pt", 64 << 20, 16 << 20)
    assert path.stat().st_size < 1 << 20
    err, peak = _peak_of(lambda: load_state_dict(path))
    assert isinstance(err, UnsafeCheckpointError) and "justifies" in str(err)
    assert peak < 4 << 20


def test_deflated_member_is_read_only_as_far_as_declared(tmp_path):
    """The central directory says 40 bytes (and their CRC); the stream inflates to 64 MiB."""
    path = _deflate(tmp_path / "bomb.pt", 64 << 20, 10)
    data = bytearray(path.read_bytes())
    name = b"archive/data/0"
    at = data.index(b"PK\x01\x02")  # the central directory's first entry
    while data[at + 46:at + 46 + len(name)] != name:
        at = data.index(b"PK\x01\x02", at + 4)
    struct.pack_into("<I", data, at + 16, zlib.crc32(bytes(40)))  # CRC-32 of 40 zero bytes
    struct.pack_into("<I", data, at + 24, 40)  # uncompressed size
    path.write_bytes(bytes(data))
    out, peak = _peak_of(lambda: load_state_dict(path))
    assert not isinstance(out, Exception), out
    np.testing.assert_array_equal(out["w"], np.zeros(10, np.float32))
    assert peak < 4 << 20


@pytest.mark.parametrize("stored", [F10[:2].tobytes(), np.arange(25, dtype="<f4").tobytes()])
def test_member_size_must_match_the_persistent_id(stored, tmp_path):
    path = _write_pt(tmp_path / "m.pt", _state_dict({"w": _tensor()}), {"0": stored})
    with pytest.raises(CheckpointFormatError, match=f"archive/data/0 holds {len(stored)} bytes"):
        load_state_dict(path)


def test_missing_member_and_bad_keys(tmp_path):
    path = _write_pt(tmp_path / "m.pt", _state_dict({"w": _tensor(key="7")}), {"0": F10.tobytes()})
    with pytest.raises(CheckpointFormatError, match="archive/data/7 is missing"):
        load_state_dict(path)
    path = _write_pt(tmp_path / "k.pt", _state_dict({"w": _tensor(key="../../etc/passwd")}), {})
    with pytest.raises(CheckpointFormatError, match="not a plain name"):
        load_state_dict(path)
    twice = {"a": _tensor(numel=10), "b": _tensor(numel=5)}
    path = _write_pt(tmp_path / "t.pt", _state_dict(twice), {"0": F10.tobytes()})
    with pytest.raises(CheckpointFormatError, match="storage 0 is declared as 10 x"):
        load_state_dict(path)


@pytest.mark.parametrize("stype", ["ComplexFloatStorage", "QInt8Storage", "EvilStorage"])
def test_unread_dtypes_are_named(stype, tmp_path):
    path = _write_pt(tmp_path / "d.pt", _state_dict({"fc.weight": _tensor(stype=stype)}),
                     {"0": bytes(80)})
    with pytest.raises(CheckpointFormatError, match=f"tensor 'fc.weight' has dtype {stype}"):
        load_state_dict(path)


def test_globals_outside_the_table_are_refused(tmp_path):
    for bad in (b"ctorch\nload\n", b"ctorch._utils\n_rebuild_qtensor\n", b"cbuiltins\nlist\n"):
        path = _write_pt(tmp_path / "g.pt", b"\x80\x02" + bad + b")R.", {})
        with pytest.raises(UnsafeCheckpointError, match="refusing to load"):
            load_torch_checkpoint(path)


# ----- the pickle itself -------------------------------------------------------------------------
def test_os_system_via_global_reduce_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = b"cos\nsystem\n(" + _str(f"touch {marker}") + b"tR"
    pkl = b"\x80\x02}(" + _str("w") + payload + b"u."
    assert b"os\nsystem" in pkl
    path = _write_pt(tmp_path / "evil.pt", pkl, {})
    with pytest.raises(UnsafeCheckpointError, match="refusing to load 'os.system'"):
        load_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("pkl,what", [
    (b"(" + _str("touch x") + b"ios\nsystem\n.", "INST"),
    (b"\x80\x02(" + _str("x") + b"o.", "OBJ"),
    (b"\x80\x02ccollections\nOrderedDict\n)\x81.", "NEWOBJ"),
    (b"\x80\x04ccollections\nOrderedDict\n)}\x92.", "NEWOBJ_EX"),
    (b"\x80\x02\x82\x01.", "EXT1"),
    (b"\x80\x02])R.", "REDUCE on"),
    (b"\x80\x02]}b.", "BUILD on list"),
    (b"\x80\x02ctorch\nFloatStorage\n)R.", "storage type is called"),
    (b"\x80\x02" + _str("x") + b"Q.", "persistent id"),
    (b"\x80\x02]q\x00h\x00a.", "holds itself"),
    (b"\x80\x02]q\x00\x85q\x01h\x00h\x01a.", "after nesting"),
])
def test_object_building_opcodes_are_refused(pkl, what, tmp_path):
    path = _write_pt(tmp_path / "op.pt", pkl, {})
    with pytest.raises(UnsafeCheckpointError, match=what):
        load_torch_checkpoint(path)


@pytest.mark.parametrize("pkl", [
    b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b".",
    b"\x80\x02)" + b"\x85" * 100_000 + b".",
    b"\x80\x02}" + (_str("k") + b"}") * 5000 + b"s" * 5000 + b".",
])
def test_deeply_nested_pickle_gives_a_clear_error(pkl, tmp_path):
    path = _write_pt(tmp_path / "deep.pt", pkl, {})
    with pytest.raises(UnsafeCheckpointError, match="nested deeper than"):
        load_torch_checkpoint(path)


def test_pickle_object_count_is_bounded(tmp_path):
    """1M empty lists (~60 MB of Python objects) from a 1 MB pickle: over 8 x 1 MB + 16 MiB."""
    path = _write_pt(tmp_path / "many.pt", b"\x80\x02(" + b"]" * 1_000_000 + b"l.", {})
    with pytest.raises(UnsafeCheckpointError, match="justifies"):
        load_torch_checkpoint(path)


@pytest.mark.parametrize("pkl,what", [
    (b"\x80\x02\x8b\x00\x00\x01\x00" + bytes(65536) + b".", "integer of 65536 bytes"),
    (b"\x80\x02X\xff\xff\xff\x7fabc.", "truncated"),
    (b"\x80\x02X\x02\x00\x00\x00\xff\xfe.", "not UTF-8"),
    (b"\x80\x02h\x05.", "memo entry 5"),
    (b"\x80\x02a.", "stack underflow"),
    (b"\x80\x02]", "without a STOP"),
    (b"\x80\x02I1\n.", "unsupported pickle opcode"),
    (b"\x80\x02}]]s.", "dict key of type list"),
    (b"\x80\x02}(" + _str("w") + b"ctorch\nFloatStorage\nu.", "bare storage or type"),
    (b"\x80\x02e.", "MARK expected"),
    (b"\x80\x02ccollections\nOrderedDict\n(K\x01tR.", "OrderedDict built from 1 arguments"),
    (b"\x80\x02ctorch._utils\n_rebuild_parameter\n(K\x01tR.", "parameter rebuilt from"),
    (_state_dict({"w": b"ctorch._utils\n_rebuild_tensor_v2\n(K\x01K\x02K\x03tR"}),
     "tensor 'w': rebuilt from 3 arguments"),
    (_state_dict({"w": b"ctorch._utils\n_rebuild_tensor_v2\n(K\x01K\x02K\x03K\x04tR"}),
     "tensor 'w': built from a int"),
    (_state_dict({"w": _tensor()[:-2] + b"K\x00K\x00tR"}), "tensor 'w': rebuilt from 8"),
    (b"\x80\x02}(K\x07" + _tensor() + b"u.", "non-string key 7"),
    (b"\x80\x02]" + _tensor() + b"a.", "holds a list, not a state dict"),
])
def test_malformed_pickles_are_format_errors(pkl, what, tmp_path):
    path = _write_pt(tmp_path / "p.pt", pkl, {"0": F10.tobytes()})
    with pytest.raises(CheckpointFormatError, match=what):
        load_state_dict(path)


def test_every_truncation_of_the_pickle_is_a_format_error(tmp_path):
    pkl = _state_dict({"a": _tensor(size=(2, 5), stride=(5, 1)), "b": _tensor(size=(3,))})
    for cut in range(len(pkl)):
        path = _write_pt(tmp_path / "cut.pt", pkl[:cut], {"0": F10.tobytes()})
        with pytest.raises(CheckpointFormatError):
            load_torch_checkpoint(path)


def test_mutated_torch_pickles_give_values_or_format_errors(tmp_path):
    """Seeded flips, insertions and deletions in a genuine torch.save data.pkl (OrderedDict,
    BUILD, memo, parameters), the zip rebuilt around it so its CRC holds."""
    torch = torch_or_skip()
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    buf = io.BytesIO()
    torch.save({"sd": module.state_dict(), "p": torch.nn.Parameter(torch.ones(2)),
                "extra": [1, 2.5, "s", None, (1 << 70, b"b")]}, buf)
    with zipfile.ZipFile(buf) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    name = next(n for n in members if n.endswith("/data.pkl"))
    rng = np.random.default_rng(3)
    refused = 0
    for trial in range(300):
        pkl = bytearray(members[name])
        pos = int(rng.integers(0, len(pkl)))
        if trial % 3 == 0:
            pkl[pos] ^= int(rng.integers(1, 256))
        elif trial % 3 == 1:
            del pkl[pos:pos + int(rng.integers(1, 6))]
        else:
            pkl[pos:pos] = rng.bytes(int(rng.integers(1, 4)))
        path = tmp_path / "m.pt"
        with zipfile.ZipFile(path, "w") as z:
            for n, raw in members.items():
                z.writestr(n, bytes(pkl) if n == name else raw)
        try:
            load_torch_checkpoint(path)
        except CheckpointFormatError:
            refused += 1
    assert refused > 100


# ----- whole files: other formats, truncation, byte flips ----------------------------------------
def _genuine(tmp_path):
    pkl = _state_dict({"conv.weight": _tensor(size=(2, 5), stride=(5, 1)),
                       "conv.bias": _tensor(key="1", size=(3,), numel=3, stype="DoubleStorage")})
    return _write_pt(tmp_path / "g.pt", pkl, {"0": F10.tobytes(),
                                              "1": np.ones(3, "<f8").tobytes()})


def test_truncated_archives_are_format_errors(tmp_path):
    whole = _genuine(tmp_path).read_bytes()
    assert set(load_torch_checkpoint(tmp_path / "g.pt")) == {"conv.weight", "conv.bias"}
    for cut in sorted({0, 1, 4, 30, 100, len(whole) // 3, len(whole) // 2, len(whole) - 22,
                       len(whole) - 1, *range(0, len(whole), 97)}):
        path = tmp_path / "t.pt"
        path.write_bytes(whole[:cut])
        with pytest.raises(CheckpointFormatError):
            load_torch_checkpoint(path)


def test_byte_flips_give_values_or_format_errors(tmp_path):
    whole = _genuine(tmp_path).read_bytes()
    rng = np.random.default_rng(11)
    outcomes = {"ok": 0, "refused": 0}
    for trial in range(300):
        data = bytearray(whole)
        for pos in rng.integers(0, len(data), size=1 + trial % 3):
            data[pos] ^= int(rng.integers(1, 256))
        path = tmp_path / "f.pt"
        path.write_bytes(bytes(data))
        try:
            load_torch_checkpoint(path)
            outcomes["ok"] += 1
        except CheckpointFormatError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 300


def test_legacy_tar_and_plain_pickle_files_are_named(tmp_path):
    path = tmp_path / "p.pt"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(CheckpointFormatError, match="plain pickle"):
        load_state_dict(path)
    with tarfile.open(tmp_path / "t.tar", "w") as tar:
        info = tarfile.TarInfo("sys_info")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(CheckpointFormatError, match="tar archive"):
        load_state_dict(tmp_path / "t.tar")
    (tmp_path / "e.pt").write_bytes(b"")
    with pytest.raises(CheckpointFormatError, match="empty"):
        load_state_dict(tmp_path / "e.pt")
    (tmp_path / "r.pt").write_bytes(b"GIF89a" + bytes(100))
    with pytest.raises(CheckpointFormatError, match="not a zip-format"):
        load_state_dict(tmp_path / "r.pt")
    with pytest.raises(FileNotFoundError):
        load_state_dict(tmp_path / "absent.pt")
    with pytest.raises(IsADirectoryError):
        load_state_dict(tmp_path)


def test_legacy_torch_format_is_named(tmp_path):
    torch = torch_or_skip()
    path = tmp_path / "old.pt"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointFormatError, match="legacy"):
        load_state_dict(path)


def test_error_classes():
    assert issubclass(CheckpointFormatError, ValueError)
    assert issubclass(UnsafeCheckpointError, CheckpointFormatError)
    assert issubclass(UnsafeCheckpointError, pickle.UnpicklingError)


# ----- loading a state dict into a model ---------------------------------------------------------
def _dense_model():
    return Sequential([layers.Input((4,)), layers.Dense(3, name="fc")])


def test_load_weights_errors_name_layer_and_key():
    good = {"0.weight": np.ones((3, 4), np.float32), "0.bias": np.zeros(3, np.float32)}
    model = _dense_model()
    load_sequential_state_dict(model, good)
    np.testing.assert_array_equal(model.layers[-1].weights[0].data, np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(5, 3\).*Dense 'fc'"):
        load_sequential_state_dict(_dense_model(), {**good, "0.weight": np.ones((3, 5))})
    with pytest.raises(ValueError, match="module '0' has no 'bias'.*Dense 'fc'"):
        load_sequential_state_dict(_dense_model(), {"0.weight": good["0.weight"]})
    with pytest.raises(ValueError, match="entry '0.bias' is a ndarray of object"):
        load_sequential_state_dict(_dense_model(), {**good, "0.bias": np.array([None] * 3)})
    with pytest.raises(ValueError, match="key 7 is not a string"):
        load_sequential_state_dict(_dense_model(), {7: good["0.bias"]})
    with pytest.raises(ValueError, match="must map names to arrays"):
        load_sequential_state_dict(_dense_model(), [1, 2])
