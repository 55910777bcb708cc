"""One shard of a fleet: a DccSystem with many premises on one virtual clock, driven by SRs.

Every premises is built from its *global* index alone (IDs, fault draw, radio seed), and premises
never share a random stream, so a device's result does not depend on which shard ran it or on
what else ran beside it: the fleet gives the same per-device results with 1 or 16 workers.
"""

from __future__ import annotations

import gc
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from emulator.dcc.alerts import CSP_REJECTION_CODES, DccAlertCode
from emulator.dcc.csp import CspPolicy
from emulator.dcc.messages import MessageKind, UserMessage
from emulator.dcc.premises import (
    GAS_SUPPLIER_ID,
    GAS_SUPPLIER_ROLE,
    IMPORT_SUPPLIER_ID,
    IMPORT_SUPPLIER_ROLE,
    DeviceSpec,
    PremisesSpec,
)
from emulator.dcc.service_requests import RequestHeader, UpdateFirmware, UpdatePPMIDFirmware
from emulator.gbcs.codes import DeviceType
from emulator.gbcs.codes import GbcsAlertCode, TransferResult
from emulator.han.packet import format_eui64
from emulator.ota.actions import (
    AlertRaised,
    DownloadComplete,
    DownloadStarted,
    FirmwareActivated,
    FirmwareActivationFailed,
    GaveUp,
    NoImageOffered,
    QuerySent,
    TimeoutPhase,
    TransferEnded,
    TransferOutcome,
    TransferProgress,
    WaitingForUpgradeCommand,
)
from emulator.ota.image import parse_image
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import EventBus
from emulator.scenario.injection import LINK_OUTAGE_S, AirFaults, link_outage
from emulator.scenario.premises import DeviceBehaviour
from emulator.scenario.spec import Scenario
from emulator.scenario.system import DccSystem

from .faults import FAULTS, Fault
from .spec import FleetSpec

_LOGGER = logging.getLogger(__name__)

SR_AT_S = 5.0  # the Service Requests go in after the devices' first (empty) query
DCC_ID = 0x90B3D51F30000002
_LOW_BYTE = {DeviceType.ESME: 0xA0, DeviceType.GSME: 0xA1, DeviceType.PPMID: 0xA4, DeviceType.HCALCS: 0xA5}
_OFF_S = 10.0  # how long a device stays off in the reboot faults
_SLOW_REANNOUNCE_S = 240.0
_SETTLE_S = 30.0  # simulated seconds run after the last outcome

# Per-device states, as the progress display counts them.
IDLE, QUERYING, DOWNLOADING, WAITING, SUCCEEDED, FAILED = (
    "idle", "querying", "downloading", "waiting", "succeeded", "failed")
STATES = (IDLE, QUERYING, DOWNLOADING, WAITING, SUCCEEDED, FAILED)


@dataclass(frozen=True, slots=True)
class DeviceResult:
    device: int
    premises: int
    device_type: str
    fault: str | None
    outcome: str  # succeeded / failed
    reason: str | None  # why it failed
    duration_s: float | None  # from the SR to activation (PPMID) or transfer + verification (meters)

    def to_dict(self) -> dict[str, Any]:
        return {"device": format_eui64(self.device), "premises": self.premises, "device_type": self.device_type,
                "fault": self.fault, "outcome": self.outcome, "reason": self.reason,
                "duration_s": None if self.duration_s is None else round(self.duration_s, 6)}


@dataclass(slots=True)
class ShardResult:
    results: list[DeviceResult]
    block_exchanges: int
    simulated_s: float
    wall_s: float


@dataclass(slots=True)
class _Tracked:
    premises: int
    device_type: DeviceType
    fault: Fault | None
    state: str = IDLE
    reason: str | None = None
    finished_at: float | None = None
    mid_transfer_done: bool = False


