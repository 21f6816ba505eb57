"""TensorBoard event files written by hand: TFRecord framing and a minimal protobuf encoding.

A record is ``len (uint64 LE) | masked_crc32c(len) (uint32 LE) | data | masked_crc32c(data)``
with masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32), crc32c the Castagnoli CRC.
Each ``data`` is an ``Event`` message: wall_time (1, double), step (2, int64), file_version
(3, string) or summary (5, Summary{value (1): Value{tag (1, string), simple_value (2,
float)}}).
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path
from typing import IO

__all__ = ["crc32c", "masked_crc32c", "EventFileWriter"]


def _table() -> list[int]:
    out = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        out.append(c)
    return out


_TABLE = _table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1  # negative int64 as two's complement, as protobuf does
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    key = _varint((number << 3) | wire)
    if wire == 2:
        return key + _varint(len(payload)) + payload
    return key + payload


def _event(wall_time: float, step: int, body: bytes) -> bytes:
    return _field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(step)) + body


def scalar_event(tag: str, value: float, step: int, wall_time: float) -> bytes:
    """Event{wall_time, step, summary{value{tag, simple_value}}} as bytes."""
    v = _field(1, 2, tag.encode("utf-8")) + _field(2, 5, struct.pack("<f", float(value)))
    return _event(wall_time, step, _field(5, 2, _field(1, 2, v)))


def record(data: bytes) -> bytes:
    """One TFRecord frame around ``data``."""
    head = struct.pack("<Q", len(data))
    return (head + struct.pack("<I", masked_crc32c(head)) + data
            + struct.pack("<I", masked_crc32c(data)))


class EventFileWriter:
    """Appends scalar events to ``<folder>/events.out.tfevents.<time>.<host>``."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}"
        self.path = self.folder / name
        self._f: IO[bytes] | None = open(self.path, "wb")  # noqa: SIM115  (kept open)
        version = _field(3, 2, b"brain.Event:2")
        self._f.write(record(_event(now, 0, version)))
        self._f.flush()

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self._f is None:
            raise ValueError(f"event file {self.path} is closed")
        self._f.write(record(scalar_event(tag, value, int(step), time.time())))

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
