"""Strict codec for ZCL frames of the OTA Upgrade cluster (0x0019).

Turns the records of :mod:`emulator.ota.frames` into the bytes of a ZCL frame (header and payload)
and back. Two promises drive the code:

* **Strict.** Anything a conforming peer would not send is a :class:`FrameError` naming the field
  and the byte offset: a short or over-long frame, a field-control bit or status whose fields are
  missing, a reserved frame type or frame-control bit, an unknown command, a value that does not
  fit its field. zigpy tolerates several of these; an emulator used to test devices must not,
  otherwise a faulty frame passes as a good one.
* **Fast.** The block exchange is the hot path of a fleet run, so each command has a hand-written
  encoder and decoder built on precompiled :class:`struct.Struct` objects and dispatch tables. The
  common shape is tried first; only when it does not fit does a slower path work out exactly what
  is wrong.

Decoded numbers are plain ``int`` (``Status`` is an ``IntEnum``, so they compare equal to its
members). Wire order is the order of the NamedTuple fields in every command.
"""

from __future__ import annotations

import struct
from struct import Struct
from typing import Any, Callable, Final, NamedTuple, Union

from emulator.ota.frames import (
    CommandId,
    DefaultResponse,
    ImageBlockRequest,
    ImageBlockResponse,
    ImageNotify,
    ImagePageRequest,
    OtaCommand,
    QueryDeviceSpecificFileRequest,
    QueryDeviceSpecificFileResponse,
    QueryNextImageRequest,
    QueryNextImageResponse,
    Status,
    UpgradeEndRequest,
    UpgradeEndResponse,
    ZclFrame,
    ZclHeader,
)
from emulator.ota.frame_error import FrameError

__all__ = [
    "DEFAULT_RESPONSE_COMMAND_ID",
    "DIRECTION_CLIENT_TO_SERVER",
    "DIRECTION_SERVER_TO_CLIENT",
    "FRAME_TYPE_CLUSTER",
    "FRAME_TYPE_GLOBAL",
    "IMAGE_BLOCK_RESPONSE_STATUSES",
    "QUERY_RESPONSE_STATUSES",
    "UPGRADE_END_REQUEST_STATUSES",
    "FrameError",
    "decode",
    "decode_payload",
    "encode",
    "encode_payload",
]

Command = Union[OtaCommand, DefaultResponse]

FRAME_TYPE_GLOBAL: Final = 0
FRAME_TYPE_CLUSTER: Final = 1
DIRECTION_CLIENT_TO_SERVER: Final = 0
DIRECTION_SERVER_TO_CLIENT: Final = 1
DEFAULT_RESPONSE_COMMAND_ID: Final = 0x0B

# Frame control bits (ZCL 2.4.1.1).
_FC_FRAME_TYPE: Final = 0x03
_FC_MANUFACTURER_SPECIFIC: Final = 0x04
_FC_DIRECTION: Final = 0x08
_FC_DISABLE_DEFAULT_RESPONSE: Final = 0x10
_FC_RESERVED: Final = 0xE0

# Statuses each command may carry (ZCL 11.13). Plain ints: set membership on the hot path.
QUERY_RESPONSE_STATUSES: Final = frozenset(
    {int(Status.SUCCESS), int(Status.NO_IMAGE_AVAILABLE), int(Status.NOT_AUTHORIZED)}
)
IMAGE_BLOCK_RESPONSE_STATUSES: Final = frozenset(
    {int(Status.SUCCESS), int(Status.WAIT_FOR_DATA), int(Status.ABORT)}
)
UPGRADE_END_REQUEST_STATUSES: Final = frozenset(
    {
        int(Status.SUCCESS),
        int(Status.INVALID_IMAGE),
        int(Status.REQUIRE_MORE_IMAGE),
        int(Status.ABORT),
    }
)
_SUCCESS: Final = 0x00
_WAIT_FOR_DATA: Final = 0x97

# Field-control bits of the requests.
_QUERY_HARDWARE_VERSION: Final = 0x01
_BLOCK_NODE_ADDRESS: Final = 0x01
_BLOCK_MINIMUM_PERIOD: Final = 0x02
_PAGE_NODE_ADDRESS: Final = 0x01


# --------------------------------------------------------------------------------------------
# Layout descriptions, used only to explain errors (the fast paths use the structs below).
# A layout is a tuple of (field name, size in bytes); _LV marks the length-prefixed block data.

_LV: Final = -1
_Layout = tuple[tuple[str, int], ...]
_MAX_BY_SIZE: Final = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF, 8: 0xFFFFFFFFFFFFFFFF}
_BYTES_LIKE: Final = (bytes, bytearray, memoryview)

# A command's fields as the caller built them. A NamedTuple does not check its annotations, so an
# encoder reads the fields untyped and checks them itself (a FrameError naming the field): typed as
# the record, a compiled build (mypyc, docs/fleet.md) would check them first and raise TypeError.
_Fields = tuple[Any, ...]

# Builds a NamedTuple from a tuple of the right length without the keyword-handling __new__:
# roughly twice as fast, and every caller below passes exactly the record's fields.
_new: Final = tuple.__new__


