"""Wiring of the DCC side in one call, for the demo, fleet runs and the HTTP front door."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable

from emulator.dcc.csp import Csp, CspPolicy
from emulator.dcc.dsp import GBCS_EPOCH, Dsp
from emulator.dcc.messages import UserMessage
from emulator.dcc.premises import PremisesSpec, smi_devices
from emulator.dcc.store import Store
from emulator.hub.port import HubPort
from emulator.runtime.clock import Clock


@dataclass(frozen=True, slots=True)
class DccSide:
    """The DSP, the CSP and their database; add each Comms Hub with ``csp.add_hub``.

    The whole emulated system (this plus the premises) is
    :class:`emulator.scenario.system.DccSystem`."""

    dsp: Dsp
    csp: Csp
    store: Store

    def add_hub(self, hub: HubPort) -> None:
        self.csp.add_hub(hub)


def build_dcc(
    clock: Clock,
    sink: Callable[[UserMessage], None],
    *,
    store: Store | str | os.PathLike[str] = ":memory:",
    policy: CspPolicy | None = None,
    premises: Iterable[PremisesSpec] = (),
    clock_epoch=GBCS_EPOCH,
) -> DccSide:
    """A DSP and CSP sharing ``clock``; every premises' devices are loaded into the SMI in one go."""
    db = store if isinstance(store, Store) else Store(store)
    csp = Csp(clock, policy)
    dsp = Dsp(clock=clock, store=db, csp=csp, sink=sink, clock_epoch=clock_epoch)
    with db.transaction():
        for spec in premises:
            for device in smi_devices(spec):
                if dsp.smi.get(device.eui64) is None:  # a persisted SMI keeps its rows
                    dsp.smi.add(device)
    return DccSide(dsp, csp, db)
