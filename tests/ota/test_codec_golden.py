"""Golden frames: bytes written by hand from the ZCL OTA layout, checked both ways.

Each case is (command, encode keyword arguments, frame as hex). The hex was laid out field by
field from ZCL 2.4 (header) and 11.13 (OTA payloads), all little-endian, not produced by the codec.
"""

from __future__ import annotations

import pytest

from emulator.ota.codec import decode, decode_payload, encode, encode_payload
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
    ZclHeader,
)

MFR = 0x1234  # wire: 34 12
TYPE = 0x0084  # wire: 84 00
VERSION = 0x01020304  # wire: 04 03 02 01
EUI = 0x00DB1234567890A4  # wire: a4 90 78 56 34 12 db 00 (00-DB-12-34-56-78-90-A4)

# Header bytes used below: 01 = cluster-specific, client to server, default response enabled;
# 19 = cluster-specific | server to client | disable default response.
GOLDEN = [
    pytest.param(
        ImageNotify(3, 100, MFR, TYPE, VERSION),
        {"tsn": 0x10},
        "19 10 00  03 64 3412 8400 04030201",
        id="image-notify-jitter-mfr-type-version",
    ),
    pytest.param(ImageNotify(0, 50), {"tsn": 0x10}, "19 10 00  00 32", id="image-notify-jitter"),
    pytest.param(ImageNotify(1, 1, MFR), {"tsn": 0x10}, "19 10 00  01 01 3412", id="image-notify-mfr"),
    pytest.param(
        ImageNotify(2, 1, MFR, TYPE), {"tsn": 0x10}, "19 10 00  02 01 3412 8400", id="image-notify-type"
    ),
    pytest.param(
        QueryNextImageRequest(0, MFR, TYPE, VERSION),
        {"tsn": 0x21},
        "01 21 01  00 3412 8400 04030201",
        id="query-next-image-request",
    ),
    pytest.param(
        QueryNextImageRequest(1, MFR, TYPE, VERSION, 0x0002),
        {"tsn": 0x21},
        "01 21 01  01 3412 8400 04030201 0200",
        id="query-next-image-request-hardware-version",
    ),
    pytest.param(
        QueryNextImageResponse(Status.SUCCESS, MFR, TYPE, VERSION, 0x00012345),
        {"tsn": 0x21},
        "19 21 02  00 3412 8400 04030201 45230100",
        id="query-next-image-response-success",
    ),
    pytest.param(
        QueryNextImageResponse(Status.NO_IMAGE_AVAILABLE),
        {"tsn": 0x21},
        "19 21 02  98",
        id="query-next-image-response-no-image",
    ),
    pytest.param(
        ImageBlockRequest(0, MFR, TYPE, VERSION, 4800, 48),
        {"tsn": 0x22},
        "01 22 03  00 3412 8400 04030201 c0120000 30",
        id="image-block-request",
    ),
    pytest.param(
        ImageBlockRequest(3, MFR, TYPE, VERSION, 4800, 48, EUI, 250),
        {"tsn": 0x22},
        "01 22 03  03 3412 8400 04030201 c0120000 30 a490785634 12db00 fa00",
        id="image-block-request-address-and-period",
    ),
    pytest.param(
        ImageBlockRequest(2, MFR, TYPE, VERSION, 0, 40, None, 0x0100),
        {"tsn": 0x22},
        "01 22 03  02 3412 8400 04030201 00000000 28 0001",
        id="image-block-request-period-only",
    ),
    pytest.param(
        ImagePageRequest(1, MFR, TYPE, VERSION, 0, 64, 1024, 100, EUI),
        {"tsn": 0x23},
        "01 23 04  01 3412 8400 04030201 00000000 40 0004 6400 a49078563412db00",
        id="image-page-request-address",
    ),
    pytest.param(
        ImagePageRequest(0, MFR, TYPE, VERSION, 256, 64, 1024, 100),
        {"tsn": 0x23},
        "01 23 04  00 3412 8400 04030201 00010000 40 0004 6400",
        id="image-page-request",
    ),
    pytest.param(
        ImageBlockResponse(Status.SUCCESS, MFR, TYPE, VERSION, 4800, b"\xaa\xbb\xcc"),
        {"tsn": 0x22},
        "19 22 05  00 3412 8400 04030201 c0120000 03 aabbcc",
        id="image-block-response-success",
    ),
    pytest.param(
        ImageBlockResponse(Status.SUCCESS, MFR, TYPE, VERSION, 4800, b""),
        {"tsn": 0x22},
        "19 22 05  00 3412 8400 04030201 c0120000 00",
        id="image-block-response-empty-block",
    ),
    pytest.param(
        ImageBlockResponse(
            Status.WAIT_FOR_DATA, current_time=0x11223344, request_time=0x11223400, minimum_block_period=256
        ),
        {"tsn": 0x22},
        "19 22 05  97 44332211 00342211 0001",
        id="image-block-response-wait-for-data",
    ),
    pytest.param(
        ImageBlockResponse(Status.WAIT_FOR_DATA, current_time=0x11223344, request_time=0x11223400),
        {"tsn": 0x22},
        "19 22 05  97 44332211 00342211",
        id="image-block-response-wait-for-data-ota-1.0",
    ),
    pytest.param(
        ImageBlockResponse(Status.ABORT), {"tsn": 0x22}, "19 22 05  95", id="image-block-response-abort"
    ),
    pytest.param(
        UpgradeEndRequest(Status.SUCCESS, MFR, TYPE, VERSION),
        {"tsn": 0x24},
        "01 24 06  00 3412 8400 04030201",
        id="upgrade-end-request",
    ),
    pytest.param(
        UpgradeEndRequest(Status.INVALID_IMAGE, MFR, TYPE, VERSION),
        {"tsn": 0x24},
        "01 24 06  96 3412 8400 04030201",
        id="upgrade-end-request-invalid-image",
    ),
    pytest.param(
        UpgradeEndResponse(MFR, TYPE, VERSION, 0, 0),
        {"tsn": 0x24},
        "19 24 07  3412 8400 04030201 00000000 00000000",
        id="upgrade-end-response-now",
    ),
    pytest.param(
        UpgradeEndResponse(MFR, TYPE, VERSION, 0, 0xFFFFFFFF),
        {"tsn": 0x24},
        "19 24 07  3412 8400 04030201 00000000 ffffffff",
        id="upgrade-end-response-wait-for-command",
    ),
    pytest.param(
        QueryDeviceSpecificFileRequest(EUI, MFR, TYPE, VERSION, 0x0002),
        {"tsn": 0x25},
        "01 25 08  a49078563412db00 3412 8400 04030201 0200",
        id="query-device-specific-file-request",
    ),
    pytest.param(
        QueryDeviceSpecificFileResponse(Status.SUCCESS, MFR, TYPE, VERSION, 0x00012345),
        {"tsn": 0x25},
        "19 25 09  00 3412 8400 04030201 45230100",
        id="query-device-specific-file-response",
    ),
    pytest.param(
        QueryDeviceSpecificFileResponse(Status.NOT_AUTHORIZED),
        {"tsn": 0x25},
        "19 25 09  7e",
        id="query-device-specific-file-response-not-authorized",
    ),
    # Default Response: global frame type (0), command 0x0b; 18 = global | to client | DDR.
    pytest.param(
        DefaultResponse(0x06, Status.SUCCESS),
        {"tsn": 0x24, "direction": 1},
        "18 24 0b  06 00",
        id="default-response-to-client",
    ),
    pytest.param(
        DefaultResponse(0x00, Status.UNSUP_CLUSTER_COMMAND),
        {"tsn": 0x30, "direction": 0},
        "00 30 0b  00 81",
        id="default-response-to-server",
    ),
    # Header variants: manufacturer-specific (bit 2, code after frame control), DDR on a request.
    pytest.param(
        ImageBlockRequest(0, MFR, TYPE, VERSION, 0, 48),
        {"tsn": 0x40, "manufacturer_code": 0x1037},
        "05 3710 40 03  00 3412 8400 04030201 00000000 30",
        id="manufacturer-specific-request",
    ),
    pytest.param(
        ImageBlockResponse(Status.ABORT),
        {"tsn": 0x41, "manufacturer_code": 0x1037},
        "1d 3710 41 05  95",
        id="manufacturer-specific-response",
    ),
    pytest.param(
        UpgradeEndRequest(Status.SUCCESS, MFR, TYPE, VERSION),
        {"tsn": 0xFF, "disable_default_response": True},
        "11 ff 06  00 3412 8400 04030201",
        id="request-with-default-response-disabled",
    ),
    pytest.param(
        ImageNotify(0, 1),
        {"tsn": 0x00, "disable_default_response": False},
        "09 00 00  00 01",
        id="notify-with-default-response-enabled",
    ),
]


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(("command", "header", "frame"), GOLDEN)
def test_encode_matches_hand_laid_bytes(command: object, header: dict, frame: str) -> None:
    assert encode(command, **header) == _hex(frame)


