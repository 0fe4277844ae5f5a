"""Streaming tar.gz: members are written as their bytes arrive, memory bounded by one chunk.

The archive is deterministic (mtime 0, fixed modes, no owner names), so the same files
always give the same archive and the same sha256.
"""

from __future__ import annotations

import struct
import tarfile
import zlib
from collections.abc import Callable

BLOCK = 512
PIECE = 1024 * 1024  # deflate unit; the compressibility of each piece is judged on its own
SAMPLE = 8 * 1024  # deflating the sample costs 1/128 of deflating the piece
STORE_RATIO = 0.9  # a piece whose sample shrinks less than 10% is stored, not deflated
MAX_STORED_BLOCK = 0xFFFF


def tar_header(path: str, size: int) -> bytes:
    """Header block(s) of a regular file; PAX records carry long paths and sizes over 8 GiB."""
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime, info.type = size, 0o644, 0, tarfile.REGTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT)


def tar_padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


TAR_END = b"\0" * (2 * BLOCK)


class GzipWriter:
    """One ordinary gzip member whose deflate stream is assembled write by write.

    Each write is judged on its own: bytes that compress are deflated (level 1,
    sync-flushed so the next write starts on a byte boundary); bytes that do not (model
    weights, data already compressed) go out as stored deflate blocks, slices of the
    caller's buffer with 5-byte headers, not copied. zlib manages about 50 MB/s on
    incompressible bytes at any level, slower than the upload; stored blocks cost a CRC.
    Writes are the sources' read chunks (1 MiB) and tar headers; a write larger than
    PIECE is split. Any gzip reader (gzip, tar, Python's tarfile) reads the result.
    """

    def __init__(self, sink: Callable[[bytes | memoryview], None]):
        self._sink = sink
        self._crc = 0
        self._size = 0
        # magic, deflate, no flags, mtime 0, no extra flags, OS unknown
        sink(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")

    def write(self, data: bytes) -> None:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        view = memoryview(data)
        for start in range(0, len(data), PIECE):
            self._encode(view[start : start + PIECE])

    def close(self) -> None:
        # a final empty fixed-Huffman block, then the trailer: CRC-32 and length mod 2**32
        self._sink(b"\x03\x00" + struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))

    def _encode(self, piece: memoryview) -> None:
        sample = piece[:SAMPLE]
        if len(zlib.compress(sample, 1)) < STORE_RATIO * len(sample):
            compressor = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
            self._sink(compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH))
            return
        for start in range(0, len(piece), MAX_STORED_BLOCK):
            block = piece[start : start + MAX_STORED_BLOCK]
            self._sink(struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF))
            self._sink(block)