def premises_plan(spec: FleetSpec, index: int) -> tuple[PremisesSpec, dict[int, tuple[DeviceType, Fault | None, Any]]]:
    """The premises with global ``index``: its records and, per device, its type, fault and mix."""
    base = 0x00DB000000000000 + (index << 8)
    hub = base | 0xA2
    rng = random.Random(f"{spec.seed}:{index}")  # str seeds hash deterministically (sha512)
    fault_table = sorted(spec.faults.items())
    devices: list[DeviceSpec] = [
        DeviceSpec(hub, DeviceType.CHF, 0x121D, 0x0010, 0x1200, 0xACDC0001,
                   supplier_roles=(IMPORT_SUPPLIER_ROLE, GAS_SUPPLIER_ROLE)),
        DeviceSpec(base | 0xA3, DeviceType.GPF, 0x121D, 0x0011, 0x1200, 0xACDC0001,
                   supplier_roles=(IMPORT_SUPPLIER_ROLE, GAS_SUPPLIER_ROLE)),
    ]
    extra: dict[int, tuple[DeviceType, Fault | None, Any]] = {}
    for mix in spec.devices:
        image = spec.image_for(mix.device_type)
        if image is None or mix.count == 0:
            continue
        header = parse_image(image.data, source=image.path).header
        for k in range(mix.count):
            low = _LOW_BYTE[mix.device_type] if k == 0 else 0x10 + len(extra)
            eui = base | low
            hw = mix.hardware_version if mix.hardware_version is not None else (header.min_hardware_version or 0x1200)
            fw = mix.firmware_version if mix.firmware_version is not None else max(header.file_version - 1, 0)
            roles: tuple[str, ...] = (GAS_SUPPLIER_ROLE,) if mix.device_type is DeviceType.GSME \
                else (IMPORT_SUPPLIER_ROLE,)
            if mix.device_type is DeviceType.PPMID:
                roles = (IMPORT_SUPPLIER_ROLE, GAS_SUPPLIER_ROLE)
            devices.append(DeviceSpec(eui, mix.device_type, header.manufacturer_code,
                                      header.image_type, hw, fw, supplier_roles=roles))
            draw = rng.random() * 100.0
            fault: Fault | None = None
            for name, percent in fault_table:
                if draw < percent:
                    fault = FAULTS[name]
                    break
                draw -= percent
            extra[eui] = (mix.device_type, fault, mix)
    spec_ = PremisesSpec(f"P{index:06d}", hub, tuple(devices),
                         suppliers={IMPORT_SUPPLIER_ROLE: IMPORT_SUPPLIER_ID, GAS_SUPPLIER_ROLE: GAS_SUPPLIER_ID})
    return spec_, extra


Plan = tuple[PremisesSpec, dict[int, tuple[DeviceType, Fault | None, Any]]]


def fleet_scenario(spec: FleetSpec, plans: list[Plan]) -> Scenario:
    """The scenario a wave of the fleet is: its premises, each device's fault (by catalogue
    name) and sleepiness, and the fleet's radio model; built by the same composition root as
    ``run``, ``submit`` and ``serve``."""
    behaviours: dict[int, DeviceBehaviour] = {}
    for _pspec, extra in plans:
        for eui, (_device_type, fault, mix) in extra.items():
            catalogue = (fault.name,) if fault is not None else ()
            if catalogue or mix.sleepy is not None or mix.poll_interval_s is not None:
                behaviours[eui] = DeviceBehaviour(catalogue=catalogue, sleepy=mix.sleepy,
                                                  poll_interval_s=mix.poll_interval_s)
    return Scenario(name="fleet", source="fleet", premises=[p for p, _ in plans], behaviours=behaviours,
                    csp_policy=CspPolicy(), seed=spec.seed, radio=spec.radio,
                    han_latency_s=0.005 if spec.radio is None else 0.0)


