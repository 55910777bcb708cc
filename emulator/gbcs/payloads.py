"""Which payload codec a message uses: by message code and CRA flag, one table.

``decode_payload(code, cra, content, offset)`` gives a typed value, ``encode_payload(value)`` its
bytes. Every code of the firmware flow is here; another code is an error naming it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from . import asn1_payloads as asn1
from . import device_log, device_log_alert, dlms, gbz
from .message_codes import CraFlag, MessageCode, message_code_name
from .wire import GbcsDecodeError, GbcsEncodeError

_HASH_LENGTH = 32


@dataclass(frozen=True)
class DlmsAlert:
    """A DLMS alert (DATA-NOTIFICATION): alert code, time, and for the FDRA the calculated hash."""

    alert_code: int
    date_time: dt.datetime
    long_invoke_id_and_priority: int
    manufacturer_image_hash: bytes | None = None


def encode_dlms_alert(value: DlmsAlert) -> bytes:
    items = [dlms.long_unsigned(value.alert_code), dlms.octets(dlms.encode_date_time(value.date_time))]
    if value.manufacturer_image_hash is not None:
        if len(value.manufacturer_image_hash) != _HASH_LENGTH:
            raise GbcsEncodeError(f"manufacturer image hash must be {_HASH_LENGTH} bytes")
        items.append(dlms.octets(value.manufacturer_image_hash))
    return dlms.encode_data_notification(dlms.DataNotification(value.long_invoke_id_and_priority, dlms.structure(*items)))


def decode_dlms_alert(data: bytes, offset: int, *, with_hash: bool) -> DlmsAlert:
    notification = dlms.decode_data_notification(data, offset)
    body = notification.body
    want = 3 if with_hash else 2
    items = body.value if body.tag == dlms.STRUCTURE and isinstance(body.value, tuple) else ()
    shape = [(dlms.LONG_UNSIGNED, None), (dlms.OCTET_STRING, 12), (dlms.OCTET_STRING, _HASH_LENGTH)][:want]
    ok = len(items) == want and all(
        item.tag == tag and (size is None or (isinstance(item.value, bytes) and len(item.value) == size))
        for item, (tag, size) in zip(items, shape)
    )
    if not ok:
        layout = "long-unsigned alert code, octet-string(12) date-time" + (", octet-string(32) hash" if with_hash else "")
        raise GbcsDecodeError("notification-body", offset + 6, f"must be a structure of {layout}")
    code, when = items[0].value, items[1].value
    assert isinstance(code, int) and isinstance(when, bytes)
    image_hash = items[2].value if with_hash else None
    assert image_hash is None or isinstance(image_hash, bytes)
    return DlmsAlert(code, dlms.decode_date_time(when, offset + 12), notification.long_invoke_id_and_priority, image_hash)


Payload = (asn1.Asn1Payload | dlms.AccessRequest | dlms.AccessResponse | gbz.GbzPayload | gbz.GbzAlert | DlmsAlert
           | device_log.DeviceLogPayload | device_log_alert.DeviceLogChangedAlert)

_Decoder = Callable[[bytes, int], Payload]


def _generic_alert(data: bytes, offset: int) -> Payload:
    """Generic alerts come from DLMS devices (DATA-NOTIFICATION) and GBZ devices alike."""
    if data[:1] == bytes([dlms.DATA_NOTIFICATION_TAG]):
        return decode_dlms_alert(data, offset, with_hash=False)
    return gbz.decode_gbz_alert(data, offset, with_hash=False)


_DECODERS: dict[tuple[int, CraFlag], _Decoder] = {
    (MessageCode.CCS08_FIRMWARE_TRANSFER_ALERT, CraFlag.ALERT): asn1.decode_firmware_transfer_alert,
    (MessageCode.CS09_PPMID_FIRMWARE_ACTIVATION_ALERT, CraFlag.ALERT): asn1.decode_ppmid_firmware_activation_alert,
    (MessageCode.CS08_READ_PPMID_HCALCS_FIRMWARE_VERSION, CraFlag.COMMAND): asn1.decode_read_firmware_version_command,
    (MessageCode.CS08_READ_PPMID_HCALCS_FIRMWARE_VERSION, CraFlag.RESPONSE): asn1.decode_read_firmware_version_response,
    (MessageCode.CS06_ACTIVATE_FIRMWARE, CraFlag.COMMAND): asn1.decode_activate_firmware_command,
    (MessageCode.CS06_ACTIVATE_FIRMWARE, CraFlag.RESPONSE): asn1.decode_activate_firmware_response,
    (MessageCode.CS06_FUTURE_DATED_ACTIVATION_ALERT, CraFlag.ALERT): asn1.decode_future_dated_activation_alert,
    (MessageCode.ECS52_READ_ESME_CHF_FIRMWARE_VERSION, CraFlag.COMMAND): dlms.decode_access_request,
    (MessageCode.ECS52_READ_ESME_CHF_FIRMWARE_VERSION, CraFlag.RESPONSE): dlms.decode_access_response,
    (MessageCode.GCS38_READ_GSME_FIRMWARE_VERSION, CraFlag.COMMAND): gbz.decode_gbz_payload,
    (MessageCode.GCS38_READ_GSME_FIRMWARE_VERSION, CraFlag.RESPONSE): gbz.decode_gbz_payload,
    (MessageCode.FIRMWARE_DISTRIBUTION_RECEIPT_ALERT_ESME, CraFlag.ALERT):
        lambda data, offset: decode_dlms_alert(data, offset, with_hash=True),
    (MessageCode.FIRMWARE_DISTRIBUTION_RECEIPT_ALERT_GSME, CraFlag.ALERT):
        lambda data, offset: gbz.decode_gbz_alert(data, offset, with_hash=True),
    (MessageCode.CCS01_ADD_DEVICE_TO_CHF_DEVICE_LOG, CraFlag.COMMAND): device_log.decode_add_device,
    (MessageCode.CCS01_ADD_DEVICE_TO_CHF_DEVICE_LOG, CraFlag.RESPONSE): device_log.decode_add_response,
    (MessageCode.CCS02_REMOVE_DEVICE_FROM_CHF_DEVICE_LOG, CraFlag.COMMAND): device_log.decode_remove_device,
    (MessageCode.CCS02_REMOVE_DEVICE_FROM_CHF_DEVICE_LOG, CraFlag.RESPONSE): device_log.decode_remove_response,
    (MessageCode.CS14_DEVICE_LOG_CHANGED_ALERT, CraFlag.ALERT): device_log_alert.decode_device_log_alert,
    (MessageCode.GENERIC_CRITICAL_ALERT, CraFlag.ALERT): _generic_alert,
    (MessageCode.GENERIC_NON_CRITICAL_ALERT, CraFlag.ALERT): _generic_alert,
}


def is_modelled(message_code: int, cra_flag: CraFlag) -> bool:
    return (message_code, cra_flag) in _DECODERS


def decode_payload(message_code: int, cra_flag: CraFlag, content: bytes, offset: int = 0) -> Payload:
    """The typed payload of ``content`` (which starts at ``offset`` in the whole message)."""
    decoder = _DECODERS.get((message_code, cra_flag))
    if decoder is None:
        raise GbcsDecodeError("message code", offset, f"{message_code_name(message_code)} as a {cra_flag.name.lower()} is not modelled")
    if not content:
        raise GbcsDecodeError(f"{message_code_name(message_code)} payload", offset, "empty")
    return decoder(content, offset)


def encode_payload(value: Payload) -> bytes:
    if isinstance(value, DlmsAlert):
        return encode_dlms_alert(value)
    if isinstance(value, dlms.AccessRequest):
        return dlms.encode_access_request(value)
    if isinstance(value, dlms.AccessResponse):
        return dlms.encode_access_response(value)
    if isinstance(value, gbz.GbzPayload):
        return gbz.encode_gbz_payload(value)
    if isinstance(value, gbz.GbzAlert):
        return gbz.encode_gbz_alert(value)
    if isinstance(value, device_log_alert.DeviceLogChangedAlert):
        return device_log_alert.encode_device_log_alert(value)
    if isinstance(value, (device_log.AddDeviceToLog, device_log.RemoveDeviceFromLog, device_log.DeviceLogResponse)):
        return device_log.encode_device_log_payload(value)
    return asn1.encode_asn1_payload(value)


__all__ = ["DlmsAlert", "Payload", "decode_payload", "encode_payload", "is_modelled"]