def _truncated(name: str, layout: _Layout, pos: int, n: int) -> FrameError:
    """Error for a frame that ends inside ``layout`` (which starts at ``pos``)."""
    off = pos
    for field, size in layout:
        if size == _LV:
            if off >= n:
                return FrameError(f"{name} truncated: data size missing", off, "data_size")
            return FrameError(f"{name} truncated: {field} shorter than its data size", off + 1, field)
        if off + size > n:
            return FrameError(
                f"{name} truncated: {field} needs {size} byte(s), {max(n - off, 0)} left", off, field
            )
        off += size
    return FrameError(f"{name} truncated", n, None)


def _trailing(name: str, end: int, n: int) -> FrameError:
    return FrameError(f"{name} has {n - end} trailing byte(s) after its last field", end, None)


def _length_error(name: str, layout: _Layout, pos: int, end: int, n: int) -> FrameError:
    return _truncated(name, layout, pos, n) if n < end else _trailing(name, end, n)


def _bad_value(name: str, command: Any, layout: _Layout, base: int) -> FrameError:
    """Explain why ``command`` could not be packed with ``layout`` (first bad field wins)."""
    off = base
    for field, size in layout:
        value = getattr(command, field)
        if size == _LV:
            if not isinstance(value, _BYTES_LIKE):
                return FrameError(
                    f"{name}.{field} must be bytes, not {type(value).__name__}", off + 1, field
                )
            length = memoryview(value).nbytes
            if length > 0xFF:
                return FrameError(
                    f"{name}.{field} is {length} bytes; a block carries at most 255", off + 1, field
                )
            off += 1 + length
            continue
        if value is None:
            return FrameError(f"{name}.{field} is required here but is None", off, field)
        if not isinstance(value, int):
            return FrameError(
                f"{name}.{field} must be an integer, not {type(value).__name__}", off, field
            )
        limit = _MAX_BY_SIZE[size]
        if not 0 <= value <= limit:
            return FrameError(
                f"{name}.{field} = {value} does not fit {8 * size} bits (0..{limit:#x})", off, field
            )
        off += size
    return FrameError(f"{name} could not be encoded", base, None)


def _must_be_absent(name: str, command: Any, fields: tuple[str, ...], off: int, why: str) -> None:
    for field in fields:
        if getattr(command, field) is not None:
            raise FrameError(f"{name}.{field} must be None {why}", off, field)


def _layout_size(layout: _Layout) -> int:
    return sum(size for _, size in layout)


def _as_bytes(value: Any) -> bytes | None:
    """Block data as ``bytes`` (copying other buffers), or None when it is not bytes-like."""
    if type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return None


# --------------------------------------------------------------------------------------------
# 0x00 Image Notify (server -> client)

_NOTIFY_LAYOUT: Final[_Layout] = (
    ("payload_type", 1),
    ("query_jitter", 1),
    ("manufacturer_code", 2),
    ("image_type", 2),
    ("file_version", 4),
)
_NOTIFY_STRUCTS: Final = (Struct("<BB"), Struct("<BBH"), Struct("<BBHH"), Struct("<BBHHI"))
_NOTIFY_PADS: Final = ((None, None, None), (None, None), (None,), ())
_NOTIFY_FIELDS: Final = ImageNotify._fields


def _enc_image_notify(c: _Fields, base: int) -> bytes:
    pt = c[0]
    if pt not in (0, 1, 2, 3):
        raise FrameError(
            f"ImageNotify.payload_type {pt!r} is not 0..3 (jitter [, mfr [, type [, version]]])",
            base,
            "payload_type",
        )
    count = int(pt) + 2
    layout = _NOTIFY_LAYOUT[:count]
    _must_be_absent(
        "ImageNotify",
        c,
        _NOTIFY_FIELDS[count:],
        base + _layout_size(layout),
        f"with payload_type {int(pt)}",
    )
    try:
        return _NOTIFY_STRUCTS[count - 2].pack(*c[:count])
    except struct.error:
        raise _bad_value("ImageNotify", c, layout, base) from None


def _dec_image_notify(data: bytes, pos: int, n: int) -> ImageNotify:
    if n <= pos:
        raise _truncated("ImageNotify", _NOTIFY_LAYOUT, pos, n)
    pt = data[pos]
    if pt > 3:
        raise FrameError(f"ImageNotify payload type {pt:#04x} is reserved (0..3)", pos, "payload_type")
    st = _NOTIFY_STRUCTS[pt]
    end = pos + st.size
    if n != end:
        raise _length_error("ImageNotify", _NOTIFY_LAYOUT[: pt + 2], pos, end, n)
    return _new(ImageNotify, st.unpack_from(data, pos) + _NOTIFY_PADS[pt])


# --------------------------------------------------------------------------------------------
# 0x01 Query Next Image Request (client -> server)

_QNI_REQ_LAYOUT: Final[_Layout] = (
    ("field_control", 1),
    ("manufacturer_code", 2),
    ("image_type", 2),
    ("current_file_version", 4),
)
_QNI_REQ_HW_LAYOUT: Final[_Layout] = _QNI_REQ_LAYOUT + (("hardware_version", 2),)
_QNI_REQ: Final = Struct("<BHHI")
_QNI_REQ_HW: Final = Struct("<BHHIH")


