"""Run the device checks on one device under test and collect a :class:`CertifyReport`.

Each B check gets fresh sessions (:mod:`.session`) from a :class:`SessionFactory`: virtual
(an emulated device on a virtual HAN, simulated time) or bench (the real device behind a dongle,
wall time). C and D checks report not available with what they wait for.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

from emulator.certify.catalogue import BY_ID, CATALOGUE
from emulator.certify.image_run import ImageOptions
from emulator.certify.model import Check, CheckResult, Group, Verdict
from emulator.certify.runner import CertifyReport, image_identity, load_run
from emulator.devices.verification import TrustedKeys
from emulator.ota.policy import ServerPolicy

from .checks import DEVICE_CHECKS, DeviceRun
from .gbcs_checks import GBCS_CHECKS
from .network_checks import NETWORK_CHECKS
from .dut import DeviceUnderTest
from .session import AirFrame, CheckSession, GbcsFrame, JoinAttempt, KeExchange, VirtualSession

_LOGGER = logging.getLogger(__name__)

SessionFactory = Callable[[ServerPolicy, int], CheckSession]
"""A fresh session: the test policy, and the endpoint the hub's OTA server is on."""
_MAX_FRAMES = 14
_MAX_TIMELINE = 16


def select_device_checks(only: str | None) -> list[Check[Any]]:
    """B, C and D checks (or those ``only`` names); ``ValueError`` for an unknown or an A ID."""
    if only is None:
        return [c for c in CATALOGUE if c.group is not Group.IMAGE]
    chosen: list[Check[Any]] = []
    for raw in only.split(","):
        check_id = raw.strip().upper()
        if not check_id:
            continue
        check = BY_ID.get(check_id)
        if check is None:
            raise ValueError(f"--only: unknown check {raw.strip()!r} (known: A1-A12, B1-B16, C1-C7, D1-D6)")
        if check.group is Group.IMAGE:
            raise ValueError(f"--only: {check_id} is an image check; run it with `ch-emulator certify image`")
        if check not in chosen:
            chosen.append(check)
    if not chosen:
        raise ValueError("--only: no check named")
    return chosen


def virtual_factory(dut: DeviceUnderTest, trusted_key: TrustedKeys) -> SessionFactory:
    """Sessions with ``dut`` emulated on a virtual HAN (its fault's air rule, if any, armed)."""
    build = dut.builder(trusted_key)

    def open_session(policy: ServerPolicy, endpoint: int) -> CheckSession:
        session = VirtualSession(build, dut.eui64, policy, hub_eui64=dut.hub_eui64, endpoint=endpoint)
        if dut.frames_rule is not None:
            from emulator.scenario.injection import AirFaults

            air = AirFaults({dut.eui64: dut.frames_rule})
            air.armed = True
            session.han.set_manipulator(air)
        return session

    return open_session


def certify_device(dut: DeviceUnderTest, image_source: str, image: bytes, factory: SessionFactory,
                   signing_key: EllipticCurvePrivateKey, *, only: str | None = None,
                   pcap_dir: Path | None = None, parameters: dict[str, Any] | None = None) -> CertifyReport:
    checks = select_device_checks(only)
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.perf_counter()
    results = []
    queried: str | None = None  # how the device describes itself in its first Query Next Image Request
    for check in checks:
        function = (DEVICE_CHECKS.get(check.check_id) or GBCS_CHECKS.get(check.check_id)
                    or NETWORK_CHECKS.get(check.check_id))
        if function is None:
            results.append(check.not_available())
            continue
        run = DeviceRun(dut, image, signing_key, factory)
        check_started = time.perf_counter()
        try:
            outcome = function(run)
            result = outcome.result(check)
        finally:
            for session in run.sessions:
                session.close()
        simulated = sum(s.now() for s in run.sessions)
        budget = (f"{simulated:.0f} s simulated in {len(run.sessions)} session(s), "
                  f"{time.perf_counter() - check_started:.2f} s wall" if dut.virtual
                  else f"{simulated:.0f} s wall in {len(run.sessions)} session(s)")
        if queried is None:
            queried = _first_query(run.sessions)
        has_frames = any(session.frames for session in run.sessions)
        pcap = _write_pcap(pcap_dir, check.check_id, run.sessions) if pcap_dir is not None and has_frames else None
        result = CheckResult(result.check_id, result.title, result.verdict, result.evidence,
                             timeline=_timeline(run.sessions), frames=_frames(run.sessions, outcome.marked),
                             pcap=pcap, budget=budget)
        _LOGGER.info("%s %s: %s", result.check_id, result.verdict.value, result.summary)
        results.append(result)
    elapsed = time.perf_counter() - clock
    image_run = load_run(image_source, image, ImageOptions())
    return CertifyReport(
        command="certify device", subject=dut.name, identity=image_identity(image_run),
        parameters=dict(parameters or {}), results=tuple(results),
        sources={check.check_id: check.source for check in checks}, started=started, elapsed_s=elapsed,
        device={**dut.identity(), "queried_as": queried},
    )


