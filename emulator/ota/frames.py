"""OTA Upgrade cluster commands as plain immutable data.

One class per command, shared by the Comms Hub's server and the emulated clients; the codec in
:mod:`emulator.ota.codec` turns them into ZCL frames and back. Field names follow the ZigBee
Cluster Library specification. Optional fields are ``None`` when absent.

Classes are ``NamedTuple`` because the block exchange is the hot path of a fleet run: they are
created and read millions of times and a tuple is the cheapest immutable record in CPython.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, Union

OTA_CLUSTER_ID = 0x0019


class Status(enum.IntEnum):
    """ZCL status codes used by the OTA cluster."""

    SUCCESS = 0x00
    FAILURE = 0x01
    NOT_AUTHORIZED = 0x7E
    MALFORMED_COMMAND = 0x80
    UNSUP_CLUSTER_COMMAND = 0x81
    UNSUP_GENERAL_COMMAND = 0x82
    ABORT = 0x95
    INVALID_IMAGE = 0x96
    WAIT_FOR_DATA = 0x97
    NO_IMAGE_AVAILABLE = 0x98
    REQUIRE_MORE_IMAGE = 0x99


class CommandId(enum.IntEnum):
    IMAGE_NOTIFY = 0x00
    QUERY_NEXT_IMAGE_REQUEST = 0x01
    QUERY_NEXT_IMAGE_RESPONSE = 0x02
    IMAGE_BLOCK_REQUEST = 0x03
    IMAGE_PAGE_REQUEST = 0x04
    IMAGE_BLOCK_RESPONSE = 0x05
    UPGRADE_END_REQUEST = 0x06
    UPGRADE_END_RESPONSE = 0x07
    QUERY_DEVICE_SPECIFIC_FILE_REQUEST = 0x08
    QUERY_DEVICE_SPECIFIC_FILE_RESPONSE = 0x09


class ImageNotifyPayloadType(enum.IntEnum):
    JITTER = 0x00
    JITTER_MFR = 0x01
    JITTER_MFR_TYPE = 0x02
    JITTER_MFR_TYPE_VERSION = 0x03


# Upgrade End Response times: current time 0 makes the upgrade time relative (ZCL 11.13.9.6).
UPGRADE_TIME_NOW = 0
UPGRADE_TIME_WAIT_FOR_COMMAND = 0xFFFFFFFF

# Wildcards in Image Notify / Query Next Image matching.
MANUFACTURER_WILDCARD = 0xFFFF
IMAGE_TYPE_WILDCARD = 0xFFFF
FILE_VERSION_WILDCARD = 0xFFFFFFFF


class ImageNotify(NamedTuple):
    """0x00, server -> client."""

    payload_type: int
    query_jitter: int
    manufacturer_code: int | None = None
    image_type: int | None = None
    file_version: int | None = None


class QueryNextImageRequest(NamedTuple):
    """0x01, client -> server. ``field_control`` bit0: hardware version present."""

    field_control: int
    manufacturer_code: int
    image_type: int
    current_file_version: int
    hardware_version: int | None = None


class QueryNextImageResponse(NamedTuple):
    """0x02, server -> client. Fields after ``status`` only on SUCCESS."""

    status: int
    manufacturer_code: int | None = None
    image_type: int | None = None
    file_version: int | None = None
    image_size: int | None = None


class ImageBlockRequest(NamedTuple):
    """0x03, client -> server. ``field_control`` bit0: request node address (IEEE) present;
    bit1: minimum block period present."""

    field_control: int
    manufacturer_code: int
    image_type: int
    file_version: int
    file_offset: int
    maximum_data_size: int
    request_node_address: int | None = None
    minimum_block_period: int | None = None


class ImagePageRequest(NamedTuple):
    """0x04, client -> server. ``field_control`` bit0: request node address present."""

    field_control: int
    manufacturer_code: int
    image_type: int
    file_version: int
    file_offset: int
    maximum_data_size: int
    page_size: int
    response_spacing: int
    request_node_address: int | None = None


class ImageBlockResponse(NamedTuple):
    """0x05, server -> client.

    SUCCESS carries ``manufacturer_code`` .. ``image_data``; WAIT_FOR_DATA carries
    ``current_time``, ``request_time`` and optionally ``minimum_block_period``; ABORT nothing.
    """

    status: int
    manufacturer_code: int | None = None
    image_type: int | None = None
    file_version: int | None = None
    file_offset: int | None = None
    image_data: bytes | None = None
    current_time: int | None = None
    request_time: int | None = None
    minimum_block_period: int | None = None


class UpgradeEndRequest(NamedTuple):
    """0x06, client -> server."""

    status: int
    manufacturer_code: int
    image_type: int
    file_version: int


class UpgradeEndResponse(NamedTuple):
    """0x07, server -> client. ``current_time`` 0 makes ``upgrade_time`` relative seconds."""

    manufacturer_code: int
    image_type: int
    file_version: int
    current_time: int
    upgrade_time: int


class QueryDeviceSpecificFileRequest(NamedTuple):
    """0x08, client -> server."""

    request_node_address: int
    manufacturer_code: int
    image_type: int
    file_version: int
    current_zigbee_stack_version: int


class QueryDeviceSpecificFileResponse(NamedTuple):
    """0x09, server -> client. Fields after ``status`` only on SUCCESS."""

    status: int
    manufacturer_code: int | None = None
    image_type: int | None = None
    file_version: int | None = None
    image_size: int | None = None


class DefaultResponse(NamedTuple):
    """ZCL global command 0x0B, either direction."""

    command_id: int
    status: int


OtaCommand = Union[
    ImageNotify,
    QueryNextImageRequest,
    QueryNextImageResponse,
    ImageBlockRequest,
    ImagePageRequest,
    ImageBlockResponse,
    UpgradeEndRequest,
    UpgradeEndResponse,
    QueryDeviceSpecificFileRequest,
    QueryDeviceSpecificFileResponse,
]

COMMAND_IDS: dict[type, int] = {
    ImageNotify: CommandId.IMAGE_NOTIFY,
    QueryNextImageRequest: CommandId.QUERY_NEXT_IMAGE_REQUEST,
    QueryNextImageResponse: CommandId.QUERY_NEXT_IMAGE_RESPONSE,
    ImageBlockRequest: CommandId.IMAGE_BLOCK_REQUEST,
    ImagePageRequest: CommandId.IMAGE_PAGE_REQUEST,
    ImageBlockResponse: CommandId.IMAGE_BLOCK_RESPONSE,
    UpgradeEndRequest: CommandId.UPGRADE_END_REQUEST,
    UpgradeEndResponse: CommandId.UPGRADE_END_RESPONSE,
    QueryDeviceSpecificFileRequest: CommandId.QUERY_DEVICE_SPECIFIC_FILE_REQUEST,
    QueryDeviceSpecificFileResponse: CommandId.QUERY_DEVICE_SPECIFIC_FILE_RESPONSE,
}

# Commands a client sends to the server (ZCL direction bit 0) and the reverse (bit 1).
CLIENT_TO_SERVER = frozenset(
    {
        QueryNextImageRequest,
        ImageBlockRequest,
        ImagePageRequest,
        UpgradeEndRequest,
        QueryDeviceSpecificFileRequest,
    }
)
SERVER_TO_CLIENT = frozenset(
    {
        ImageNotify,
        QueryNextImageResponse,
        ImageBlockResponse,
        UpgradeEndResponse,
        QueryDeviceSpecificFileResponse,
    }
)


class ZclHeader(NamedTuple):
    """ZCL frame header. ``frame_type`` 0 = global (profile-wide), 1 = cluster specific.
    ``direction`` 0 = client to server, 1 = server to client."""

    frame_type: int
    direction: int
    disable_default_response: bool
    tsn: int
    command_id: int
    manufacturer_code: int | None = None


class ZclFrame(NamedTuple):
    """A decoded frame: header plus the command (an OTA command or a DefaultResponse)."""

    header: ZclHeader
    command: OtaCommand | DefaultResponse
