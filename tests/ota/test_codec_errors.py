"""Strictness: every malformed frame or command is a FrameError naming the field and the offset.

Several of these frames are accepted silently by zigpy; the emulator must reject them.
"""

from __future__ import annotations

import pickle

import pytest

from emulator.ota.codec import FrameError, decode, decode_payload, encode, encode_payload
from emulator.ota.frames import (
    DefaultResponse,
    ImageBlockRequest,
    ImageBlockResponse,
    ImageNotify,
    ImagePageRequest,
    QueryDeviceSpecificFileRequest,
    QueryDeviceSpecificFileResponse,
    QueryNextImageRequest,
    QueryNextImageResponse,
    Status,
    UpgradeEndRequest,
    UpgradeEndResponse,
)

MFR, TYPE, VERSION, EUI = 0x1234, 0x0084, 0x01020304, 0x00DB1234567890A4
BLOCK_REQUEST = "01 22 03  00 3412 8400 04030201 c0120000 30"  # payload starts at offset 3


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


DECODE_ERRORS = [
    # (frame, offset, field, words the reason must contain)
    pytest.param("", 0, "frame_control", "truncated", id="empty"),
    pytest.param("01 22", 2, "command_id", "truncated", id="header-without-command-id"),
    pytest.param("05 37", 2, "manufacturer_code", "truncated", id="manufacturer-code-cut"),
    pytest.param("02 22 03", 0, "frame_type", "reserved", id="reserved-frame-type-2"),
    pytest.param("03 22 03", 0, "frame_type", "reserved", id="reserved-frame-type-3"),
    pytest.param("21 22 03" + BLOCK_REQUEST[8:], 0, "frame_control", "reserved", id="reserved-fc-bits"),
    pytest.param("01 22 0a  00", 2, "command_id", "0x0a", id="unknown-command-id"),
    pytest.param("01 22 05  95", 2, "command_id", "client-to-server", id="response-id-sent-as-request"),
    pytest.param("19 22 03  00", 2, "command_id", "server-to-client", id="request-id-sent-as-response"),
    pytest.param("05 3710 22 0c", 4, "command_id", "0x0c", id="unknown-manufacturer-specific-command"),
    pytest.param("00 22 00  0000", 2, "command_id", "global", id="global-read-attributes"),
    pytest.param(BLOCK_REQUEST[:-2], 16, "maximum_data_size", "truncated", id="block-request-cut"),
    pytest.param(BLOCK_REQUEST + "00", 17, None, "trailing", id="block-request-trailing-byte"),
    pytest.param(
        "01 22 03  01" + BLOCK_REQUEST[12:], 17, "request_node_address", "truncated",
        id="block-request-address-promised-missing",
    ),
    pytest.param(
        "01 22 03  01" + BLOCK_REQUEST[12:] + "a4907856", 17, "request_node_address", "truncated",
        id="block-request-address-cut",
    ),
    pytest.param(
        "01 22 03  02" + BLOCK_REQUEST[12:] + "fa", 17, "minimum_block_period", "truncated",
        id="block-request-period-cut",
    ),
    pytest.param(
        "01 22 03  03" + BLOCK_REQUEST[12:] + "a49078563412db00", 25, "minimum_block_period", "truncated",
        id="block-request-period-promised-missing",
    ),
    pytest.param("01 22 03  04" + BLOCK_REQUEST[12:], 3, "field_control", "reserved", id="block-request-fc"),
    pytest.param("01 21 01  02 3412 8400 04030201", 3, "field_control", "reserved", id="query-request-fc"),
    pytest.param(
        "01 21 01  01 3412 8400 04030201", 12, "hardware_version", "truncated",
        id="query-request-hardware-version-promised-missing",
    ),
    pytest.param(
        "19 21 02  00 3412", 6, "image_type", "truncated", id="query-response-success-missing-fields"
    ),
    pytest.param("19 21 02  98 00", 4, None, "trailing", id="query-response-no-image-with-fields"),
    pytest.param("19 21 02  97", 3, "status", "status", id="query-response-wait-for-data"),
    pytest.param("19 25 09  00 3412 8400 04030201 452301", 12, "image_size", "truncated", id="qdsf-response-cut"),
    pytest.param(
        "19 22 05  00 3412 8400 04030201 c0120000 04 aabbcc", 17, "image_data", "data size",
        id="block-response-data-shorter-than-size",
    ),
    pytest.param(
        "19 22 05  00 3412 8400 04030201 c0120000 02 aabbcc", 19, None, "trailing",
        id="block-response-data-longer-than-size",
    ),
    pytest.param(
        "19 22 05  00 3412 8400 04030201 c0120000", 16, "data_size", "truncated",
        id="block-response-no-data-size",
    ),
    pytest.param("19 22 05  97 44332211 0034", 8, "request_time", "truncated", id="wait-for-data-cut"),
    pytest.param(
        "19 22 05  97 44332211 00342211 00", 12, "minimum_block_period", "truncated",
        id="wait-for-data-period-cut",
    ),
    pytest.param("19 22 05  97 44332211 00342211 0001 00", 14, None, "trailing", id="wait-for-data-trailing"),
    pytest.param(
        "19 22 05  95 3412 8400 04030201 c0120000 00", 4, None, "trailing",
        id="abort-with-success-fields",
    ),
    pytest.param("19 22 05  98", 3, "status", "status", id="block-response-no-image-status"),
    pytest.param("19 22 05", 3, "status", "truncated", id="block-response-empty"),
    pytest.param("19 10 00  04 64", 3, "payload_type", "reserved", id="notify-reserved-payload-type"),
    pytest.param("19 10 00  03 64 3412 8400", 9, "file_version", "truncated", id="notify-version-missing"),
    pytest.param("19 10 00  00 64 3412", 5, None, "trailing", id="notify-extra-fields"),
    pytest.param("01 24 06  97 3412 8400 04030201", 3, "status", "status", id="upgrade-end-bad-status"),
    pytest.param("01 24 06  00 3412 8400 040302", 8, "file_version", "truncated", id="upgrade-end-cut"),
    pytest.param(
        "19 24 07  3412 8400 04030201 00000000 ffffff", 15, "upgrade_time", "truncated",
        id="upgrade-end-response-cut",
    ),
    pytest.param(
        "19 24 07  3412 8400 04030201 00000000 ffffffff 00", 19, None, "trailing",
        id="upgrade-end-response-trailing",
    ),
    pytest.param("01 25 08  a4907856", 3, "request_node_address", "truncated", id="qdsf-request-cut"),
    pytest.param("18 24 0b  06", 4, "status", "truncated", id="default-response-cut"),
    pytest.param("18 24 0b  06 00 00", 5, None, "trailing", id="default-response-trailing"),
]