def _enc_query_next_image_request(c: _Fields, base: int) -> bytes:
    fc = c[0]
    try:
        if fc == 0 and c[4] is None:
            return _QNI_REQ.pack(*c[:4])
        if fc == _QUERY_HARDWARE_VERSION and c[4] is not None:
            return _QNI_REQ_HW.pack(*c)
    except struct.error:
        pass
    _field_control_check("QueryNextImageRequest", fc, 0xFE, base)
    if not fc & _QUERY_HARDWARE_VERSION:
        _must_be_absent(
            "QueryNextImageRequest", c, ("hardware_version",), base + 9, "when field_control bit 0 is clear"
        )
        layout = _QNI_REQ_LAYOUT
    else:
        layout = _QNI_REQ_HW_LAYOUT
    raise _bad_value("QueryNextImageRequest", c, layout, base)


def _field_control_check(name: str, fc: Any, reserved: int, off: int) -> None:
    if not isinstance(fc, int) or not 0 <= fc <= 0xFF:
        raise FrameError(f"{name}.field_control {fc!r} is not a u8 bitmap", off, "field_control")
    if fc & reserved:
        raise FrameError(
            f"{name}.field_control {fc:#04x} sets reserved bits {fc & reserved:#04x}", off, "field_control"
        )


def _dec_query_next_image_request(data: bytes, pos: int, n: int) -> QueryNextImageRequest:
    if n <= pos:
        raise _truncated("QueryNextImageRequest", _QNI_REQ_LAYOUT, pos, n)
    fc = data[pos]
    if fc == 0:
        end = pos + 9
        if n != end:
            raise _length_error("QueryNextImageRequest", _QNI_REQ_LAYOUT, pos, end, n)
        return _new(QueryNextImageRequest, _QNI_REQ.unpack_from(data, pos) + (None,))
    if fc == _QUERY_HARDWARE_VERSION:
        end = pos + 11
        if n != end:
            raise _length_error("QueryNextImageRequest", _QNI_REQ_HW_LAYOUT, pos, end, n)
        return _new(QueryNextImageRequest, _QNI_REQ_HW.unpack_from(data, pos))
    raise FrameError(
        f"QueryNextImageRequest.field_control {fc:#04x} sets reserved bits {fc & 0xFE:#04x}",
        pos,
        "field_control",
    )


# --------------------------------------------------------------------------------------------
# 0x02 Query Next Image Response / 0x09 Query Device Specific File Response (server -> client)

_QUERY_RSP_LAYOUT: Final[_Layout] = (
    ("status", 1),
    ("manufacturer_code", 2),
    ("image_type", 2),
    ("file_version", 4),
    ("image_size", 4),
)
_QUERY_RSP: Final = Struct("<BHHII")
_QUERY_RSP_TAIL: Final = ("manufacturer_code", "image_type", "file_version", "image_size")
_FOUR_NONES: Final = (None, None, None, None)


def _make_query_response_codec(
    cls: type,
) -> tuple[Callable[[Any, int], bytes], Callable[[bytes, int, int], Any]]:
    """Both query responses share one layout: status, then four fields on SUCCESS only."""
    name = cls.__name__

    def encode_response(c: _Fields, base: int) -> bytes:
        status = c[0]
        if status == _SUCCESS:
            try:
                return _QUERY_RSP.pack(*c)
            except struct.error:
                raise _bad_value(name, c, _QUERY_RSP_LAYOUT, base) from None
        if status in QUERY_RESPONSE_STATUSES:
            _must_be_absent(name, c, _QUERY_RSP_TAIL, base + 1, f"with status {int(status):#04x}")
            return bytes((status,))
        raise _bad_status(name, status, QUERY_RESPONSE_STATUSES, base)

    def decode_response(data: bytes, pos: int, n: int) -> Any:
        if n <= pos:
            raise _truncated(name, _QUERY_RSP_LAYOUT, pos, n)
        status = data[pos]
        if status == _SUCCESS:
            end = pos + 13
            if n != end:
                raise _length_error(name, _QUERY_RSP_LAYOUT, pos, end, n)
            return _new(cls, _QUERY_RSP.unpack_from(data, pos))
        if status not in QUERY_RESPONSE_STATUSES:
            raise _bad_status(name, status, QUERY_RESPONSE_STATUSES, pos)
        if n != pos + 1:
            raise _trailing(f"{name} with status {status:#04x}", pos + 1, n)
        return _new(cls, (status,) + _FOUR_NONES)

    return encode_response, decode_response


def _bad_status(name: str, status: Any, allowed: frozenset[int], off: int) -> FrameError:
    names = ", ".join(Status(s).name for s in sorted(allowed))
    shown = f"{status:#04x}" if isinstance(status, int) else repr(status)
    return FrameError(f"{name}.status {shown} is not one of {names}", off, "status")


_enc_query_next_image_response, _dec_query_next_image_response = _make_query_response_codec(
    QueryNextImageResponse
)
_enc_query_specific_file_response, _dec_query_specific_file_response = _make_query_response_codec(
    QueryDeviceSpecificFileResponse
)


# --------------------------------------------------------------------------------------------
# 0x03 Image Block Request (client -> server): the hot path.

_BLOCK_REQ_LAYOUT: Final[_Layout] = (
    ("field_control", 1),
    ("manufacturer_code", 2),
    ("image_type", 2),
    ("file_version", 4),
    ("file_offset", 4),
    ("maximum_data_size", 1),
)
_BLOCK_REQ: Final = Struct("<BHHIIB")
_U16: Final = Struct("<H")
_U64: Final = Struct("<Q")
_TWO_NONES: Final = (None, None)


