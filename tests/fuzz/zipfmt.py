"""Zip archives built and mutated by hand: a minimal writer (so members can carry any
compression method, declared size or name), header-field patches, and deflate bombs."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass, replace

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_END = b"PK\x05\x06"


@dataclass(frozen=True)
class Member:
    """One archive member as stored: ``payload`` is already compressed with ``method``."""

    name: bytes
    payload: bytes
    method: int = 0
    crc: int = 0
    size: int = 0
    flags: int = 0


def stored(name: str, data: bytes) -> Member:
    """An uncompressed member with correct CRC and size."""
    return Member(name.encode("utf-8"), data, 0, zlib.crc32(data), len(data))


def deflated(name: str, data: bytes) -> Member:
    """A deflated member with correct CRC and size."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return Member(name.encode("utf-8"), c.compress(data) + c.flush(), 8, zlib.crc32(data),
                  len(data))


def build(members: list[Member]) -> bytes:
    """The archive bytes: local headers + payloads, central directory, end record."""
    out, central = io.BytesIO(), io.BytesIO()
    for m in members:
        offset = out.tell()
        fields = (20, m.flags, m.method, 0, 0x21, m.crc, len(m.payload) & 0xFFFFFFFF,
                  m.size & 0xFFFFFFFF, len(m.name), 0)
        out.write(_LOCAL + struct.pack("<HHHHHIIIHH", *fields) + m.name + m.payload)
        central.write(_CENTRAL + struct.pack("<HHHHHHIIIHHHHHII", 20, *fields, 0, 0, 0, 0,
                                             offset & 0xFFFFFFFF) + m.name)
    cd = central.getvalue()
    end = _END + struct.pack("<HHHHIIH", 0, 0, len(members), len(members), len(cd),
                             out.tell(), 0)
    return out.getvalue() + cd + end


def read_members(data: bytes) -> list[Member]:
    """The members of a well-formed archive (a seed), re-stored uncompressed."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [stored(info.filename, z.read(info)) for info in z.infolist()]


def bomb_payload(prefix: bytes, total: int) -> bytes:
    """A raw deflate stream of ``prefix`` followed by zeros up to ``total`` bytes, about
    1000x smaller than ``total``: full flushes byte-align and cut back-references, so one
    compressed MiB of zeros can be repeated."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = z.compress(bytes(1 << 20)) + z.flush(zlib.Z_FULL_FLUSH)
    n = max(0, (total - len(prefix)) >> 20)
    return head + mib * n + z.flush()


def bomb_member(name: bytes, prefix: bytes, total: int, declared: int | None = None) -> Member:
    """A deflated member expanding to ``total`` bytes (CRC left 0: computing it would read
    every byte); ``declared`` is the size written in the headers (default: the true one)."""
    payload = bomb_payload(prefix, total)
    return Member(name, payload, 8, 0, total if declared is None else declared)


def _headers(data: bytes) -> list[tuple[int, int]]:
    """(central header offset, its local header offset) for each central directory entry."""
    out, pos = [], data.find(_CENTRAL)
    while pos >= 0 and pos + 46 <= len(data):
        (lho,) = struct.unpack_from("<I", data, pos + 42)
        out.append((pos, lho))
        pos = data.find(_CENTRAL, pos + 4)
    return out


_CENTRAL_FIELDS = {"flags": (8, "H"), "method": (10, "H"), "crc": (16, "I"),
                   "csize": (20, "I"), "usize": (24, "I"), "name_len": (28, "H"),
                   "extra_len": (30, "H"), "local_offset": (42, "I")}
_VALUES = {"H": (0, 1, 8, 12, 14, 99, 0xFFFF), "I": (0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 3 << 30)}


