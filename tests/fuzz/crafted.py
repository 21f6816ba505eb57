"""Crafted files with lying headers: safetensors, IDX (raw and gzip), images."""

from __future__ import annotations

import json
import random
import struct
import zlib
from typing import Any

from .zipfmt import bomb_payload

# --- safetensors -------------------------------------------------------------------------------

_ST_VALUES: tuple[Any, ...] = (0, -1, 1 << 40, 1 << 64, 10 ** 30, 1.5, None, "8", [], {},
                               [0], [0, 8, 16], True)


def _st_entry(rng: random.Random) -> dict[str, Any]:
    entry: dict[str, Any] = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    field = rng.choice(("dtype", "shape", "data_offsets", "drop", "extra", "overlap"))
    if field == "dtype":
        entry["dtype"] = rng.choice(("F8", "", "f32", "BF16", "C64", 7, None, ["F32"], {}))
    elif field == "shape":
        entry["shape"] = rng.choice(([-1, -8], [1 << 40, 1 << 40], [1 << 64], [2 ** 62, 4],
                                     [0, 1 << 62], "22", 2, None, [[2]], [1.5], ["2"]))
    elif field == "data_offsets":
        entry["data_offsets"] = rng.choice(([8, 0], [-8, 0], [0, 1 << 64], [0], [0, 8, 8],
                                            ["0", "8"], None, 8, [0.0, 8.0], [0, 4]))
    elif field == "drop":
        del entry[rng.choice(sorted(entry))]
    elif field == "extra":
        entry["data_offsets"] = [0, 8]
        entry[rng.choice(("shape", "dtype"))] = rng.choice(_ST_VALUES)
    return entry


def safetensors_file(rng: random.Random) -> tuple[str, bytes]:
    """A safetensors file whose JSON header or header length is odd."""
    kind = rng.choice(("entry", "entry", "entry", "top", "length", "deep", "bytes", "overlap"))
    body = bytes(16)
    if kind == "top":
        header_obj = rng.choice(([], 3, "x", None, {"__metadata__": 5}, {"a": 5}, {"a": []}))
        head = json.dumps(header_obj).encode()
    elif kind == "deep":
        head = b"[" * 100_000 + b"]" * 100_000
    elif kind == "bytes":
        head = rng.choice((b"\xff\xfe{}", b"{\"a\": \"\\ud800\"}", b"\x00" * 8, b"{" * 50))
    elif kind == "overlap":
        head = json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
                          ).encode()
    else:
        head = json.dumps({"a": _st_entry(rng)}).encode()
    n = len(head)
    if kind == "length":
        n = rng.choice((0, 1, n - 1, n + 1, (1 << 64) - 1, 1 << 63, 1 << 32))
    return f"safetensors crafted {kind}: {head[:80]!r} length {n}", (
        struct.pack("<Q", n) + head + body)


# --- IDX ---------------------------------------------------------------------------------------

def gzip_wrap(payload_deflate: bytes, crc: int = 0, size: int = 0) -> bytes:
    """A gzip member around a raw deflate stream."""
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + payload_deflate
            + struct.pack("<II", crc, size & 0xFFFFFFFF))


def idx_file(rng: random.Random) -> tuple[str, bytes]:
    """A raw IDX file whose header declares odd or huge dimensions."""
    code = rng.choice((0x08, 0x08, 0x0D, 0x0E, 0x0B, 0x0C, 0x00, 0x0A, 0xFF))
    ndim = rng.choice((0, 1, 3, 4, 17, 255))
    dims = [rng.choice((0, 1, 28, 60000, 1 << 31, (1 << 32) - 1)) for _ in range(ndim)]
    data_len = rng.choice((0, 1, 16, 784))
    header = bytes([0, 0, code, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)
    if rng.random() < 0.2:
        header = header[: rng.randrange(len(header) + 1)]
    return f"idx crafted code {code:#x} dims {dims} + {data_len} bytes", header + bytes(data_len)


def idx_gz_bomb(rng: random.Random) -> tuple[str, bytes]:
    """A gzip IDX whose header declares 10 bytes but which expands to 3 GiB."""
    header = bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big")
    total = 3 << 30
    return ("idx.gz: header says 10 bytes, 3 GiB of zeros follow",
            gzip_wrap(bomb_payload(header, total), 0, total))


# --- images ------------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data))


def png(width: int, height: int, depth: int = 8, color: int = 0, idat: bytes | None = None,
        extra: bytes = b"") -> bytes:
    """A PNG with correct CRCs; ``idat`` defaults to one tiny zlib stream."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    data = zlib.compress(b"\x00" * 8) if idat is None else idat
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", data)
            + _chunk(b"IEND", b""))


def _png_zlib_bomb(total: int) -> bytes:
    raw = bomb_payload(b"", total)
    return b"\x78\x9c" + raw + struct.pack(">I", 1)


def image_file(rng: random.Random) -> tuple[str, bytes, str]:
    """(description, bytes, suffix) of an image whose header lies about its size."""
    big = rng.choice((65535, 100_000, (1 << 31) - 1, 1 << 31, 0xFFFFFFFF))
    kind = rng.choice(("png dims", "png dims", "png bomb idat", "png ztxt bomb", "png odd",
                       "gif dims", "bmp dims", "jpeg dims"))
    if kind == "png dims":
        w, h = rng.choice(((big, big), (big, 1), (1, big), (0, 5)))
        return f"PNG IHDR {w} x {h}", png(w, h), ".png"
    if kind == "png bomb idat":
        return "PNG 3000 x 3000 grey, IDAT bomb of 1 GiB", png(
            3000, 3000, idat=_png_zlib_bomb(1 << 30)), ".png"
    if kind == "png ztxt bomb":
        text = _chunk(b"zTXt", b"k\x00\x00" + b"\x78\x9c" + bomb_payload(b"", 1 << 30))
        return "PNG with a 1 GiB zTXt bomb", png(2, 2, extra=text), ".png"
    if kind == "png odd":
        depth, color = rng.choice(((3, 2), (16, 3), (0, 0), (8, 5), (255, 6)))
        return f"PNG depth {depth} color {color}", png(4, 4, depth, color), ".png"
    if kind == "gif dims":
        w, h = rng.choice(((65535, 65535), (0, 0), (65535, 1)))
        gif = (b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) + b"," + struct.pack(
            "<HHHHB", 0, 0, w, h, 0) + b"\x02\x02\x44\x01\x00;")
        return f"GIF {w} x {h}", gif, ".gif"
    if kind == "bmp dims":
        w, h = rng.choice(((100_000, 100_000), (-5, 5), (5, -(1 << 31)), (1 << 30, 1)))
        info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 0, 0, 0, 0)
        bmp = b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54) + info + bytes(16)
        return f"BMP {w} x {h}", bmp, ".bmp"
    w, h = rng.choice(((65535, 65535), (0, 10), (65535, 1)))
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    return f"JPEG SOF {w} x {h}", b"\xff\xd8" + sof + b"\xff\xd9", ".jpg"
