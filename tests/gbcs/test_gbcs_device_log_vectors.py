"""CCS01 / CCS02 (SR 8.11 Update HAN Device Log) against DCC's RTDS 4.5.0 vectors.

Every vector of 8.11_CCS01 and 8.11_CCS02 decodes, is built again byte-exact by the builders the
emulator uses (``messages.ccs01_command``, ``ccs02_command``, ``device_log_response``) from the
decoded values, and its MAC verifies with the RTDS keystore; our own GMAC equals the vector's.
Malformed payloads are refused with the field and offset.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gbcs_vectors import KEYSTORE, MATCHED, RTDS, TRIED, read_vector, vector_id

from emulator.gbcs import device_log, messages
from emulator.gbcs.framing import GeneralCiphering, GeneralSigning, GroupingHeader
from emulator.gbcs.message_codes import CraFlag, MessageCode
from emulator.gbcs.protection import Check, MessageProtection
from emulator.gbcs.wire import GbcsDecodeError
from emulator.keys.store import DirectoryKeyStore

USE_CASES = ("8.11_CCS01", "8.11_CCS02")
FILES = sorted(path for case in USE_CASES for path in (RTDS / case).glob("*.HEX"))
pytestmark = pytest.mark.skipif(len(FILES) != 8, reason="RTDS 8.11 vectors not present in shared/")


@pytest.fixture(scope="module")
def protection() -> MessageProtection:
    return MessageProtection(DirectoryKeyStore(KEYSTORE))


def _command_header(response: Path) -> GroupingHeader:
    return messages.decode_message(read_vector(response.with_name(response.name.replace("_RESPONSE_", "_COMMAND_")))).header


def _rebuild(message: messages.GbcsMessage, source: Path) -> GeneralSigning:
    h, p = message.header, message.payload
    other = h.other_information
    if isinstance(p, device_log.AddDeviceToLog):
        assert other.supplementary_remote_party_id is not None and other.supplementary_remote_party_counter is not None
        return messages.ccs01_command(h.originator_counter, h.recipient, p.device_id, p.install_code,
                                      p.join_time_period, other.supplementary_remote_party_id,
                                      other.supplementary_remote_party_counter, originator=h.originator)
    if isinstance(p, device_log.RemoveDeviceFromLog):
        assert other.supplementary_remote_party_id is not None and other.supplementary_remote_party_counter is not None
        return messages.ccs02_command(h.originator_counter, h.recipient, p.device_id,
                                      other.supplementary_remote_party_id, other.supplementary_remote_party_counter,
                                      originator=h.originator)
    assert isinstance(p, device_log.DeviceLogResponse)
    return messages.device_log_response(_command_header(source), p.results)


@pytest.mark.parametrize("path", FILES, ids=vector_id)
def test_device_log_vector_rebuilds_byte_exact_and_mac_verifies(path: Path, protection: MessageProtection) -> None:
    case = path.parent.name
    TRIED[case] += 1
    raw = read_vector(path)
    message = messages.decode_message(raw)
    assert isinstance(message.envelope, GeneralCiphering)
    rebuilt = _rebuild(message, path)
    signing = GeneralSigning(rebuilt.header, rebuilt.content, message.signing.signature)
    assert GeneralCiphering(signing, message.envelope.mac, message.envelope.invocation_counter).encode() == raw
    verdict = protection.verify(message.envelope)
    assert verdict.ok and verdict.mac is Check.VALID, verdict
    assert protection.mac(message.signing, invocation_counter=message.envelope.invocation_counter).mac == message.envelope.mac
    MATCHED[case] += 1


def test_ccs01_values_are_the_ones_rtds_sends() -> None:
    message = messages.decode_message(read_vector(RTDS / "8.11_CCS01" / "CCS01_8.11_SUCCESS_COMMAND_GBCS.HEX"))
    assert message.header.message_code == MessageCode.CCS01_ADD_DEVICE_TO_CHF_DEVICE_LOG
    assert message.header.cra_flag is CraFlag.COMMAND
    payload = message.payload
    assert isinstance(payload, device_log.AddDeviceToLog)
    assert payload.device_id == 0x00DB1234567890A0 and message.header.recipient == 0x00DB1234567890A2
    assert payload.install_code == b"0123456789ABCDEF" and payload.join_time_period == 90
    error = messages.decode_message(read_vector(RTDS / "8.11_CCS01" / "CCS01_8.11_ERROR_RESPONSE_GBCS.HEX")).payload
    assert isinstance(error, device_log.DeviceLogResponse) and error.results == (0, 1, 0xFA) and not error.success


def test_malformed_device_log_payloads_name_the_field() -> None:
    good = device_log.encode_add_device(device_log.AddDeviceToLog(0x20000001, 1, bytes(16), 90))
    with pytest.raises(GbcsDecodeError, match=r"access-request-specification\[1\] at offset 17"):
        device_log.decode_add_device(good[:17] + b"\x03" + good[18:])  # SET 3 turned into ACTION 3
    with pytest.raises(GbcsDecodeError, match="install code"):
        device_log.decode_add_device(device_log.encode_add_device(
            device_log.AddDeviceToLog(0x20000001, 1, bytes(16), 90)).replace(b"\x09\x10" + bytes(16), b"\x09\x05" + bytes(5)))
    with pytest.raises(GbcsDecodeError, match="enable_disable_joining"):
        device_log.decode_add_device(good[:-1] + b"\x00")
    with pytest.raises(GbcsDecodeError, match="trailing|remain|left"):
        device_log.decode_remove_device(device_log.encode_remove_device(device_log.RemoveDeviceFromLog(1, 2)) + b"\x00")
    with pytest.raises(ValueError, match="6, 8, 12 or 16"):
        device_log.encode_add_device(device_log.AddDeviceToLog(1, 2, bytes(7), 90))
