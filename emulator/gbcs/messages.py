"""Build the firmware flow's GBCS messages (unprotected) and decode any message to typed values.

Builders return a :class:`GeneralSigning` with an empty signature field (or, for the CS06
pre-command, none); :class:`~emulator.gbcs.protection.MessageProtection` then signs and/or MACs it
as the use case requires. A response is built from its command's header: roles swapped, CRA flag
2, the command's counter and other-information repeated (RTDS: CS08 0x514 both ways).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import asn1_payloads as asn1
from . import device_log, device_log_alert, dlms, gbz
from .codes import ActivationResponseCode, GbcsAlertCode
from .framing import Envelope, GeneralCiphering, GeneralSigning, GroupingHeader, OtherInformation, decode_envelope
from .message_codes import CraFlag, MessageCode, message_code_name
from .payloads import DlmsAlert, Payload, decode_payload, encode_payload, is_modelled
from .wire import GbcsDecodeError, encode_length

ACCESS_CONTROL_BROKER_ID = 0x90B3D51F30000002
"""DCC's Access Control Broker EUI-64 in RTDS and DCC Boxed (ZAZ1 TEST)."""
ESME_FIRMWARE_VERSION = dlms.CosemAttributeDescriptor(1, bytes.fromhex("0000000201FF"), 2)
"""What ECS52 reads: class 1 (Data), OBIS 0-0:0.2.1.255, attribute 2 (value), as in RTDS."""
METERING_CLUSTER = 0x0702
GSME_FIRMWARE_VERSION_ATTRIBUTE = 0x0206
"""What GCS38 reads in the Metering cluster, as in RTDS."""
CANCEL_EXECUTION_DATE_TIME = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
"""The CS06 execution date-time that cancels a pending future-dated activation (RTDS)."""
_ZCL_SUCCESS = 0x00
_ZCL_HARDWARE_FAILURE = 0xC0
_DLMS_HARDWARE_FAULT = 1


@dataclass(frozen=True)
class GbcsMessage:
    """A decoded message: its envelope (header, signature, MAC) and its typed payload."""

    envelope: Envelope
    payload: "Payload | UnmodelledPayload"

    @property
    def signing(self) -> GeneralSigning:
        return self.envelope.signing if isinstance(self.envelope, GeneralCiphering) else self.envelope

    @property
    def header(self) -> GroupingHeader:
        return self.signing.header


@dataclass(frozen=True)
class UnmodelledPayload:
    """The content of a message whose use case the codec does not model, kept as bytes."""

    content: bytes


_DECODED: dict[tuple[bytes, bool], GbcsMessage] = {}
_DECODED_MAX = 4


def decode_message(data: bytes, *, allow_unmodelled: bool = False) -> GbcsMessage:
    """Envelope and payload, strictly; a GbcsDecodeError names the field and offset.

    A message code outside the firmware flow is an error, or with ``allow_unmodelled`` an
    :class:`UnmodelledPayload` (its envelope, signature and MAC are still decoded and checkable).

    Decoding is a pure function of the bytes and its result is immutable, so the last few
    messages decoded are kept: a device's response is decoded by the hub and then, the same
    bytes relayed over the WAN, by the DSP, in the same call (a decoded message with its ASN.1
    payload is several KiB: a fleet keeps no more of them than that needs).
    """
    key = (bytes(data), allow_unmodelled)
    known = _DECODED.get(key)
    if known is not None:
        return known
    message = _decode_message(key[0], allow_unmodelled)
    if len(_DECODED) >= _DECODED_MAX:
        _DECODED.clear()
    _DECODED[key] = message
    return message


def _decode_message(data: bytes, allow_unmodelled: bool) -> GbcsMessage:
    envelope = decode_envelope(data)
    signing = envelope.signing if isinstance(envelope, GeneralCiphering) else envelope
    header = signing.header
    if not is_modelled(header.message_code, header.cra_flag):
        if allow_unmodelled:
            return GbcsMessage(envelope, UnmodelledPayload(signing.content))
        code_offset = (signing.content_offset - len(encode_length(len(signing.content)))
                       - len(header.other_information.encode()))
        raise GbcsDecodeError("message code", code_offset,
                              f"{message_code_name(header.message_code)} as a {header.cra_flag.name.lower()} "
                              "is not modelled")
    payload = decode_payload(header.message_code, header.cra_flag, signing.content, signing.content_offset)
    return GbcsMessage(envelope, payload)


