"""The ZigBee Image Integrity Code: an AES-128 Matyas-Meyer-Oseas hash (ZigBee spec B.6).

The integrity-code element (tag 0x0003) holds the hash of every byte of the OTA file before the
element's own tag; checking it tells a user whether a vendor file was damaged in transit.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16


def _pad(message: bytes) -> bytes:
    """MMO padding: 0x80, zeros, then the bit length (16 bits, or 32 bits and 16 zero bits)."""
    bits = len(message) * 8
    if bits < 1 << 16:
        suffix = bits.to_bytes(2, "big")
    else:
        suffix = bits.to_bytes(4, "big") + b"\x00\x00"
    padded = message + b"\x80"
    padded += bytes(-(len(padded) + len(suffix)) % BLOCK)
    return padded + suffix


def aes_mmo_hash(message: bytes) -> bytes:
    """16-byte AES-MMO digest of ``message``."""
    padded = _pad(message)
    digest = bytes(BLOCK)
    for start in range(0, len(padded), BLOCK):
        block = padded[start : start + BLOCK]
        encryptor = Cipher(algorithms.AES(digest), modes.ECB()).encryptor()
        cipher = encryptor.update(block) + encryptor.finalize()
        digest = (int.from_bytes(cipher, "big") ^ int.from_bytes(block, "big")).to_bytes(BLOCK, "big")
    return digest
