"""Property tests: our codec round-trips, and agrees with zigpy byte for byte, both ways.

zigpy (``Ota.ServerCommandDefs`` for what a server receives, ``Ota.ClientCommandDefs`` for what it
sends, ``foundation.ZCLHeader`` for the header) is the independent reference. The one layout zigpy
cannot express is a WAIT_FOR_DATA Image Block Response without minimum block period (OTA 1.0);
it is left out of the zigpy comparisons and covered by the golden tests.
"""

from __future__ import annotations

from typing import Any

import zigpy.types as zt
import zigpy.zcl.foundation as foundation
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from zigpy.zcl.clusters.general import Ota

from emulator.ota.codec import FrameError, decode, encode
from emulator.ota.frames import (
    CLIENT_TO_SERVER,
    COMMAND_IDS,
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

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])



def unsigned(size: int) -> st.SearchStrategy[int]:
    """Hypothesis favours small integers; raw bytes also give the top bit half of the time."""
    raw = st.binary(min_size=size, max_size=size).map(lambda b: int.from_bytes(b, "little"))
    return st.one_of(st.integers(0, (1 << (8 * size)) - 1), raw)


u8 = unsigned(1)
u16 = unsigned(2)
u32 = unsigned(4)
eui64 = unsigned(8)
query_status = st.sampled_from([Status.SUCCESS, Status.NO_IMAGE_AVAILABLE, Status.NOT_AUTHORIZED])


@st.composite
def image_notify(draw: st.DrawFn) -> ImageNotify:
    payload_type = draw(st.integers(0, 3))
    optional = [draw(u16), draw(u16), draw(u32)][: payload_type]
    return ImageNotify(payload_type, draw(u8), *optional)


@st.composite
def query_next_image_request(draw: st.DrawFn) -> QueryNextImageRequest:
    field_control = draw(st.integers(0, 1))
    hardware = draw(u16) if field_control else None
    return QueryNextImageRequest(field_control, draw(u16), draw(u16), draw(u32), hardware)


@st.composite
def query_response(draw: st.DrawFn, cls: type) -> Any:
    status = draw(query_status)
    if status == Status.SUCCESS:
        return cls(status, draw(u16), draw(u16), draw(u32), draw(u32))
    return cls(status)


@st.composite
def image_block_request(draw: st.DrawFn) -> ImageBlockRequest:
    field_control = draw(st.integers(0, 3))
    return ImageBlockRequest(
        field_control,
        draw(u16),
        draw(u16),
        draw(u32),
        draw(u32),
        draw(u8),
        draw(eui64) if field_control & 1 else None,
        draw(u16) if field_control & 2 else None,
    )


@st.composite
def image_page_request(draw: st.DrawFn) -> ImagePageRequest:
    field_control = draw(st.integers(0, 1))
    fixed = [draw(u16), draw(u16), draw(u32), draw(u32), draw(u8), draw(u16), draw(u16)]
    return ImagePageRequest(field_control, *fixed, draw(eui64) if field_control else None)


@st.composite
def image_block_response(draw: st.DrawFn) -> ImageBlockResponse:
    status = draw(st.sampled_from([Status.SUCCESS, Status.WAIT_FOR_DATA, Status.ABORT]))
    if status == Status.SUCCESS:
        data = draw(st.binary(max_size=255))
        return ImageBlockResponse(status, draw(u16), draw(u16), draw(u32), draw(u32), data)
    if status == Status.WAIT_FOR_DATA:
        return ImageBlockResponse(
            status,
            current_time=draw(u32),
            request_time=draw(u32),
            minimum_block_period=draw(st.none() | u16),
        )
    return ImageBlockResponse(status)


upgrade_end_request = st.builds(
    UpgradeEndRequest,
    st.sampled_from([Status.SUCCESS, Status.INVALID_IMAGE, Status.REQUIRE_MORE_IMAGE, Status.ABORT]),
    u16,
    u16,
    u32,
)
upgrade_end_response = st.builds(UpgradeEndResponse, u16, u16, u32, u32, u32)
query_specific_file_request = st.builds(QueryDeviceSpecificFileRequest, eui64, u16, u16, u32, u16)
default_response = st.builds(DefaultResponse, u8, u8)