def _message(cra: CraFlag, counter: int, originator: int, recipient: int, code: MessageCode, payload: Payload,
             *, date_time: dt.datetime | None = None, other: OtherInformation | None = None,
             signature: bytes | None = b"") -> GeneralSigning:
    header = GroupingHeader(cra, counter, originator, recipient, other or OtherInformation(int(code)),
                            dlms.encode_date_time(date_time) if date_time is not None else None)
    return GeneralSigning(header, encode_payload(payload), signature)


def response_header(command: GroupingHeader, *, date_time: dt.datetime | None = None) -> GroupingHeader:
    """The header a device answers ``command`` with."""
    return GroupingHeader(CraFlag.RESPONSE, command.originator_counter, command.recipient, command.originator,
                          command.other_information,
                          dlms.encode_date_time(date_time) if date_time is not None else None)


def _response(command: GroupingHeader, payload: Payload, date_time: dt.datetime | None = None) -> GeneralSigning:
    return GeneralSigning(response_header(command, date_time=date_time), encode_payload(payload))


# -- SR 11.1 / 11.4: transfer and distribution alerts ------------------------------------------------

def ccs08_alert(counter: int, comms_hub: int, recipient: int, alert: asn1.FirmwareTransferAlert) -> GeneralSigning:
    """CCS08 Firmware Transfer Alert (0x8F8A / 0x8F89), CHF → DCC (recipient: ACB in RTDS)."""
    return _message(CraFlag.ALERT, counter, comms_hub, recipient, MessageCode.CCS08_FIRMWARE_TRANSFER_ALERT, alert)


def cs09_alert(counter: int, ppmid: int, recipient: int, alert: asn1.PpmidFirmwareActivationAlert) -> GeneralSigning:
    """CS09 PPMID Firmware Activation Alert (0x8F8B), PPMID → DCC."""
    return _message(CraFlag.ALERT, counter, ppmid, recipient, MessageCode.CS09_PPMID_FIRMWARE_ACTIVATION_ALERT, alert)


def fdra_esme_alert(counter: int, esme: int, supplier: int, time: dt.datetime, calculated_hash: bytes,
                    *, verified: bool) -> GeneralSigning:
    """Firmware Distribution Receipt Alert from an ESME (DLMS, 0x00CE): 0x8F72 verified, 0x8F1C not."""
    code = GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL if verified else GbcsAlertCode.FIRMWARE_VERIFICATION_FAILED
    alert = DlmsAlert(int(code), time, dlms.long_invoke_id_and_priority(counter), calculated_hash)
    return _message(CraFlag.ALERT, counter, esme, supplier, MessageCode.FIRMWARE_DISTRIBUTION_RECEIPT_ALERT_ESME, alert)


def fdra_gsme_alert(counter: int, gsme: int, supplier: int, time: dt.datetime, calculated_hash: bytes,
                    *, verified: bool) -> GeneralSigning:
    """Firmware Distribution Receipt Alert from a GSME (GBZ, 0x00CF): 0x8F72 verified, 0x8F1C not."""
    code = GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL if verified else GbcsAlertCode.FIRMWARE_VERIFICATION_FAILED
    alert = gbz.GbzAlert(int(code), time, 1, calculated_hash)
    return _message(CraFlag.ALERT, counter, gsme, supplier, MessageCode.FIRMWARE_DISTRIBUTION_RECEIPT_ALERT_GSME, alert)


def generic_alert(counter: int, device: int, recipient: int, alert_code: int, time: dt.datetime,
                  *, dlms_device: bool, critical: bool) -> GeneralSigning:
    """A generic alert (0x8F43, 0x8F1B, ...): DLMS DATA-NOTIFICATION from an ESME, GBZ from a GSME.

    Critical alerts use message code 0x1000 and are signed; non-critical ones 0x1001 and MAC'd.
    """
    code = MessageCode.GENERIC_CRITICAL_ALERT if critical else MessageCode.GENERIC_NON_CRITICAL_ALERT
    payload: Payload = (DlmsAlert(alert_code, time, dlms.long_invoke_id_and_priority(counter)) if dlms_device
                        else gbz.GbzAlert(alert_code, time))
    return _message(CraFlag.ALERT, counter, device, recipient, code, payload)