class Shard:
    """Builds the premises of ``indices`` and runs them until every device has an outcome."""

    def __init__(self, spec: FleetSpec, indices: range) -> None:
        self.spec = spec
        self.indices = indices
        self.clock = VirtualClock()
        self.bus = EventBus(self.clock)
        plans = [premises_plan(spec, i) for i in indices]
        self.tracked: dict[int, _Tracked] = {}
        for (pspec, extra), index in zip(plans, indices):
            for eui, (device_type, fault, _mix) in extra.items():
                self.tracked[eui] = _Tracked(index, device_type, fault)
        self.scenario = fleet_scenario(spec, plans)
        self._images = {image.device_type: image.data for image in spec.images}
        references: dict[tuple[int, int, int], bytes] = {}
        for data in self._images.values():
            header = parse_image(data).header
            references[(header.manufacturer_code, header.image_type, header.file_version)] = data
        # Mid-transfer faults are played by _observe, which tracks every device's outcome.
        self.system = DccSystem.from_scenario(self.scenario, self.clock, self.bus, first_index=indices.start,
                                              mid_transfer_faults=False, reference_images=references.get,
                                              fast_path=not spec.per_frame)
        self._wan_delay = self.scenario.csp_policy.default_wan_delay
        self._air: list[AirFaults] = self.system.air_faults
        self._sites = {index: self.system.premises[pspec.premises_id]
                       for (pspec, _extra), index in zip(plans, indices)}
        self._armed_at = SR_AT_S + self._wan_delay
        self.bus.subscribe_outcomes(self._observe)
        self.system.add_sink(self._observe_dcc)
        self._open = len(self.tracked)

    # -- outcomes ------------------------------------------------------------------------------
    def _finish(self, eui: int, tracked: _Tracked, state: str, reason: str | None, now: float) -> None:
        if tracked.state in (SUCCEEDED, FAILED):
            return
        tracked.state = state
        tracked.reason = reason
        tracked.finished_at = now
        self._open -= 1
        if self._open == 0:
            self.clock.stop()

    def _observe(self, now: float, eui: int | None, outcome: Any) -> None:
        """Judges each device from the typed outcome records the timeline carries."""
        if eui is None:
            return
        tracked = self.tracked.get(eui)
        if tracked is None or tracked.state in (SUCCEEDED, FAILED):
            return
        armed = now >= self._armed_at
        match outcome:
            case AlertRaised(code=GbcsAlertCode.CCS08_TRANSFER_FAILURE):
                self._finish(eui, tracked, FAILED, _ccs08_failure(outcome), now)
            case TransferProgress(percent=percent) if not tracked.mid_transfer_done:
                fault = tracked.fault
                if fault is not None and fault.mid_transfer and percent >= 50:
                    tracked.mid_transfer_done = True
                    self.clock.call_soon(self._mid_transfer, tracked.premises, eui, fault.mid_transfer)
            case QuerySent():
                if tracked.state == IDLE and armed:
                    tracked.state = QUERYING
            case DownloadStarted():
                tracked.state = DOWNLOADING
            case DownloadComplete():
                tracked.state = WAITING
            case FirmwareActivated():
                self._finish(eui, tracked, SUCCEEDED, None, now)
            case WaitingForUpgradeCommand() if tracked.device_type.signed_images:
                self._finish(eui, tracked, SUCCEEDED, None, now)
            case FirmwareActivationFailed():
                self._finish(eui, tracked, FAILED, "0x8F8B activation failed", now)
            case NoImageOffered() if armed and tracked.state in (IDLE, QUERYING):
                self._finish(eui, tracked, FAILED, "no image offered", now)
            case GaveUp(downloading=False) if armed:
                self._finish(eui, tracked, FAILED, "query unanswered", now)

    def _observe_dcc(self, message: UserMessage) -> None:
        """A device the CSP rejected (N18, N19, N20, N22) has failed."""
        if message.kind is not MessageKind.DCC_ALERT or message.device is None:
            return
        code = DccAlertCode(message.code)
        tracked = self.tracked.get(message.device)
        if code in CSP_REJECTION_CODES and tracked is not None:
            self._finish(message.device, tracked, FAILED, f"CSP {code.value}", self.clock.now())

    def _mid_transfer(self, index: int, eui: int, what: str) -> None:
        site = self._sites[index]
        if what == "server_restart":
            site.hub.restart()
            return
        if what in LINK_OUTAGE_S:
            air = site.manipulator
            assert isinstance(air, AirFaults), "premises_faults gives a premises with a link outage its air faults"
            link_outage(self.clock, air, eui, LINK_OUTAGE_S[what])
            return
        device = site.devices[eui]
        device.power_off()
        if what == "slow_reannounce":
            self.clock.call_later(_OFF_S, lambda: device.power_on(reannounce_delay_s=_SLOW_REANNOUNCE_S))
        else:
            self.clock.call_later(_OFF_S, device.power_on)

    # -- driving -------------------------------------------------------------------------------
    def _submit(self) -> None:
        for air in self._air:
            air.armed = True
        by_type: dict[DeviceType, list[int]] = {}
        for eui, tracked in self.tracked.items():
            by_type.setdefault(tracked.device_type, []).append(eui)
        counter = 1000 + self.indices.start
        for device_type, devices in sorted(by_type.items(), key=lambda kv: kv[0].value):
            counter += 1
            originator = GAS_SUPPLIER_ID if device_type is DeviceType.GSME else IMPORT_SUPPLIER_ID
            sr = "11.4" if device_type is DeviceType.PPMID else "11.1"
            header = RequestHeader(f"{format_eui64(originator)}:{format_eui64(DCC_ID)}:{counter}", 8, sr, sr,
                                   originator, DCC_ID, counter)
            data = self._images[device_type]
            version = parse_image(data).header.file_version
            cls = UpdatePPMIDFirmware if sr == "11.4" else UpdateFirmware
            response = self.system.submit(cls(header, data, version, tuple(devices)))
            for reason, rejected in response.rejected.items():
                for eui in rejected:
                    self._finish(eui, self.tracked[eui], FAILED, f"DSP rejected ({reason.value})", self.clock.now())
            if not response.response_code.startswith(("I", "W")):
                for eui in devices:
                    self._finish(eui, self.tracked[eui], FAILED, f"DSP rejected ({response.error})", self.clock.now())

    def counts(self) -> dict[str, Any]:
        states: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for tracked in self.tracked.values():
            states[tracked.state] += 1
            if tracked.state == FAILED:
                reasons[tracked.reason or "unknown"] += 1
        return {"states": dict(states), "failed": dict(reasons)}

    def block_exchanges(self) -> int:
        total = 0
        for site in self._sites.values():
            for session in site.hub.server.sessions:
                total += session.blocks_served
        return total

    def run(self, on_progress: Callable[[dict[str, Any]], None] | None = None) -> ShardResult:
        started = time.perf_counter()
        self.system.start()
        self.clock.call_later(SR_AT_S, self._submit)
        spec = self.spec
        while self._open > 0 and self.clock.now() < spec.duration_s:
            self.clock.run(until=min(self.clock.now() + spec.progress_interval_s, spec.duration_s))
            if on_progress is not None:
                on_progress({"time": self.clock.now(), **self.counts(), "block_exchanges": self.block_exchanges()})
        if self._open == 0:
            # Let what is in flight land (the last device's alerts to the DSP: N39, N49).
            self.clock.run(until=self.clock.now() + _SETTLE_S)
        results = []
        for eui, tracked in self.tracked.items():
            if tracked.state in (SUCCEEDED, FAILED):
                outcome, reason = tracked.state, tracked.reason
            else:
                outcome, reason = FAILED, f"unfinished ({tracked.state})"
            duration = (tracked.finished_at - SR_AT_S) if tracked.finished_at is not None and outcome == SUCCEEDED else None
            results.append(DeviceResult(eui, tracked.premises, tracked.device_type.value,
                                        tracked.fault.name if tracked.fault else None, outcome, reason, duration))
        finished = [t.finished_at for t in self.tracked.values() if t.finished_at is not None]
        simulated = (max(finished) if finished and self._open == 0 else self.clock.now())
        return ShardResult(results, self.block_exchanges(), simulated, time.perf_counter() - started)



