"""``--han ezsp-sim``: every premises' Comms Hub on bellows, through its own emulated dongle.

Composition, so it lives above the transport layer. For each premises this starts an
:class:`~emulator.han.ezsp.ncp.EzspNcp` on 127.0.0.1 (port 0)
whose identity is the premises' Comms Hub (the dongle *is* the hub's radio), with a
:class:`~emulator.han.virtual.VirtualHan` behind it, and opens the hub's
:class:`~emulator.han.ezsp.transport.ZigpyTransport` to it over ``socket://``. The emulated
devices are attached to the medium the NCP's ``populate`` hands out, so the NCP knows them as
its children. Nothing above the transport can tell this from the virtual HAN.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from emulator.dcc.premises import PremisesSpec
from emulator.devices.device import EmulatedDevice
from emulator.han.ezsp.dongle import DongleState
from emulator.han.ezsp.ncp import EzspNcp, NcpFaults
from emulator.han.ezsp.transport import ZigpyTransport, open_ezsp_transport
from emulator.han.transport import HanTransport
from emulator.han.virtual import VirtualHan
from emulator.runtime.clock import Clock
from emulator.runtime.events import EventBus

from .premises import DeviceBehaviour, build_devices
from .samples import trusted_key

_LOGGER = logging.getLogger(__name__)

AIR_LATENCY_S = 0.0
"""Virtual-air latency behind the emulated dongles: bellows, ASH and TCP already add the real
latency of a radio path, so the scenario's (virtual-time) HAN latency would count twice."""
START_TIMEOUT_S = 15.0
"""How long bellows gets to bring one emulated network up (it needs ~50 ms)."""


def premises_devices(spec: PremisesSpec, bus: EventBus, *, devices: dict[int, EmulatedDevice] | None = None,
                     profile_changes: dict[str, Any] | None = None) -> Callable[[Any, Clock], None]:
    """A ``populate(han, clock)`` that puts ``spec``'s HAN devices behind an NCP as emulated
    devices (the stand-ins for the real ones of a bench) and powers them on. They speak to the
    coordinator at NWK 0x0000; their events go to ``bus``; ``devices`` collects them by EUI-64."""
    built = devices if devices is not None else {}
    behaviours = {d.eui64: DeviceBehaviour(profile_changes) for d in spec.devices} if profile_changes else None

    def populate(han: Any, clock: Clock) -> None:
        made = build_devices(spec, han, clock, bus, behaviours=behaviours, trusted_key=trusted_key())
        built.update(made)
        for device in made.values():
            device.start()

    return populate


@dataclass
class RadioSite:
    """What a radio backend gives one premises: the hub's transport and, if the devices are
    emulated, the medium they attach to (``None``: the devices are real, on the air)."""

    transport: HanTransport
    han: Any | None
    real_devices: frozenset[int] = frozenset()


@dataclass
class EzspSimRadios:
    """One emulated EZSP dongle per premises, driven by bellows (the ``ezsp-sim`` HAN backend).

    ``faults`` (by premises ID) are handed to that premises' NCP, so a test or a scenario can
    switch dongle faults on while the run is under way (``ncps[premises_id].faults``).
    """

    ezsp_version: int = 8
    air_latency_s: float | None = AIR_LATENCY_S
    """Latency of the virtual air behind each NCP; ``None`` keeps the scenario's ``han.latency_s``."""
    faults: dict[str, NcpFaults] = field(default_factory=dict)
    ncp_cbke: bool = False
    """Each dongle holds the hub's TEST ONLY suite-2 CBKE data (from the scenario seed), as an NCP
    image with the CBKE library and preinstalled certificates: the hub then has the NCP compute
    CBKE. False: an image without the library (LIBRARY_NOT_PRESENT), the host computes."""
    ncps: dict[str, EzspNcp] = field(default_factory=dict)
    transports: dict[str, ZigpyTransport] = field(default_factory=dict)

    name = "ezsp-sim"

    async def open(
        self, clock: Clock, premises: Sequence[PremisesSpec], *, latency: float, loss: float, seed: int
    ) -> dict[str, RadioSite]:
        sites: dict[str, RadioSite] = {}
        try:
            for index, spec in enumerate(premises):
                media: list[Any] = []
                air = latency if self.air_latency_s is None else self.air_latency_s
                han = VirtualHan(clock, latency=air, loss=loss, seed=seed * 7919 + index)
                dongle = DongleState(eui64=spec.comms_hub, extended_pan_id=spec.comms_hub)
                if self.ncp_cbke:
                    from .han_security import key_material

                    dongle.cbke_identities[2] = key_material(seed).identity(spec.comms_hub)
                ncp = EzspNcp(
                    ezsp_version=self.ezsp_version,
                    dongle=dongle,
                    han=han,
                    populate=lambda medium, _clock: media.append(medium),
                    faults=self.faults.get(spec.premises_id),
                )
                self.ncps[spec.premises_id] = ncp
                await ncp.start("127.0.0.1", 0)
                transport = await asyncio.wait_for(
                    open_ezsp_transport(ncp.url, hub_eui64=spec.comms_hub), START_TIMEOUT_S
                )
                self.transports[spec.premises_id] = transport
                await transport.probe_cbke()
                _LOGGER.info("premises %s: hub on EZSP v%d at %s", spec.premises_id, self.ezsp_version, ncp.url)
                sites[spec.premises_id] = RadioSite(transport, media[0])
        except BaseException:
            await self.close()
            raise
        return sites

    async def close(self) -> None:
        """Shut bellows down (``app.shutdown``), then the NCPs; safe to call twice. The NCP
        objects stay in :attr:`ncps` (stopped) so their counters can be read afterwards."""
        transports, self.transports = self.transports, {}
        for transport in transports.values():
            try:
                await transport.stop()
            except Exception as exc:  # a radio already gone must not hide the others
                _LOGGER.warning("hub transport did not stop cleanly: %r", exc)
        for ncp in self.ncps.values():
            await ncp.stop()


def play_on_ezsp_sim(scenario: Any, options: Any) -> Any:
    """The ``ezsp-sim`` HAN backend (:mod:`emulator.scenario.backends`): real time, each hub on
    bellows through its own emulated dongle of EZSP version ``options.ezsp_version``."""
    from emulator.errors import UserError
    from emulator.han.transport import TransportError

    from .runner import RadioScenarioRun

    run = RadioScenarioRun(scenario, EzspSimRadios(ezsp_version=options.ezsp_version),
                           observers=list(options.observers), pcap=options.pcap)
    try:
        return asyncio.run(run.run())
    except (TransportError, asyncio.TimeoutError) as exc:
        raise UserError(f"the emulated EZSP dongle did not come up: {exc or 'timeout'}") from None