# -- SR 11.2: read firmware version ----------------------------------------------------------------

def ecs52_command(counter: int, supplier: int, esme: int) -> GeneralSigning:
    request = dlms.AccessRequest(dlms.long_invoke_id_and_priority(counter), (ESME_FIRMWARE_VERSION,))
    return _message(CraFlag.COMMAND, counter, supplier, esme, MessageCode.ECS52_READ_ESME_CHF_FIRMWARE_VERSION, request)


def ecs52_response(command: GroupingHeader, firmware_version: bytes | None) -> GeneralSigning:
    """The ESME's answer; ``None``: the read failed (hardware-fault, as RTDS's error vector)."""
    result = (dlms.AccessResult(dlms.octets(firmware_version), 0) if firmware_version is not None
              else dlms.AccessResult(dlms.null(), _DLMS_HARDWARE_FAULT))
    return _response(command, dlms.AccessResponse(dlms.long_invoke_id_and_priority(command.originator_counter), (result,)))


def gcs38_command(counter: int, supplier: int, gsme: int) -> GeneralSigning:
    frame = gbz.ZclFrame(0x00, 0, gbz.ZCL_READ_ATTRIBUTES, attribute_ids=(GSME_FIRMWARE_VERSION_ATTRIBUTE,))
    payload = gbz.GbzPayload((gbz.GbzComponent(gbz.CONTROL_LAST_COMPONENT, METERING_CLUSTER, frame),))
    return _message(CraFlag.COMMAND, counter, supplier, gsme, MessageCode.GCS38_READ_GSME_FIRMWARE_VERSION, payload)


def gcs38_response(command: GroupingHeader, firmware_version: bytes | None) -> GeneralSigning:
    record = (gbz.AttributeRecord(GSME_FIRMWARE_VERSION_ATTRIBUTE, _ZCL_SUCCESS, gbz.ZCL_OCTET_STRING, firmware_version)
              if firmware_version is not None
              else gbz.AttributeRecord(GSME_FIRMWARE_VERSION_ATTRIBUTE, _ZCL_HARDWARE_FAILURE))
    frame = gbz.ZclFrame(gbz.ZCL_FRAME_SERVER_TO_CLIENT, 0, gbz.ZCL_READ_ATTRIBUTES_RESPONSE, records=(record,))
    return _response(command, gbz.GbzPayload((gbz.GbzComponent(gbz.CONTROL_LAST_COMPONENT, METERING_CLUSTER, frame),)))


def cs08_command(counter: int, ppmid: int, supplementary_remote_party_id: int,
                 supplementary_remote_party_counter: int, *, originator: int = ACCESS_CONTROL_BROKER_ID) -> GeneralSigning:
    """CS08 Read PPMID/HCALCS Firmware Version: sent by the ACB for the supplier named in other-information."""
    other = OtherInformation(int(MessageCode.CS08_READ_PPMID_HCALCS_FIRMWARE_VERSION), supplementary_remote_party_id,
                             supplementary_remote_party_counter)
    return _message(CraFlag.COMMAND, counter, originator, ppmid, MessageCode.CS08_READ_PPMID_HCALCS_FIRMWARE_VERSION,
                    asn1.ReadFirmwareVersionCommand(), other=other)


def cs08_response(command: GroupingHeader, firmware_version: bytes | None) -> GeneralSigning:
    """``None``: the read failed (version 00000000 and result 1, as RTDS's error vector)."""
    payload = (asn1.ReadFirmwareVersionResponse(firmware_version, 0) if firmware_version is not None
               else asn1.ReadFirmwareVersionResponse(bytes(4), 1))
    return _response(command, payload)


# -- SR 11.3: activate firmware --------------------------------------------------------------------

def cs06_precommand(counter: int, supplier: int, device: int, manufacturer_image_hash: bytes,
                    execution_date_time: dt.datetime | None = None) -> GeneralSigning:
    """The CS06 pre-command DCC returns to the User: no signature field until the User signs it."""
    command = asn1.ActivateFirmwareCommand(manufacturer_image_hash, counter, execution_date_time)
    return _message(CraFlag.COMMAND, counter, supplier, device, MessageCode.CS06_ACTIVATE_FIRMWARE, command,
                    signature=None)