def _ccs08_failure(alert: AlertRaised) -> str:
    """The fleet's reason for a CCS08 failure alert (0x8F89)."""
    match alert.cause:
        case TransferEnded(outcome=TransferOutcome.TIMED_OUT, phase=TimeoutPhase() as phase):
            return f"0x8F89 timed out ({phase.value})"
    reason = alert.details.get("reason")
    return f"0x8F89 {reason or TransferResult(alert.details['result']).name.lower()}"

# Premises simulated together on one clock. Results do not depend on which premises share a
# clock (each draws from its own seed), so a worker runs its range as consecutive waves of this
# many: the scheduler's heap and the objects the hot path touches stay small enough for the
# CPU caches. Measured on 400 premises, one worker: 24k block exchanges/s in waves of 25-50,
# 20k in waves of 100, 15k all on one clock.
WAVE_PREMISES = 40


def run_range(spec: FleetSpec, indices: range, on_progress: Callable[[dict[str, Any]], None] | None = None,
              *, wave: int = WAVE_PREMISES) -> ShardResult:
    """Run the premises ``indices`` as waves of at most ``wave``; one merged result."""
    if wave < 1:
        raise ValueError(f"wave must be at least 1 premises, got {wave}")
    started = time.perf_counter()
    results: list[DeviceResult] = []
    exchanges = 0
    simulated = 0.0
    finished_states: Counter[str] = Counter()
    finished_reasons: Counter[str] = Counter()
    for first in range(indices.start, indices.stop, wave):
        chunk = range(first, min(first + wave, indices.stop))
        with _CollectAfterWave():
            result = _run_wave(spec, chunk, indices.stop - chunk.stop, on_progress, exchanges, finished_states,
                               finished_reasons)
        results.extend(result.results)
        exchanges += result.block_exchanges
        simulated = max(simulated, result.simulated_s)
        for r in result.results:
            finished_states[r.outcome] += 1
            if r.outcome == FAILED:
                finished_reasons[r.reason or "unknown"] += 1
    return ShardResult(results, exchanges, simulated, time.perf_counter() - started)