def _enc_image_block_request(c: _Fields, base: int) -> bytes:
    fc = c[0]
    if fc == 0 and c[6] is None and c[7] is None:
        try:
            return _BLOCK_REQ.pack(*c[:6])
        except struct.error:
            raise _bad_value("ImageBlockRequest", c, _BLOCK_REQ_LAYOUT, base) from None
    _field_control_check("ImageBlockRequest", fc, 0xFC, base)
    layout = _BLOCK_REQ_LAYOUT
    off = base + 14
    for bit, field, size in (
        (_BLOCK_NODE_ADDRESS, "request_node_address", 8),
        (_BLOCK_MINIMUM_PERIOD, "minimum_block_period", 2),
    ):
        if fc & bit:
            layout += ((field, size),)
            off += size
        else:
            _must_be_absent(
                "ImageBlockRequest", c, (field,), off, f"when field_control bit {bit >> 1} is clear"
            )
    try:
        out = _BLOCK_REQ.pack(*c[:6])
        if fc & _BLOCK_NODE_ADDRESS:
            out += _U64.pack(c[6])
        if fc & _BLOCK_MINIMUM_PERIOD:
            out += _U16.pack(c[7])
    except struct.error:
        raise _bad_value("ImageBlockRequest", c, layout, base) from None
    return out


def _dec_image_block_request(data: bytes, pos: int, n: int) -> ImageBlockRequest:
    end = pos + 14
    if n == end:
        values = _BLOCK_REQ.unpack_from(data, pos)
        if values[0] == 0:
            return _new(ImageBlockRequest, values + _TWO_NONES)
    elif n < end:
        raise _truncated("ImageBlockRequest", _BLOCK_REQ_LAYOUT, pos, n)
    else:
        values = _BLOCK_REQ.unpack_from(data, pos)
    fc = values[0]
    if fc & 0xFC:
        raise FrameError(
            f"ImageBlockRequest.field_control {fc:#04x} sets reserved bits {fc & 0xFC:#04x}",
            pos,
            "field_control",
        )
    layout = _BLOCK_REQ_LAYOUT
    address = period = None
    if fc & _BLOCK_NODE_ADDRESS:
        layout += (("request_node_address", 8),)
        if n < end + 8:
            raise _truncated("ImageBlockRequest", layout, pos, n)
        address = _U64.unpack_from(data, end)[0]
        end += 8
    if fc & _BLOCK_MINIMUM_PERIOD:
        layout += (("minimum_block_period", 2),)
        if n < end + 2:
            raise _truncated("ImageBlockRequest", layout, pos, n)
        period = _U16.unpack_from(data, end)[0]
        end += 2
    if n != end:
        raise _trailing("ImageBlockRequest", end, n)
    return _new(ImageBlockRequest, values + (address, period))


# --------------------------------------------------------------------------------------------
# 0x04 Image Page Request (client -> server)

_PAGE_REQ_LAYOUT: Final[_Layout] = _BLOCK_REQ_LAYOUT + (("page_size", 2), ("response_spacing", 2))
_PAGE_REQ_ADDR_LAYOUT: Final[_Layout] = _PAGE_REQ_LAYOUT + (("request_node_address", 8),)
_PAGE_REQ: Final = Struct("<BHHIIBHH")
_PAGE_REQ_ADDR: Final = Struct("<BHHIIBHHQ")


def _enc_image_page_request(c: _Fields, base: int) -> bytes:
    fc = c[0]
    try:
        if fc == 0 and c[8] is None:
            return _PAGE_REQ.pack(*c[:8])
        if fc == _PAGE_NODE_ADDRESS and c[8] is not None:
            return _PAGE_REQ_ADDR.pack(*c)
    except struct.error:
        pass
    _field_control_check("ImagePageRequest", fc, 0xFE, base)
    if fc & _PAGE_NODE_ADDRESS:
        raise _bad_value("ImagePageRequest", c, _PAGE_REQ_ADDR_LAYOUT, base)
    _must_be_absent(
        "ImagePageRequest", c, ("request_node_address",), base + 18, "when field_control bit 0 is clear"
    )
    raise _bad_value("ImagePageRequest", c, _PAGE_REQ_LAYOUT, base)


def _dec_image_page_request(data: bytes, pos: int, n: int) -> ImagePageRequest:
    if n <= pos:
        raise _truncated("ImagePageRequest", _PAGE_REQ_LAYOUT, pos, n)
    fc = data[pos]
    if fc == 0:
        end = pos + 18
        if n != end:
            raise _length_error("ImagePageRequest", _PAGE_REQ_LAYOUT, pos, end, n)
        return _new(ImagePageRequest, _PAGE_REQ.unpack_from(data, pos) + (None,))
    if fc == _PAGE_NODE_ADDRESS:
        end = pos + 26
        if n != end:
            raise _length_error("ImagePageRequest", _PAGE_REQ_ADDR_LAYOUT, pos, end, n)
        return _new(ImagePageRequest, _PAGE_REQ_ADDR.unpack_from(data, pos))
    raise FrameError(
        f"ImagePageRequest.field_control {fc:#04x} sets reserved bits {fc & 0xFE:#04x}",
        pos,
        "field_control",
    )


# --------------------------------------------------------------------------------------------
# 0x05 Image Block Response (server -> client): the hot path.

