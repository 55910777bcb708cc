"""Every RTDS 4.5.0 vector of the firmware flow: decoded, rebuilt byte-exact, signatures and MACs verified.

"Rebuilt" means built again by the builders the emulator uses (``emulator.gbcs.messages``) from
the values decoded (counters, EUI-64s, times, hashes, versions), with the vector's signature and
MAC attached: every byte must come out the same. Our own GMAC of each ``DD`` vector, computed
with the RTDS keystore, must equal the vector's MAC.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gbcs_vectors import (
    FLOW_USE_CASES, GENERIC_ALERT_USE_CASES, KEYSTORE, MATCHED, TRIED, read_vector, vector_files, vector_id,
)

from emulator.gbcs import asn1_payloads as asn1
from emulator.gbcs import dlms, gbz, messages
from emulator.gbcs.framing import GeneralCiphering, GeneralSigning, GroupingHeader
from emulator.gbcs.message_codes import CraFlag, MessageCode
from emulator.gbcs.messages import GbcsMessage, decode_message
from emulator.gbcs.payloads import DlmsAlert
from emulator.gbcs.protection import Check, MessageProtection
from emulator.keys.store import DirectoryKeyStore

FLOW_FILES = vector_files(FLOW_USE_CASES)
GENERIC_FILES = vector_files(GENERIC_ALERT_USE_CASES)
ALL_FILES = FLOW_FILES + GENERIC_FILES
pytestmark = pytest.mark.skipif(len(FLOW_FILES) != 33, reason="RTDS vectors not present in shared/")


@pytest.fixture(scope="module")
def protection() -> MessageProtection:
    return MessageProtection(DirectoryKeyStore(KEYSTORE))


def _command_header(response_file: Path) -> GroupingHeader:
    """The header of the command this response answers (its sibling vector)."""
    command = response_file.with_name(response_file.name.replace("_RESPONSE_", "_COMMAND_"))
    return decode_message(read_vector(command)).header


def _version(value: bytes, ok: bool) -> bytes | None:
    return value if ok else None


def rebuild(message: GbcsMessage, source: Path) -> GeneralSigning:
    """The same message from the emulator's builders and the decoded values, unprotected."""
    h, p = message.header, message.payload
    code, cra = h.message_code, h.cra_flag
    if code == MessageCode.CCS08_FIRMWARE_TRANSFER_ALERT:
        assert isinstance(p, asn1.FirmwareTransferAlert)
        rebuilt_alert = asn1.FirmwareTransferAlert.for_result(p.date_time, p.entity_id, p.firmware_version,
                                                              p.response_code)
        return messages.ccs08_alert(h.originator_counter, h.originator, h.recipient, rebuilt_alert)
    if code == MessageCode.CS09_PPMID_FIRMWARE_ACTIVATION_ALERT:
        assert isinstance(p, asn1.PpmidFirmwareActivationAlert)
        alert = asn1.PpmidFirmwareActivationAlert(p.date_time, p.firmware_version, p.activate_image)
        return messages.cs09_alert(h.originator_counter, h.originator, h.recipient, alert)
    if code == MessageCode.CS08_READ_PPMID_HCALCS_FIRMWARE_VERSION:
        if cra is CraFlag.COMMAND:
            other = h.other_information
            assert other.supplementary_remote_party_id is not None
            assert other.supplementary_remote_party_counter is not None
            return messages.cs08_command(h.originator_counter, h.recipient, other.supplementary_remote_party_id,
                                         other.supplementary_remote_party_counter, originator=h.originator)
        assert isinstance(p, asn1.ReadFirmwareVersionResponse)
        return messages.cs08_response(_command_header(source), _version(p.firmware_version, p.read_result == 0))
    if code == MessageCode.ECS52_READ_ESME_CHF_FIRMWARE_VERSION:
        if cra is CraFlag.COMMAND:
            return messages.ecs52_command(h.originator_counter, h.originator, h.recipient)
        assert isinstance(p, dlms.AccessResponse)
        result = p.results[0]
        value = result.data.value
        return messages.ecs52_response(_command_header(source), value if isinstance(value, bytes) else None)
    if code == MessageCode.GCS38_READ_GSME_FIRMWARE_VERSION:
        if cra is CraFlag.COMMAND:
            return messages.gcs38_command(h.originator_counter, h.originator, h.recipient)
        assert isinstance(p, gbz.GbzPayload)
        record = p.components[0].zcl.records[0]
        return messages.gcs38_response(_command_header(source), record.value if isinstance(record.value, bytes) else None)
    if code == MessageCode.CS06_ACTIVATE_FIRMWARE:
        if cra is CraFlag.COMMAND:
            assert isinstance(p, asn1.ActivateFirmwareCommand)
            pre = messages.cs06_precommand(h.originator_counter, h.originator, h.recipient,
                                           p.manufacturer_image_hash, p.execution_date_time)
            return GeneralSigning(pre.header, pre.content, message.signing.signature)
        assert h.date_time is not None
        when = dlms.decode_date_time(h.date_time)
        if isinstance(p, asn1.CommandAccepted):
            return messages.cs06_response(_command_header(source), when, None)
        assert isinstance(p, asn1.ActivateFirmwareResponse)
        return messages.cs06_response(_command_header(source), when, p.activate_image_result, p.firmware_version)
    if code == MessageCode.CS06_FUTURE_DATED_ACTIVATION_ALERT:
        assert isinstance(p, asn1.FutureDatedActivationAlert)
        return messages.future_dated_activation_alert(
            h.originator_counter, h.originator, h.recipient, p.originator_counter, p.execution_date_time,
            p.response.activate_image_result, p.response.firmware_version)
    if code == MessageCode.FIRMWARE_DISTRIBUTION_RECEIPT_ALERT_ESME:
        assert isinstance(p, DlmsAlert) and p.manufacturer_image_hash is not None
        return messages.fdra_esme_alert(h.originator_counter, h.originator, h.recipient, p.date_time,
                                        p.manufacturer_image_hash, verified=p.alert_code == 0x8F72)
    if code == MessageCode.FIRMWARE_DISTRIBUTION_RECEIPT_ALERT_GSME:
        assert isinstance(p, gbz.GbzAlert) and p.manufacturer_image_hash is not None
        return messages.fdra_gsme_alert(h.originator_counter, h.originator, h.recipient, p.time,
                                        p.manufacturer_image_hash, verified=p.alert_code == 0x8F72)
    if code in (MessageCode.GENERIC_CRITICAL_ALERT, MessageCode.GENERIC_NON_CRITICAL_ALERT):
        assert isinstance(p, (DlmsAlert, gbz.GbzAlert))
        time = p.date_time if isinstance(p, DlmsAlert) else p.time
        return messages.generic_alert(h.originator_counter, h.originator, h.recipient, p.alert_code, time,
                                      dlms_device=isinstance(p, DlmsAlert),
                                      critical=code == MessageCode.GENERIC_CRITICAL_ALERT)
    raise AssertionError(f"no builder for message code 0x{code:04X}")


