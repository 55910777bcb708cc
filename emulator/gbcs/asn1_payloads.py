"""The ASN.1 (DER) payloads of the firmware flow: CCS08, CS09, CS08, CS06 and the 0x00CA alert.

Schemas are declared with asn1crypto; decoding is strict: the bytes must be exactly the DER
encoding of what they decode to (a non-minimal integer, a BER length or trailing bytes are
errors), so that decode → encode gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from asn1crypto import core

from .codes import ActivationResponseCode, GbcsAlertCode, TransferResult
from .wire import GbcsDecodeError, GbcsEncodeError

# -- schemas ---------------------------------------------------------------------------------------


class _FirmwareTransferAlert(core.Sequence):
    _fields = [
        ("alert_code", core.Integer),
        ("date_time", core.GeneralizedTime),
        ("entity_id", core.OctetString),
        ("firmware_version", core.OctetString),
        ("response_code", core.Integer),
    ]


class _PpmidFirmwareActivationAlert(core.Sequence):
    _fields = [
        ("alert_code", core.Integer),
        ("date_time", core.GeneralizedTime),
        ("firmware_version", core.OctetString),
        ("activate_image", core.Integer),
    ]


class _ReadFirmwareVersionResponse(core.Sequence):
    _fields = [("firmware_version", core.OctetString), ("read_result", core.Integer)]


class _ActivateFirmwareCommand(core.Sequence):
    _fields = [
        ("manufacturer_image_hash", core.OctetString),
        ("originator_counter", core.Integer),
        ("execution_date_time", core.GeneralizedTime, {"optional": True}),
    ]


class _ActivateFirmwareResponse(core.Sequence):
    _fields = [("activate_image_result", core.Integer), ("firmware_version", core.OctetString)]


class _FutureDatedActivationAlert(core.Sequence):
    _fields = [
        ("alert_code", core.Integer),
        ("execution_date_time", core.GeneralizedTime),
        ("originator_counter", core.Integer),
        ("response", _ActivateFirmwareResponse),
    ]


# -- values ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirmwareTransferAlert:
    """CCS08 (0x0128): the Comms Hub tells DCC how a firmware transfer to one device ended."""

    alert_code: int
    date_time: dt.datetime
    entity_id: int
    firmware_version: bytes
    response_code: TransferResult

    @classmethod
    def for_result(cls, date_time: dt.datetime, entity_id: int, firmware_version: bytes,
                   response_code: TransferResult) -> "FirmwareTransferAlert":
        """0x8F8A for a successful transfer, 0x8F89 for any other outcome."""
        code = (GbcsAlertCode.CCS08_TRANSFER_SUCCESS if response_code is TransferResult.TRANSFERRED
                else GbcsAlertCode.CCS08_TRANSFER_FAILURE)
        return cls(int(code), date_time, entity_id, firmware_version, response_code)


@dataclass(frozen=True)
class PpmidFirmwareActivationAlert:
    """CS09 (0x012B, alert 0x8F8B): a PPMID reports the firmware it activated."""

    date_time: dt.datetime
    firmware_version: bytes
    activate_image: int
    """0: the image was activated; 1: it was not (inference from the RTDS success vector)."""
    alert_code: int = int(GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION)


@dataclass(frozen=True)
class ReadFirmwareVersionCommand:
    """CS08 (0x0129) command: no parameters (ASN.1 NULL)."""


@dataclass(frozen=True)
class ReadFirmwareVersionResponse:
    """CS08 (0x0129) response: the PPMID/HCALCS firmware version and 0 (read) or 1 (failed)."""

    firmware_version: bytes
    read_result: int


@dataclass(frozen=True)
class ActivateFirmwareCommand:
    """CS06 (0x0012) command: activate the image with this hash, now or at ``execution_date_time``.

    ``originator_counter`` repeats the grouping header's counter; a date of 9999-12-31 23:59:59
    cancels a pending future-dated activation (RTDS CANCELLATION vectors).
    """

    manufacturer_image_hash: bytes
    originator_counter: int
    execution_date_time: dt.datetime | None = None


@dataclass(frozen=True)
class ActivateFirmwareResponse:
    """CS06 response to an immediate activation: the outcome and the firmware now running."""

    activate_image_result: ActivationResponseCode
    firmware_version: bytes


@dataclass(frozen=True)
class CommandAccepted:
    """CS06 response to a future-dated or cancelling command (ASN.1 NULL): accepted, outcome later."""


@dataclass(frozen=True)
class FutureDatedActivationAlert:
    """0x00CA: the outcome of a future-dated CS06, alert 0x8F66 (success) or 0x8F67 (failure)."""

    alert_code: int
    execution_date_time: dt.datetime
    originator_counter: int
    response: ActivateFirmwareResponse


Asn1Payload = (FirmwareTransferAlert | PpmidFirmwareActivationAlert | ReadFirmwareVersionCommand
               | ReadFirmwareVersionResponse | ActivateFirmwareCommand | ActivateFirmwareResponse
               | CommandAccepted | FutureDatedActivationAlert)

# -- encode ----------------------------------------------------------------------------------------

_NULL = core.Null().dump()


def _utc(value: dt.datetime, field: str) -> dt.datetime:
    if value.tzinfo is None:
        raise GbcsEncodeError(f"{field} {value!r} needs a time zone (GBCS times are UTC)")
    if value.microsecond:
        raise GbcsEncodeError(f"{field} {value!r}: GBCS GeneralizedTime has whole seconds")
    return value.astimezone(dt.timezone.utc)


def _response(value: ActivateFirmwareResponse) -> _ActivateFirmwareResponse:
    return _ActivateFirmwareResponse({
        "activate_image_result": int(value.activate_image_result),
        "firmware_version": value.firmware_version,
    })


def encode_asn1_payload(value: Asn1Payload) -> bytes:
    """DER bytes of one payload value."""
    if isinstance(value, (ReadFirmwareVersionCommand, CommandAccepted)):
        return _NULL
    schema: core.Sequence
    if isinstance(value, FirmwareTransferAlert):
        schema = _FirmwareTransferAlert({
            "alert_code": value.alert_code, "date_time": _utc(value.date_time, "date_time"),
            "entity_id": value.entity_id.to_bytes(8, "big"), "firmware_version": value.firmware_version,
            "response_code": int(value.response_code),
        })
    elif isinstance(value, PpmidFirmwareActivationAlert):
        schema = _PpmidFirmwareActivationAlert({
            "alert_code": value.alert_code, "date_time": _utc(value.date_time, "date_time"),
            "firmware_version": value.firmware_version, "activate_image": value.activate_image,
        })
    elif isinstance(value, ReadFirmwareVersionResponse):
        schema = _ReadFirmwareVersionResponse({
            "firmware_version": value.firmware_version, "read_result": value.read_result,
        })
    elif isinstance(value, ActivateFirmwareCommand):
        if len(value.manufacturer_image_hash) != 32:
            raise GbcsEncodeError(f"manufacturer image hash must be 32 bytes (SHA-256), not {len(value.manufacturer_image_hash)}")
        fields: dict[str, Any] = {
            "manufacturer_image_hash": value.manufacturer_image_hash,
            "originator_counter": value.originator_counter,
        }
        if value.execution_date_time is not None:
            fields["execution_date_time"] = _utc(value.execution_date_time, "execution_date_time")
        schema = _ActivateFirmwareCommand(fields)
    elif isinstance(value, ActivateFirmwareResponse):
        schema = _response(value)
    elif isinstance(value, FutureDatedActivationAlert):
        schema = _FutureDatedActivationAlert({
            "alert_code": value.alert_code,
            "execution_date_time": _utc(value.execution_date_time, "execution_date_time"),
            "originator_counter": value.originator_counter, "response": _response(value.response),
        })
    else:  # pragma: no cover - the union is closed
        raise GbcsEncodeError(f"not an ASN.1 payload: {value!r}")
    return bytes(schema.dump())


# -- decode ----------------------------------------------------------------------------------------

_S = TypeVar("_S", bound=core.Asn1Value)
_T = TypeVar("_T")


def _load(schema: type[_S], data: bytes, name: str, offset: int) -> Any:
    """Parse ``data`` as ``schema``; it must be exactly its DER encoding. Returns ``.native``."""
    try:
        parsed = schema.load(data, strict=True)
        native = parsed.native
        canonical = parsed.dump(force=True)
    except (ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split())
        raise GbcsDecodeError(f"{name} payload", offset, f"not valid ASN.1: {reason}") from None
    if canonical != data:
        raise GbcsDecodeError(f"{name} payload", offset, "not in DER form (a re-encoding differs)")
    return native


def _enum(kind: Callable[[int], _T], value: int, field: str, offset: int) -> _T:
    try:
        return kind(value)
    except ValueError:
        raise GbcsDecodeError(field, offset, f"{value} is not a known {getattr(kind, '__name__', 'value')}") from None


def _null(data: bytes, name: str, offset: int) -> None:
    if data != _NULL:
        raise GbcsDecodeError(f"{name} payload", offset, f"expected ASN.1 NULL (0500), found {data.hex().upper()}")


def _entity(value: bytes, offset: int) -> int:
    if len(value) != 8:
        raise GbcsDecodeError("CCS08 entityId", offset, f"{len(value)} bytes: an EUI-64 has 8")
    return int.from_bytes(value, "big")


def decode_firmware_transfer_alert(data: bytes, offset: int = 0) -> FirmwareTransferAlert:
    n = _load(_FirmwareTransferAlert, data, "CCS08", offset)
    return FirmwareTransferAlert(n["alert_code"], n["date_time"], _entity(n["entity_id"], offset),
                                 n["firmware_version"],
                                 _enum(TransferResult, n["response_code"], "CCS08 responseCode", offset))


def decode_ppmid_firmware_activation_alert(data: bytes, offset: int = 0) -> PpmidFirmwareActivationAlert:
    n = _load(_PpmidFirmwareActivationAlert, data, "CS09", offset)
    return PpmidFirmwareActivationAlert(n["date_time"], n["firmware_version"], n["activate_image"], n["alert_code"])


def decode_read_firmware_version_command(data: bytes, offset: int = 0) -> ReadFirmwareVersionCommand:
    _null(data, "CS08 command", offset)
    return ReadFirmwareVersionCommand()


def decode_read_firmware_version_response(data: bytes, offset: int = 0) -> ReadFirmwareVersionResponse:
    n = _load(_ReadFirmwareVersionResponse, data, "CS08 response", offset)
    return ReadFirmwareVersionResponse(n["firmware_version"], n["read_result"])


def decode_activate_firmware_command(data: bytes, offset: int = 0) -> ActivateFirmwareCommand:
    n = _load(_ActivateFirmwareCommand, data, "CS06 command", offset)
    if len(n["manufacturer_image_hash"]) != 32:
        raise GbcsDecodeError("CS06 manufacturer image hash", offset, f"{len(n['manufacturer_image_hash'])} bytes, not 32")
    return ActivateFirmwareCommand(n["manufacturer_image_hash"], n["originator_counter"], n["execution_date_time"])


def decode_activate_firmware_response(data: bytes, offset: int = 0) -> ActivateFirmwareResponse | CommandAccepted:
    if data == _NULL:
        return CommandAccepted()
    n = _load(_ActivateFirmwareResponse, data, "CS06 response", offset)
    return ActivateFirmwareResponse(
        _enum(ActivationResponseCode, n["activate_image_result"], "CS06 activateImageResult", offset),
        n["firmware_version"],
    )


def decode_future_dated_activation_alert(data: bytes, offset: int = 0) -> FutureDatedActivationAlert:
    n = _load(_FutureDatedActivationAlert, data, "0x00CA alert", offset)
    r = n["response"]
    response = ActivateFirmwareResponse(
        _enum(ActivationResponseCode, r["activate_image_result"], "0x00CA activateImageResult", offset),
        r["firmware_version"],
    )
    return FutureDatedActivationAlert(n["alert_code"], n["execution_date_time"], n["originator_counter"], response)
