"""The GBZ (ZigBee, GSME side) payloads of the firmware flow, strict.

- GCS38 (0x0084): one GBZ component carrying a ZCL Read Attributes / Read Attributes Response.
- FDRA (0x00CF) and generic alerts (0x1000/0x1001, GBZ devices): a GBZ alert header (profile,
  component count, alert code, ZigBee UTC time) and the use case's own tail.

Numbers in the GBZ headers are big-endian; inside the ZCL frame they are little-endian (ZCL).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .wire import GbcsDecodeError, GbcsEncodeError, Reader, uint_bytes

GBZ_PROFILE_ID = 0x0109
"""ZigBee Smart Energy profile id, the first two bytes of every GBZ payload."""
CONTROL_LAST_COMPONENT = 0x01
CONTROL_ENCRYPTED = 0x02
CONTROL_FROM_DATE_TIME = 0x10
ZCL_READ_ATTRIBUTES = 0x00
ZCL_READ_ATTRIBUTES_RESPONSE = 0x01
ZCL_FRAME_SERVER_TO_CLIENT = 0x08
ZIGBEE_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
"""ZigBee UTCTime counts seconds from 2000-01-01 00:00:00 UTC."""

# ZCL data types the firmware flow reads: size in bytes (None: 1-byte length prefix).
ZCL_UINT8, ZCL_UINT16, ZCL_UINT32, ZCL_ENUM8, ZCL_OCTET_STRING = 0x20, 0x21, 0x23, 0x30, 0x41
_ZCL_TYPE_SIZES: dict[int, int | None] = {ZCL_UINT8: 1, ZCL_UINT16: 2, ZCL_UINT32: 4, ZCL_ENUM8: 1, ZCL_OCTET_STRING: None}


def zigbee_time(value: dt.datetime) -> int:
    if value.tzinfo is None:
        raise GbcsEncodeError(f"time {value!r} needs a time zone (GBCS times are UTC)")
    seconds = (value - ZIGBEE_EPOCH).total_seconds()
    if seconds != int(seconds) or not 0 <= seconds < 1 << 32:
        raise GbcsEncodeError(f"time {value.isoformat()} is not a whole second between 2000 and 2136")
    return int(seconds)


def from_zigbee_time(seconds: int) -> dt.datetime:
    return ZIGBEE_EPOCH + dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class AttributeRecord:
    """One Read Attributes Response record: a value on success, none on failure."""

    attribute_id: int
    status: int
    data_type: int | None = None
    value: bytes | int | None = None


@dataclass(frozen=True)
class ZclFrame:
    """A ZCL frame inside a GBZ component (foundation commands only)."""

    frame_control: int
    transaction_sequence_number: int
    command_id: int
    attribute_ids: tuple[int, ...] = ()
    """Read Attributes: the attributes asked for."""
    records: tuple[AttributeRecord, ...] = ()
    """Read Attributes Response: one record per attribute."""


@dataclass(frozen=True)
class GbzComponent:
    control: int
    cluster_id: int
    zcl: ZclFrame


@dataclass(frozen=True)
class GbzPayload:
    components: tuple[GbzComponent, ...]


def _encode_zcl(frame: ZclFrame) -> bytes:
    out = bytes([frame.frame_control, frame.transaction_sequence_number, frame.command_id])
    if frame.command_id == ZCL_READ_ATTRIBUTES:
        return out + b"".join(uint_bytes(a, 2, "attribute id")[::-1] for a in frame.attribute_ids)
    if frame.command_id == ZCL_READ_ATTRIBUTES_RESPONSE:
        for record in frame.records:
            out += uint_bytes(record.attribute_id, 2, "attribute id")[::-1] + bytes([record.status])
            if record.status != 0:
                continue
            if record.data_type not in _ZCL_TYPE_SIZES:
                raise GbcsEncodeError(f"ZCL data type {record.data_type!r} is not modelled")
            size = _ZCL_TYPE_SIZES[record.data_type]
            out += bytes([record.data_type])
            if size is None:
                if not isinstance(record.value, bytes) or len(record.value) > 254:
                    raise GbcsEncodeError(f"ZCL octet string value {record.value!r} must be bytes of at most 254")
                out += bytes([len(record.value)]) + record.value
            else:
                if not isinstance(record.value, int):
                    raise GbcsEncodeError(f"ZCL value {record.value!r} of type 0x{record.data_type:02X} must be an int")
                out += uint_bytes(record.value, size, "attribute value")[::-1]
        return out
    raise GbcsEncodeError(f"ZCL command 0x{frame.command_id:02X} is not modelled (Read Attributes 0x00/0x01 are)")


def encode_gbz_payload(value: GbzPayload) -> bytes:
    out = uint_bytes(GBZ_PROFILE_ID, 2, "profile id") + uint_bytes(len(value.components), 1, "component count")
    for component in value.components:
        if component.control & (CONTROL_ENCRYPTED | CONTROL_FROM_DATE_TIME):
            raise GbcsEncodeError(f"GBZ control 0x{component.control:02X}: encrypted or from-date-time components are not modelled")
        zcl = _encode_zcl(component.zcl)
        out += (bytes([component.control]) + uint_bytes(component.cluster_id, 2, "cluster id")
                + uint_bytes(len(zcl), 2, "GBZ command length") + zcl)
    return out


def _read_zcl(reader: Reader) -> ZclFrame:
    frame_control = reader.uint(1, "ZCL frame control")
    tsn = reader.uint(1, "ZCL transaction sequence number")
    at = reader.offset
    command = reader.uint(1, "ZCL command id")
    if frame_control & 0x03:
        raise GbcsDecodeError("ZCL frame control", at - 2, f"0x{frame_control:02X}: cluster-specific commands are not modelled")
    if command == ZCL_READ_ATTRIBUTES:
        if reader.remaining % 2:
            raise GbcsDecodeError("Read Attributes", reader.offset, "attribute ids are 2 bytes each")
        ids = tuple(int.from_bytes(reader.take(2, "attribute id"), "little") for _ in range(reader.remaining // 2))
        return ZclFrame(frame_control, tsn, command, attribute_ids=ids)
    if command == ZCL_READ_ATTRIBUTES_RESPONSE:
        records = []
        while reader.remaining:
            attribute = int.from_bytes(reader.take(2, "attribute id"), "little")
            status = reader.uint(1, "attribute status")
            if status != 0:
                records.append(AttributeRecord(attribute, status))
                continue
            type_at = reader.offset
            data_type = reader.uint(1, "attribute data type")
            if data_type not in _ZCL_TYPE_SIZES:
                raise GbcsDecodeError("attribute data type", type_at, f"ZCL type 0x{data_type:02X} is not modelled")
            size = _ZCL_TYPE_SIZES[data_type]
            value: bytes | int
            if size is None:
                value = reader.take(reader.uint(1, "octet string length"), "attribute value")
            else:
                value = int.from_bytes(reader.take(size, "attribute value"), "little")
            records.append(AttributeRecord(attribute, status, data_type, value))
        return ZclFrame(frame_control, tsn, command, records=tuple(records))
    raise GbcsDecodeError("ZCL command id", at, f"0x{command:02X} is not modelled (Read Attributes 0x00/0x01 are)")


def _read_profile(reader: Reader) -> int:
    reader.expect(uint_bytes(GBZ_PROFILE_ID, 2, "profile id"), "GBZ profile id")
    return reader.uint(1, "GBZ component count")


def decode_gbz_payload(data: bytes, offset: int = 0) -> GbzPayload:
    reader = Reader(data, offset)
    count = _read_profile(reader)
    components = []
    for index in range(count):
        at = reader.offset
        control = reader.uint(1, f"GBZ component {index + 1} control")
        if control & (CONTROL_ENCRYPTED | CONTROL_FROM_DATE_TIME):
            raise GbcsDecodeError(f"GBZ component {index + 1} control", at,
                                  f"0x{control:02X}: encrypted or from-date-time components are not modelled")
        cluster = reader.uint(2, f"GBZ component {index + 1} cluster id")
        length = reader.uint(2, f"GBZ component {index + 1} command length")
        zcl_reader = reader.sub(length, f"GBZ component {index + 1} ZCL frame")
        zcl = _read_zcl(zcl_reader)
        zcl_reader.done("ZCL frame")
        components.append(GbzComponent(control, cluster, zcl))
    reader.done("GBZ payload")
    return GbzPayload(tuple(components))


# -- alerts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GbzAlert:
    """A GBZ alert: alert code, time, and for the FDRA the calculated image hash.

    ``components`` is the GBZ component count as sent (0 for a generic alert, 1 for the FDRA).
    """

    alert_code: int
    time: dt.datetime
    components: int = 0
    manufacturer_image_hash: bytes | None = None


_DLMS_OCTET_STRING = 0x09
_HASH_LENGTH = 32


def encode_gbz_alert(value: GbzAlert) -> bytes:
    out = (uint_bytes(GBZ_PROFILE_ID, 2, "profile id") + uint_bytes(value.components, 1, "component count")
           + uint_bytes(value.alert_code, 2, "alert code") + uint_bytes(zigbee_time(value.time), 4, "time"))
    if value.manufacturer_image_hash is not None:
        if len(value.manufacturer_image_hash) != _HASH_LENGTH:
            raise GbcsEncodeError(f"manufacturer image hash must be {_HASH_LENGTH} bytes")
        out += bytes([_DLMS_OCTET_STRING, _HASH_LENGTH]) + value.manufacturer_image_hash
    return out


def decode_gbz_alert(data: bytes, offset: int = 0, *, with_hash: bool) -> GbzAlert:
    """``with_hash``: the FDRA's tail, a DLMS-style octet string (09 20 ‖ 32 bytes)."""
    reader = Reader(data, offset)
    components = _read_profile(reader)
    code = reader.uint(2, "alert code")
    time = from_zigbee_time(reader.uint(4, "alert time"))
    image_hash = None
    if with_hash:
        reader.expect(bytes([_DLMS_OCTET_STRING, _HASH_LENGTH]), "calculated manufacturer image hash header")
        image_hash = reader.take(_HASH_LENGTH, "calculated manufacturer image hash")
    reader.done("GBZ alert")
    return GbzAlert(code, time, components, image_hash)
