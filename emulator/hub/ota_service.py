"""The hub's OTA server endpoint: the server engine on the shared engine host.

Frames are decoded and actions carried out by :class:`~emulator.ota.host.EngineHost` (the same host
a device's client runs on); this module only adds what the hub asks of its server endpoint.
"""

from __future__ import annotations

from emulator.han.packet import SMART_ENERGY_ENDPOINT
from emulator.han.transport import HanTransport
from emulator.ota.host import EngineHost, OutcomeListener
from emulator.ota.server import OtaServer
from emulator.runtime.clock import Clock
from emulator.runtime.events import EventBus


class OtaService(EngineHost):
    """The hub's OTA server endpoint (Smart Energy profile, endpoint 1, cluster 0x0019)."""

    __slots__ = ("engine",)

    def __init__(
        self,
        server: OtaServer,
        transport: HanTransport,
        clock: Clock,
        bus: EventBus,
        *,
        source: str = "comms_hub",
        endpoint: int = SMART_ENERGY_ENDPOINT,
        on_outcome: OutcomeListener | None = None,
    ) -> None:
        """``on_outcome``: hub logic (CCS08 alerts) gets the server's outcome records here."""
        super().__init__(server, transport, clock, bus, source=source, endpoint=endpoint, on_outcome=on_outcome)
        self.engine = server

    def restore(self) -> None:
        """After a restart: the server re-arms the timeouts of its stored sessions."""
        self.execute(self.engine.restore(self.clock.now()))
