"""Plays a :class:`~emulator.scenario.spec.Scenario` and judges its expectations.

Requests are sent at a time (``at_s``) or after a timeline event (``after``). The run ends when
every expectation is met and every request sent, or when nothing has happened for ``settle_s``
after the last request, or at ``duration_s``.

:class:`ScenarioRun` plays it in virtual time on virtual HANs. :class:`RadioScenarioRun` plays
the same scenario in real time with each hub on a radio backend (``ezsp-sim``: bellows and the
emulated dongle; a HIL bench: a real dongle); the same :class:`_Play` sends the requests and
judges, so both end by the same rules.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

from emulator.dcc.service_requests import (
    ActivateFirmware,
    ReadFirmwareVersion,
    RequestHeader,
    ServiceRequest,
    UpdateFirmware,
    UpdatePPMIDFirmware,
)
from emulator.han.packet import format_eui64
from emulator.dcc.premises import PremisesSpec
from emulator.runtime.clock import AsyncioClock, Clock, VirtualClock
from emulator.runtime.events import Event, EventBus

from .spec import RequestSpec, Scenario, ScenarioError
from .system import DccSystem, RadioSiteLike

if TYPE_CHECKING:
    from .backends import HanOptions

_LOGGER = logging.getLogger(__name__)

DCC_ID = 0x90B3D51F30000002  # the RequestID target of non-device requests in DCC's samples
_COMMAND_VARIANT = {"11.1": 8, "11.2": 1, "11.3": 4, "11.4": 8}
_REFERENCE = {"11.1": "11.1", "11.2": "11.2", "11.3": "11.3", "11.4": "11.4"}


@dataclass
class RunResult:
    scenario: str
    ok: bool
    simulated_s: float
    wall_s: float
    met: list[str] = field(default_factory=list)
    unmet: list[str] = field(default_factory=list)
    violated: list[str] = field(default_factory=list)
    requests_sent: int = 0
    requests_total: int = 0
    alerts: dict[str, int] = field(default_factory=dict)
    frames: int = 0
    han: str = "virtual"

    def summary(self) -> dict[str, Any]:
        return {
            "event": "scenario_summary",
            "source": "runner",
            "device": None,
            "time": round(self.simulated_s, 3),
            "scenario": self.scenario,
            "ok": self.ok,
            "requests_sent": self.requests_sent,
            "requests_total": self.requests_total,
            "expectations_met": self.met,
            "expectations_unmet": self.unmet,
            "expectations_violated": self.violated,
            "alerts": self.alerts,
            "han_frames": self.frames,
            "han": self.han,
            "wall_s": round(self.wall_s, 3),
        }


def _matches(match: dict[str, Any], event: dict[str, Any]) -> bool:
    for key, wanted in match.items():
        got = event.get(key)
        if isinstance(wanted, str) and isinstance(got, str):
            if wanted.upper() != got.upper():
                return False
        elif got != wanted:
            return False
    return True


class _Play:
    """Sends a scenario's requests and judges its expectations, on whatever clock it is given."""

    def __init__(self, scenario: Scenario, clock: Clock, bus: EventBus, system: DccSystem,
                 stop: Callable[[], None], *, settle_period_s: float) -> None:
        self.scenario = scenario
        self.clock = clock
        self.system = system
        self._stop = stop
        self._settle_period = settle_period_s
        self._waiting: list[RequestSpec] = [r for r in scenario.requests if r.after is not None]
        self.sent = 0
        self._counter = 1000
        self._met: set[int] = set()
        self._violated: set[int] = set()
        self._last_activity = 0.0
        self.alerts: Counter[str] = Counter()
        self.stopped = False
        bus.subscribe(self._observe)

    # -- timeline ------------------------------------------------------------------------------
    def _observe(self, event: Event) -> None:
        if self.stopped:
            return
        data = event.to_dict()
        if event.event in ("dcc_alert", "dcc_device_alert", "sr_response", "sr_accepted", "sr_rejected",
                           "firmware_activated", "device_alert"):
            self._last_activity = event.time
        if event.event in ("dcc_alert", "dcc_device_alert") and "alert" in data:
            self.alerts[str(data["alert"])] += 1
        for i, expectation in enumerate(self.scenario.expectations):
            if _matches(dict(expectation.match), data):
                (self._violated if expectation.absent else self._met).add(i)
        for request in list(self._waiting):
            assert request.after is not None
            if _matches(dict(request.after.match), data):
                self._waiting.remove(request)
                self.clock.call_later(request.delay_s, self._send, request)
        if self._finished():
            self.stop()

    def stop(self) -> None:
        self.stopped = True
        self._stop()

    def _finished(self) -> bool:
        expectations = self.scenario.expectations
        if not expectations or self._violated:
            return bool(self._violated)
        wanted = {i for i, e in enumerate(expectations) if not e.absent}
        return wanted <= self._met and self.sent == len(self.scenario.requests) and any(
            e.absent for e in expectations) is False

    # -- requests ------------------------------------------------------------------------------
    def _build(self, request: RequestSpec) -> ServiceRequest:
        self._counter += 1
        target = request.device if request.device is not None else DCC_ID
        request_id = request.request_id or f"{format_eui64(request.originator)}:{format_eui64(target)}:{self._counter}"
        header = RequestHeader(request_id, _COMMAND_VARIANT[request.sr], request.sr, _REFERENCE[request.sr],
                               request.originator, target, self._counter)
        if request.sr in ("11.1", "11.4"):
            assert request.image is not None
            version = request.firmware_version
            if version is None:
                from emulator.ota.image import parse_image

                version = parse_image(request.image, source=request.image_name or "image").header.file_version
            cls = UpdateFirmware if request.sr == "11.1" else UpdatePPMIDFirmware
            return cls(header, request.image, version, request.devices)
        assert request.device is not None
        if request.sr == "11.2":
            return ReadFirmwareVersion(header, request.device)
        execution: datetime | None = None
        if request.execution is not None:
            execution = datetime.fromisoformat(request.execution.replace("Z", "+00:00"))
        elif request.execute_in_s is not None:
            execution = self.system.datetime_at(self.clock.now() + request.execute_in_s)
        assert request.firmware_hash is not None
        return ActivateFirmware(header, request.device, request.firmware_hash, execution)

    def _send(self, request: RequestSpec) -> None:
        if self.stopped:
            return
        self.sent += 1
        self.system.bus.emit("runner", "sr_sent", None, sr=request.sr, index=request.index)
        self.system.submit(self._build(request))
        self._last_activity = self.clock.now()

    def _settle_check(self) -> None:
        if self.stopped:
            return
        if self.sent == len(self.scenario.requests) and not self._waiting:
            if self.clock.now() - self._last_activity >= self.scenario.timing.settle_after(self.scenario.settle_s):
                self.stop()
                return
        self.clock.call_later(self._settle_period, self._settle_check)

    # -- run -----------------------------------------------------------------------------------
    def start(self) -> None:
        self.system.start()
        for request in self.scenario.requests:
            if request.at_s is not None:
                self.clock.call_later(request.at_s, self._send, request)
        self.clock.call_later(self._settle_period, self._settle_check)

    def result(self, simulated_s: float, wall_s: float) -> RunResult:
        expectations = self.scenario.expectations
        met = [e.describe() for i, e in enumerate(expectations) if not e.absent and i in self._met]
        unmet = [e.describe() for i, e in enumerate(expectations) if not e.absent and i not in self._met]
        if not expectations:
            from .junit import NO_EXPECTATIONS

            unmet.append(NO_EXPECTATIONS)  # a scenario that checks nothing must not pass a CI gate
        violated = [e.describe() for i, e in enumerate(expectations) if e.absent and i in self._violated]
        frames = sum(site.han.frames_sent for site in self.system.premises.values())
        return RunResult(
            scenario=self.scenario.name,
            ok=not unmet and not violated and self.sent == len(self.scenario.requests),
            simulated_s=simulated_s,
            wall_s=wall_s,
            met=met, unmet=unmet, violated=violated,
            requests_sent=self.sent, requests_total=len(self.scenario.requests),
            alerts=dict(sorted(self.alerts.items())), frames=frames,
        )


