"""Hand-encoded pickles (opcodes written directly, so they can name any global and carry
any malformed structure) and zip-format PyTorch checkpoints around them."""

from __future__ import annotations

import pickle
import random
import struct
from dataclasses import dataclass
from typing import Any

from . import zipfmt


@dataclass(frozen=True)
class Glob:
    """GLOBAL module.name."""

    module: str
    name: str


@dataclass(frozen=True)
class Call:
    """func(*args) via REDUCE."""

    func: Any
    args: tuple


@dataclass(frozen=True)
class Pid:
    """A persistent id (BINPERSID)."""

    value: Any


@dataclass(frozen=True)
class Raw:
    """Opcodes inserted verbatim."""

    code: bytes


def _items(xs: Any) -> bytes:
    return b"".join(encode(x) for x in xs)


def encode(obj: Any) -> bytes:
    """The opcodes that rebuild ``obj`` (no STOP)."""
    if isinstance(obj, Raw):
        return obj.code
    if isinstance(obj, Glob):
        return b"c" + obj.module.encode() + b"\n" + obj.name.encode() + b"\n"
    if isinstance(obj, Call):
        return encode(obj.func) + encode(tuple(obj.args)) + b"R"
    if isinstance(obj, Pid):
        return encode(obj.value) + b"Q"
    if obj is None or isinstance(obj, bool):
        return {None: b"N", True: b"\x88", False: b"\x89"}[obj]
    if isinstance(obj, int):
        raw = pickle.encode_long(obj)
        return (b"\x8a" + bytes([len(raw)]) if len(raw) < 256 else
                b"\x8b" + struct.pack("<i", len(raw))) + raw
    if isinstance(obj, float):
        return b"G" + struct.pack(">d", obj)
    if isinstance(obj, str):
        raw = obj.encode("utf-8", "surrogatepass")
        return b"X" + struct.pack("<I", len(raw)) + raw
    if isinstance(obj, tuple):
        return b"(" + _items(obj) + b"t"
    if isinstance(obj, list):
        return b"]" + (b"(" + _items(obj) + b"e" if obj else b"")
    if isinstance(obj, dict):
        pairs = [x for kv in obj.items() for x in kv]
        return b"}" + (b"(" + _items(pairs) + b"u" if obj else b"")
    raise TypeError(f"cannot encode {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    """A protocol-2 pickle of ``obj``."""
    return b"\x80\x02" + encode(obj) + b"."


def storage(kind: str = "FloatStorage", key: Any = "0", numel: Any = 4) -> Pid:
    """A torch storage reference as ``torch.save`` writes it."""
    return Pid(("storage", Glob("torch", kind), key, "cpu", numel))


def tensor(store: Any, offset: Any = 0, size: Any = (4,), stride: Any = (1,)) -> Call:
    """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""
    return Call(Glob("torch._utils", "_rebuild_tensor_v2"),
                (store, offset, size, stride, False, Call(Glob("collections", "OrderedDict"),
                                                          ())))


def checkpoint(pkl: bytes, storages: dict[str, bytes] | None = None) -> bytes:
    """A zip-format checkpoint: archive/data.pkl, byteorder, version and data/<key> files."""
    members = [zipfmt.stored("archive/data.pkl", pkl),
               zipfmt.stored("archive/byteorder", b"little")]
    for key, raw in (storages if storages is not None else {"0": bytes(16)}).items():
        members.append(zipfmt.stored(f"archive/data/{key}", raw))
    members.append(zipfmt.stored("archive/version", b"3\n"))
    return zipfmt.build(members)


# --- code execution attempts: each would create ``marker`` if the reader ran it -------------

def code_exec_pickles(marker: str) -> list[tuple[str, bytes]]:
    """(name, pickle) pairs whose loading would run code that creates ``marker``."""
    sh = f"touch '{marker}'"
    py = f"open({marker!r}, 'w').close()"
    system = Call(Glob("os", "system"), (sh,))
    deep_call = {"x": system, "w": tensor(storage(), 0, (4,), (1,))}
    return [
        ("GLOBAL os.system + REDUCE", dumps(system)),
        ("GLOBAL posix.system", dumps(Call(Glob("posix", "system"), (sh,)))),
        ("subprocess.call", dumps(Call(Glob("subprocess", "call"), (["touch", marker],)))),
        ("builtins.eval", dumps(Call(Glob("builtins", "eval"), (py,)))),
        ("builtins.exec", dumps(Call(Glob("builtins", "exec"), (py,)))),
        ("__builtin__.eval (py2 name)", dumps(Call(Glob("__builtin__", "eval"), (py,)))),
        ("os.system inside a state dict", dumps(deep_call)),
        ("os.system as a tensor's hooks", dumps({"w": Call(
            Glob("torch._utils", "_rebuild_tensor_v2"), (storage(), 0, (4,), (1,), False,
                                                         system))})),
        ("os.system in a persistent id", dumps(Pid(("storage", system, "0", "cpu", 4)))),
        ("INST os system", b"\x80\x02(" + encode(sh) + b"ios\nsystem\n."),
        ("OBJ os.system", b"\x80\x02(" + encode(Glob("os", "system")) + encode(sh) + b"o."),
        ("STACK_GLOBAL os.system", b"\x80\x04" + encode("os") + encode("system")
         + b"\x93" + encode((sh,)) + b"R."),
        ("os.system in a BUILD state", dumps(Raw(
            encode(Call(Glob("collections", "OrderedDict"), ())) + encode(
                ({}, {"__setstate__": system})) + b"b"))),
        ("getattr(__import__('os'), 'system')", dumps(Call(Call(Glob("builtins", "getattr"), (
            Call(Glob("builtins", "__import__"), ("os",)), "system")), (sh,)))),
    ]


# --- malformed but code-free pickles ----------------------------------------------------------

def _deep(depth: int, open_op: bytes, close_op: bytes) -> bytes:
    return open_op * depth + close_op * depth


def structural_pickles(rng: random.Random) -> list[tuple[str, bytes]]:
    """(name, pickle) pairs: deep nesting, odd keys, opcode soup, memo and frame bombs."""
    depth = 100_000
    nested_list = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
    nested_tuple = b"\x80\x02" + _deep(depth, b"(", b"t") + b"."
    deep_dict = b"\x80\x02}" + (encode("k") + b"}") * depth + b"s" * depth + b"."
    deep_pid = b"\x80\x02" + _deep(depth, b"(", b"t") + b"Q."
    return [
        ("nested lists 100k deep", nested_list),
        ("nested tuples 100k deep", nested_tuple),
        ("persistent id nested 100k deep", deep_pid),
        ("nested dicts 100k deep", deep_dict),
        ("int keys", dumps({1: tensor(storage()), None: 3})),
        ("state_dict -> list", dumps({"state_dict": [tensor(storage())]})),
        ("list at top level", dumps([tensor(storage())])),
        ("unknown opcode", b"\x80\x02\xff."),
        ("no STOP", b"\x80\x02}"),
        ("MARK never closed", b"\x80\x02(((."),
        ("BINGET missing memo", b"\x80\x02h\x05."),
        ("LONG_BINPUT memo index 2^32-1", b"\x80\x02}r\xff\xff\xff\xff."),
        ("LONG_BINPUT memo index 2^30", b"\x80\x02}r\x00\x00\x00\x40."),
        ("FRAME of 2^62 bytes", b"\x80\x04\x95" + struct.pack("<Q", 1 << 62) + b"}."),
        ("BINUNICODE of 4 GiB declared", b"\x80\x02X\xff\xff\xff\xff" + b"a" * 8 + b"."),
        ("LONG4 huge length", b"\x80\x02\x8b\xff\xff\xff\x7f."),
        ("REDUCE on a storage type", dumps(Call(Glob("torch", "FloatStorage"), (4,)))),
        ("OrderedDict(5)", dumps(Call(Glob("collections", "OrderedDict"), (5,)))),
        ("_rebuild_parameter()", dumps(Call(Glob("torch._utils", "_rebuild_parameter"), ()))),
        ("_rebuild_tensor_v2 on a str", dumps({"w": Call(
            Glob("torch._utils", "_rebuild_tensor_v2"), ("x", 0, (1,), (1,)))})),
        ("persistent id not a tuple", dumps({"w": Pid("storage")})),
        ("persistent id with a str type", dumps({"w": Pid(("storage", "FloatStorage", "0",
                                                           "cpu", 4))})),
        ("empty pickle", b""),
        ("random bytes", rng.randbytes(64)),
    ]


_ODD_INTS = (0, 1, -1, -(1 << 62), 1 << 31, 1 << 40, (1 << 63) - 1, 1 << 64, 10 ** 30)


def _odd(rng: random.Random) -> Any:
    return rng.choice(_ODD_INTS + (None, "3", 1.5, (), [1], {}))


def tensor_pickle(rng: random.Random) -> tuple[str, bytes, dict[str, bytes]]:
    """A state dict whose one tensor has randomly odd storage / offset / size / stride."""
    numel = rng.choice((4, 0, 1, -1, 1 << 40, rng.randrange(64)))
    kind = rng.choice(("FloatStorage", "FloatStorage", "DoubleStorage", "BFloat16Storage",
                       "BoolStorage", "LongStorage", "HalfStorage"))
    key = rng.choice(("0", "0", "1", "../0", "", 0))
    store = storage(kind, key, numel)
    ndim = rng.choice((0, 1, 2, 4, 40))
    size = tuple(rng.choice((0, 1, 2, 3, 4, 1 << 20, 1 << 31, -1)) for _ in range(ndim))
    stride = tuple(rng.choice((0, 1, 2, -1, -4, 1 << 40)) for _ in range(ndim))
    offset = rng.choice((0, 0, 1, 3, -1, -(1 << 40), 1 << 40))
    if rng.random() < 0.2:
        stride = stride + (1,)
    if rng.random() < 0.2:
        size, stride, offset = _odd(rng), _odd(rng), _odd(rng)
    raw_len = rng.choice((16, 0, 3, 17, 64))
    desc = (f"tensor {kind} key={key!r} numel={numel} offset={offset} size={size} "
            f"stride={stride} storage bytes={raw_len}")
    pkl = dumps({"w": tensor(store, offset, size, stride)})
    return desc, pkl, {"0": bytes(raw_len)}


def stride_zero_bomb() -> tuple[str, bytes, dict[str, bytes]]:
    """A 4-element storage viewed as 10^5 x 10^5 with stride 0 (40 GB if copied)."""
    pkl = dumps({"w": tensor(storage(), 0, (100_000, 100_000), (0, 0))})
    return "stride-0 view 1e5 x 1e5 of 4 elements", pkl, {"0": bytes(16)}


def negative_stride() -> tuple[str, bytes, dict[str, bytes]]:
    """Negative strides walking before the storage's first element."""
    pkl = dumps({"w": tensor(storage(numel=4), 3, (1000,), (-1000,))})
    return "negative stride -1000 from offset 3", pkl, {"0": bytes(16)}