_BLOCK_RSP_SUCCESS_LAYOUT: Final[_Layout] = (
    ("status", 1),
    ("manufacturer_code", 2),
    ("image_type", 2),
    ("file_version", 4),
    ("file_offset", 4),
    ("image_data", _LV),
)
_BLOCK_RSP_WAIT_LAYOUT: Final[_Layout] = (
    ("status", 1),
    ("current_time", 4),
    ("request_time", 4),
)
_BLOCK_RSP_WAIT_PERIOD_LAYOUT: Final[_Layout] = _BLOCK_RSP_WAIT_LAYOUT + (("minimum_block_period", 2),)
_BLOCK_RSP_SUCCESS: Final = Struct("<BHHIIB")
_BLOCK_RSP_WAIT: Final = Struct("<BII")
_BLOCK_RSP_WAIT_PERIOD: Final = Struct("<BIIH")
_SUCCESS_ONLY: Final = ("manufacturer_code", "image_type", "file_version", "file_offset", "image_data")
_WAIT_ONLY: Final = ("current_time", "request_time", "minimum_block_period")
_THREE_NONES: Final = (None, None, None)
_FIVE_NONES: Final = (None, None, None, None, None)
_EIGHT_NONES: Final = _FIVE_NONES + _THREE_NONES


def _enc_image_block_response(c: _Fields, base: int) -> bytes:
    status = c[0]
    if status == _SUCCESS and c[6] is None and c[7] is None and c[8] is None:
        data = c[5]
        if type(data) is not bytes:
            data = _as_bytes(data)
        if data is not None:
            try:
                return _BLOCK_RSP_SUCCESS.pack(0, c[1], c[2], c[3], c[4], len(data)) + data
            except struct.error:
                pass
        raise _bad_value("ImageBlockResponse", c, _BLOCK_RSP_SUCCESS_LAYOUT, base)
    if status not in IMAGE_BLOCK_RESPONSE_STATUSES:
        raise _bad_status("ImageBlockResponse", status, IMAGE_BLOCK_RESPONSE_STATUSES, base)
    if status == _SUCCESS:
        size = 13 + (1 + len(c[5]) if isinstance(c[5], _BYTES_LIKE) else 0)
        _must_be_absent("ImageBlockResponse", c, _WAIT_ONLY, base + size, "with status SUCCESS")
    _must_be_absent("ImageBlockResponse", c, _SUCCESS_ONLY, base + 1, f"with status {int(status):#04x}")
    if status == _WAIT_FOR_DATA:
        layout = _BLOCK_RSP_WAIT_LAYOUT
        try:
            if c[8] is None:
                return _BLOCK_RSP_WAIT.pack(status, c[6], c[7])
            layout = _BLOCK_RSP_WAIT_PERIOD_LAYOUT
            return _BLOCK_RSP_WAIT_PERIOD.pack(status, c[6], c[7], c[8])
        except struct.error:
            raise _bad_value("ImageBlockResponse", c, layout, base) from None
    _must_be_absent("ImageBlockResponse", c, _WAIT_ONLY, base + 1, "with status ABORT")
    return bytes((status,))


def _dec_image_block_response(data: bytes, pos: int, n: int) -> ImageBlockResponse:
    if n <= pos:
        raise _truncated("ImageBlockResponse", _BLOCK_RSP_SUCCESS_LAYOUT, pos, n)
    status = data[pos]
    if status == _SUCCESS:
        start = pos + 14
        if n < start:
            raise _truncated("ImageBlockResponse", _BLOCK_RSP_SUCCESS_LAYOUT, pos, n)
        _, mfr, image_type, version, offset, size = _BLOCK_RSP_SUCCESS.unpack_from(data, pos)
        end = start + size
        if n == end:
            return _new(
                ImageBlockResponse,
                (0, mfr, image_type, version, offset, data[start:end], None, None, None),
            )
        if n < end:
            raise FrameError(
                f"ImageBlockResponse truncated: data size says {size} byte(s), {n - start} present",
                start,
                "image_data",
            )
        raise _trailing("ImageBlockResponse", end, n)
    if status == _WAIT_FOR_DATA:
        if n == pos + 9:
            current, requested = _BLOCK_RSP_WAIT.unpack_from(data, pos)[1:]
            return _new(ImageBlockResponse, (status,) + _FIVE_NONES + (current, requested, None))
        if n == pos + 11:
            return _new(
                ImageBlockResponse, (status,) + _FIVE_NONES + _BLOCK_RSP_WAIT_PERIOD.unpack_from(data, pos)[1:]
            )
        if n < pos + 9:
            raise _truncated("ImageBlockResponse", _BLOCK_RSP_WAIT_LAYOUT, pos, n)
        if n == pos + 10:
            raise _truncated("ImageBlockResponse", _BLOCK_RSP_WAIT_PERIOD_LAYOUT, pos, n)
        raise _trailing("ImageBlockResponse", pos + 11, n)
    if status not in IMAGE_BLOCK_RESPONSE_STATUSES:
        raise _bad_status("ImageBlockResponse", status, IMAGE_BLOCK_RESPONSE_STATUSES, pos)
    if n != pos + 1:
        raise _trailing("ImageBlockResponse with status ABORT", pos + 1, n)
    return _new(ImageBlockResponse, (status,) + _EIGHT_NONES)


# --------------------------------------------------------------------------------------------
# 0x06 Upgrade End Request, 0x07 Upgrade End Response, 0x08 Query Device Specific File Request,
# Default Response (global 0x0B): fixed layouts.

