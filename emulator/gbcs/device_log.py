"""CCS01 / CCS02 (SR 8.11 Update HAN Device Log): the DLMS payloads, strict A-XDR.

Both are DLMS ACCESS-Requests to the CHF's ZigBee network control object (class 104, OBIS
0-0:30.3.0.255), laid out byte for byte as DCC's RTDS 4.5.0 vectors (8.11_CCS01, 8.11_CCS02):

- CCS01 (add, message code 0x0001): ACTION method 1 ``register_device`` with
  ``structure{octet-string(8) device ID, enum key type, octet-string install code, enum}``, then
  SET attribute 3 (``join_timeout``, long-unsigned: the DUIS JoinTimePeriod) and SET attribute 2
  (``enable_disable_joining``, boolean TRUE).
- CCS02 (remove, 0x0002): ACTION method 2 ``unregister_device`` with ``octet-string(8)`` device ID.
- The responses: ACCESS-Response, null-data per specification, then one result per
  specification (RTDS success: all 0; error: 0x01 hardware-fault, 0xFA other-reason).

The two enumerations of the register_device structure are carried as given; RTDS has key type 1
(an installation code, the only kind DUIS 8.11 sends) and 0 after the code, and the emulator
writes the same values. A decoder that finds any other layout raises :class:`GbcsDecodeError`
naming the field and its offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import dlms
from .wire import GbcsDecodeError, GbcsEncodeError, Reader, encode_length, uint_bytes

ZIGBEE_NETWORK_CONTROL_CLASS = 104
ZIGBEE_NETWORK_CONTROL_OBIS = bytes.fromhex("00001E0300FF")
"""0-0:30.3.0.255, the CHF's ZigBee network control object (RTDS CCS01/CCS02)."""
ACCESS_SET = 0x02
ACCESS_ACTION = 0x03
ENABLE_DISABLE_JOINING = 2
JOIN_TIMEOUT = 3
REGISTER_DEVICE = 1
UNREGISTER_DEVICE = 2
KEY_TYPE_INSTALL_CODE = 1
"""register_device key type of every RTDS CCS01 (DUIS 8.11 always carries an install code)."""
DATA_ACCESS_SUCCESS = 0
DATA_ACCESS_HARDWARE_FAULT = 1
DATA_ACCESS_OTHER_REASON = 0xFA
_EUI_LENGTH = 8
_INSTALL_CODE_LENGTHS = frozenset({6, 8, 12, 16})
_KINDS = {ACCESS_SET: "SET", ACCESS_ACTION: "ACTION"}

_CCS01_SPECS = ((ACCESS_ACTION, REGISTER_DEVICE), (ACCESS_SET, JOIN_TIMEOUT), (ACCESS_SET, ENABLE_DISABLE_JOINING))
_CCS02_SPECS = ((ACCESS_ACTION, UNREGISTER_DEVICE),)


@dataclass(frozen=True)
class AddDeviceToLog:
    """CCS01: register ``device_id`` with ``install_code`` (without its CRC, 6/8/12/16 octets) and
    let it join for ``join_time_period`` seconds."""

    long_invoke_id_and_priority: int
    device_id: int
    install_code: bytes
    join_time_period: int
    key_type: int = KEY_TYPE_INSTALL_CODE
    registration_option: int = 0


@dataclass(frozen=True)
class RemoveDeviceFromLog:
    """CCS02: unregister ``device_id``."""

    long_invoke_id_and_priority: int
    device_id: int


@dataclass(frozen=True)
class DeviceLogResponse:
    """The CHF's answer to CCS01 (three results: register, join timeout, joining) or CCS02 (one).

    ``results`` are DLMS action-result / data-access-result values, 0 = success."""

    long_invoke_id_and_priority: int
    results: tuple[int, ...]

    @property
    def success(self) -> bool:
        return all(result == DATA_ACCESS_SUCCESS for result in self.results)


DeviceLogPayload = AddDeviceToLog | RemoveDeviceFromLog | DeviceLogResponse


# -- encoding ------------------------------------------------------------------------------------

def _descriptor(kind: int, member: int) -> bytes:
    return (bytes([kind]) + uint_bytes(ZIGBEE_NETWORK_CONTROL_CLASS, 2, "class-id") + ZIGBEE_NETWORK_CONTROL_OBIS
            + uint_bytes(member, 1, "attribute/method id"))


def _request(invoke: int, specs: tuple[tuple[int, int], ...], data: tuple[dlms.DlmsData, ...]) -> bytes:
    out = bytes([dlms.ACCESS_REQUEST_TAG]) + uint_bytes(invoke, 4, "long-invoke-id-and-priority") + b"\x00"
    out += encode_length(len(specs)) + b"".join(_descriptor(kind, member) for kind, member in specs)
    return out + encode_length(len(data)) + b"".join(dlms.encode_data(item) for item in data)