def _first_query(sessions: list[CheckSession]) -> str | None:
    from emulator.ota.frames import QueryNextImageRequest

    for session in sessions:
        for frame in session.received(QueryNextImageRequest):
            q = frame.command
            hardware = "none" if q.hardware_version is None else f"0x{q.hardware_version:04X}"
            return (f"manufacturer 0x{q.manufacturer_code:04X}, image type 0x{q.image_type:04X}, "
                    f"file version 0x{q.current_file_version:08X}, hardware {hardware}")
    return None


def _session_of(sessions: list[CheckSession], frame: AirFrame | GbcsFrame) -> tuple[int, CheckSession] | None:
    for number, session in enumerate(sessions, 1):
        if any(f is frame for f in session.frames) or any(f is frame for f in session.gbcs_frames):
            return number, session
    return None


def _frames(sessions: list[CheckSession], marked: list[object]) -> tuple[str, ...]:
    lines = []
    seen: set[int] = set()
    for item in marked:
        if isinstance(item, (JoinAttempt, KeExchange)):
            number = next((n for n, s in enumerate(sessions, 1)
                           if any(j is item for j in (*getattr(s, "joins", ()), *getattr(s, "ke_frames", ())))), 0)
            lines.append(f"session {number}: {item.describe()}")
            continue
        if not isinstance(item, (AirFrame, GbcsFrame)) or id(item) in seen:
            continue
        seen.add(id(item))
        found = _session_of(sessions, item)
        if found is None:
            continue
        number, session = found
        lines.append(f"session {number}: {item.describe(session.started)}")
    if len(lines) > _MAX_FRAMES:
        lines = lines[:_MAX_FRAMES] + [f"... and {len(lines) - _MAX_FRAMES} more"]
    total = sum(len(s.frames) for s in sessions)
    if total:
        lines.append(f"{total} OTA frames at the hub in {len(sessions)} session(s)")
    return tuple(lines)


_QUIET = frozenset({"transfer_progress"})


def _timeline(sessions: list[CheckSession]) -> tuple[str, ...]:
    lines: list[str] = []
    for number, session in enumerate(sessions, 1):
        events = [e for e in session.events if e.event not in _QUIET]
        shown = events if len(events) <= _MAX_TIMELINE else events[:_MAX_TIMELINE // 2] + events[-_MAX_TIMELINE // 2:]
        for index, event in enumerate(shown):
            if len(events) > _MAX_TIMELINE and index == _MAX_TIMELINE // 2:
                lines.append(f"session {number}: ... {len(events) - _MAX_TIMELINE} events ...")
            fields = " ".join(f"{k}={v}" for k, v in event.fields.items())
            lines.append(f"session {number}: {event.time - session.started:9.3f} s  {event.source}  "
                         f"{event.event}  {fields}".rstrip())
    return tuple(lines)


def _write_pcap(folder: Path, check_id: str, sessions: list[CheckSession]) -> str:
    """Every OTA frame of the check's sessions, one after the other (1 s apart), as a pcap."""
    from emulator.han.pcap import PcapWriter
    from emulator.scenario.system import SCENARIO_EPOCH

    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / f"{check_id}.pcap").resolve()  # absolute: the HTML report links it from anywhere
    offset = 0.0
    with PcapWriter(path, epoch=SCENARIO_EPOCH.timestamp()) as writer:
        for session in sessions:
            for frame in session.frames:
                writer.write(frame.packet, offset + frame.time - session.started)
            offset += session.now() + 1.0
    return str(path)


def verdict_counts(report: CertifyReport) -> dict[Verdict, int]:
    return {verdict: report.count(verdict) for verdict in Verdict}