_UPGRADE_END_REQ_LAYOUT: Final[_Layout] = (
    ("status", 1),
    ("manufacturer_code", 2),
    ("image_type", 2),
    ("file_version", 4),
)
_UPGRADE_END_REQ: Final = Struct("<BHHI")


def _enc_upgrade_end_request(c: _Fields, base: int) -> bytes:
    status = c[0]
    if status not in UPGRADE_END_REQUEST_STATUSES:
        raise _bad_status("UpgradeEndRequest", status, UPGRADE_END_REQUEST_STATUSES, base)
    try:
        return _UPGRADE_END_REQ.pack(*c)
    except struct.error:
        raise _bad_value("UpgradeEndRequest", c, _UPGRADE_END_REQ_LAYOUT, base) from None


def _dec_upgrade_end_request(data: bytes, pos: int, n: int) -> UpgradeEndRequest:
    if n != pos + 9:
        raise _length_error("UpgradeEndRequest", _UPGRADE_END_REQ_LAYOUT, pos, pos + 9, n)
    values = _UPGRADE_END_REQ.unpack_from(data, pos)
    if values[0] not in UPGRADE_END_REQUEST_STATUSES:
        raise _bad_status("UpgradeEndRequest", values[0], UPGRADE_END_REQUEST_STATUSES, pos)
    return _new(UpgradeEndRequest, values)


def _make_fixed_codec(
    cls: type, layout: _Layout, fmt: str
) -> tuple[Callable[[Any, int], bytes], Callable[[bytes, int, int], Any]]:
    """Commands without optional fields: one struct, exact length."""
    name = cls.__name__
    st = Struct(fmt)
    size = st.size

    def encode_fixed(c: _Fields, base: int) -> bytes:
        try:
            return st.pack(*c)
        except struct.error:
            raise _bad_value(name, c, layout, base) from None

    def decode_fixed(data: bytes, pos: int, n: int) -> Any:
        if n != pos + size:
            raise _length_error(name, layout, pos, pos + size, n)
        return _new(cls, st.unpack_from(data, pos))

    return encode_fixed, decode_fixed


_enc_upgrade_end_response, _dec_upgrade_end_response = _make_fixed_codec(
    UpgradeEndResponse,
    (
        ("manufacturer_code", 2),
        ("image_type", 2),
        ("file_version", 4),
        ("current_time", 4),
        ("upgrade_time", 4),
    ),
    "<HHIII",
)
_enc_query_specific_file_request, _dec_query_specific_file_request = _make_fixed_codec(
    QueryDeviceSpecificFileRequest,
    (
        ("request_node_address", 8),
        ("manufacturer_code", 2),
        ("image_type", 2),
        ("file_version", 4),
        ("current_zigbee_stack_version", 2),
    ),
    "<QHHIH",
)
_enc_default_response, _dec_default_response = _make_fixed_codec(
    DefaultResponse, (("command_id", 1), ("status", 1)), "<BB"
)


# --------------------------------------------------------------------------------------------
# Dispatch tables and the public functions.

_Encoder = Callable[[Any, int], bytes]
_Decoder = Callable[[bytes, int, int], Any]


class _EncodeSpec(NamedTuple):
    frame_type: int
    command_id: int
    direction: int | None  # None: the caller must say (Default Response)
    default_frame_control: int  # frame control with the default direction and DDR bit
    encoder: _Encoder


def _spec(cls: type, command_id: int, direction: int | None, encoder: _Encoder) -> tuple[type, _EncodeSpec]:
    frame_type = FRAME_TYPE_GLOBAL if cls is DefaultResponse else FRAME_TYPE_CLUSTER
    fc = frame_type
    if direction == DIRECTION_SERVER_TO_CLIENT:
        fc |= _FC_DIRECTION | _FC_DISABLE_DEFAULT_RESPONSE
    return cls, _EncodeSpec(frame_type, command_id, direction, fc, encoder)


_C2S, _S2C = DIRECTION_CLIENT_TO_SERVER, DIRECTION_SERVER_TO_CLIENT
_ENCODE: Final[dict[type, _EncodeSpec]] = dict(
    (
        _spec(ImageNotify, CommandId.IMAGE_NOTIFY, _S2C, _enc_image_notify),
        _spec(QueryNextImageRequest, CommandId.QUERY_NEXT_IMAGE_REQUEST, _C2S, _enc_query_next_image_request),
        _spec(QueryNextImageResponse, CommandId.QUERY_NEXT_IMAGE_RESPONSE, _S2C, _enc_query_next_image_response),
        _spec(ImageBlockRequest, CommandId.IMAGE_BLOCK_REQUEST, _C2S, _enc_image_block_request),
        _spec(ImagePageRequest, CommandId.IMAGE_PAGE_REQUEST, _C2S, _enc_image_page_request),
        _spec(ImageBlockResponse, CommandId.IMAGE_BLOCK_RESPONSE, _S2C, _enc_image_block_response),
        _spec(UpgradeEndRequest, CommandId.UPGRADE_END_REQUEST, _C2S, _enc_upgrade_end_request),
        _spec(UpgradeEndResponse, CommandId.UPGRADE_END_RESPONSE, _S2C, _enc_upgrade_end_response),
        _spec(
            QueryDeviceSpecificFileRequest,
            CommandId.QUERY_DEVICE_SPECIFIC_FILE_REQUEST,
            _C2S,
            _enc_query_specific_file_request,
        ),
        _spec(
            QueryDeviceSpecificFileResponse,
            CommandId.QUERY_DEVICE_SPECIFIC_FILE_RESPONSE,
            _S2C,
            _enc_query_specific_file_response,
        ),
        _spec(DefaultResponse, DEFAULT_RESPONSE_COMMAND_ID, None, _enc_default_response),
    )
)