def encode_add_device(value: AddDeviceToLog) -> bytes:
    if len(value.install_code) not in _INSTALL_CODE_LENGTHS:
        raise GbcsEncodeError(f"install code must be 6, 8, 12 or 16 octets without its CRC, "
                              f"not {len(value.install_code)}")
    if not 1 <= value.join_time_period <= 0xFFFF:
        raise GbcsEncodeError(f"JoinTimePeriod {value.join_time_period} does not fit join_timeout (1..65535)")
    registration = dlms.structure(
        dlms.octets(uint_bytes(value.device_id, _EUI_LENGTH, "device ID")),
        dlms.DlmsData(dlms.ENUM, value.key_type),
        dlms.octets(value.install_code),
        dlms.DlmsData(dlms.ENUM, value.registration_option),
    )
    return _request(value.long_invoke_id_and_priority, _CCS01_SPECS,
                    (registration, dlms.long_unsigned(value.join_time_period), dlms.DlmsData(dlms.BOOLEAN, True)))


def encode_remove_device(value: RemoveDeviceFromLog) -> bytes:
    return _request(value.long_invoke_id_and_priority, _CCS02_SPECS,
                    (dlms.octets(uint_bytes(value.device_id, _EUI_LENGTH, "device ID")),))


def encode_response(value: DeviceLogResponse) -> bytes:
    specs = _CCS01_SPECS if len(value.results) == len(_CCS01_SPECS) else _CCS02_SPECS
    if len(value.results) != len(specs):
        raise GbcsEncodeError(f"a Device Log response has 1 (CCS02) or 3 (CCS01) results, not {len(value.results)}")
    out = bytes([dlms.ACCESS_RESPONSE_TAG]) + uint_bytes(value.long_invoke_id_and_priority, 4,
                                                         "long-invoke-id-and-priority")
    out += b"\x00\x00"  # date-time empty; access-request-specification absent
    out += encode_length(len(specs)) + b"\x00" * len(specs)
    out += encode_length(len(specs))
    for (kind, _member), result in zip(specs, value.results, strict=True):
        out += bytes([kind]) + uint_bytes(result, 1, "result")
    return out


# -- decoding ------------------------------------------------------------------------------------

def _read_header(reader: Reader, tag: int, name: str) -> int:
    return dlms.read_header(reader, tag, name, "in CCS01/CCS02")


def _read_specs(reader: Reader, want: tuple[tuple[int, int], ...], use_case: str) -> None:
    at = reader.offset
    count = reader.length("access-request-specification count")
    if count != len(want):
        raise GbcsDecodeError("access-request-specification count", at,
                              f"{use_case} has {len(want)} specification(s), not {count}")
    for index, (kind, member) in enumerate(want):
        field = f"access-request-specification[{index}]"
        at = reader.offset
        found = reader.take(10, field)
        if found != _descriptor(kind, member):
            raise GbcsDecodeError(field, at, f"{found.hex().upper()} is not {_KINDS[kind]} {member} of class "
                                  f"{ZIGBEE_NETWORK_CONTROL_CLASS} 0-0:30.3.0.255 ({use_case})")


def _typed(item: dlms.DlmsData, tag: int, field: str, at: int, size: int | None = None) -> dlms.DlmsData:
    if item.tag != tag or (size is not None and not (isinstance(item.value, bytes) and len(item.value) == size)):
        what = f"{_TYPE_NAMES[tag]}" + (f"({size})" if size is not None else "")
        raise GbcsDecodeError(field, at, f"must be {what}, found type 0x{item.tag:02X}")
    return item


_TYPE_NAMES = {dlms.OCTET_STRING: "octet-string", dlms.ENUM: "enum", dlms.LONG_UNSIGNED: "long-unsigned",
               dlms.BOOLEAN: "boolean", dlms.STRUCTURE: "structure"}


def _list_of_data(reader: Reader, count: int) -> None:
    at = reader.offset
    if reader.length("access-request-list-of-data count") != count:
        raise GbcsDecodeError("access-request-list-of-data count", at, f"must equal the {count} specification(s)")


