"""What the EZSP command handlers see of a host connection, as a protocol.

The handlers (``handlers.py``, ``v8/``, ``v13/``) answer commands against this interface and the
NCP (``ncp.py``) implements it with :class:`~emulator.han.ezsp.ncp.NcpSession`, so the imports
run one way: ncp -> handlers -> session, never back (no cycle, not even for type checking).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import bellows.types as t

from .dongle import DongleState
from .ncp_trust_centre import NcpTrustCentre

ZDO_PROFILE = 0x0000


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint the host registered with ``addEndpoint`` (answered in ZDO descriptors)."""

    endpoint: int
    profile: int
    device_id: int
    device_version: int
    input_clusters: tuple[int, ...]
    output_clusters: tuple[int, ...]


class HostSession(Protocol):
    """One host connection's state, from (re)boot to the next reset."""

    dongle: DongleState
    network_up: bool
    endpoints: dict[int, Endpoint]
    config: dict[int, int]
    values: dict[int, bytes]
    extended_timeouts: set[int]
    address_table: dict[int, tuple[int, int, bool]]
    fragment_acks: int
    trust_centre: NcpTrustCentre

    def bring_network_up(self) -> None: ...

    def send_unicast(self, nwk: int, aps: t.EmberApsFrame, tag: int, payload: bytes) -> tuple[Any, int]: ...

    def send_broadcast(self, dest: int, aps: t.EmberApsFrame, tag: int, payload: bytes) -> tuple[Any, int]: ...

    def send_callback(self, name: str, fields: dict[str, Any]) -> None: ...

    def defer(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the current command's response went out (for callbacks)."""
        ...
