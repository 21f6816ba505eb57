"""TensorBoard event files written by hand: TFRecord framing and a minimal protobuf encoding.

A record is ``len (uint64 LE) | masked_crc32c(len) (uint32 LE) | data | masked_crc32c(data)``
with masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32), crc32c the Castagnoli CRC.
Each ``data`` is an ``Event`` message: wall_time (1, double), step (2, int64), file_version
(3, string), graph_def (4, GraphDef bytes) or summary (5, Summary{value (1): Value{tag (1,
string), simple_value (2, float) | image (4, Image) | histo (5, HistogramProto)}}).

- Image: height (1), width (2), colorspace (3: 1 grey, 3 RGB), encoded_image_string (4, PNG).
- HistogramProto: min (1), max (2), num (3), sum (4), sum_squares (5) as doubles,
  bucket_limit (6) and bucket (7) as packed doubles (right edges, counts).
- GraphDef: node (1, NodeDef{name (1), op (2), input (3, repeated)}).
"""

from __future__ import annotations

import os
import socket
import struct
import time
import zlib
from pathlib import Path
from typing import IO

import numpy as np

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


def _doubles(values: np.ndarray) -> bytes:
    return np.asarray(values, dtype="<f8").tobytes()


def histogram_event(tag: str, values: np.ndarray, step: int, wall_time: float,
                    bins: int = 30) -> bytes:
    """A histogram of ``values``: ``bins`` equal-width buckets from min to max."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi if hi > lo else lo + 1e-12))
    h = b"".join([_field(1, 1, struct.pack("<d", lo)), _field(2, 1, struct.pack("<d", hi)),
                  _field(3, 1, struct.pack("<d", float(v.size))),
                  _field(4, 1, struct.pack("<d", float(v.sum()))),
                  _field(5, 1, struct.pack("<d", float((v * v).sum()))),
                  _field(6, 2, _doubles(edges[1:])), _field(7, 2, _doubles(counts))])
    value = _field(1, 2, tag.encode("utf-8")) + _field(5, 2, h)
    return _event(wall_time, step, _field(5, 2, _field(1, 2, value)))


def png_bytes(image: np.ndarray) -> bytes:
    """(H, W) or (H, W, 1 | 3) uint8 as a PNG (8-bit grey or RGB, no filtering)."""
    img = np.asarray(image, dtype=np.uint8)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    h, w = img.shape[:2]
    colour = 0 if img.ndim == 2 else 2
    rows = img.reshape(h, -1)
    raw = b"".join(b"\x00" + rows[i].tobytes() for i in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    head = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def image_event(tag: str, image: np.ndarray, step: int, wall_time: float) -> bytes:
    """An image summary of (H, W[, C]) uint8 pixels, PNG-encoded."""
    img = np.asarray(image)
    c = 1 if img.ndim == 2 else img.shape[-1]
    body = b"".join([_field(1, 0, _varint(img.shape[0])), _field(2, 0, _varint(img.shape[1])),
                     _field(3, 0, _varint(c)), _field(4, 2, png_bytes(img))])
    value = _field(1, 2, tag.encode("utf-8")) + _field(4, 2, body)
    return _event(wall_time, step, _field(5, 2, _field(1, 2, value)))


def graph_event(nodes: list[tuple[str, str, list[str]]], wall_time: float) -> bytes:
    """A GraphDef of (name, op, inputs) nodes."""
    defs = b"".join(_field(1, 2, _field(1, 2, name.encode()) + _field(2, 2, op.encode())
                           + b"".join(_field(3, 2, i.encode()) for i in inputs))
                    for name, op, inputs in nodes)
    return _event(wall_time, 0, _field(4, 2, defs))


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

    def write(self, event: bytes) -> None:
        if self._f is None:
            raise ValueError(f"event file {self.path} is closed")
        self._f.write(record(event))

    def histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        self.write(histogram_event(tag, values, int(step), time.time()))

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        self.write(image_event(tag, image, int(step), time.time()))

    def graph(self, nodes: list[tuple[str, str, list[str]]]) -> None:
        self.write(graph_event(nodes, time.time()))

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