def _with_vector_security(rebuilt: GeneralSigning, message: GbcsMessage) -> bytes:
    signing = GeneralSigning(rebuilt.header, rebuilt.content, message.signing.signature)
    if isinstance(message.envelope, GeneralCiphering):
        return GeneralCiphering(signing, message.envelope.mac, message.envelope.invocation_counter).encode()
    return signing.encode()


@pytest.mark.parametrize("path", ALL_FILES, ids=vector_id)
def test_rtds_vector_rebuilds_byte_exact_and_verifies(path: Path, protection: MessageProtection) -> None:
    case = path.parent.name
    TRIED[case] += 1
    raw = read_vector(path)
    message = decode_message(raw)

    assert message.envelope.encode() == raw, "decode → encode"
    rebuilt = _with_vector_security(rebuild(message, path), message)
    assert rebuilt.hex().upper() == raw.hex().upper(), "rebuilt from values"

    verdict = protection.verify(message.envelope)
    assert verdict.ok, verdict
    if message.signing.signature:
        assert verdict.signature is Check.VALID
    if isinstance(message.envelope, GeneralCiphering):
        assert verdict.mac is Check.VALID
        # our own GMAC, not the vector's, is the same 12 bytes
        ours = protection.mac(message.signing, invocation_counter=message.envelope.invocation_counter)
        assert ours.mac == message.envelope.mac
    MATCHED[case] += 1


def test_rtds_vector_counts_are_the_published_set() -> None:
    """33 vectors of the flow (CS06 alone has 17) and 4 generic alerts: none silently missing."""
    per_case = {case: len(vector_files((case,))) for case in FLOW_USE_CASES}
    assert per_case == {"11.2_CS08": 4, "11.2_ECS52": 4, "11.2_GCS38": 4, "11.3_CS06": 17,
                        "NA_CCS08": 1, "NA_CS09": 1, "NA_FDRA-DLMS": 1, "NA_FDRA-ZigBee": 1}
    assert len(GENERIC_FILES) == 4


def test_responses_repeat_their_command_counter() -> None:
    for response in (p for p in FLOW_FILES if "_RESPONSE_" in p.name):
        answered = _command_header(response)
        header = decode_message(read_vector(response)).header
        assert header.originator_counter == answered.originator_counter, response.name
        assert (header.originator, header.recipient) == (answered.recipient, answered.originator)


@pytest.mark.parametrize("path", [p for p in FLOW_FILES if "PRECOMMAND" in p.name], ids=vector_id)
def test_signed_precommand_is_the_command_inside_the_mac(path: Path) -> None:
    """The CS06 command is the pre-command ‖ 40 ‖ KRP signature, MAC'd: what DUIS SignedPreCommand carries."""
    pre = decode_message(read_vector(path))
    command = decode_message(read_vector(path.with_name(path.name.replace("PRECOMMAND", "COMMAND"))))
    assert pre.signing.signature is None
    assert isinstance(command.envelope, GeneralCiphering)
    assert command.signing.encode()[: len(read_vector(path))] == read_vector(path)
    assert command.signing.to_be_signed() == read_vector(path)[1:]


def test_protection_table_matches_every_vector(protection: MessageProtection) -> None:
    for path in ALL_FILES:
        verdict = protection.verify(decode_message(read_vector(path)).envelope)
        if "PRECOMMAND" in path.name:
            assert verdict.found is None
        else:
            assert verdict.found is verdict.expected, path.name
