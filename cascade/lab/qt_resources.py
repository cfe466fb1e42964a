"""Files inside a Qt binary resource bundle (.rcc), as some packages ship their images (gcompris-qt).

The format (Qt's rcc, versions 1 to 3): a 'qres' header with the offsets of a tree of entries, of
their names (UTF-16) and of their data; a file's data may be zlib-compressed (qCompress: a 4-byte
length, then zlib). Zstandard-compressed entries (Qt 6) are reported, not decoded.
"""

from __future__ import annotations

import struct
import zlib

COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 1, 2, 4


class ResourceError(ValueError):
    """Not an rcc bundle, or an entry this reader cannot decode."""


def read_rcc(blob: bytes, wanted: set[str] | None = None) -> dict[str, bytes]:
    """{path: bytes} of the files in an rcc bundle (paths without a leading '/'); only `wanted`
    ones when given. Data is sliced and decompressed for those files alone."""
    if len(blob) < 20 or blob[:4] != b"qres":
        raise ResourceError("not a Qt resource bundle (no 'qres' header)")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    if version not in (1, 2, 3):
        raise ResourceError(f"rcc format version {version} is not one this reader knows (1-3)")
    entry_size = 14 if version == 1 else 22  # version 2 added an 8-byte modification time

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", blob[names + offset:names + offset + 2])
        start = names + offset + 6  # length, then a 4-byte hash, then the name
        return blob[start:start + 2 * length].decode("utf-16-be")

    found: dict[str, bytes] = {}
    stack = [(0, "")]
    seen = 0
    while stack:
        index, prefix = stack.pop()
        seen += 1
        if seen > 1_000_000:
            raise ResourceError("rcc tree does not end (corrupt bundle)")
        at = tree + index * entry_size
        name_offset, flags = struct.unpack(">IH", blob[at:at + 6])
        name = name_at(name_offset) if index else ""
        if flags & DIRECTORY:
            count, first = struct.unpack(">II", blob[at + 6:at + 14])
            folder = f"{prefix}{name}/" if name else prefix
            stack.extend((child, folder) for child in range(first, first + count))
            continue
        path = prefix + name
        if wanted is not None and path not in wanted:
            continue
        (offset,) = struct.unpack(">I", blob[at + 10:at + 14])
        (length,) = struct.unpack(">I", blob[data + offset:data + offset + 4])
        raw = blob[data + offset + 4:data + offset + 4 + length]
        if flags & COMPRESSED_ZSTD:
            raise ResourceError(f"{path}: zstd-compressed entries are not supported")
        found[path] = zlib.decompress(raw[4:]) if flags & COMPRESSED else raw
    return found