def _decode_key(frame_type: int, direction: int, command_id: int) -> int:
    """Key of the decoder table: the frame-control bits that select a command, and its id."""
    return (frame_type | (direction << 3)) << 8 | command_id


_DECODE: Final[dict[int, _Decoder]] = {
    _decode_key(FRAME_TYPE_CLUSTER, _S2C, CommandId.IMAGE_NOTIFY): _dec_image_notify,
    _decode_key(FRAME_TYPE_CLUSTER, _C2S, CommandId.QUERY_NEXT_IMAGE_REQUEST): _dec_query_next_image_request,
    _decode_key(FRAME_TYPE_CLUSTER, _S2C, CommandId.QUERY_NEXT_IMAGE_RESPONSE): _dec_query_next_image_response,
    _decode_key(FRAME_TYPE_CLUSTER, _C2S, CommandId.IMAGE_BLOCK_REQUEST): _dec_image_block_request,
    _decode_key(FRAME_TYPE_CLUSTER, _C2S, CommandId.IMAGE_PAGE_REQUEST): _dec_image_page_request,
    _decode_key(FRAME_TYPE_CLUSTER, _S2C, CommandId.IMAGE_BLOCK_RESPONSE): _dec_image_block_response,
    _decode_key(FRAME_TYPE_CLUSTER, _C2S, CommandId.UPGRADE_END_REQUEST): _dec_upgrade_end_request,
    _decode_key(FRAME_TYPE_CLUSTER, _S2C, CommandId.UPGRADE_END_RESPONSE): _dec_upgrade_end_response,
    _decode_key(
        FRAME_TYPE_CLUSTER, _C2S, CommandId.QUERY_DEVICE_SPECIFIC_FILE_REQUEST
    ): _dec_query_specific_file_request,
    _decode_key(
        FRAME_TYPE_CLUSTER, _S2C, CommandId.QUERY_DEVICE_SPECIFIC_FILE_RESPONSE
    ): _dec_query_specific_file_response,
    _decode_key(FRAME_TYPE_GLOBAL, _C2S, DEFAULT_RESPONSE_COMMAND_ID): _dec_default_response,
    _decode_key(FRAME_TYPE_GLOBAL, _S2C, DEFAULT_RESPONSE_COMMAND_ID): _dec_default_response,
}

_HEADER: Final = Struct("<BBB")
_HEADER_MFR: Final = Struct("<BHBB")
_DIRECTION_NAMES: Final = ("client-to-server", "server-to-client")


def _frame_control(spec: _EncodeSpec, direction: Any, disable_default_response: Any) -> int:
    """Frame control for an explicit direction and/or DDR bit (the slow path)."""
    if direction is None:
        if spec.direction is None:
            raise FrameError("DefaultResponse needs an explicit direction (0 or 1)", 0, "direction")
        direction = spec.direction
    elif direction not in (0, 1):
        raise FrameError(f"direction {direction!r} is not 0 (client to server) or 1", 0, "direction")
    elif spec.direction is not None and direction != spec.direction:
        raise FrameError(
            f"command {spec.command_id:#04x} is {_DIRECTION_NAMES[spec.direction]}; "
            f"direction {int(direction)} would make it another command",
            0,
            "direction",
        )
    if disable_default_response is None:
        disable_default_response = direction == DIRECTION_SERVER_TO_CLIENT
    fc = spec.frame_type | (int(direction) << 3)
    if disable_default_response:
        fc |= _FC_DISABLE_DEFAULT_RESPONSE
    return fc


def encode(
    command: object,
    *,
    tsn: object,
    direction: object = None,
    disable_default_response: object = None,
    manufacturer_code: object = None,
) -> bytes:
    """The full ZCL frame (header and payload) for ``command`` (a :data:`Command`).

    ``tsn`` is a u8. ``direction`` (0 or 1) defaults to the command's own (client-to-server
    requests, server-to-client responses) and must be given for a :class:`DefaultResponse`.
    ``disable_default_response`` (true or false) defaults to True for server-to-client frames,
    False otherwise (as zigpy does). A ``manufacturer_code`` (u16) makes the frame
    manufacturer-specific. The parameters are typed ``object`` because the codec checks them
    itself: anything else is a :class:`FrameError` naming the field, in the compiled build too.
    """
    spec = _ENCODE.get(type(command))
    if spec is None:
        raise FrameError(
            f"cannot encode {type(command).__name__}: not an OTA command or DefaultResponse", 0, None
        )
    if disable_default_response is None and (direction is None or direction == spec.direction):
        fc = spec.default_frame_control
        if spec.direction is None:
            raise FrameError("DefaultResponse needs an explicit direction (0 or 1)", 0, "direction")
    else:
        fc = _frame_control(spec, direction, disable_default_response)
    if manufacturer_code is None:
        try:
            header = _HEADER.pack(fc, tsn, spec.command_id)
        except struct.error:
            raise _bad_header_value("tsn", tsn, 0xFF, 1) from None
        return header + spec.encoder(command, 3)
    if not isinstance(manufacturer_code, int) or not 0 <= manufacturer_code <= 0xFFFF:
        raise _bad_header_value("manufacturer_code", manufacturer_code, 0xFFFF, 1)
    try:
        header = _HEADER_MFR.pack(fc | _FC_MANUFACTURER_SPECIFIC, manufacturer_code, tsn, spec.command_id)
    except struct.error:
        raise _bad_header_value("tsn", tsn, 0xFF, 3) from None
    return header + spec.encoder(command, 5)


