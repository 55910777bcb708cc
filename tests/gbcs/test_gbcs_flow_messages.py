"""The messages the emulator builds for the flow: protected as their use case needs, and verifiable.

Devices sign and MAC with their TEST ONLY keys; the DCC side (ACB, supplier) with the RTDS
remote-party keys. Each message is decoded again and checked the way a receiver would.
"""

from __future__ import annotations

import datetime as dt

import pytest
from gbcs_vectors import KEYSTORE

from emulator.gbcs import asn1_payloads as asn1
from emulator.gbcs import messages
from emulator.gbcs.codes import ActivationResponseCode, TransferResult
from emulator.gbcs.framing import GeneralCiphering, GeneralSigning
from emulator.gbcs.messages import decode_message
from emulator.gbcs.protection import Check, MessageProtection, Protection
from emulator.gbcs.wire import GbcsEncodeError
from emulator.keys.devices import DeviceKeyStore
from emulator.keys.store import CombinedKeyStore, DirectoryKeyStore

SUPPLIER = 0x90B3D51F30010000
ACB = messages.ACCESS_CONTROL_BROKER_ID
CHF, ESME, GSME, PPMID = 0x00DB1234567890A2, 0x00DB1234567890A0, 0x00DB1234567890A1, 0x00DB1234567890A4
NOW = dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.timezone.utc)
IMAGE_HASH = bytes.fromhex("5D" * 32)
VERSION = bytes.fromhex("00000104")


@pytest.fixture(scope="module")
def devices() -> DeviceKeyStore:
    return DeviceKeyStore.for_devices([CHF, ESME, GSME, PPMID], seed=11)


@pytest.fixture(scope="module")
def dcc() -> MessageProtection:
    """The DCC side: ACB and supplier private keys (RTDS), the devices' public keys (exported)."""
    devices = DeviceKeyStore.for_devices([CHF, ESME, GSME, PPMID], seed=11)
    return MessageProtection(CombinedKeyStore([devices, DirectoryKeyStore(KEYSTORE)]))


@pytest.fixture(scope="module")
def device_side(devices: DeviceKeyStore) -> MessageProtection:
    """What an emulated device holds: its own keys and the remote parties' public keys."""
    return MessageProtection(CombinedKeyStore([devices, DirectoryKeyStore(KEYSTORE)]))


def _received(sent: bytes, receiver: MessageProtection) -> tuple[messages.GbcsMessage, Check, Check]:
    message = decode_message(sent)
    verdict = receiver.verify(message.envelope)
    assert verdict.ok, verdict
    return message, verdict.signature, verdict.mac


def test_device_alerts_are_signed_by_the_device(device_side: MessageProtection, dcc: MessageProtection) -> None:
    built = [
        messages.ccs08_alert(0x1001, CHF, ACB, asn1.FirmwareTransferAlert.for_result(
            NOW, PPMID, VERSION, TransferResult.HARDWARE_VERSION_MISMATCH)),
        messages.cs09_alert(0x1002, PPMID, ACB, asn1.PpmidFirmwareActivationAlert(NOW, VERSION, 0)),
        messages.fdra_esme_alert(0x1003, ESME, SUPPLIER, NOW, IMAGE_HASH, verified=False),
        messages.fdra_gsme_alert(0x1004, GSME, SUPPLIER, NOW, IMAGE_HASH, verified=True),
        messages.future_dated_activation_alert(0x1005, ESME, SUPPLIER, 0x3E9, NOW, ActivationResponseCode.SUCCESS, VERSION),
        messages.generic_alert(0x1006, ESME, SUPPLIER, 0x8F43, NOW, dlms_device=True, critical=True),
        messages.generic_alert(0x1007, GSME, SUPPLIER, 0x8F1B, NOW, dlms_device=False, critical=True),
    ]
    for message in built:
        sent = device_side.protect(message).encode()
        assert sent[0] == 0xDF
        received, signature, mac = _received(sent, dcc)
        assert (signature, mac) == (Check.VALID, Check.ABSENT)
        assert received.header == message.header
    ccs08 = decode_message(device_side.protect(built[0]).encode()).payload
    assert isinstance(ccs08, asn1.FirmwareTransferAlert) and ccs08.alert_code == 0x8F89


def test_non_critical_generic_alert_is_maced(device_side: MessageProtection, dcc: MessageProtection) -> None:
    alert = messages.generic_alert(0x1010, ESME, SUPPLIER, 0x810E, NOW, dlms_device=True, critical=False)
    sent = device_side.protect(alert).encode()
    assert sent[0] == 0xDD
    assert _received(sent, dcc)[1:] == (Check.ABSENT, Check.VALID)