class ScenarioRun:
    """A scenario in virtual time on one virtual HAN per premises: deterministic for a seed."""

    def __init__(self, scenario: Scenario, *, observers: list[Callable[[Event], None]] | None = None,
                 pcap: str | None = None) -> None:
        self.scenario = scenario
        self.clock = VirtualClock()
        self.bus = EventBus(self.clock)
        for observer in observers or []:
            self.bus.subscribe(observer)
        self.system = DccSystem.from_scenario(scenario, self.clock, self.bus)
        self._pcap_writer = None
        if pcap:
            from emulator.han.pcap import PcapWriter

            self._pcap_writer = PcapWriter(pcap, clock=self.clock.now)
            for site in self.system.premises.values():
                site.han.add_trace_hook(self._pcap_writer.hook)
        self._play = _Play(scenario, self.clock, self.bus, self.system, self.clock.stop, settle_period_s=60.0)

    def run(self) -> RunResult:
        started = time.perf_counter()
        self._play.start()
        try:
            self.clock.run(until=self.scenario.duration_s)
        finally:
            if self._pcap_writer is not None:
                self._pcap_writer.close()
        return self._play.result(self.clock.now(), time.perf_counter() - started)


def play_virtual(scenario: Scenario, options: "HanOptions") -> RunResult:
    """The ``virtual`` HAN backend (:mod:`emulator.scenario.backends`)."""
    return ScenarioRun(scenario, observers=list(options.observers), pcap=options.pcap).run()


