"""CS14 (message code 0x0018, alert 0x8F12 "CHF Device Log Changed"): the CHF's Device Log, strict A-XDR.

The CHF sends it whenever a device is added to or removed from its Device Log and whenever a
device's hashed TC link key changes there: a backup of the log, which DCC keeps (SR 8.12.1
restores it into a replacement hub with CCS03). A DLMS DATA-NOTIFICATION laid out byte for byte
as DCC's RTDS 4.5.0 vector ``NA_CS14``::

    0F <long-invoke-id-and-priority 4> 00             DATA-NOTIFICATION, no date-time
    02 03                                             notification-body: structure of 3
       12 8F12                                        alert code (long-unsigned)
       09 0C <DLMS date-time>                         when the alert was raised
       02 03                                          the Device Log: structure of 3
          09 0C <DLMS date-time>                      when the backup was taken
          09 08 <extended PAN ID>                     the HAN's (what CCS03 forms again)
          01 <n>                                      array of n entries (at most 16)
             02 02  09 08 <ieee_address>              each: the device's EUI-64 and
                    09 00|10 <hashed_TC_link_key>     the hash of its TC link key, empty
                                                      until it has established one

The field names follow DCC's GBCS mapping table (duis-templates: CS14, CCS01, CCS03, CCS07) and
its MMC schema (``CHFConnectedDeviceLogEntry{DeviceID, DeviceSecurityDetails}``, at most 16);
the backup date-time is named nowhere we found (docs/gbcs.md "CS14"). Any other layout is a
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
HASHED_TC_LINK_KEY_LENGTH = 16
_EUI_LENGTH = 8
_DATE_TIME_LENGTH = 12


@dataclass(frozen=True)
class DeviceLogRecord:
    """One entry of the CHF Device Log as CS14 reports it."""

    device_id: int
    hashed_tc_link_key: bytes = b""
    """16 octets, or empty while the device has established no TC link key (GBCS CS14)."""


@dataclass(frozen=True)
class DeviceLogChangedAlert:
    """CS14: alert 0x8F12 with the CHF Device Log as it is now."""

    long_invoke_id_and_priority: int
    date_time: dt.datetime
    """When the alert was raised."""
    backup_date_time: dt.datetime
    """When the backup of the Device Log was taken."""
    extended_pan_id: int
    entries: tuple[DeviceLogRecord, ...]
    alert_code: int = CHF_DEVICE_LOG_CHANGED


def encode_device_log_alert(value: DeviceLogChangedAlert) -> bytes:
    if len(value.entries) > MAX_ENTRIES:
        raise GbcsEncodeError(f"a CHF Device Log holds at most {MAX_ENTRIES} entries, not {len(value.entries)}")
    for entry in value.entries:
        if len(entry.hashed_tc_link_key) not in (0, HASHED_TC_LINK_KEY_LENGTH):
            raise GbcsEncodeError(f"hashed_TC_link_key of {entry.device_id:016X} must be empty or "
                                  f"{HASHED_TC_LINK_KEY_LENGTH} octets, not {len(entry.hashed_tc_link_key)}")
    entries = tuple(dlms.structure(dlms.octets(uint_bytes(e.device_id, _EUI_LENGTH, "ieee_address")),
                                   dlms.octets(e.hashed_tc_link_key)) for e in value.entries)
    log = dlms.structure(dlms.octets(dlms.encode_date_time(value.backup_date_time)),
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


def _octets(reader: Reader, size: int | tuple[int, ...], field: str) -> bytes:
    at = reader.offset
    found = reader.uint(1, f"{field} type")
    if found != dlms.OCTET_STRING:
        raise GbcsDecodeError(f"{field} type", at, f"0x{found:02X}: {field} is an octet-string (0x09)")
    at = reader.offset
    value = reader.octet_string(field)
    sizes = size if isinstance(size, tuple) else (size,)
    if len(value) not in sizes:
        raise GbcsDecodeError(field, at, f"{len(value)} octets: {field} has {' or '.join(map(str, sizes))}")
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
    backed_up = dlms.decode_date_time(_octets(reader, _DATE_TIME_LENGTH, "backup date-time"), at + 2,
                                      "backup date-time")
    pan = int.from_bytes(_octets(reader, _EUI_LENGTH, "extended PAN ID"), "big")
    at = reader.offset
    count = _count(reader, dlms.ARRAY, None, "Device Log entries")
    if count > MAX_ENTRIES:
        raise GbcsDecodeError("Device Log entries count", at + 1, f"{count}: a CHF Device Log holds at most {MAX_ENTRIES}")
    entries = []
    for index in range(count):
        field = f"Device Log entry[{index}]"
        _count(reader, dlms.STRUCTURE, 2, field)
        device = int.from_bytes(_octets(reader, _EUI_LENGTH, f"{field} ieee_address"), "big")
        hashed = _octets(reader, (0, HASHED_TC_LINK_KEY_LENGTH), f"{field} hashed_TC_link_key")
        entries.append(DeviceLogRecord(device, hashed))
    reader.done("CS14 DATA-NOTIFICATION")
    return DeviceLogChangedAlert(invoke, raised, backed_up, pan, tuple(entries), code)


__all__ = ["CHF_DEVICE_LOG_CHANGED", "DeviceLogChangedAlert", "DeviceLogRecord", "decode_device_log_alert",
           "encode_device_log_alert"]
