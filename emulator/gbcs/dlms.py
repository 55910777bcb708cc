"""The DLMS/COSEM payloads of the firmware flow (ESME and CHF side), strict A-XDR.

- ECS52 (0x0059): ACCESS-Request ``D9`` with one GET of a COSEM attribute, ACCESS-Response ``DA``.
- FDRA (0x00CE) and generic alerts (0x1000/0x1001, DLMS devices): DATA-NOTIFICATION ``0F``.

Only the DLMS data types these messages use are modelled (null, octet-string, long-unsigned,
unsigned, double-long-unsigned, enum, boolean, structure); anything else is an error that says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .wire import GbcsDecodeError, GbcsEncodeError, Reader, encode_length, uint_bytes

ACCESS_REQUEST_TAG = 0xD9
ACCESS_RESPONSE_TAG = 0xDA
DATA_NOTIFICATION_TAG = 0x0F
ACCESS_GET = 0x01
"""access-request-get / access-response-get choice."""
LONG_INVOKE_ID_FLAGS = 0x2000_0000
"""The priority/option bits RTDS sets in every long-invoke-id-and-priority (bit 29)."""


def long_invoke_id_and_priority(originator_counter: int) -> int:
    """GBCS puts the low 24 bits of the originator counter in the DLMS invoke id."""
    return LONG_INVOKE_ID_FLAGS | (originator_counter & 0x00FF_FFFF)


# -- DLMS date-time (12 bytes) ---------------------------------------------------------------------

DATE_TIME_DEVIATION_UNSPECIFIED = 0x8000
DATE_TIME_UNSPECIFIED_BYTE = 0xFF


def encode_date_time(value: dt.datetime) -> bytes:
    """A UTC datetime as a DLMS date-time: weekday, deviation and clock status "not specified"
    (the form every RTDS vector uses)."""
    if value.tzinfo is None:
        raise GbcsEncodeError(f"date-time {value!r} needs a time zone (GBCS times are UTC)")
    value = value.astimezone(dt.timezone.utc)
    return (
        value.year.to_bytes(2, "big")
        + bytes([value.month, value.day, DATE_TIME_UNSPECIFIED_BYTE, value.hour, value.minute, value.second,
                 value.microsecond // 10_000])
        + DATE_TIME_DEVIATION_UNSPECIFIED.to_bytes(2, "big")
        + bytes([DATE_TIME_UNSPECIFIED_BYTE])
    )


def decode_date_time(data: bytes, offset: int = 0, field: str = "date-time") -> dt.datetime:
    """A fully specified DLMS date-time (any weekday, deviation and status) as UTC."""
    if len(data) != 12:
        raise GbcsDecodeError(field, offset, f"{len(data)} bytes: a DLMS date-time has 12")
    year = int.from_bytes(data[0:2], "big")
    month, day, _weekday, hour, minute, second, hundredths = data[2:9]
    try:
        return dt.datetime(year, month, day, hour, minute, second, hundredths * 10_000, tzinfo=dt.timezone.utc)
    except ValueError as exc:
        raise GbcsDecodeError(field, offset, f"{data.hex().upper()} is not a date: {exc}") from None


# -- DLMS data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DlmsData:
    """One typed DLMS value. ``value`` is None, bytes, int or bool, or a tuple of DlmsData."""

    tag: int
    value: None | bytes | int | bool | tuple["DlmsData", ...]


NULL_DATA = 0x00
STRUCTURE = 0x02
BOOLEAN = 0x03
DOUBLE_LONG_UNSIGNED = 0x06
OCTET_STRING = 0x09
UNSIGNED = 0x11
LONG_UNSIGNED = 0x12
ENUM = 0x16
_FIXED_UNSIGNED = {DOUBLE_LONG_UNSIGNED: 4, UNSIGNED: 1, LONG_UNSIGNED: 2, ENUM: 1}
_DATA_TYPE_NAMES = {NULL_DATA: "null-data", STRUCTURE: "structure", BOOLEAN: "boolean",
                    DOUBLE_LONG_UNSIGNED: "double-long-unsigned", OCTET_STRING: "octet-string",
                    UNSIGNED: "unsigned", LONG_UNSIGNED: "long-unsigned", ENUM: "enum"}


def null() -> DlmsData:
    return DlmsData(NULL_DATA, None)


def octets(value: bytes) -> DlmsData:
    return DlmsData(OCTET_STRING, bytes(value))


def long_unsigned(value: int) -> DlmsData:
    return DlmsData(LONG_UNSIGNED, value)


def structure(*items: DlmsData) -> DlmsData:
    return DlmsData(STRUCTURE, tuple(items))


def encode_data(data: DlmsData) -> bytes:
    tag, value = data.tag, data.value
    if tag == NULL_DATA:
        return b"\x00"
    if tag == STRUCTURE and isinstance(value, tuple):
        return bytes([STRUCTURE]) + encode_length(len(value)) + b"".join(encode_data(item) for item in value)
    if tag == BOOLEAN and isinstance(value, bool):
        return bytes([BOOLEAN, 0xFF if value else 0x00])
    if tag == OCTET_STRING and isinstance(value, bytes):
        return bytes([OCTET_STRING]) + encode_length(len(value)) + value
    if tag in _FIXED_UNSIGNED and isinstance(value, int) and not isinstance(value, bool):
        return bytes([tag]) + uint_bytes(value, _FIXED_UNSIGNED[tag], _DATA_TYPE_NAMES[tag])
    raise GbcsEncodeError(f"DLMS data type 0x{tag:02X} with value {value!r} is not modelled")


def read_data(reader: Reader, field: str = "DLMS data") -> DlmsData:
    at = reader.offset
    tag = reader.uint(1, f"{field} type")
    if tag == NULL_DATA:
        return null()
    if tag == STRUCTURE:
        count = reader.length(f"{field} structure count")
        return DlmsData(STRUCTURE, tuple(read_data(reader, f"{field}[{i}]") for i in range(count)))
    if tag == BOOLEAN:
        at = reader.offset
        raw = reader.uint(1, field)
        if raw not in (0x00, 0xFF):
            raise GbcsDecodeError(field, at, f"boolean 0x{raw:02X} is neither 00 nor FF")
        return DlmsData(BOOLEAN, raw == 0xFF)
    if tag == OCTET_STRING:
        return DlmsData(OCTET_STRING, reader.octet_string(field))
    if tag in _FIXED_UNSIGNED:
        return DlmsData(tag, reader.uint(_FIXED_UNSIGNED[tag], f"{field} ({_DATA_TYPE_NAMES[tag]})"))
    raise GbcsDecodeError(f"{field} type", at, f"DLMS data type 0x{tag:02X} is not modelled")


# -- ACCESS (ECS52) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CosemAttributeDescriptor:
    class_id: int
    instance_id: bytes
    """The OBIS code, 6 bytes."""
    attribute_id: int


@dataclass(frozen=True)
class AccessRequest:
    """ACCESS-Request with GET specifications only (what ECS52 sends)."""

    long_invoke_id_and_priority: int
    gets: tuple[CosemAttributeDescriptor, ...]


@dataclass(frozen=True)
class AccessResult:
    data: DlmsData
    result: int
    """data-access-result: 0 success, 1 hardware-fault, ..."""


@dataclass(frozen=True)
class AccessResponse:
    """ACCESS-Response to a GET-only request: one data item and one result per GET."""

    long_invoke_id_and_priority: int
    results: tuple[AccessResult, ...]


def encode_access_request(value: AccessRequest) -> bytes:
    out = bytes([ACCESS_REQUEST_TAG]) + uint_bytes(value.long_invoke_id_and_priority, 4, "long-invoke-id-and-priority")
    out += b"\x00"  # date-time: empty octet string
    out += encode_length(len(value.gets))
    for get in value.gets:
        if len(get.instance_id) != 6:
            raise GbcsEncodeError(f"COSEM instance id (OBIS) must be 6 bytes, not {len(get.instance_id)}")
        out += (bytes([ACCESS_GET]) + uint_bytes(get.class_id, 2, "class-id") + get.instance_id
                + uint_bytes(get.attribute_id, 1, "attribute-id"))
    out += encode_length(len(value.gets)) + b"\x00" * len(value.gets)  # list-of-data: null per GET
    return out


def read_header(reader: Reader, tag: int, name: str, where: str = "here") -> int:
    """The tag, long-invoke-id-and-priority and the empty date-time that every xDLMS APDU of GBCS
    starts with (``where`` names the use case in the error)."""
    reader.expect(bytes([tag]), f"{name} tag")
    invoke = reader.uint(4, "long-invoke-id-and-priority")
    at = reader.offset
    if reader.octet_string("date-time"):
        raise GbcsDecodeError("date-time", at, f"a GBCS {name} carries no date-time {where}")
    return invoke


def decode_access_request(data: bytes, offset: int = 0) -> AccessRequest:
    reader = Reader(data, offset)
    invoke = read_header(reader, ACCESS_REQUEST_TAG, "ACCESS-Request")
    count = reader.length("access-request-specification count")
    gets = []
    for index in range(count):
        at = reader.offset
        choice = reader.uint(1, f"access-request-specification[{index}]")
        if choice != ACCESS_GET:
            raise GbcsDecodeError(f"access-request-specification[{index}]", at, f"choice {choice} is not modelled (GET is 1)")
        gets.append(CosemAttributeDescriptor(reader.uint(2, "class-id"), reader.take(6, "instance-id"),
                                             reader.uint(1, "attribute-id")))
    at = reader.offset
    if reader.length("access-request-list-of-data count") != count:
        raise GbcsDecodeError("access-request-list-of-data count", at, f"must equal the {count} specification(s)")
    for index in range(count):
        at = reader.offset
        if reader.uint(1, f"access-request-list-of-data[{index}]") != NULL_DATA:
            raise GbcsDecodeError(f"access-request-list-of-data[{index}]", at, "a GET carries null-data (00)")
    reader.done("ACCESS-Request")
    return AccessRequest(invoke, tuple(gets))


def encode_access_response(value: AccessResponse) -> bytes:
    out = bytes([ACCESS_RESPONSE_TAG]) + uint_bytes(value.long_invoke_id_and_priority, 4, "long-invoke-id-and-priority")
    out += b"\x00"  # date-time: empty
    out += b"\x00"  # access-request-specification: absent
    out += encode_length(len(value.results)) + b"".join(encode_data(r.data) for r in value.results)
    out += encode_length(len(value.results))
    for r in value.results:
        out += bytes([ACCESS_GET]) + uint_bytes(r.result, 1, "data-access-result")
    return out


def decode_access_response(data: bytes, offset: int = 0) -> AccessResponse:
    reader = Reader(data, offset)
    invoke = read_header(reader, ACCESS_RESPONSE_TAG, "ACCESS-Response")
    at = reader.offset
    if reader.uint(1, "access-request-specification presence") != 0:
        raise GbcsDecodeError("access-request-specification presence", at, "a GBCS ACCESS-Response does not repeat the request (00)")
    count = reader.length("access-response-list-of-data count")
    items = [read_data(reader, f"access-response-list-of-data[{i}]") for i in range(count)]
    at = reader.offset
    if reader.length("access-response-specification count") != count:
        raise GbcsDecodeError("access-response-specification count", at, f"must equal the {count} data item(s)")
    results = []
    for index in range(count):
        at = reader.offset
        choice = reader.uint(1, f"access-response-specification[{index}]")
        if choice != ACCESS_GET:
            raise GbcsDecodeError(f"access-response-specification[{index}]", at, f"choice {choice} is not modelled (GET is 1)")
        results.append(AccessResult(items[index], reader.uint(1, "data-access-result")))
    reader.done("ACCESS-Response")
    return AccessResponse(invoke, tuple(results))


# -- DATA-NOTIFICATION (alerts) --------------------------------------------------------------------


@dataclass(frozen=True)
class DataNotification:
    long_invoke_id_and_priority: int
    body: DlmsData


def encode_data_notification(value: DataNotification) -> bytes:
    return (bytes([DATA_NOTIFICATION_TAG]) + uint_bytes(value.long_invoke_id_and_priority, 4, "long-invoke-id-and-priority")
            + b"\x00" + encode_data(value.body))


def decode_data_notification(data: bytes, offset: int = 0) -> DataNotification:
    reader = Reader(data, offset)
    invoke = read_header(reader, DATA_NOTIFICATION_TAG, "DATA-NOTIFICATION")
    body = read_data(reader, "notification-body")
    reader.done("DATA-NOTIFICATION")
    return DataNotification(invoke, body)