@pytest.mark.parametrize(("command", "header", "frame"), GOLDEN)
def test_decode_gives_back_command_and_header(command: object, header: dict, frame: str) -> None:
    data = _hex(frame)
    decoded = decode(data)
    assert decoded.command == command
    assert type(decoded.command) is type(command)
    fc = data[0]
    assert decoded.header == ZclHeader(
        frame_type=fc & 0x03,
        direction=(fc >> 3) & 1,
        disable_default_response=bool(fc & 0x10),
        tsn=header["tsn"],
        command_id=data[4] if fc & 0x04 else data[2],
        manufacturer_code=header.get("manufacturer_code"),
    )


@pytest.mark.parametrize(("command", "header", "frame"), GOLDEN)
def test_payload_functions_skip_the_header(command: object, header: dict, frame: str) -> None:
    data = _hex(frame)
    header_length = 5 if data[0] & 0x04 else 3
    payload = data[header_length:]
    assert encode_payload(command) == payload
    assert decode_payload(data[header_length - 1], (data[0] >> 3) & 1, payload) == command


def test_decode_accepts_bytearray_and_memoryview() -> None:
    frame = _hex("19 22 05  00 3412 8400 04030201 c0120000 03 aabbcc")
    assert decode(bytearray(frame)) == decode(frame)
    assert decode(memoryview(frame)).command.image_data == b"\xaa\xbb\xcc"


def test_block_data_from_bytearray_is_encoded() -> None:
    command = ImageBlockResponse(Status.SUCCESS, MFR, TYPE, VERSION, 0, bytearray(b"\x01\x02"))
    assert encode(command, tsn=1) == _hex("19 01 05  00 3412 8400 04030201 00000000 02 0102")


def test_decoded_numbers_compare_equal_to_status_members() -> None:
    command = decode(_hex("19 22 05  95")).command
    assert command.status == Status.ABORT
    assert command.image_data is None