class _CollectAfterWave:
    """No automatic garbage collection while a wave runs; one pass over what it allocated after.

    A wave allocates and frees hundreds of thousands of objects (frames, actions, timer entries),
    nearly all freed by reference counting, yet every 700 allocations would start a collection
    that walks the wave's live objects: 6-9 % of a premises' CPU. The wave's cyclic garbage (hubs,
    ports and the callbacks that point back at them) is collected in one young-generation pass
    once the wave has finished, so a worker's memory stays bounded by one wave."""

    __slots__ = ("_was_enabled",)

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *_exc: object) -> None:
        if self._was_enabled:
            gc.enable()
            gc.collect(0)


def _run_wave(spec: FleetSpec, chunk: range, later: int, on_progress: Callable[[dict[str, Any]], None] | None,
              exchanges: int, finished_states: Counter[str], finished_reasons: Counter[str]) -> ShardResult:
    """One wave on a fresh clock (``later``: premises of the range after it); the shard is
    garbage once this returns."""
    shard = Shard(spec, chunk)
    waiting = round(len(shard.tracked) / max(len(chunk), 1) * later)  # devices of later waves

    def progress(snapshot: dict[str, Any]) -> None:
        assert on_progress is not None
        states = Counter(snapshot["states"]) + finished_states
        states[IDLE] += waiting
        reasons = Counter(snapshot["failed"]) + finished_reasons
        on_progress({"time": snapshot["time"], "states": dict(states), "failed": dict(reasons),
                     "block_exchanges": exchanges + snapshot["block_exchanges"]})

    return shard.run(progress if on_progress is not None else None)
