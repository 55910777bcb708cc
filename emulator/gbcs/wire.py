"""Byte-level reading and writing shared by the GBCS codecs: a strict cursor and A-XDR lengths.

Every decoder reads through :class:`Reader`, so every malformed or truncated message is a
:class:`GbcsDecodeError` that names the field and its byte offset in the whole message, not in
whatever slice happened to be parsed.
"""

from __future__ import annotations


class GbcsDecodeError(ValueError):
    """A GBCS message that does not decode: ``field`` at byte ``offset`` is wrong because ``reason``."""

    def __init__(self, field: str, offset: int, reason: str) -> None:
        super().__init__(f"{field} at offset {offset}: {reason}")
        self.field = field
        self.offset = offset
        self.reason = reason


class GbcsEncodeError(ValueError):
    """A value that cannot be put in a GBCS message (out of range, wrong length)."""


class Reader:
    """A cursor over ``data`` whose errors carry absolute offsets (``base`` + position)."""

    __slots__ = ("_data", "_pos", "_base")

    def __init__(self, data: bytes, base: int = 0) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._base = base

    @property
    def offset(self) -> int:
        """Absolute offset of the next byte."""
        return self._base + self._pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def peek(self, field: str) -> int:
        if self._pos >= len(self._data):
            raise GbcsDecodeError(field, self.offset, "message ends here (truncated)")
        return self._data[self._pos]

    def take(self, size: int, field: str) -> bytes:
        # Every GBCS decode goes through here dozens of times a message: no property calls.
        pos = self._pos
        end = pos + size
        if end > len(self._data):
            raise GbcsDecodeError(
                field, self.offset, f"needs {size} byte(s) but only {self.remaining} remain (truncated)"
            )
        self._pos = end
        return self._data[pos:end]

    def sub(self, size: int, field: str) -> "Reader":
        """A reader over the next ``size`` bytes, consumed here; its offsets stay absolute."""
        start = self._base + self._pos
        return Reader(self.take(size, field), base=start)

    def uint(self, size: int, field: str) -> int:
        pos = self._pos
        end = pos + size
        if end > len(self._data):
            self.take(size, field)  # raises, naming the field and offset
        self._pos = end
        return int.from_bytes(self._data[pos:end], "big")

    def expect(self, value: bytes, field: str) -> None:
        at = self.offset
        got = self.take(len(value), field)
        if got != value:
            raise GbcsDecodeError(field, at, f"expected {value.hex().upper()}, found {got.hex().upper()}")

    def length(self, field: str) -> int:
        """An A-XDR / BER definite length: one byte below 0x80, else 0x81..0x84 and that many bytes."""
        at = self._base + self._pos
        first = self.peek(field)
        self._pos += 1
        if first < 0x80:
            return first
        count = first & 0x7F
        if count == 0 or count > 4:
            raise GbcsDecodeError(field, at, f"length form 0x{first:02X} is not a definite length")
        value = self.uint(count, field)
        if encode_length(value) != bytes([first]) + value.to_bytes(count, "big"):
            raise GbcsDecodeError(field, at, f"length {value} is not in its shortest form")
        return value

    def octet_string(self, field: str) -> bytes:
        """A length-prefixed octet string (A-XDR)."""
        size = self.length(f"{field} length")
        return self.take(size, field)

    def rest(self) -> bytes:
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk

    def done(self, field: str) -> None:
        """Fail if anything is left: a strict codec accepts no trailing bytes."""
        if self.remaining:
            raise GbcsDecodeError(field, self.offset, f"{self.remaining} unexpected trailing byte(s)")


def encode_length(value: int) -> bytes:
    """The shortest A-XDR / BER definite length of ``value``."""
    if value < 0:
        raise GbcsEncodeError(f"negative length {value}")
    if value < 0x80:
        return bytes([value])
    size = (value.bit_length() + 7) // 8
    if size > 4:
        raise GbcsEncodeError(f"length {value} does not fit in 4 bytes")
    return bytes([0x80 | size]) + value.to_bytes(size, "big")


def octet_string(value: bytes) -> bytes:
    return encode_length(len(value)) + value


def uint_bytes(value: int, size: int, field: str) -> bytes:
    """``value`` as ``size`` big-endian bytes, or a GbcsEncodeError naming ``field``."""
    if not 0 <= value < 1 << (8 * size):
        raise GbcsEncodeError(f"{field} {value!r} does not fit in {size} unsigned byte(s)")
    return value.to_bytes(size, "big")