def _bad_header_value(field: str, value: Any, limit: int, offset: int) -> FrameError:
    return FrameError(f"ZCL header {field} {value!r} is not an integer 0..{limit:#x}", offset, field)


def decode(data: object) -> ZclFrame:
    """Decode one whole ZCL frame of the OTA cluster (or a Default Response); strict.

    ``data`` is ``bytes``, ``bytearray`` or ``memoryview``. Raises :class:`FrameError` for
    anything that is not exactly one well-formed frame (a str or None too).
    """
    frame = data if type(data) is bytes else _copy_buffer(data, "a frame")
    n = len(frame)
    if n < 3:
        raise _short_header(frame, n)
    fc = frame[0]
    if fc & _FC_MANUFACTURER_SPECIFIC:
        if n < 5:
            raise _short_header(frame, n)
        manufacturer_code = frame[1] | (frame[2] << 8)
        tsn = frame[3]
        command_id = frame[4]
        pos = 5
    else:
        manufacturer_code = None
        tsn = frame[1]
        command_id = frame[2]
        pos = 3
    decoder = _DECODE.get((fc & 0x0B) << 8 | command_id)
    if decoder is None or fc & _FC_RESERVED:
        raise _bad_header(fc, command_id, pos - 1)
    return _new(
        ZclFrame,
        (
            _new(
                ZclHeader,
                (
                    fc & _FC_FRAME_TYPE,
                    (fc >> 3) & 1,
                    fc & _FC_DISABLE_DEFAULT_RESPONSE != 0,
                    tsn,
                    command_id,
                    manufacturer_code,
                ),
            ),
            decoder(frame, pos, n),
        ),
    )


def _copy_buffer(data: object, what: str) -> bytes:
    """A ``bytearray`` or ``memoryview`` frame as ``bytes``; anything else is a FrameError."""
    if not isinstance(data, (bytearray, memoryview)):
        raise FrameError(f"{what} is bytes, not {type(data).__name__}", 0, None)
    return bytes(data)


def _short_header(data: bytes, n: int) -> FrameError:
    fields = ["frame_control"]
    if n and data[0] & _FC_MANUFACTURER_SPECIFIC:
        fields += ["manufacturer_code", "manufacturer_code"]
    fields += ["tsn", "command_id"]
    return FrameError(
        f"ZCL header truncated: {n} byte(s), needs {len(fields)}", n, fields[n] if n < len(fields) else None
    )


def _bad_header(fc: int, command_id: int, command_offset: int) -> FrameError:
    frame_type = fc & _FC_FRAME_TYPE
    if frame_type > FRAME_TYPE_CLUSTER:
        return FrameError(f"ZCL frame type {frame_type} is reserved", 0, "frame_type")
    if fc & _FC_RESERVED:
        return FrameError(
            f"ZCL frame control {fc:#04x} sets reserved bits {fc & _FC_RESERVED:#04x}", 0, "frame_control"
        )
    direction = _DIRECTION_NAMES[(fc >> 3) & 1]
    if frame_type == FRAME_TYPE_GLOBAL:
        reason = f"global command {command_id:#04x} is not supported (only Default Response 0x0b)"
    else:
        reason = f"unknown {direction} OTA command id {command_id:#04x}"
    return FrameError(reason, command_offset, "command_id")


def encode_payload(command: object) -> bytes:
    """The ZCL payload of ``command`` without its header; error offsets count from the payload."""
    spec = _ENCODE.get(type(command))
    if spec is None:
        raise FrameError(
            f"cannot encode {type(command).__name__}: not an OTA command or DefaultResponse", 0, None
        )
    return spec.encoder(command, 0)


def decode_payload(command_id: object, direction: object, payload: object) -> Command:
    """Decode the payload of cluster command ``command_id`` (u8) sent in ``direction`` (0 or 1).

    ``payload`` is ``bytes``, ``bytearray`` or ``memoryview``; anything else, like a bad id or
    direction, is a :class:`FrameError`. Command id 0x0B (which the OTA cluster does not use)
    decodes as a Default Response in either direction. Error offsets count from the start of the
    payload.
    """
    data = payload if type(payload) is bytes else _copy_buffer(payload, "a payload")
    if direction == 0:
        way = 0
    elif direction == 1:
        way = 1
    else:
        raise FrameError(f"direction {direction!r} is not 0 (client to server) or 1", 0, "direction")
    frame_type = FRAME_TYPE_GLOBAL if command_id == DEFAULT_RESPONSE_COMMAND_ID else FRAME_TYPE_CLUSTER
    decoder = (
        _DECODE.get(_decode_key(frame_type, way, command_id))
        if isinstance(command_id, int) and 0 <= command_id <= 0xFF
        else None
    )
    if decoder is None:
        raise FrameError(
            f"unknown {_DIRECTION_NAMES[way]} OTA command id {command_id!r}", 0, "command_id"
        )
    return decoder(data, 0, len(data))
