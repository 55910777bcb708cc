"""What the DCC side (CSP) may ask of a Comms Hub, and what the hub reports back.

The CSP talks to a hub only through :class:`HubPort`; the hub answers only through the upstream
sink it is given. Both directions are plain calls and records on the project's clock, so the DCC
layer runs unchanged against the emulated hub, in a fleet, or against a fake in unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence




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
    gbcs: bytes | None = None
    """The GBCS alert as sent (the device's, or the hub's own CCS08 or CS14): DUIS ``GBCSPayload``."""


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
    gbcs: bytes | None = None
    """The device's GBCS response as sent: DUIS ``GBCSPayload``."""


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

    def transform_activation(
        self, device: int, firmware_hash: bytes, execution_time: float | None, *, request_id: str, cancel: bool = False
    ) -> bytes:
        """11.3 CV 4 (Transform): the CS06 pre-command for ``device`` with the supplier's next
        counter, unsigned, for the User to sign; ``cancel`` = the 3000-12-31 cancellation."""
        ...

    def send_signed_precommand(self, device: int, signed_precommand: bytes, *, request_id: str) -> None:
        """11.3 CV 5: the User's signed pre-command, MAC'd by the ACB, to ``device``; the device
        judges the KRP signature (a wrong one: refused, no response)."""
        ...

    def read_firmware_version(self, device: int, *, request_id: str) -> None:
        """Forward 11.2 to ``device``; the answer comes back as a :class:`CommandResponse`."""
        ...

    def read_command(self, device: int, *, request_id: str) -> bytes:
        """11.2 for local delivery (CV 2/3): the read command for ``device``, protected, not sent."""
        ...

    def signed_command(self, device: int, signed_precommand: bytes, *, request_id: str) -> bytes:
        """11.3 for local delivery (CV 6/7): the signed pre-command with the ACB's MAC, not sent."""
        ...

    def send_gbcs(self, device: int, message: bytes, *, request_id: str, service_reference: str) -> None:
        """Send a command built by :meth:`read_command` / :meth:`signed_command` (CV 3/7) to
        ``device``; its response comes back for ``request_id``."""
        ...