@pytest.mark.parametrize(("frame", "offset", "field", "words"), DECODE_ERRORS)
def test_decode_rejects(frame: str, offset: int, field: str | None, words: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode(_hex(frame))
    assert (caught.value.offset, caught.value.field) == (offset, field)
    assert words in caught.value.reason
    assert f"offset {offset}" in str(caught.value)


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(FrameError, match="not str"):
        decode("01 22 03")


ENCODE_ERRORS = [
    # (command, header keywords, offset, field, words)
    pytest.param(
        ImageBlockRequest(0, 0x10000, TYPE, VERSION, 0, 48), {}, 4, "manufacturer_code", "16 bits",
        id="u16-too-large",
    ),
    pytest.param(
        ImageBlockRequest(0, MFR, TYPE, VERSION, -1, 48), {}, 12, "file_offset", "32 bits", id="negative-u32"
    ),
    pytest.param(
        ImageBlockRequest(0, MFR, TYPE, VERSION, 0, 256), {}, 16, "maximum_data_size", "8 bits",
        id="u8-too-large",
    ),
    pytest.param(
        ImageBlockRequest(0, MFR, "84", VERSION, 0, 48), {}, 6, "image_type", "integer", id="string-value"
    ),
    pytest.param(
        ImageBlockRequest(0, MFR, TYPE, VERSION, 0, 48, EUI), {}, 17, "request_node_address", "must be None",
        id="address-without-its-bit",
    ),
    pytest.param(
        ImageBlockRequest(1, MFR, TYPE, VERSION, 0, 48), {}, 17, "request_node_address", "None",
        id="address-bit-without-address",
    ),
    pytest.param(
        ImageBlockRequest(3, MFR, TYPE, VERSION, 0, 48, EUI), {}, 25, "minimum_block_period", "None",
        id="period-bit-without-period",
    ),
    pytest.param(
        ImageBlockRequest(1, MFR, TYPE, VERSION, 0, 48, 1 << 64), {}, 17, "request_node_address", "64 bits",
        id="eui64-too-large",
    ),
    pytest.param(
        ImageBlockRequest(4, MFR, TYPE, VERSION, 0, 48), {}, 3, "field_control", "reserved",
        id="block-request-reserved-bit",
    ),
    pytest.param(
        ImagePageRequest(0, MFR, TYPE, VERSION, 0, 48, 1024, 100, EUI), {}, 21, "request_node_address",
        "must be None", id="page-address-without-bit",
    ),
    pytest.param(
        ImagePageRequest(1, MFR, TYPE, VERSION, 0, 48, 1024, 100), {}, 21, "request_node_address", "None",
        id="page-bit-without-address",
    ),
    pytest.param(
        ImagePageRequest(0, MFR, TYPE, VERSION, 0, 48, 0x10000, 100), {}, 17, "page_size", "16 bits",
        id="page-size-too-large",
    ),
    pytest.param(
        QueryNextImageRequest(0, MFR, TYPE, VERSION, 2), {}, 12, "hardware_version", "must be None",
        id="hardware-version-without-bit",
    ),
    pytest.param(
        QueryNextImageRequest(1, MFR, TYPE, VERSION), {}, 12, "hardware_version", "None",
        id="hardware-version-bit-without-value",
    ),
    pytest.param(
        QueryNextImageRequest(0x80, MFR, TYPE, VERSION), {}, 3, "field_control", "reserved",
        id="query-request-reserved-bit",
    ),
    pytest.param(
        QueryNextImageResponse(Status.SUCCESS, MFR, TYPE, VERSION), {}, 12, "image_size", "None",
        id="success-query-response-missing-size",
    ),
    pytest.param(
        QueryNextImageResponse(Status.NO_IMAGE_AVAILABLE, MFR), {}, 4, "manufacturer_code", "must be None",
        id="no-image-response-with-fields",
    ),
    pytest.param(
        QueryNextImageResponse(Status.ABORT), {}, 3, "status", "NO_IMAGE_AVAILABLE", id="query-response-abort"
    ),
    pytest.param(
        QueryDeviceSpecificFileResponse(Status.SUCCESS), {}, 4, "manufacturer_code", "None",
        id="qdsf-success-without-fields",
    ),
    pytest.param(
        ImageBlockResponse(Status.SUCCESS, MFR, TYPE, VERSION, 0, bytes(256)), {}, 17, "image_data", "255",
        id="block-longer-than-255",
    ),
    pytest.param(
        ImageBlockResponse(Status.SUCCESS, MFR, TYPE, VERSION, 0), {}, 17, "image_data", "bytes",
        id="success-without-data",
    ),
    pytest.param(
        ImageBlockResponse(Status.SUCCESS, MFR, TYPE, VERSION, 0, "abc"), {}, 17, "image_data", "bytes",
        id="block-as-text",
    ),
    pytest.param(
        ImageBlockResponse(Status.SUCCESS, MFR, None, VERSION, 0, b"x"), {}, 6, "image_type", "None",
        id="success-missing-image-type",
    ),
    pytest.param(
        ImageBlockResponse(Status.SUCCESS, MFR, TYPE, VERSION, 0, b"ab", current_time=5), {}, 19,
        "current_time", "must be None", id="success-with-wait-fields",
    ),
    pytest.param(
        ImageBlockResponse(Status.WAIT_FOR_DATA, MFR, current_time=1, request_time=2), {}, 4,
        "manufacturer_code", "must be None", id="wait-with-success-fields",
    ),
    pytest.param(
        ImageBlockResponse(Status.WAIT_FOR_DATA, current_time=1), {}, 8, "request_time", "None",
        id="wait-without-request-time",
    ),
    pytest.param(
        ImageBlockResponse(Status.ABORT, image_data=b"x"), {}, 4, "image_data", "must be None",
        id="abort-with-data",
    ),
    pytest.param(
        ImageBlockResponse(Status.ABORT, minimum_block_period=5), {}, 4, "minimum_block_period",
        "must be None", id="abort-with-period",
    ),
    pytest.param(
        ImageBlockResponse(Status.NO_IMAGE_AVAILABLE), {}, 3, "status", "WAIT_FOR_DATA",
        id="block-response-status-not-allowed",
    ),
    pytest.param(ImageNotify(7, 1), {}, 3, "payload_type", "0..3", id="notify-payload-type"),
    pytest.param(ImageNotify(1, 1), {}, 5, "manufacturer_code", "None", id="notify-missing-mfr"),
    pytest.param(ImageNotify(0, 1, MFR), {}, 5, "manufacturer_code", "must be None", id="notify-extra-mfr"),
    pytest.param(ImageNotify(0, 300), {}, 4, "query_jitter", "8 bits", id="notify-jitter-too-large"),
    pytest.param(
        UpgradeEndRequest(Status.WAIT_FOR_DATA, MFR, TYPE, VERSION), {}, 3, "status", "INVALID_IMAGE",
        id="upgrade-end-status-not-allowed",
    ),
    pytest.param(
        UpgradeEndResponse(MFR, TYPE, VERSION, 0, 1 << 32), {}, 15, "upgrade_time", "32 bits",
        id="upgrade-time-too-large",
    ),
    pytest.param(
        QueryDeviceSpecificFileRequest(None, MFR, TYPE, VERSION, 2), {}, 3, "request_node_address", "None",
        id="qdsf-request-without-address",
    ),
    pytest.param(DefaultResponse(0x06, 0x100), {"direction": 1}, 4, "status", "8 bits", id="default-status"),
    pytest.param(DefaultResponse(0x06, 0), {}, 0, "direction", "explicit", id="default-response-no-direction"),
    pytest.param(
        ImageBlockRequest(0, MFR, TYPE, VERSION, 0, 48), {"direction": 1}, 0, "direction", "client-to-server",
        id="request-sent-to-client",
    ),
    pytest.param(ImageNotify(0, 1), {"direction": 2}, 0, "direction", "not 0", id="direction-2"),
    pytest.param(ImageBlockResponse(Status.ABORT), {"tsn": 256}, 1, "tsn", "0xff", id="tsn-too-large"),
    pytest.param(
        ImageBlockResponse(Status.ABORT), {"tsn": -1, "manufacturer_code": 1}, 3, "tsn", "0xff",
        id="tsn-negative-manufacturer-specific",
    ),
    pytest.param(
        ImageBlockResponse(Status.ABORT), {"manufacturer_code": 0x10000}, 1, "manufacturer_code", "0xffff",
        id="manufacturer-code-too-large",
    ),
    pytest.param(
        ImageBlockRequest(0, 0x10000, TYPE, VERSION, 0, 48), {"manufacturer_code": 5}, 6,
        "manufacturer_code", "16 bits", id="offsets-count-the-longer-header",
    ),
]


@pytest.mark.parametrize(("command", "header", "offset", "field", "words"), ENCODE_ERRORS)
def test_encode_rejects(command: object, header: dict, offset: int, field: str, words: str) -> None:
    with pytest.raises(FrameError) as caught:
        encode(command, **{"tsn": 1, **header})
    assert (caught.value.offset, caught.value.field) == (offset, field)
    assert words in caught.value.reason


def test_encode_payload_counts_offsets_from_the_payload() -> None:
    with pytest.raises(FrameError) as caught:
        encode_payload(ImageBlockRequest(0, 0x10000, TYPE, VERSION, 0, 48))
    assert (caught.value.offset, caught.value.field) == (1, "manufacturer_code")


def test_encode_rejects_something_that_is_not_a_command() -> None:
    with pytest.raises(FrameError, match="tuple"):
        encode((0, 1), tsn=1)
    with pytest.raises(FrameError, match="dict"):
        encode_payload({})


@pytest.mark.parametrize(
    ("command_id", "direction", "payload", "field"),
    [
        pytest.param(0x03, 1, b"", "command_id", id="wrong-direction"),
        pytest.param(0x0A, 0, b"", "command_id", id="unknown-id"),
        pytest.param(300, 0, b"", "command_id", id="id-out-of-range"),
        pytest.param(0x03, 2, b"", "direction", id="bad-direction"),
        pytest.param(0x03, 0, b"\x00", "manufacturer_code", id="truncated-payload"),
    ],
)
def test_decode_payload_rejects(command_id: int, direction: int, payload: bytes, field: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode_payload(command_id, direction, payload)
    assert caught.value.field == field


def test_frame_error_is_a_value_error_that_survives_pickling() -> None:
    """Fleet runs may carry errors across processes; the details must survive."""
    with pytest.raises(ValueError) as caught:
        decode(_hex("19 22 05  98"))
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.reason, copy.offset, copy.field) == (caught.value.reason, 3, "status")


# The codec checks what it is given itself, whatever the caller's types: the same FrameError in the
# compiled build (docs/fleet.md), where typed parameters would otherwise raise TypeError first.
@pytest.mark.parametrize(
    ("header", "offset", "field"),
    [
        pytest.param({"tsn": "1"}, 1, "tsn", id="tsn-as-text"),
        pytest.param({"tsn": 1.0}, 1, "tsn", id="tsn-as-float"),
        pytest.param({"tsn": 1, "manufacturer_code": "0x1234"}, 1, "manufacturer_code", id="mfr-as-text"),
        pytest.param({"tsn": 1, "direction": "1"}, 0, "direction", id="direction-as-text"),
    ],
)
def test_encode_rejects_wrongly_typed_header_values(header: dict, offset: int, field: str) -> None:
    with pytest.raises(FrameError) as caught:
        encode(ImageNotify(0, 1), **header)
    assert (caught.value.offset, caught.value.field) == (offset, field)


def test_disable_default_response_is_read_for_its_truth() -> None:
    assert encode(ImageNotify(0, 1), tsn=1, disable_default_response=0)[0] == 0x09  # DDR bit clear
    assert encode(ImageNotify(0, 1), tsn=1, disable_default_response=1)[0] == 0x19


def test_decode_rejects_none_and_decode_payload_non_bytes() -> None:
    with pytest.raises(FrameError, match="not NoneType"):
        decode(None)
    with pytest.raises(FrameError, match="a payload is bytes, not str"):
        decode_payload(0x03, 0, "00")
    with pytest.raises(FrameError) as caught:
        decode_payload("3", 0, b"")
    assert caught.value.field == "command_id"


def test_decode_payload_accepts_bytearray_and_memoryview() -> None:
    payload = _hex(BLOCK_REQUEST)[3:]
    expected = decode_payload(0x03, 0, payload)
    assert decode_payload(0x03, 0, bytearray(payload)) == expected
    assert decode_payload(0x03, False, memoryview(payload)) == expected


def test_block_data_from_memoryview_is_encoded() -> None:
    command = ImageBlockResponse(Status.SUCCESS, MFR, TYPE, VERSION, 0, memoryview(b"\x01\x02"))
    assert encode(command, tsn=1).endswith(b"\x02\x01\x02")
