"""ECDSA verification on sect283k1 with ZigBee implicit (ECQV) certificates: crypto suite 2.

ZigBee Smart Energy signs OTA images with the signer's static key on sect283k1; the image carries
the signer's 74-byte implicit certificate, from which the public key is reconstructed with the
CA's public key: Q = e·P + Q_CA, e = AES-MMO(certificate). ``cryptography`` has no binary curves,
so this is plain Python (GF(2^283) in polynomial basis, affine coordinates). It only verifies;
it is checked against Certicom's public TESTSECA certificate and an OpenSSL-made signature.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.ota.image.integrity import aes_mmo_hash

M = 283
_REDUCTION = (1 << 283) | (1 << 12) | (1 << 7) | (1 << 5) | 1
B = 1  # y^2 + xy = x^3 + b (a = 0)
N = 0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFE9AE2ED07577265DFF7F94451E061E163C61
GX = 0x0503213F78CA44883F1A3B8162F188E553CD265F23C1567A16876913B0C2AC2458492836
GY = 0x01CCDA380F1C9E318D90F95D07E5426FE87E45C0E8184698E45962364E34116177DD2259
FIELD_BYTES = 36
COMPRESSED_LENGTH = 1 + FIELD_BYTES  # 37
CERTIFICATE_LENGTH = 74
SIGNATURE_LENGTH = 2 * FIELD_BYTES  # r ‖ s, big-endian

# Certificate layout (74 bytes): type, serial, curve, hash, issuer, valid from, valid to,
# subject, key usage, public reconstruction point.
ISSUER = slice(11, 19)
SUBJECT = slice(28, 36)
RECONSTRUCTION_POINT = slice(37, 74)

Point = tuple[int, int] | None  # None is the point at infinity


def _mul(a: int, b: int) -> int:
    """Carry-less multiplication then reduction modulo the field polynomial (4-bit windows)."""
    table = [0] * 16
    for i in range(1, 16):
        table[i] = (table[i >> 1] << 1) ^ (a if i & 1 else 0)
    result = 0
    shift = 0
    while b:
        result ^= table[b & 15] << shift
        b >>= 4
        shift += 4
    return _reduce(result)


def _reduce(value: int) -> int:
    while value.bit_length() > M:
        value ^= _REDUCTION << (value.bit_length() - M - 1)
    return value


def _square(a: int) -> int:
    return _mul(a, a)


def _inverse(a: int) -> int:
    """Inverse in GF(2^283) by the extended Euclidean algorithm on polynomials."""
    if a == 0:
        raise ZeroDivisionError("0 has no inverse")
    u, v, g1, g2 = a, _REDUCTION, 1, 0
    while u != 1:
        j = u.bit_length() - v.bit_length()
        if j < 0:
            u, v, g1, g2 = v, u, g2, g1
            j = -j
        u ^= v << j
        g1 ^= g2 << j
    return _reduce(g1)


def _add(p: Point, q: Point) -> Point:
    if p is None:
        return q
    if q is None:
        return p
    x1, y1 = p
    x2, y2 = q
    if x1 == x2:
        if y1 ^ y2 == x1 or x1 == 0:  # q = -p (or p doubled at x = 0)
            return None
        return _double(p)
    slope = _mul(y1 ^ y2, _inverse(x1 ^ x2))
    x3 = _square(slope) ^ slope ^ x1 ^ x2
    y3 = _mul(slope, x1 ^ x3) ^ x3 ^ y1
    return x3, y3


def _double(p: Point) -> Point:
    if p is None:
        return None
    x1, y1 = p
    if x1 == 0:
        return None
    slope = x1 ^ _mul(y1, _inverse(x1))
    x3 = _square(slope) ^ slope
    y3 = _square(x1) ^ _mul(slope ^ 1, x3)
    return x3, y3


def multiply(k: int, p: Point) -> Point:
    result: Point = None
    addend = p
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _double(addend)
        k >>= 1
    return result


G: Point = (GX, GY)


def on_curve(p: Point) -> bool:
    if p is None:
        return True
    x, y = p
    return _square(y) ^ _mul(x, y) == _mul(_square(x), x) ^ B


def decompress(data: bytes) -> Point:
    """A 37-byte compressed point (02/03 ‖ x); ``ValueError`` if it is not on the curve."""
    if len(data) != COMPRESSED_LENGTH or data[0] not in (2, 3):
        raise ValueError("not a compressed sect283k1 point (37 bytes starting 02 or 03)")
    x = int.from_bytes(data[1:], "big")
    if x >> M:
        raise ValueError("x is outside the field")
    if x == 0:
        y = B
        for _ in range(M - 1):
            y = _square(y)
        return 0, y
    beta = x ^ _mul(B, _inverse(_square(x)))  # z^2 + z = x + a + b/x^2, a = 0
    z, power = 0, beta
    for _ in range((M - 1) // 2 + 1):  # half-trace (m odd)
        z ^= power
        power = _square(_square(power))
    if _square(z) ^ z != beta:
        raise ValueError("x is not the x-coordinate of a curve point")
    if (z & 1) != (data[0] & 1):
        z ^= 1
    return x, _mul(x, z)


def compress(p: Point) -> bytes:
    if p is None:
        raise ValueError("the point at infinity has no compressed form")
    x, y = p
    bit = 0 if x == 0 else _mul(y, _inverse(x)) & 1
    return bytes([2 | bit]) + x.to_bytes(FIELD_BYTES, "big")


@dataclass(frozen=True)
class ImplicitCertificate:
    """A ZigBee suite-2 implicit certificate (74 bytes)."""

    raw: bytes

    @property
    def issuer(self) -> bytes:
        return self.raw[ISSUER]

    @property
    def subject(self) -> bytes:
        return self.raw[SUBJECT]

    def public_key(self, ca_public_key: bytes) -> Point:
        """ECQV reconstruction: Q = e·P + Q_CA with e = AES-MMO(certificate)."""
        e = int.from_bytes(aes_mmo_hash(self.raw), "big")
        reconstruction = decompress(self.raw[RECONSTRUCTION_POINT])
        return _add(multiply(e, reconstruction), decompress(ca_public_key))


def verify_digest(digest: bytes, signature: bytes, public_key: Point) -> bool:
    """ECDSA verification of ``r ‖ s`` (36 bytes each) over a 16-byte AES-MMO digest."""
    if len(signature) != SIGNATURE_LENGTH or public_key is None:
        return False
    r = int.from_bytes(signature[:FIELD_BYTES], "big")
    s = int.from_bytes(signature[FIELD_BYTES:], "big")
    if not (0 < r < N and 0 < s < N):
        return False
    e = int.from_bytes(digest, "big")  # 128 bits, shorter than n: no truncation
    w = pow(s, -1, N)
    point = _add(multiply(e * w % N, G), multiply(r * w % N, public_key))
    return point is not None and point[0] % N == r


def sign_digest(digest: bytes, private_key: int, nonce: int) -> bytes:
    """ECDSA signature with a caller-chosen nonce: for building TEST ONLY mutations only."""
    point = multiply(nonce, G)
    assert point is not None
    r = point[0] % N
    s = pow(nonce, -1, N) * (int.from_bytes(digest, "big") + r * private_key) % N
    return r.to_bytes(FIELD_BYTES, "big") + s.to_bytes(FIELD_BYTES, "big")