def cs06_response(command: GroupingHeader, date_time: dt.datetime, result: ActivationResponseCode | None,
                  firmware_version: bytes = b"") -> GeneralSigning:
    """``result`` None: a future-dated or cancelling command was accepted (NULL payload)."""
    payload: Payload = (asn1.CommandAccepted() if result is None
                        else asn1.ActivateFirmwareResponse(result, firmware_version))
    return _response(command, payload, date_time)


def future_dated_activation_alert(counter: int, device: int, recipient: int, command_counter: int,
                                  execution_date_time: dt.datetime, result: ActivationResponseCode,
                                  firmware_version: bytes) -> GeneralSigning:
    """0x00CA: 0x8F66 when ``result`` is SUCCESS, else 0x8F67."""
    code = (GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS if result is ActivationResponseCode.SUCCESS
            else GbcsAlertCode.FUTURE_DATED_ACTIVATION_FAILURE)
    alert = asn1.FutureDatedActivationAlert(int(code), execution_date_time, command_counter,
                                            asn1.ActivateFirmwareResponse(result, firmware_version))
    return _message(CraFlag.ALERT, counter, device, recipient, MessageCode.CS06_FUTURE_DATED_ACTIVATION_ALERT, alert)


# -- SR 8.11: Update HAN Device Log ----------------------------------------------------------------

def _device_log_other(code: MessageCode, supplier: int, supplier_counter: int) -> OtherInformation:
    return OtherInformation(int(code), supplier, supplier_counter)


def ccs01_command(counter: int, comms_hub: int, device: int, install_code: bytes, join_time_period: int,
                  supplier: int, supplier_counter: int, *, originator: int = ACCESS_CONTROL_BROKER_ID) -> GeneralSigning:
    """CCS01 Add Device to CHF Device Log: sent by the ACB for the supplier in other-information
    (RTDS 8.11_CCS01); ``install_code`` without its CRC, ``join_time_period`` in seconds."""
    payload = device_log.AddDeviceToLog(dlms.long_invoke_id_and_priority(counter), device, install_code,
                                        join_time_period)
    code = MessageCode.CCS01_ADD_DEVICE_TO_CHF_DEVICE_LOG
    return _message(CraFlag.COMMAND, counter, originator, comms_hub, code, payload,
                    other=_device_log_other(code, supplier, supplier_counter))


def ccs02_command(counter: int, comms_hub: int, device: int, supplier: int, supplier_counter: int,
                  *, originator: int = ACCESS_CONTROL_BROKER_ID) -> GeneralSigning:
    """CCS02 Remove Device from CHF Device Log (RTDS 8.11_CCS02)."""
    payload = device_log.RemoveDeviceFromLog(dlms.long_invoke_id_and_priority(counter), device)
    code = MessageCode.CCS02_REMOVE_DEVICE_FROM_CHF_DEVICE_LOG
    return _message(CraFlag.COMMAND, counter, originator, comms_hub, code, payload,
                    other=_device_log_other(code, supplier, supplier_counter))


def device_log_response(command: GroupingHeader, results: tuple[int, ...]) -> GeneralSigning:
    """The CHF's CCS01 (three results) or CCS02 (one) response; 0 = success per specification."""
    return _response(command, device_log.DeviceLogResponse(
        dlms.long_invoke_id_and_priority(command.originator_counter), results))


def cs14_alert(counter: int, comms_hub: int, recipient: int, time: dt.datetime, backup_time: dt.datetime,
               extended_pan_id: int, entries: tuple[device_log_alert.DeviceLogRecord, ...]) -> GeneralSigning:
    """CS14 (0x0018, alert 0x8F12): the CHF's Device Log after a change, CHF → DCC (recipient: the
    ACB in RTDS NA_CS14); MAC'd by the CHF."""
    alert = device_log_alert.DeviceLogChangedAlert(dlms.long_invoke_id_and_priority(counter), time, backup_time,
                                                   extended_pan_id, entries)
    return _message(CraFlag.ALERT, counter, comms_hub, recipient, MessageCode.CS14_DEVICE_LOG_CHANGED_ALERT, alert)
