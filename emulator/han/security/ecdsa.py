"""ECDSA over the Smart Energy Koblitz curves, with the 16-octet AES-MMO digest ZigBee signs.

ZigBee OTA images (signature sub-element 0x0001/0x0005) and SE certificates' signers use ECDSA on
sect163k1 (suite 1) or sect283k1 (suite 2) over an AES-MMO digest; ``cryptography`` has no binary
curves, so this builds on :mod:`emulator.han.security.curves`. Signatures are ``r ‖ s``, each
big-endian in the curve's scalar length.
"""

from __future__ import annotations

from .curves import KoblitzCurve, Point


def signature_length(curve: KoblitzCurve) -> int:
    """Octets of ``r ‖ s``: 42 (sect163k1) or 72 (sect283k1)."""
    return 2 * curve.scalar_length


def verify_digest(curve: KoblitzCurve, digest: bytes, signature: bytes, public_key: Point) -> bool:
    """Whether ``signature`` is a valid ECDSA signature of ``digest`` under ``public_key``."""
    size = curve.scalar_length
    n = curve.order
    if len(signature) != 2 * size or public_key is None or not curve.is_on_curve(public_key):
        return False
    r = int.from_bytes(signature[:size], "big")
    s = int.from_bytes(signature[size:], "big")
    if not (0 < r < n and 0 < s < n):
        return False
    e = _digest_value(digest, n)
    w = pow(s, -1, n)
    point = curve.add(curve.mul(e * w % n, curve.generator), curve.mul(r * w % n, public_key))
    return point is not None and point[0] % n == r


def sign_digest(curve: KoblitzCurve, digest: bytes, private_key: int, nonce: int) -> bytes:
    """ECDSA with a caller-chosen ``nonce``: for building TEST ONLY images and mutations only."""
    n = curve.order
    point = curve.mul(nonce, curve.generator)
    if point is None or not 0 < nonce < n:
        raise ValueError("the nonce must be in [1, n-1]")
    r = point[0] % n
    s = pow(nonce, -1, n) * (_digest_value(digest, n) + r * private_key) % n
    if r == 0 or s == 0:
        raise ValueError("degenerate signature: choose another nonce")
    size = curve.scalar_length
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _digest_value(digest: bytes, n: int) -> int:
    """SEC 1 4.1.3 step 5: the leftmost bits of the digest, as many as n has."""
    e = int.from_bytes(digest, "big")
    excess = 8 * len(digest) - n.bit_length()
    return e >> excess if excess > 0 else e