# -- real time on a radio ----------------------------------------------------------------------
class RadioBackend(Protocol):
    """Puts each premises' hub on a radio (``emulator.scenario.ezsp_sim.EzspSimRadios``, a HIL bench)."""

    name: str

    async def open(self, clock: Clock, premises: Sequence[PremisesSpec], *, latency: float, loss: float,
                   seed: int) -> Mapping[str, RadioSiteLike]: ...

    async def close(self) -> None: ...


class OwnedClock:
    """Real time on the running loop, remembering its pending timers so a run that ends can
    cancel them all: nothing of a finished run fires later (no leaked work)."""

    def __init__(self) -> None:
        self._clock = AsyncioClock()
        self._handles: set[asyncio.TimerHandle] = set()
        self._epoch = 0.0

    def now(self) -> float:
        return self._clock.now() - self._epoch

    def restart(self) -> None:
        """Make now() read 0 again (the scenario starts once the radios are up)."""
        self._epoch = self._clock.now()

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        handles = self._handles
        handle: asyncio.TimerHandle

        def fire() -> None:
            handles.discard(handle)
            callback(*args)

        handle = self._clock.call_later(delay, fire)
        handles.add(handle)
        return handle

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        return self.call_later(0.0, callback, *args)

    @property
    def pending(self) -> int:
        return sum(1 for h in self._handles if not h.cancelled())

    def close(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()


class RadioScenarioRun:
    """The same scenario in real time, each hub on a radio from ``radio`` (bellows has real
    timeouts, so virtual time is not an option). Same end rules as :class:`ScenarioRun`;
    ``duration_s`` and ``settle_s`` are wall-clock seconds here."""

    SETTLE_PERIOD_S = 1.0

    def __init__(self, scenario: Scenario, radio: RadioBackend, *,
                 observers: list[Callable[[Event], None]] | None = None, pcap: str | None = None,
                 han_latency_s: float | None = None) -> None:
        self.scenario = scenario
        self.radio = radio
        self.observers = list(observers or [])
        self.pcap = pcap
        self.han_latency_s = scenario.han_latency_s if han_latency_s is None else han_latency_s
        self.system: DccSystem | None = None
        self.bus: EventBus | None = None

    async def run(self) -> RunResult:
        if self.scenario.radio is not None:
            raise ScenarioError(f"{self.scenario.source}: radio: the radio model is for the virtual HAN only "
                                f"(--han virtual), not {self.radio.name}")
        started = time.perf_counter()
        clock = OwnedClock()
        bus = self.bus = EventBus(clock)
        for observer in self.observers:
            bus.subscribe(observer)
        done = asyncio.Event()
        pcap_writer = None
        try:
            sites = await self.radio.open(clock, self.scenario.premises, latency=self.han_latency_s,
                                          loss=self.scenario.han_loss, seed=self.scenario.seed)
            clock.restart()
            system = self.system = DccSystem.from_scenario(self.scenario, clock, bus, radio_sites=sites)
            for opened in sites.values():  # the Device Log is on the radios before devices power on
                await opened.transport.settle()
            if self.pcap:
                from emulator.han.pcap import PcapWriter

                pcap_writer = PcapWriter(self.pcap, clock=clock.now)
                for pid, site in system.premises.items():
                    radio_site = sites.get(pid)
                    if radio_site is not None and radio_site.han is None:  # real devices: what the hub sees
                        site.hub.transport.add_trace_hook(pcap_writer.hook)
                    else:
                        site.han.add_trace_hook(pcap_writer.hook)
            play = _Play(self.scenario, clock, bus, system, done.set, settle_period_s=self.SETTLE_PERIOD_S)
            play.start()
            try:
                await asyncio.wait_for(done.wait(), self.scenario.duration_s)
            except asyncio.TimeoutError:
                _LOGGER.info("scenario %s: duration %.0f s reached", self.scenario.name, self.scenario.duration_s)
            play.stopped = True
            result = play.result(clock.now(), time.perf_counter() - started)
            result.han = self.radio.name
            return result
        finally:
            clock.close()
            await self.radio.close()
            clock.close()  # timers the shutdown itself scheduled
            if pcap_writer is not None:
                pcap_writer.close()
