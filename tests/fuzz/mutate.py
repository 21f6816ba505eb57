"""Format-blind mutations of a byte string, each driven by a ``random.Random``."""

from __future__ import annotations

import random
from collections.abc import Callable

Mutation = Callable[[bytes, random.Random], tuple[bytes, str]]

_INTERESTING = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)


def truncation_offsets(size: int, limit: int) -> list[int]:
    """Every offset in [0, size) when size <= limit, else the first limit // 4 offsets (the
    header) plus evenly spaced ones over the rest."""
    if size <= limit:
        return list(range(size))
    head = limit // 4
    rest = limit - head
    step = (size - head) / rest
    return list(range(head)) + sorted({head + int(k * step) for k in range(rest)})


def _offset(size: int, rng: random.Random) -> int:
    """A position biased to the first 512 bytes, where headers live."""
    if size <= 1:
        return 0
    if rng.random() < 0.5:
        return rng.randrange(min(size, 512))
    return rng.randrange(size)


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """The first n bytes."""
    n = _offset(len(data), rng)
    return data[:n], f"truncate at {n} of {len(data)}"


def flip_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """1-8 bytes set to random or boundary values."""
    if not data:
        return data, "flip nothing (empty)"
    out = bytearray(data)
    where = []
    for _ in range(rng.randint(1, 8)):
        i = _offset(len(out), rng)
        out[i] = rng.choice(_INTERESTING) if rng.random() < 0.5 else rng.randrange(256)
        where.append(i)
    return bytes(out), f"byte flips at {where}"


def flip_bits(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """1-16 single-bit flips."""
    if not data:
        return data, "flip nothing (empty)"
    out = bytearray(data)
    where = []
    for _ in range(rng.randint(1, 16)):
        i = _offset(len(out), rng)
        bit = rng.randrange(8)
        out[i] ^= 1 << bit
        where.append((i, bit))
    return bytes(out), f"bit flips at {where}"


def _span(data: bytes, rng: random.Random) -> tuple[int, int]:
    i = _offset(len(data), rng)
    return i, min(len(data), i + rng.choice((1, 4, 16, 64, 512, 4096)))


def zero_range(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A byte range overwritten with zeros (or 0xFF)."""
    i, j = _span(data, rng)
    fill = rng.choice((0x00, 0xFF))
    return data[:i] + bytes([fill]) * (j - i) + data[j:], f"fill [{i}, {j}) with {fill:#x}"


def duplicate_range(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A byte range repeated in place (shifts everything after it)."""
    i, j = _span(data, rng)
    times = rng.choice((1, 2, 16))
    return data[:j] + data[i:j] * times + data[j:], f"repeat [{i}, {j}) {times}x"


def delete_range(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A byte range removed."""
    i, j = _span(data, rng)
    return data[:i] + data[j:], f"delete [{i}, {j})"


def append_junk(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Random bytes appended."""
    n = rng.choice((1, 7, 100, 5000))
    return data + rng.randbytes(n), f"append {n} random bytes"


GENERIC: list[Mutation] = [truncate, flip_bytes, flip_bits, zero_range, duplicate_range,
                           delete_range, append_junk]
