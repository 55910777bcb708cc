"""``hil run``: the scenario's premises that holds the bench devices gets the bench dongle.

That premises' HAN devices are real (on the air, not emulated): the DSP keeps them in its SMI
and the hub reaches them through the dongle; every other premises of the scenario stays on its
own virtual HAN (in real time). The radio's NWK address of each bench device is looked up
before the run so the hub can send Image Notify before the device has spoken.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

from emulator.dcc.premises import PremisesSpec
from emulator.gbcs.codes import DeviceType
from emulator.scenario.ezsp_sim import RadioSite
from emulator.han.packet import format_eui64
from emulator.runtime.clock import Clock

from .bench import Bench, BenchError
from .check import open_bench_transport

_LOGGER = logging.getLogger(__name__)

HAN_DEVICE_TYPES = frozenset(t for t in DeviceType if t.on_han)


def bench_premises(bench: Bench, scenario: Any) -> PremisesSpec:
    """The one premises of ``scenario`` that holds the bench devices; every request to a device
    of that premises must target a bench device (the others are not on the air)."""
    on_bench = {d.eui64 for d in bench.devices}
    holding = [p for p in scenario.premises if on_bench & {d.eui64 for d in p.devices}]
    if len(holding) != 1:
        found = ", ".join(p.premises_id for p in holding) or "none"
        raise BenchError(f"{scenario.source}: the bench devices must all be in exactly one premises (found: {found})")
    site = holding[0]
    listed = {d.eui64 for d in site.devices}
    for device in bench.devices:
        if device.eui64 not in listed:
            raise BenchError(f"{scenario.source}: bench device {device.name} is not in premises {site.premises_id}: "
                             "add it under [[premises.devices]]")
    for request in scenario.requests:
        for eui64 in (*request.devices, *([request.device] if request.device is not None else [])):
            if eui64 in listed and eui64 not in on_bench:
                raise BenchError(f"{scenario.source}: requests[{request.index}] targets {format_eui64(eui64)}, which "
                                 f"is in the bench premises but not on the bench {bench.source}")
    return site


@dataclass
class BenchRadios:
    """A radio backend for :class:`~emulator.scenario.runner.RadioScenarioRun`: the bench dongle."""

    bench: Bench
    scenario: Any
    transport: Any = None
    unknown: list[int] = field(default_factory=list)
    name = "hil"

    async def open(self, clock: Clock, premises: Sequence[PremisesSpec], *, latency: float, loss: float,
                   seed: int) -> dict[str, RadioSite]:
        site = bench_premises(self.bench, self.scenario)
        self.transport = await open_bench_transport(self.bench, hub_eui64=site.comms_hub)
        if self.scenario.han_security.enabled:
            await self.transport.probe_cbke()  # the NCP's CBKE library, else the host computes
        for device in self.bench.devices:
            if await self.transport.resolve_nwk(device.eui64) is None:
                self.unknown.append(device.eui64)
                _LOGGER.warning("%s is not known to the dongle: it can only be reached once it speaks", device.name)
        real = frozenset(d.eui64 for d in site.devices if d.device_type in HAN_DEVICE_TYPES)
        return {site.premises_id: RadioSite(self.transport, None, real)}

    async def close(self) -> None:
        transport, self.transport = self.transport, None
        if transport is not None:
            await transport.stop()
