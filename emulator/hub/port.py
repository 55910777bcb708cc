"""What the DCC side (CSP) may ask of a Comms Hub, and what the hub reports back.

The CSP talks to a hub only through :class:`HubPort`; the hub answers only through the upstream
sink it is given. Both directions are plain calls and records on the project's clock, so the DCC
layer runs unchanged against the emulated hub, in a fleet, or against a fake in unit tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence


class GbcsAlertCode(enum.IntEnum):
    """GBCS alert codes the firmware flow uses (GBCS alert code table)."""

    FIRMWARE_VERIFICATION_FAILED = 0x8F1C
    FIRMWARE_VERIFICATION_FAILED_AT_POWER_ON = 0x8F1B
    EXECUTING_FIRMWARE_VERSION_CHANGED = 0x8F43
    FUTURE_DATED_ACTIVATION_SUCCESS = 0x8F66
    FUTURE_DATED_ACTIVATION_FAILURE = 0x8F67
    FIRMWARE_VERIFICATION_SUCCESSFUL = 0x8F72
    CCS08_TRANSFER_FAILURE = 0x8F89
    CCS08_TRANSFER_SUCCESS = 0x8F8A
    PPMID_FIRMWARE_ACTIVATION = 0x8F8B


class TransferResult(enum.IntEnum):
    """GBCS CCS08 per-device transfer result carried in 0x8F8A / 0x8F89."""

    TRANSFERRED = 0
    DISCARDED_OR_OVERWRITTEN = 1
    HARDWARE_VERSION_MISMATCH = 2
    TRANSFER_FAILED = 3


class ActivationResponseCode(enum.IntEnum):
    """SR 11.3 Activate Firmware response codes."""

    SUCCESS = 0
    NO_IMAGE_HELD = 1
    HASH_MISMATCH = 2
    ACTIVATION_FAILURE = 3


@dataclass(frozen=True, slots=True)
class DeviceAlert:
    """A GBCS alert raised by the hub (CCS08) or by a device and relayed by the hub.

    ``details`` holds plain values: ``firmware_version`` (int), ``result`` (int, a
    :class:`TransferResult`), ``success`` (bool, 0x8F8B), ``hash`` (hex str, 0x8F72),
    ``request_id`` (str, CCS08), ``reason`` (str).
    """

    alert_code: int
    device: int
    hub: int
    time: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommandResponse:
    """A device's response to a command the hub forwarded (11.2 read, 11.3 activate).

    ``details``: ``firmware_version`` (int); for 11.3 ``response_code`` (int, an
    :class:`ActivationResponseCode`), ``scheduled`` (bool) and ``execution_time`` (clock seconds)
    for a future-dated command, ``cancelled`` (bool) for a cancellation.
    """

    request_id: str
    service_reference: str
    device: int
    hub: int
    time: float
    details: dict[str, Any] = field(default_factory=dict)


HubMessage = DeviceAlert | CommandResponse
UpstreamSink = Callable[[HubMessage], None]


class HubPort(Protocol):
    """The CSP-facing side of one Comms Hub."""

    eui64: int

    def set_upstream(self, sink: UpstreamSink) -> None:
        """Every :class:`DeviceAlert` and :class:`CommandResponse` goes to ``sink``."""
        ...

    def distribute_image(
        self, image: bytes, targets: Sequence[int], *, activate_now: bool, request_id: str
    ) -> None:
        """Store ``image`` (a whole OTA file) and transfer it to each target over the HAN.

        ``activate_now`` is the 11.4 behaviour (Upgrade End Response "now"); otherwise the
        device keeps the image pending (11.1). One CCS08 alert per target follows.
        """
        ...

    def activate_firmware(
        self,
        device: int,
        firmware_hash: bytes,
        execution_time: float | None,
        *,
        request_id: str,
    ) -> None:
        """Forward 11.3 to ``device``; ``execution_time`` is clock time, ``None`` = now."""
        ...

    def cancel_activation(self, device: int, *, request_id: str) -> None:
        """Forward 11.3 dated 3000-12-31: cancel ``device``'s pending future-dated activation."""
        ...

    def read_firmware_version(self, device: int, *, request_id: str) -> None:
        """Forward 11.2 to ``device``; the answer comes back as a :class:`CommandResponse`."""
        ...
