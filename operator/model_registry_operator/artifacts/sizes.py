"""Byte sizes as people read them, for status messages and errors."""

from __future__ import annotations

KiB, MiB, GiB = 1024, 1024**2, 1024**3


def size_text(size: int) -> str:
    """`size` bytes in the largest binary unit it reaches: "2.0 GiB" (one decimal),
    "512 MiB" and "3 KiB" (rounded down), else "12 bytes"."""
    if size >= GiB:
        return f"{size / GiB:.1f} GiB"
    if size >= MiB:
        return f"{size // MiB} MiB"
    if size >= KiB:
        return f"{size // KiB} KiB"
    return f"{size} bytes"
