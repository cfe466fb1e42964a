"""Hostile and ordinary image payloads, shared by the unit and wire tests."""

import base64
import io
import struct
import zlib

from PIL import Image

from cascade.scenes import generate_scene


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def jpeg_bytes(seed: int = 0, roadwork: bool | None = None, size: int | tuple[int, int] = 224, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    generate_scene(seed, roadwork, size).image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid PNG a few hundred bytes long whose header declares width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * min((1 + 3 * width) * 4, 1 << 16), 9)  # a few rows at most: the rest is missing
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def truncated_jpeg() -> bytes:
    data = jpeg_bytes(seed=3)
    return data[: len(data) // 3]


def gif_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (255, 120, 0)).save(buffer, format="GIF")
    return buffer.getvalue()


def hostile_payloads(max_payload_bytes: int) -> dict[str, str]:
    """Name -> base64 (or not) payload that must never crash or hang the miner."""
    return {
        "malformed_base64": "this is !!! not base64 ***",
        "non_image": b64(b"%PDF-1.4 definitely not a picture " * 50),
        "truncated_jpeg": b64(truncated_jpeg()),
        "decompression_bomb": b64(png_bomb()),
        "gif_not_allowed": b64(gif_bytes()),
        "empty": "",
        "oversized": "A" * (max_payload_bytes + 4),
    }