@pytest.mark.parametrize(("command", "answer"), [
    (lambda: messages.ecs52_command(0x3F0, SUPPLIER, ESME), lambda h: messages.ecs52_response(h, VERSION)),
    (lambda: messages.gcs38_command(0x3F1, SUPPLIER, GSME), lambda h: messages.gcs38_response(h, None)),
    (lambda: messages.cs08_command(0x520, PPMID, SUPPLIER, 0x3F2), lambda h: messages.cs08_response(h, VERSION)),
], ids=["ECS52", "GCS38", "CS08"])
def test_read_firmware_version_round_trip_is_maced_both_ways(command, answer, dcc: MessageProtection,
                                                            device_side: MessageProtection) -> None:
    sent = dcc.protect(command()).encode()  # the ACB MACs every command
    received, _, mac = _received(sent, device_side)
    assert mac is Check.VALID and isinstance(received.envelope, GeneralCiphering)
    reply = device_side.protect(answer(received.header)).encode()
    response, _, mac = _received(reply, dcc)
    assert mac is Check.VALID
    assert response.header.originator_counter == received.header.originator_counter
    assert (response.header.originator, response.header.recipient) == (received.header.recipient,
                                                                        received.header.originator)


def test_cs06_flow_precommand_user_signature_acb_mac_and_response(dcc: MessageProtection,
                                                                   device_side: MessageProtection) -> None:
    execution = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)
    pre = messages.cs06_precommand(0x3E9, SUPPLIER, ESME, IMAGE_HASH, execution)
    assert pre.encode()[-17:-15] == b"\x18\x0f" and pre.signature is None  # what DCC hands the User
    user = MessageProtection(DirectoryKeyStore(KEYSTORE))
    signed = user.sign(pre)  # the User signs with its supplier DS key (DUIS SignedPreCommand)
    command = dcc.protect(signed)  # the DCC keeps the KRP signature and adds the ACB MAC
    assert isinstance(command, GeneralCiphering) and command.signing.signature == signed.signature
    received, signature, mac = _received(command.encode(), device_side)
    assert (signature, mac) == (Check.VALID, Check.VALID)
    assert isinstance(received.payload, asn1.ActivateFirmwareCommand)
    assert received.payload.execution_date_time == execution

    accepted = device_side.protect(messages.cs06_response(received.header, NOW, None)).encode()
    response, signature, _ = _received(accepted, dcc)
    assert signature is Check.VALID and isinstance(response.payload, asn1.CommandAccepted)

    forged = GeneralSigning(pre.header, pre.content, bytes(64))
    verdict = device_side.verify(dcc.mac(forged))
    assert verdict.signature is Check.INVALID and not verdict.ok


def test_a_message_without_the_protection_its_use_case_needs_is_not_ok(dcc: MessageProtection) -> None:
    alert = messages.ccs08_alert(0x1001, CHF, ACB, asn1.FirmwareTransferAlert.for_result(
        NOW, PPMID, VERSION, TransferResult.TRANSFERRED))
    unsigned_mac = dcc.mac(alert)  # MAC'd instead of signed
    verdict = dcc.verify(unsigned_mac)
    assert verdict.mac is Check.VALID and verdict.expected is Protection.SIGNED and not verdict.ok
    assert "needs signed (DF)" in verdict.detail


@pytest.mark.parametrize(("build", "message"), [
    (lambda: messages.cs06_precommand(1, SUPPLIER, ESME, b"short"), "32 bytes"),
    (lambda: messages.fdra_esme_alert(1, ESME, SUPPLIER, dt.datetime(2026, 1, 1), IMAGE_HASH, verified=True),
     "needs a time zone"),
    (lambda: messages.ecs52_command(1 << 64, SUPPLIER, ESME), "originator counter"),
], ids=["hash", "naive-time", "counter"])
def test_values_that_do_not_fit_are_encode_errors(build, message: str) -> None:
    with pytest.raises(GbcsEncodeError, match=message):
        build()


def test_device_mac_uses_the_emulated_key_even_beside_the_rtds_device_key(devices: DeviceKeyStore) -> None:
    """The RTDS keystore holds public keys for the same EUI-64s as the default premises: the
    sender's own private key decides, whatever order a verifier lists its stores in."""
    rtds = DirectoryKeyStore(KEYSTORE)
    command = messages.ecs52_command(0x3F0, SUPPLIER, ESME)
    reply = MessageProtection(CombinedKeyStore([rtds, devices])).protect(messages.ecs52_response(command.header, VERSION))
    exported_only = MessageProtection(CombinedKeyStore([devices, rtds]))
    assert exported_only.verify(decode_message(reply.encode()).envelope).mac is Check.VALID
    assert MessageProtection(rtds).verify(decode_message(reply.encode()).envelope).mac is Check.INVALID