def patch_field(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One central-directory field (and its local-header twin) set to an odd value."""
    heads = _headers(data)
    if not heads:
        return data, "zip field patch: no central directory"
    pos, lho = rng.choice(heads)
    field = rng.choice(sorted(_CENTRAL_FIELDS))
    off, fmt = _CENTRAL_FIELDS[field]
    (old,) = struct.unpack_from("<" + fmt, data, pos + off)
    value = rng.choice(_VALUES[fmt] + (old + 1, max(old - 1, 0)))
    out = bytearray(data)
    struct.pack_into("<" + fmt, out, pos + off, value & (0xFFFF if fmt == "H" else 0xFFFFFFFF))
    both = field != "local_offset" and rng.random() < 0.7 and lho + 30 <= len(out)
    if both and out[lho:lho + 4] == _LOCAL:
        struct.pack_into("<" + fmt, out, lho + off - 2, value & (0xFFFF if fmt == "H"
                                                                 else 0xFFFFFFFF))
    return bytes(out), f"zip {field} of entry at {pos} {old} -> {value}" + (
        " (central and local)" if both else " (central only)")


def patch_end(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """The end record's entry counts or central directory size/offset set to odd values."""
    pos = data.rfind(_END)
    if pos < 0 or pos + 22 > len(data):
        return data, "zip end patch: no end record"
    field, off, fmt = rng.choice([("entries", 10, "H"), ("cd_size", 12, "I"),
                                  ("cd_offset", 16, "I")])
    value = rng.choice(_VALUES[fmt])
    out = bytearray(data)
    struct.pack_into("<" + fmt, out, pos + off, value)
    if field == "entries":
        struct.pack_into("<H", out, pos + 8, value)
    return bytes(out), f"zip end record {field} -> {value}"


def restructure(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Members renamed, dropped, duplicated, encrypted-flagged or recompressed."""
    members = read_members(data)
    if not members:
        return data, "zip restructure: empty archive"
    i = rng.randrange(len(members))
    m = members[i]
    kind = rng.choice(["rename", "drop", "duplicate", "encrypt", "method", "deflate"])
    if kind == "rename":
        new = rng.choice([m.name + b"x", m.name[:-1], b"../" + m.name, m.name.upper(),
                          m.name.replace(b"/", b"\\"), b"", "\u00e9".encode() + m.name])
        members[i] = replace(m, name=new)
        desc = f"rename {m.name!r} -> {new!r}"
    elif kind == "drop":
        del members[i]
        desc = f"drop {m.name!r}"
    elif kind == "duplicate":
        members.insert(i, replace(m, payload=m.payload[: len(m.payload) // 2]))
        desc = f"duplicate {m.name!r} (first copy half-length)"
    elif kind == "encrypt":
        members[i] = replace(m, flags=1)
        desc = f"encrypted flag on {m.name!r}"
    elif kind == "method":
        method = rng.choice([1, 6, 9, 12, 14, 93, 98, 99])
        members[i] = replace(m, method=method)
        desc = f"method {method} on stored {m.name!r}"
    else:
        members[i] = replace(deflated(m.name.decode("utf-8", "replace"), m.payload),
                             name=m.name)
        desc = f"deflate {m.name!r}"
    return build(members), "zip " + desc


def bomb(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One member replaced by (or a new member added as) a 3 GiB deflate bomb that keeps the
    member's first bytes, so format headers still parse; the declared size may lie."""
    members = read_members(data)
    total = 3 << 30
    i = rng.randrange(len(members)) if members else 0
    old = members[i] if members else stored("bomb", b"")
    declared = rng.choice([None, old.size, 0])
    new = bomb_member(old.name, old.payload[:256], total, declared)
    if rng.random() < 0.7 and members:
        members[i] = new
        desc = f"replace {old.name!r} by a 3 GiB bomb"
    else:
        members.append(replace(new, name=b"extra.bin"))
        desc = "add a 3 GiB bomb member"
    return build(members), f"zip {desc} (declared size {declared or total})"


ZIP_MUTATIONS = [patch_field, patch_end, restructure, bomb]
