"""The ZigBee hash (AES-MMO), its HMAC, and install code → link key.

AES-MMO is the Matyas-Meyer-Oseas construction over AES-128 with the padding of ZigBee spec
B.6: h_0 = 0, h_i = E(h_{i-1}, m_i) XOR m_i. Smart Energy uses it for the ECQV certificate hash,
the CBKE key derivation and (as HMAC) the SMACs; ZigBee 3.0/SE uses it to turn an install code
into the device's preconfigured trust-centre link key.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
INSTALL_CODE_LENGTHS = (6, 8, 12, 16)
"""Install code lengths without the CRC (ZigBee 3.0 BDB 10.1); GB devices use 16."""


def _encrypt_block(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _pad(message: bytes) -> bytes:
    bits = 8 * len(message)
    if bits < 1 << 16:
        # 1 bit, zeros up to 7/8 of a block, then the bit length in 16 bits.
        padded = message + b"\x80"
        padded += bytes((BLOCK - 2 - len(padded)) % BLOCK)
        return padded + bits.to_bytes(2, "big")
    if bits >= 1 << 32:
        raise ValueError("AES-MMO hashes messages shorter than 2^32 bits")
    # Long form (B.6 step 2): 32-bit length then 16 zero bits.
    padded = message + b"\x80"
    padded += bytes((BLOCK - 6 - len(padded)) % BLOCK)
    return padded + bits.to_bytes(4, "big") + b"\x00\x00"


def aes_mmo(message: bytes) -> bytes:
    """The 16-octet ZigBee hash of ``message``."""
    digest = bytes(BLOCK)
    padded = _pad(message)
    for offset in range(0, len(padded), BLOCK):
        block = padded[offset:offset + BLOCK]
        digest = bytes(c ^ m for c, m in zip(_encrypt_block(digest, block), block))
    return digest


def hmac_aes_mmo(key: bytes, message: bytes) -> bytes:
    """HMAC (FIPS 198) with AES-MMO: block and output size 16 octets (ZigBee spec B.1.4)."""
    if len(key) > BLOCK:
        key = aes_mmo(key)
    key = key.ljust(BLOCK, b"\x00")
    inner = aes_mmo(bytes(k ^ 0x36 for k in key) + message)
    return aes_mmo(bytes(k ^ 0x5C for k in key) + inner)


# -- install codes ---------------------------------------------------------------------------------

def install_code_crc(code: bytes) -> int:
    """CRC-16/X-25 (CCITT polynomial, reflected, init and final XOR 0xFFFF) of the code."""
    crc = 0xFFFF
    for byte in code:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


class InstallCodeError(ValueError):
    """An install code of the wrong length or with a CRC that does not match."""


def check_install_code(code_with_crc: bytes) -> bytes:
    """The install code without its CRC, after checking length and CRC (sent LSB first)."""
    code, crc = code_with_crc[:-2], code_with_crc[-2:]
    if len(code) not in INSTALL_CODE_LENGTHS:
        lengths = ", ".join(str(n + 2) for n in INSTALL_CODE_LENGTHS)
        raise InstallCodeError(f"install code with CRC must be {lengths} octets, got {len(code_with_crc)}")
    expected = install_code_crc(code)
    if int.from_bytes(crc, "little") != expected:
        raise InstallCodeError(
            f"install code CRC is {crc.hex().upper()} but the code {code.hex().upper()} gives "
            f"{expected.to_bytes(2, 'little').hex().upper()} (CRC-16/X-25, least significant octet first)")
    return code


def link_key_from_install_code(code_with_crc: bytes) -> bytes:
    """The preconfigured TC link key: AES-MMO over the install code and its CRC."""
    check_install_code(code_with_crc)
    return aes_mmo(code_with_crc)
