"""CS14 (message code 0x0018, alert 0x8F12 "CHF Device Log Changed"): the CHF's Device Log, strict A-XDR.

The CHF sends it after CCS01/CCS02 changed its Device Log, so that DCC keeps a copy of the log
(the copy SR 8.12.1 restores into a replacement hub with CCS03). A DLMS DATA-NOTIFICATION laid
out byte for byte as DCC's RTDS 4.5.0 vector ``NA_CS14``::

    0F <long-invoke-id-and-priority 4> 00             DATA-NOTIFICATION, no date-time
    02 03                                             notification-body: structure of 3
       12 8F12                                        alert code (long-unsigned)
       09 0C <DLMS date-time>                         when the alert was raised
       02 03                                          the Device Log: structure of 3
          09 0C <DLMS date-time>                      when the log took this state
          09 08 <extended PAN ID>                     the HAN the log belongs to
          01 <n>                                      array of n entries (at most 16)
             02 02  09 08 <Device ID>                 each: the device's EUI-64 and
                    09 10 <Device Security Details>   16 octets of its security details

The log is the same value CCS07 (SR 8.9 Read Device Log, ReadSecurityDetails) reads and CCS03
writes back (without its time stamp): DCC's MMC schema names the entries' fields ``DeviceID`` and
``DeviceSecurityDetails`` (``CHFConnectedDeviceLogEntry``, at most 16). Neither DCC's gbcs-parser
nor the MMC names the log's date-time and 8-octet field; reading them as the time of the log and
the extended PAN ID is the project's (docs/gbcs.md "CS14"). Any other layout is a
:class:`GbcsDecodeError` naming the field and its offset.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import dlms
from .wire import GbcsDecodeError, GbcsEncodeError, Reader, uint_bytes

CHF_DEVICE_LOG_CHANGED = 0x8F12
MAX_ENTRIES = 16
"""The MMC's bound on CHF Device Log entries (``CHFConnectedDeviceLogType``)."""
SECURITY_DETAILS_LENGTH = 16
_EUI_LENGTH = 8
_DATE_TIME_LENGTH = 12


@dataclass(frozen=True)
class DeviceLogRecord:
    """One entry of the CHF Device Log as CS14 reports it."""

    device_id: int
    security_details: bytes
    """16 octets (the emulator writes the TC link key the device's install code gives: TEST ONLY)."""


@dataclass(frozen=True)
class DeviceLogChangedAlert:
    """CS14: alert 0x8F12 with the CHF Device Log as it is now."""

    long_invoke_id_and_priority: int
    date_time: dt.datetime
    """When the alert was raised."""
    log_date_time: dt.datetime
    """When the Device Log took the state reported."""
    extended_pan_id: int
    entries: tuple[DeviceLogRecord, ...]
    alert_code: int = CHF_DEVICE_LOG_CHANGED


def encode_device_log_alert(value: DeviceLogChangedAlert) -> bytes:
    if len(value.entries) > MAX_ENTRIES:
        raise GbcsEncodeError(f"a CHF Device Log holds at most {MAX_ENTRIES} entries, not {len(value.entries)}")
    for entry in value.entries:
        if len(entry.security_details) != SECURITY_DETAILS_LENGTH:
            raise GbcsEncodeError(f"Device Security Details of {entry.device_id:016X} must be "
                                  f"{SECURITY_DETAILS_LENGTH} octets, not {len(entry.security_details)}")
    entries = tuple(dlms.structure(dlms.octets(uint_bytes(e.device_id, _EUI_LENGTH, "Device ID")),
                                   dlms.octets(e.security_details)) for e in value.entries)
    log = dlms.structure(dlms.octets(dlms.encode_date_time(value.log_date_time)),
                         dlms.octets(uint_bytes(value.extended_pan_id, _EUI_LENGTH, "extended PAN ID")),
                         dlms.array(*entries))
    body = dlms.structure(dlms.long_unsigned(value.alert_code), dlms.octets(dlms.encode_date_time(value.date_time)),
                          log)
    return dlms.encode_data_notification(dlms.DataNotification(value.long_invoke_id_and_priority, body))


def _count(reader: Reader, tag: int, want: int | None, field: str) -> int:
    at = reader.offset
    found = reader.uint(1, f"{field} type")
    if found != tag:
        raise GbcsDecodeError(f"{field} type", at, f"0x{found:02X}: {field} is a DLMS "
                              f"{'array' if tag == dlms.ARRAY else 'structure'} (0x{tag:02X})")
    at = reader.offset
    count = reader.length(f"{field} count")
    if want is not None and count != want:
        raise GbcsDecodeError(f"{field} count", at, f"{count}: {field} has {want} elements")
    return count


def _octets(reader: Reader, size: int | None, field: str) -> bytes:
    at = reader.offset
    found = reader.uint(1, f"{field} type")
    if found != dlms.OCTET_STRING:
        raise GbcsDecodeError(f"{field} type", at, f"0x{found:02X}: {field} is an octet-string (0x09)")
    at = reader.offset
    value = reader.octet_string(field)
    if size is not None and len(value) != size:
        raise GbcsDecodeError(field, at, f"{len(value)} octets: {field} has {size}")
    return value


def decode_device_log_alert(data: bytes, offset: int = 0) -> DeviceLogChangedAlert:
    reader = Reader(data, offset)
    invoke = dlms.read_header(reader, dlms.DATA_NOTIFICATION_TAG, "DATA-NOTIFICATION", "in CS14")
    _count(reader, dlms.STRUCTURE, 3, "notification-body")
    at = reader.offset
    reader.expect(bytes([dlms.LONG_UNSIGNED]), "alert code type")
    code = reader.uint(2, "alert code")
    if code != CHF_DEVICE_LOG_CHANGED:
        raise GbcsDecodeError("alert code", at + 1, f"0x{code:04X}: CS14 carries 0x8F12 (CHF Device Log Changed)")
    at = reader.offset
    raised = dlms.decode_date_time(_octets(reader, _DATE_TIME_LENGTH, "alert date-time"), at + 2, "alert date-time")
    _count(reader, dlms.STRUCTURE, 3, "Device Log")
    at = reader.offset
    logged = dlms.decode_date_time(_octets(reader, _DATE_TIME_LENGTH, "Device Log date-time"), at + 2,
                                   "Device Log date-time")
    pan = int.from_bytes(_octets(reader, _EUI_LENGTH, "extended PAN ID"), "big")
    at = reader.offset
    count = _count(reader, dlms.ARRAY, None, "Device Log entries")
    if count > MAX_ENTRIES:
        raise GbcsDecodeError("Device Log entries count", at + 1, f"{count}: a CHF Device Log holds at most {MAX_ENTRIES}")
    entries = []
    for index in range(count):
        field = f"Device Log entry[{index}]"
        _count(reader, dlms.STRUCTURE, 2, field)
        device = int.from_bytes(_octets(reader, _EUI_LENGTH, f"{field} Device ID"), "big")
        details = _octets(reader, SECURITY_DETAILS_LENGTH, f"{field} Device Security Details")
        entries.append(DeviceLogRecord(device, details))
    reader.done("CS14 DATA-NOTIFICATION")
    return DeviceLogChangedAlert(invoke, raised, logged, pan, tuple(entries), code)


__all__ = ["CHF_DEVICE_LOG_CHANGED", "DeviceLogChangedAlert", "DeviceLogRecord", "decode_device_log_alert",
           "encode_device_log_alert"]
