"""AES-MMO, its HMAC and install-code link keys against published values."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from emulator.han.security.aes_mmo import (
    InstallCodeError,
    aes_mmo,
    check_install_code,
    install_code_crc,
    link_key_from_install_code,
)

# The install code example that ZigBee stacks and tools publish (Silicon Labs AN1089, zigpy, ...).
INSTALL_CODE = bytes.fromhex("83FED3407A939723A5C639B26916D505")
INSTALL_CODE_CRC = bytes.fromhex("C3B5")  # 0xB5C3, least significant octet first
LINK_KEY = bytes.fromhex("66B6900981E1EE3CA4206B6B861C02BB")


def test_install_code_crc_and_link_key_match_the_published_example() -> None:
    assert install_code_crc(INSTALL_CODE) == 0xB5C3
    assert link_key_from_install_code(INSTALL_CODE + INSTALL_CODE_CRC) == LINK_KEY


def test_an_install_code_with_a_bad_crc_is_refused_naming_both_crcs() -> None:
    with pytest.raises(InstallCodeError, match="CRC is B5C3 .* gives C3B5"):
        link_key_from_install_code(INSTALL_CODE + bytes.fromhex("B5C3"))


def test_an_install_code_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(InstallCodeError, match="8, 10, 14, 18 octets"):
        check_install_code(INSTALL_CODE[:-1] + INSTALL_CODE_CRC)


def _aes(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def test_single_block_message_follows_matyas_meyer_oseas_with_b6_padding() -> None:
    """Cross-check the construction by hand: 15 octets pad to two blocks (0x80, zeros, 16-bit length)."""
    message = bytes(range(15))
    block1 = message + b"\x80"
    block2 = bytes(14) + (8 * 15).to_bytes(2, "big")
    h1 = bytes(a ^ b for a, b in zip(_aes(bytes(16), block1), block1))
    h2 = bytes(a ^ b for a, b in zip(_aes(h1, block2), block2))
    assert aes_mmo(message) == h2


def test_long_messages_use_the_32_bit_length_padding() -> None:
    message = bytes(8192)  # 2^16 bits
    padded_tail = b"\x80" + bytes(9) + (8 * 8192).to_bytes(4, "big") + b"\x00\x00"
    digest = aes_mmo(message[:16])
    assert len(padded_tail) == 16
    state = bytes(16)
    for block in [message[i:i + 16] for i in range(0, 8192, 16)] + [padded_tail]:
        state = bytes(a ^ b for a, b in zip(_aes(state, block), block))
    assert aes_mmo(message) == state
    assert digest != state

