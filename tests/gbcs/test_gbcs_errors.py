"""Malformed and truncated GBCS messages: a clear error naming the field and the byte offset."""

from __future__ import annotations

import pytest
from gbcs_vectors import KEYSTORE, RTDS, read_vector

from emulator.gbcs.framing import GeneralCiphering, GeneralSigning
from emulator.gbcs.messages import decode_message
from emulator.gbcs.protection import Check, MessageProtection
from emulator.gbcs.wire import GbcsDecodeError
from emulator.keys.store import DirectoryKeyStore

CCS08 = read_vector(RTDS / "NA_CCS08" / "CCS08_NA_NA_ALERT_GBCS.HEX")
ECS52_COMMAND = read_vector(RTDS / "11.2_ECS52" / "ECS52_11.2_SUCCESS_COMMAND_GBCS.HEX")
CS06_COMMAND = read_vector(RTDS / "11.3_CS06" / "CS06_11.3_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX")
GCS38_RESPONSE = read_vector(RTDS / "11.2_GCS38" / "GCS38_11.2_SUCCESS_RESPONSE_GBCS.HEX")


def _error(data: bytes) -> GbcsDecodeError:
    with pytest.raises(GbcsDecodeError) as caught:
        decode_message(data)
    return caught.value


@pytest.mark.parametrize(("cut", "field", "offset"), [
    (1, "transaction-id length", 1),
    (5, "originator counter", 3),
    (14, "originator system title", 12),
    (30, "other-information length", 30),
    (40, "content (CCS08_FIRMWARE_TRANSFER_ALERT payload)", 34),
    (len(CCS08) - 10, "signature", 78),
])
def test_truncated_general_signing_names_field_and_offset(cut: int, field: str, offset: int) -> None:
    error = _error(CCS08[:cut])
    assert (error.field, error.offset) == (field, offset)
    assert "truncated" in str(error) and f"offset {offset}" in str(error)


def test_truncated_general_ciphering_names_the_ciphered_content() -> None:
    error = _error(ECS52_COMMAND[:-3])
    assert error.field == "ciphered-content"
    assert error.offset == 8


@pytest.mark.parametrize(("index", "value", "field", "reason"), [
    (0, 0xAB, "message tag", "neither DF"),
    (2, 0x07, "CRA flag", "not 1 (command)"),
    (11, 0x07, "originator system title length", "must be 8"),
    (29, 0x05, "date-time", "must be 0 or 12"),
])
def test_corrupt_header_field_is_named(index: int, value: int, field: str, reason: str) -> None:
    data = bytearray(CCS08)
    data[index] = value
    error = _error(bytes(data))
    assert error.field == field and reason in error.reason
    assert error.offset == index


def test_other_information_of_odd_length_is_rejected() -> None:
    data = bytearray(CCS08)
    data[30] = 0x03  # other-information length 3
    error = _error(bytes(data))
    assert error.field == "other-information" and "must be 2, 10, 18, 26 or more" in error.reason
    assert error.offset == 31


def test_trailing_bytes_are_an_error() -> None:
    error = _error(CCS08 + b"\x00")
    assert (error.field, error.offset) == ("General-Signing", len(CCS08))
    assert "1 unexpected trailing byte" in error.reason


def test_non_der_integer_in_asn1_payload_is_an_error() -> None:
    # the CCS08 responseCode 02 01 00 rewritten as 02 02 00 00 (not minimal), lengths adjusted
    message = decode_message(CCS08)
    content = message.signing.content
    bad = content[:1] + bytes([content[1] + 1]) + content[2:-3] + bytes.fromhex("02020000")
    tampered = GeneralSigning(message.header, bad, message.signing.signature).encode()
    error = _error(tampered)
    assert error.field == "CCS08 payload" and "DER" in error.reason
    assert error.offset == message.signing.content_offset


def test_encrypted_general_ciphering_is_named_as_not_modelled() -> None:
    data = bytearray(ECS52_COMMAND)
    data[8] = 0x31
    error = _error(bytes(data))
    assert error.field == "security control" and "not modelled" in error.reason and error.offset == 8


def test_gbz_payload_error_offset_is_in_the_whole_message() -> None:
    message = decode_message(GCS38_RESPONSE)
    content = bytearray(message.signing.content)
    content[0:2] = b"\x01\x0A"  # profile id 0x010A
    assert isinstance(message.envelope, GeneralCiphering)
    tampered = GeneralCiphering(GeneralSigning(message.header, bytes(content), b""), message.envelope.mac).encode()
    error = _error(tampered)
    assert error.field == "GBZ profile id"
    assert error.offset == message.signing.content_offset
    assert tampered[error.offset : error.offset + 2] == b"\x01\x0A"


def test_unknown_message_code_is_named() -> None:
    data = bytearray(CCS08)
    data[31:33] = b"\x00\x99"
    error = _error(bytes(data))
    assert error.field == "message code" and "0x0099" in error.reason
    assert error.offset == 31


def test_tampered_signature_and_mac_verify_invalid() -> None:
    protection = MessageProtection(DirectoryKeyStore(KEYSTORE))
    signed = bytearray(CCS08)
    signed[-1] ^= 0x01
    assert protection.verify(decode_message(bytes(signed)).envelope).signature is Check.INVALID
    maced = bytearray(CS06_COMMAND)
    maced[-1] ^= 0x01
    verdict = protection.verify(decode_message(bytes(maced)).envelope)
    assert (verdict.signature, verdict.mac) == (Check.VALID, Check.INVALID)
    assert not verdict.ok
    # a changed payload byte breaks both the KRP signature and the MAC
    content_byte = bytearray(CS06_COMMAND)
    content_byte[70] ^= 0x01
    verdict = protection.verify(decode_message(bytes(content_byte)).envelope)
    assert (verdict.signature, verdict.mac) == (Check.INVALID, Check.INVALID)