ota_commands = st.one_of(
    image_notify(),
    query_next_image_request(),
    query_response(QueryNextImageResponse),
    image_block_request(),
    image_page_request(),
    image_block_response(),
    upgrade_end_request,
    upgrade_end_response,
    query_specific_file_request,
    query_response(QueryDeviceSpecificFileResponse),
)
any_command = st.one_of(ota_commands, default_response)


@st.composite
def framed(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    """A command and the header keywords for ``encode``, every header variant included."""
    command = draw(any_command)
    header: dict[str, Any] = {"tsn": draw(u8)}
    if isinstance(command, DefaultResponse):
        header["direction"] = draw(st.integers(0, 1))
    header["manufacturer_code"] = draw(st.none() | u16)
    header["disable_default_response"] = draw(st.none() | st.booleans())
    return command, header


# ---------------------------------------------------------------------------------------------
# zigpy adapters: the same values as zigpy objects, and back.

_ZIGPY_NAMES = {"request_node_address": "request_node_addr"}
_ZIGPY_NOTIFY_NAMES = {"file_version": "new_file_version"}


def _own_direction(command: Any, direction: int | None) -> int:
    if isinstance(command, DefaultResponse):
        assert direction is not None
        return direction
    return 0 if type(command) in CLIENT_TO_SERVER else 1


def _zigpy_def(cls: type, direction: int) -> foundation.ZCLCommandDef:
    if cls is DefaultResponse:
        return foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Default_Response]
    defs = Ota.ServerCommandDefs if direction == 0 else Ota.ClientCommandDefs
    command_id = COMMAND_IDS[cls]
    (definition,) = [d for d in defs if d.id == command_id]
    return definition


def _zigpy_name(cls: type, field: str) -> str:
    if cls is ImageNotify:
        return _ZIGPY_NOTIFY_NAMES.get(field, field)
    return _ZIGPY_NAMES.get(field, field)


def to_zigpy(command: Any, direction: int) -> Any:
    schema = _zigpy_def(type(command), direction).schema
    values: dict[str, Any] = {}
    for field, value in zip(command._fields, command):
        if value is None:
            continue
        if field == "request_node_address":
            value = zt.EUI64(value.to_bytes(8, "little"))
        values[_zigpy_name(type(command), field)] = value
    return schema(**values)


def from_zigpy(cls: type, obj: Any) -> Any:
    values = []
    for field in cls._fields:
        value = getattr(obj, _zigpy_name(cls, field), None)
        if isinstance(value, zt.EUI64):
            value = int.from_bytes(value.serialize(), "little")
        elif isinstance(value, bytes):
            value = bytes(value)
        elif value is not None:
            value = int(value)
        values.append(value)
    return cls(*values)


def zigpy_header(command: Any, header: dict[str, Any]) -> foundation.ZCLHeader:
    direction = _own_direction(command, header.get("direction"))
    ddr = header.get("disable_default_response")
    frame_type = (
        foundation.FrameType.GLOBAL_COMMAND
        if isinstance(command, DefaultResponse)
        else foundation.FrameType.CLUSTER_COMMAND
    )
    mfr = header.get("manufacturer_code")
    return foundation.ZCLHeader(
        frame_control=foundation.FrameControl(
            frame_type=frame_type,
            is_manufacturer_specific=mfr is not None,
            direction=foundation.Direction(direction),
            disable_default_response=(direction == 1) if ddr is None else ddr,
            reserved=0,
        ),
        manufacturer=mfr,
        tsn=header["tsn"],
        command_id=_zigpy_def(type(command), direction).id,
    )


def zigpy_serialize(command: Any, header: dict[str, Any]) -> bytes:
    direction = _own_direction(command, header.get("direction"))
    return zigpy_header(command, header).serialize() + to_zigpy(command, direction).serialize()


def zigpy_deserialize(cls: type, data: bytes) -> tuple[foundation.ZCLHeader, Any]:
    hdr, rest = foundation.ZCLHeader.deserialize(data)
    schema = _zigpy_def(cls, int(hdr.direction)).schema
    obj, rest = schema.deserialize(rest)
    assert rest == b""
    return hdr, from_zigpy(cls, obj)


def zigpy_can_express(command: Any) -> bool:
    return not (
        isinstance(command, ImageBlockResponse)
        and command.status == Status.WAIT_FOR_DATA
        and command.minimum_block_period is None
    )


# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(framed())
def test_decode_inverts_encode(case: tuple[Any, dict[str, Any]]) -> None:
    command, header = case
    frame = decode(encode(command, **header))
    assert frame.command == command
    assert type(frame.command) is type(command)
    assert frame.header.tsn == header["tsn"]
    assert frame.header.manufacturer_code == header["manufacturer_code"]
    assert frame.header.direction == _own_direction(command, header.get("direction"))


@SETTINGS
@given(framed())
def test_our_bytes_equal_zigpys(case: tuple[Any, dict[str, Any]]) -> None:
    command, header = case
    assume(zigpy_can_express(command))
    assert encode(command, **header) == zigpy_serialize(command, header)


@SETTINGS
@given(any_command, u8, st.none() | u16, st.integers(0, 1))
def test_default_header_matches_zigpy_cluster_and_general(
    command: Any, tsn: int, mfr: int | None, dr_direction: int
) -> None:
    """Without explicit flags we set the DDR bit as zigpy's ZCLHeader.cluster/general do."""
    assume(zigpy_can_express(command))
    direction = _own_direction(command, dr_direction)
    factory = (
        foundation.ZCLHeader.general if isinstance(command, DefaultResponse) else foundation.ZCLHeader.cluster
    )
    zigpy_hdr = factory(
        tsn=tsn,
        command_id=_zigpy_def(type(command), direction).id,
        manufacturer=mfr,
        direction=foundation.Direction(direction),
    )
    expected = zigpy_hdr.serialize() + to_zigpy(command, direction).serialize()
    extra = {"direction": dr_direction} if isinstance(command, DefaultResponse) else {}
    assert encode(command, tsn=tsn, manufacturer_code=mfr, **extra) == expected


@SETTINGS
@given(framed())
def test_zigpy_reads_our_frames_as_the_same_values(case: tuple[Any, dict[str, Any]]) -> None:
    command, header = case
    assume(zigpy_can_express(command))
    hdr, theirs = zigpy_deserialize(type(command), encode(command, **header))
    assert theirs == command
    assert hdr.tsn == header["tsn"]
    assert hdr.manufacturer == header["manufacturer_code"]


@SETTINGS
@given(framed())
def test_we_read_zigpys_frames_as_the_same_values(case: tuple[Any, dict[str, Any]]) -> None:
    command, header = case
    assume(zigpy_can_express(command))
    frame = decode(zigpy_serialize(command, header))
    assert frame.command == command
    assert frame.header.tsn == header["tsn"]
    assert frame.header.manufacturer_code == header["manufacturer_code"]
    ddr = header["disable_default_response"]
    expected_ddr = frame.header.direction == 1 if ddr is None else ddr
    assert frame.header.disable_default_response == expected_ddr


@SETTINGS
@given(st.binary(max_size=40))
def test_arbitrary_bytes_decode_or_raise_frame_error_and_reencode_exactly(data: bytes) -> None:
    """No traceback for any input; whatever decodes is canonical (re-encodes to the same bytes)."""
    try:
        frame = decode(data)
    except FrameError as error:
        assert 0 <= error.offset <= len(data)
        return
    header = frame.header
    again = encode(
        frame.command,
        tsn=header.tsn,
        direction=header.direction,
        disable_default_response=header.disable_default_response,
        manufacturer_code=header.manufacturer_code,
    )
    assert again == data


@SETTINGS
@given(framed(), st.data())
def test_any_cut_or_extension_of_a_frame_is_rejected(case: tuple[Any, dict[str, Any]], data: st.DataObject) -> None:
    """Every frame has exactly one valid length: shorter or longer is a FrameError at its end."""
    command, header = case
    frame = encode(command, **header)
    cut = data.draw(st.integers(0, len(frame) - 1))
    try:
        shorter = decode(frame[:cut])
    except FrameError as error:
        assert error.offset <= cut
    else:  # a cut can only succeed by landing on a shorter valid variant of the same command
        assert isinstance(shorter.command, ImageBlockResponse)
        assert command.minimum_block_period is not None and shorter.command.minimum_block_period is None
    extra = data.draw(st.binary(min_size=1, max_size=3))
    try:
        decode(frame + extra)
    except FrameError as error:
        assert error.offset >= len(frame)
    else:  # only the OTA 1.0 WAIT_FOR_DATA response can grow into the OTA 1.1 one
        assert isinstance(command, ImageBlockResponse) and command.minimum_block_period is None
        assert len(extra) == 2
