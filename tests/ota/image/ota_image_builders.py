"""Hand-written OTA files for the image tests, built with struct independently of the code under test."""

from __future__ import annotations

import struct
from pathlib import Path

def _vectors_dir() -> Path:
    """shared/ lies beside the repository (a CI clone gets a copy there); /work/shared otherwise."""
    beside = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "ota"
    return beside if beside.is_dir() else Path("/work/shared/vectors/ota")


VECTORS = _vectors_dir()
VECTOR_FILES = sorted(p for p in VECTORS.glob("*") if p.suffix != ".md") if VECTORS.is_dir() else []


def ota_header(
    *,
    total: int,
    header_length: int = 56,
    field_control: int = 0,
    header_version: int = 0x0100,
    manufacturer: int = 0x1234,
    image_type: int = 0x0042,
    file_version: int = 0x01020304,
    header_string: bytes = b"test",
    optional: bytes = b"",
) -> bytes:
    """An OTA header written by hand with struct, independent of the code under test."""
    return (
        struct.pack(
            "<IHHHHHIH32sI",
            0x0BEEF11E,
            header_version,
            header_length,
            field_control,
            manufacturer,
            image_type,
            file_version,
            0x0002,
            header_string.ljust(32, b"\x00"),
            total,
        )
        + optional
    )


def element(tag: int, data: bytes, *, length: int | None = None) -> bytes:
    return struct.pack("<HI", tag, len(data) if length is None else length) + data


def ota_file(body: bytes, **header) -> bytes:
    """A complete OTA file around ``body`` with a correct total size unless given."""
    optional = header.get("optional", b"")
    header_length = header.pop("header_length", 56 + len(optional))
    total = header.pop("total", header_length + len(body))
    head = ota_header(total=total, header_length=header_length, **header)
    head += b"\xaa" * max(0, header_length - len(head))  # unknown extra header bytes
    return head + body