def decode_add_device(data: bytes, offset: int = 0) -> AddDeviceToLog:
    reader = Reader(data, offset)
    invoke = _read_header(reader, dlms.ACCESS_REQUEST_TAG, "ACCESS-Request")
    _read_specs(reader, _CCS01_SPECS, "CCS01")
    _list_of_data(reader, len(_CCS01_SPECS))
    at = reader.offset
    registration = dlms.read_data(reader, "register_device data")
    items = registration.value if registration.tag == dlms.STRUCTURE and isinstance(registration.value, tuple) else ()
    if len(items) != 4:
        raise GbcsDecodeError("register_device data", at,
                              "must be a structure of 4: device ID, key type, install code, enum")
    device = _typed(items[0], dlms.OCTET_STRING, "register_device device ID", at, _EUI_LENGTH).value
    key_type = _typed(items[1], dlms.ENUM, "register_device key type", at).value
    code = _typed(items[2], dlms.OCTET_STRING, "register_device install code", at).value
    option = _typed(items[3], dlms.ENUM, "register_device enum", at).value
    assert isinstance(device, bytes) and isinstance(code, bytes) and isinstance(key_type, int) and isinstance(option, int)
    if len(code) not in _INSTALL_CODE_LENGTHS:
        raise GbcsDecodeError("register_device install code", at, f"{len(code)} octets: an install code has 6, 8, 12 or 16")
    at = reader.offset
    timeout = _typed(dlms.read_data(reader, "join_timeout"), dlms.LONG_UNSIGNED, "join_timeout", at).value
    at = reader.offset
    joining = _typed(dlms.read_data(reader, "enable_disable_joining"), dlms.BOOLEAN, "enable_disable_joining", at).value
    if joining is not True:
        raise GbcsDecodeError("enable_disable_joining", at, "CCS01 enables joining (TRUE)")
    reader.done("CCS01 ACCESS-Request")
    assert isinstance(timeout, int)
    if timeout == 0:
        raise GbcsDecodeError("join_timeout", at, "JoinTimePeriod 0: DUIS requires at least 1")
    return AddDeviceToLog(invoke, int.from_bytes(device, "big"), code, timeout, key_type, option)


def decode_remove_device(data: bytes, offset: int = 0) -> RemoveDeviceFromLog:
    reader = Reader(data, offset)
    invoke = _read_header(reader, dlms.ACCESS_REQUEST_TAG, "ACCESS-Request")
    _read_specs(reader, _CCS02_SPECS, "CCS02")
    _list_of_data(reader, 1)
    at = reader.offset
    device = _typed(dlms.read_data(reader, "unregister_device data"), dlms.OCTET_STRING,
                    "unregister_device device ID", at, _EUI_LENGTH).value
    reader.done("CCS02 ACCESS-Request")
    assert isinstance(device, bytes)
    return RemoveDeviceFromLog(invoke, int.from_bytes(device, "big"))


def _decode_response(data: bytes, offset: int, specs: tuple[tuple[int, int], ...], use_case: str) -> DeviceLogResponse:
    reader = Reader(data, offset)
    invoke = _read_header(reader, dlms.ACCESS_RESPONSE_TAG, "ACCESS-Response")
    at = reader.offset
    if reader.uint(1, "access-request-specification presence") != 0:
        raise GbcsDecodeError("access-request-specification presence", at, "a GBCS ACCESS-Response does not repeat the request (00)")
    at = reader.offset
    if reader.length("access-response-list-of-data count") != len(specs):
        raise GbcsDecodeError("access-response-list-of-data count", at, f"{use_case} answers {len(specs)} item(s)")
    for index in range(len(specs)):
        at = reader.offset
        if reader.uint(1, f"access-response-list-of-data[{index}]") != dlms.NULL_DATA:
            raise GbcsDecodeError(f"access-response-list-of-data[{index}]", at, "SET and ACTION answer null-data (00)")
    at = reader.offset
    if reader.length("access-response-specification count") != len(specs):
        raise GbcsDecodeError("access-response-specification count", at, f"{use_case} answers {len(specs)} result(s)")
    results = []
    for index, (kind, _member) in enumerate(specs):
        field = f"access-response-specification[{index}]"
        at = reader.offset
        choice = reader.uint(1, field)
        if choice != kind:
            raise GbcsDecodeError(field, at, f"choice {choice}: the request's specification {index} was {_KINDS[kind]} ({kind})")
        results.append(reader.uint(1, f"{field} result"))
    reader.done(f"{use_case} ACCESS-Response")
    return DeviceLogResponse(invoke, tuple(results))


def decode_add_response(data: bytes, offset: int = 0) -> DeviceLogResponse:
    return _decode_response(data, offset, _CCS01_SPECS, "CCS01")


def decode_remove_response(data: bytes, offset: int = 0) -> DeviceLogResponse:
    return _decode_response(data, offset, _CCS02_SPECS, "CCS02")


def encode_device_log_payload(value: DeviceLogPayload) -> bytes:
    if isinstance(value, AddDeviceToLog):
        return encode_add_device(value)
    if isinstance(value, RemoveDeviceFromLog):
        return encode_remove_device(value)
    return encode_response(value)
