"""CS14 (alert 0x8F12, CHF Device Log Changed) against DCC's RTDS 4.5.0 vector NA_CS14.

The vector decodes, is built again byte-exact by ``messages.cs14_alert`` (the builder the hub
uses) from the decoded values, and its MAC verifies with the RTDS keystore; our own GMAC equals
the vector's. ``gbcs decode`` shows the log, and malformed payloads are refused with the field
and offset.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from gbcs_vectors import KEYSTORE, MATCHED, RTDS, TRIED, read_vector

from emulator.cli import main
from emulator.gbcs import device_log_alert, messages
from emulator.gbcs.device_log_alert import DeviceLogChangedAlert, DeviceLogRecord
from emulator.gbcs.framing import GeneralCiphering, GeneralSigning
from emulator.gbcs.message_codes import CraFlag, MessageCode
from emulator.gbcs.protection import Check, MessageProtection, Protection, protection_for
from emulator.gbcs.wire import GbcsDecodeError, GbcsEncodeError
from emulator.keys.store import DirectoryKeyStore

CASE = "NA_CS14"
VECTOR = RTDS / CASE / "CS14_NA_8F12_ALERT_GBCS.HEX"
pytestmark = pytest.mark.skipif(not VECTOR.is_file(), reason="RTDS NA_CS14 vector not present in shared/")
CHF = 0x00DB1234567890A2
ACB = 0x90B3D51F30000002
WHEN = dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc)


def test_cs14_vector_rebuilds_byte_exact_and_mac_verifies() -> None:
    TRIED[CASE] += 1
    raw = read_vector(VECTOR)
    message = messages.decode_message(raw)
    assert isinstance(message.envelope, GeneralCiphering)
    header, alert = message.header, message.payload
    assert isinstance(alert, DeviceLogChangedAlert)
    rebuilt = messages.cs14_alert(header.originator_counter, header.originator, header.recipient, alert.date_time,
                                  alert.backup_date_time, alert.extended_pan_id, alert.entries)
    signing = GeneralSigning(rebuilt.header, rebuilt.content, message.signing.signature)
    assert GeneralCiphering(signing, message.envelope.mac, message.envelope.invocation_counter).encode() == raw
    protection = MessageProtection(DirectoryKeyStore(KEYSTORE))
    verdict = protection.verify(message.envelope)
    assert verdict.ok and verdict.mac is Check.VALID and verdict.expected is Protection.MAC, verdict
    assert protection.mac(message.signing, invocation_counter=message.envelope.invocation_counter).mac == message.envelope.mac
    MATCHED[CASE] += 1


def test_cs14_values_are_the_ones_rtds_sends() -> None:
    message = messages.decode_message(read_vector(VECTOR))
    header, alert = message.header, message.payload
    assert header.message_code == MessageCode.CS14_DEVICE_LOG_CHANGED_ALERT and header.cra_flag is CraFlag.ALERT
    assert (header.originator, header.recipient, header.originator_counter) == (CHF, ACB, 0xFA0)
    assert isinstance(alert, DeviceLogChangedAlert)
    assert alert.alert_code == 0x8F12 and alert.long_invoke_id_and_priority == 0x20000FA0
    assert alert.date_time == alert.backup_date_time == WHEN
    assert alert.extended_pan_id == 0x0001020304050607
    assert [e.device_id for e in alert.entries] == [0x00DB1234567890A0, 0x00DB1234567890A1]
    assert alert.entries[1].hashed_tc_link_key == bytes.fromhex("83FED3407A939723A5C639B26916D505")
    assert protection_for(header) is Protection.MAC


def test_gbcs_decode_shows_the_device_log(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gbcs", "decode", str(VECTOR), "--json", "--keystore", str(KEYSTORE)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["grouping_header"]["message_code_name"] == "CS14_DEVICE_LOG_CHANGED_ALERT"
    payload = document["payload"]
    assert payload["type"] == "DeviceLogChangedAlert" and payload["extended_pan_id"] == "00-01-02-03-04-05-06-07"
    assert [e["device_id"] for e in payload["entries"]] == ["00-DB-12-34-56-78-90-A0", "00-DB-12-34-56-78-90-A1"]
    assert document["verification"]["ok"] is True and document["verification"]["mac"] == "valid"


def _alert(entries: int = 1, hashed: bytes = bytes(range(16))) -> bytes:
    records = tuple(DeviceLogRecord(0x00DB1234567890A0 + i, hashed) for i in range(entries))
    return device_log_alert.encode_device_log_alert(DeviceLogChangedAlert(0x20000001, WHEN, WHEN, CHF, records))


def test_an_empty_device_log_round_trips() -> None:
    raw = _alert(0)
    decoded = device_log_alert.decode_device_log_alert(raw)
    assert decoded.entries == () and device_log_alert.encode_device_log_alert(decoded) == raw


def test_a_device_without_a_tc_link_key_has_an_empty_hash() -> None:
    raw = _alert(1, hashed=b"")
    assert raw.endswith(bytes.fromhex("02020908 00DB1234567890A0 0900"))
    (entry,) = device_log_alert.decode_device_log_alert(raw).entries
    assert entry.hashed_tc_link_key == b""


@pytest.mark.parametrize(("mangle", "match"), [
    (lambda raw: raw[:9] + b"\x8F\x13" + raw[11:], r"alert code at offset 9: 0x8F13"),
    (lambda raw: raw.replace(bytes.fromhex("0910") + bytes(range(16)), bytes.fromhex("090F") + bytes(range(15))),
     r"Device Log entry\[0\] hashed_TC_link_key at offset \d+: 15 octets: .* has 0 or 16"),
    (lambda raw: raw.replace(b"\x01\x01\x02\x02", b"\x02\x01\x02\x02"), "Device Log entries type"),
    (lambda raw: raw + b"\x00", "trailing|remain|left"),
    (lambda raw: raw[:-3], "truncated|needs|short|remain"),
])
def test_malformed_cs14_payloads_name_the_field(mangle, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(GbcsDecodeError, match=match):
        device_log_alert.decode_device_log_alert(mangle(_alert()))


def test_cs14_builder_refuses_what_a_chf_cannot_send() -> None:
    with pytest.raises(GbcsEncodeError, match="at most 16"):
        _alert(17)
    with pytest.raises(GbcsEncodeError, match="empty or 16 octets"):
        device_log_alert.encode_device_log_alert(DeviceLogChangedAlert(
            1, WHEN, WHEN, CHF, (DeviceLogRecord(1, bytes(8)),)))
