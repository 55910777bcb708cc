"""The two Koblitz curves of ZigBee Smart Energy: sect163k1 (crypto suite 1), sect283k1 (suite 2).

Curve y^2 + xy = x^3 + a x^2 + b over GF(2^m) (SEC 2 v2, 3.2). Points are affine ``(x, y)``
tuples, ``None`` is the point at infinity. Scalar multiplication is the Montgomery ladder in
López-Dahab coordinates with y recovered at the end (Hankerson, Menezes, Vanstone, "Guide to
Elliptic Curve Cryptography", Alg. 3.40): about 6 field multiplications per key bit.

Point encoding is SEC 1 2.3.3: ``02``/``03`` then x, big-endian; the low bit of the prefix is
the low bit of y/x. Decompression solves z^2 + z = x + a + b/x^2 with the half-trace (m is odd).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .gf2m import BinaryField

Point = Optional[tuple[int, int]]


class InvalidPoint(ValueError):
    """Bytes that do not encode a point of the curve."""


@dataclass(frozen=True, slots=True)
class KoblitzCurve:
    name: str
    field: BinaryField
    a: int
    b: int
    gx: int
    gy: int
    order: int  # n, the prime order of G
    cofactor: int  # h

    # -- group law ------------------------------------------------------------------------------
    @property
    def generator(self) -> tuple[int, int]:
        return (self.gx, self.gy)

    @property
    def point_length(self) -> int:
        """Octets of a compressed point: 22 (sect163k1) or 37 (sect283k1)."""
        return 1 + self.field.byte_length

    @property
    def scalar_length(self) -> int:
        """Octets of a private key: 21 (sect163k1) or 36 (sect283k1)."""
        return (self.order.bit_length() + 7) // 8

    def is_on_curve(self, point: Point) -> bool:
        if point is None:
            return True
        f = self.field
        x, y = point
        if x >> f.m or y >> f.m:
            return False
        x2 = f.square(x)
        left = f.square(y) ^ f.mul(x, y)
        right = f.mul(x2, x) ^ (x2 if self.a else 0) ^ self.b
        return left == right

    def neg(self, point: Point) -> Point:
        if point is None:
            return None
        x, y = point
        return (x, x ^ y)

    def add(self, p: Point, q: Point) -> Point:
        if p is None:
            return q
        if q is None:
            return p
        f = self.field
        x1, y1 = p
        x2, y2 = q
        if x1 == x2:
            if y1 == y2:
                return self.double(p)
            return None  # q == -p
        lam = f.div(y1 ^ y2, x1 ^ x2)
        x3 = f.square(lam) ^ lam ^ x1 ^ x2 ^ self.a
        y3 = f.mul(lam, x1 ^ x3) ^ x3 ^ y1
        return (x3, y3)

    def double(self, p: Point) -> Point:
        if p is None or p[0] == 0:
            return None
        f = self.field
        x, y = p
        lam = x ^ f.div(y, x)
        x3 = f.square(lam) ^ lam ^ self.a
        y3 = f.square(x) ^ f.mul(lam ^ 1, x3)
        return (x3, y3)

    def mul(self, k: int, point: Point) -> Point:
        """k * point by the Montgomery ladder (any k >= 0; not reduced mod n, so a cofactor
        multiple clears small-order components)."""
        if k < 0:
            return self.mul(-k, self.neg(point))
        if k == 0 or point is None:
            return None
        f = self.field
        x, y = point
        if x == 0:  # (0, sqrt(b)) has order 2
            return point if k & 1 else None
        mul, sq, b = f.mul, f.square, self.b
        x1, z1 = x, 1
        z2 = sq(x)
        x2 = sq(z2) ^ b
        for i in range(k.bit_length() - 2, -1, -1):
            if (k >> i) & 1:
                t1, t2 = mul(x1, z2), mul(x2, z1)
                z1 = sq(t1 ^ t2)
                x1 = mul(x, z1) ^ mul(t1, t2)
                t, u = sq(x2), sq(z2)
                z2 = mul(t, u)
                x2 = sq(t) ^ (sq(u) if b == 1 else mul(b, sq(u)))
            else:
                t1, t2 = mul(x2, z1), mul(x1, z2)
                z2 = sq(t1 ^ t2)
                x2 = mul(x, z2) ^ mul(t1, t2)
                t, u = sq(x1), sq(z1)
                z1 = mul(t, u)
                x1 = sq(t) ^ (sq(u) if b == 1 else mul(b, sq(u)))
        if z1 == 0:
            return None
        if z2 == 0:
            return (x, x ^ y)
        xz1, xz2 = mul(x, z1), mul(x, z2)
        z1z2 = mul(z1, z2)
        x3 = f.div(x1, z1)
        numerator = mul(x1 ^ xz1, x2 ^ xz2) ^ mul(sq(x) ^ y, z1z2)
        y3 = mul(mul(x ^ x3, numerator), f.inverse(mul(x, z1z2))) ^ y
        return (x3, y3)

    def public_key(self, private_key: int) -> tuple[int, int]:
        point = self.mul(private_key, self.generator)
        if point is None:
            raise ValueError("a private key must not be a multiple of the group order")
        return point

    # -- encoding (SEC 1 2.3.3 / 2.3.4) ---------------------------------------------------------
    def compress(self, point: Point) -> bytes:
        if point is None:
            raise ValueError("the point at infinity has no compressed encoding here")
        f = self.field
        x, y = point
        y_bit = f.div(y, x) & 1 if x else 0
        return bytes([0x02 | y_bit]) + f.to_bytes(x)

    def decompress(self, data: bytes) -> tuple[int, int]:
        f = self.field
        if len(data) != self.point_length:
            raise InvalidPoint(f"a {self.name} point is {self.point_length} octets, got {len(data)}")
        prefix = data[0]
        if prefix not in (0x02, 0x03):
            raise InvalidPoint(f"compressed point prefix must be 02 or 03, got {prefix:02X}")
        try:
            x = f.from_bytes(data[1:])
        except ValueError as exc:
            raise InvalidPoint(str(exc)) from None
        if x == 0:
            return (0, f.sqrt(self.b))
        beta = x ^ self.a ^ f.mul(self.b, f.inverse(f.square(x)))
        z = f.half_trace(beta)
        if f.square(z) ^ z != beta:
            raise InvalidPoint(f"x = {data[1:].hex()} is not the x of a {self.name} point")
        if (z & 1) != (prefix & 1):
            z ^= 1
        return (x, f.mul(x, z))


SECT163K1 = KoblitzCurve(
    name="sect163k1",
    field=BinaryField(163, (7, 6, 3, 0)),
    a=1,
    b=1,
    gx=0x02_FE13C053_7BBC11AC_AA07D793_DE4E6D5E_5C94EEE8,
    gy=0x02_89070FB0_5D38FF58_321F2E80_0536D538_CCDAA3D9,
    order=0x04_00000000_00000000_00020108_A2E0CC0D_99F8A5EF,
    cofactor=2,
)

SECT283K1 = KoblitzCurve(
    name="sect283k1",
    field=BinaryField(283, (12, 7, 5, 0)),
    a=0,
    b=1,
    gx=0x0503213F_78CA4488_3F1A3B81_62F188E5_53CD265F_23C1567A_16876913_B0C2AC24_58492836,
    gy=0x01CCDA38_0F1C9E31_8D90F95D_07E5426F_E87E45C0_E8184698_E4596236_4E341161_77DD2259,
    order=0x01FFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFE9AE_2ED07577_265DFF7F_94451E06_1E163C61,
    cofactor=4,
)
