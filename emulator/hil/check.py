"""``hil check``: is the bench ready? The dongle, its network, and each device under test.

Each finding is a :class:`Finding` (one JSON line, one JUnit test case). A device "answers"
when, after a unicast Image Notify (payload type 0, jitter 100), it sends a Query Next Image
Request within its ``answer_timeout_s``: that proves the radio knows it, the frame reached it
and its OTA client talks to us. The query is answered NO_IMAGE_AVAILABLE, so nothing downloads.
Sleepy devices (a GSME) ignore Image Notify; give them a timeout longer than their poll period.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from emulator.han.packet import OTA_CLUSTER, ApsPacket, DeliveryStatus, format_eui64
from emulator.ota import codec
from emulator.ota.frames import ImageNotify, QueryNextImageRequest, QueryNextImageResponse, Status

from .bench import Bench, BenchDevice

_LOGGER = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 20.0
"""How long the dongle gets to answer and bring its network up (bellows retries inside)."""


@dataclass
class Finding:
    """One thing checked: ``item`` names it (``dongle``, ``network.channel``, a device)."""

    item: str
    ok: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"event": "hil_check", "item": self.item, "ok": self.ok, "message": self.message,
                **self.details, "duration_s": round(self.duration_s, 3)}


async def open_bench_transport(bench: Bench, *, hub_eui64: int | None = None) -> Any:
    """Start bellows on the bench dongle (raises TransportError / TimeoutError if it will not)."""
    from emulator.han.ezsp.transport import open_ezsp_transport

    return await asyncio.wait_for(
        open_ezsp_transport(bench.dongle.path, baudrate=bench.dongle.baudrate,
                            flow_control=bench.dongle.flow_control, hub_eui64=hub_eui64),
        OPEN_TIMEOUT_S,
    )


async def check_bench(bench: Bench) -> list[Finding]:
    """Open the dongle, compare its network with the bench, and probe every device."""
    from emulator.han.transport import TransportError

    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        transport = await open_bench_transport(bench)
    except (TransportError, asyncio.TimeoutError, OSError) as exc:
        reason = str(exc) or "no answer within the timeout"
        return [Finding("dongle", False, f"{bench.dongle.path}: {reason}", duration_s=loop.time() - started)]
    try:
        radio = await transport.describe_radio()
        shown = {k: v for k, v in radio.items() if k != "network_key"}  # a key stays off reports
        findings = [Finding(
            "dongle", True,
            f"{radio.get('manufacturer')} {radio.get('board')}, firmware {radio.get('firmware')}, "
            f"EZSP v{radio.get('ezsp_version')}",
            shown, loop.time() - started,
        )]
        findings.extend(_network_findings(bench, radio))
        findings.append(await _cbke_finding(transport))
        probe = _Probe(transport)
        transport.set_receiver(probe.on_packet)
        results = await asyncio.gather(*(probe.check(device) for device in bench.devices))
        findings.extend(results)
        await probe.settle()
        return findings
    finally:
        await transport.stop()


async def _cbke_finding(transport: Any) -> Finding:
    """Informational (never fails the check): which CBKE suites the dongle holds data for."""
    from .cbke_probe import cbke_data, describe

    found = await cbke_data(transport)
    suite2, message = describe(found)
    return Finding("dongle.cbke", True, message, {"cbke": found, "cbke_suite2": suite2})


def _network_findings(bench: Bench, radio: dict[str, Any]) -> list[Finding]:
    wanted = bench.network
    up = radio.get("logical_type") == "Coordinator"
    findings = [Finding("network.state", up, f"{'up' if up else 'not up'}: the dongle is {radio.get('logical_type')}",
                        {"nwk": radio.get("nwk")})]
    pairs = [
        ("channel", wanted.channel, radio.get("channel"), str),
        ("pan_id", None if wanted.pan_id is None else f"0x{wanted.pan_id:04X}", radio.get("pan_id"), str),
        ("extended_pan_id", None if wanted.extended_pan_id is None else f"{wanted.extended_pan_id:016X}",
         radio.get("extended_pan_id"), str),
        ("network_key", None if wanted.network_key is None else wanted.network_key.hex().upper(),
         radio.get("network_key"), str),
    ]
    for name, expected, actual, _ in pairs:
        if expected is None:
            continue
        ok = str(expected) == str(actual)
        shown = "(as the bench says)" if ok else f"but the bench says {expected}"
        if name == "network_key":  # never print a key that is not the bench's own
            shown = "matches the bench" if ok else "differs from the bench"
            findings.append(Finding(f"network.{name}", ok, f"network key {shown}"))
            continue
        findings.append(Finding(f"network.{name}", ok, f"{name} is {actual} {shown}",
                                {"expected": expected, "actual": actual}))
    return findings


class _Probe:
    """Image Notify out, Query Next Image Request back, NO_IMAGE_AVAILABLE as the answer."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self._waiting: dict[int, asyncio.Future[QueryNextImageRequest]] = {}
        self._tsn = 0
        self.answers: list[asyncio.Future[DeliveryStatus]] = []

    async def settle(self, timeout: float = 5.0) -> None:
        """Let the NO_IMAGE_AVAILABLE answers reach the devices before the radio closes."""
        if self.answers:
            await asyncio.wait(self.answers, timeout=timeout)

    def on_packet(self, packet: ApsPacket) -> None:
        if packet.cluster != OTA_CLUSTER:
            return
        try:
            frame = codec.decode(packet.payload)
        except codec.FrameError as exc:
            _LOGGER.warning("%s sent a malformed OTA frame: %s", format_eui64(packet.src), exc)
            return
        if not isinstance(frame.command, QueryNextImageRequest):
            return
        answer = codec.encode(QueryNextImageResponse(Status.NO_IMAGE_AVAILABLE), tsn=frame.header.tsn)
        sent: asyncio.Future[DeliveryStatus] = asyncio.get_running_loop().create_future()
        self.answers.append(sent)
        self.transport.send(ApsPacket(self.transport.eui64, packet.src, self.transport.nwk, packet.src_nwk, answer),
                            lambda _p, status: _settle(sent, status))
        waiter = self._waiting.get(packet.src)
        if waiter is not None and not waiter.done():
            waiter.set_result(frame.command)

    async def check(self, device: BenchDevice) -> Finding:
        loop = asyncio.get_running_loop()
        started = loop.time()
        item = f"device {device.name}"
        nwk = await self.transport.resolve_nwk(device.eui64)
        if nwk is None:
            return Finding(item, False, "the dongle does not know this device: not joined (see docs/hil.md, "
                                        "joining with the install code)", duration_s=loop.time() - started)
        waiter = self._waiting[device.eui64] = loop.create_future()
        delivered: asyncio.Future[DeliveryStatus] = loop.create_future()
        self._tsn = (self._tsn + 1) & 0xFF
        notify = codec.encode(ImageNotify(0, 100), tsn=self._tsn)
        self.transport.send(ApsPacket(self.transport.eui64, device.eui64, self.transport.nwk, nwk, notify),
                            lambda _p, status: _settle(delivered, status))
        details: dict[str, Any] = {"device": format_eui64(device.eui64), "nwk": f"0x{nwk:04X}"}
        try:
            query = await asyncio.wait_for(waiter, device.answer_timeout_s)
        except asyncio.TimeoutError:
            status = delivered.result() if delivered.done() else None
            details["image_notify"] = status.value if status else "no report"
            return Finding(item, False, f"no Query Next Image Request within {device.answer_timeout_s:g} s "
                                        f"(Image Notify {details['image_notify']}; a sleepy device may need longer)",
                           details, loop.time() - started)
        finally:
            self._waiting.pop(device.eui64, None)
        details.update(manufacturer_code=f"0x{query.manufacturer_code:04X}", image_type=f"0x{query.image_type:04X}",
                       current_file_version=f"{query.current_file_version:08X}")
        if query.hardware_version is not None:
            details["hardware_version"] = f"0x{query.hardware_version:04X}"
        return Finding(item, True, f"answers: runs {details['current_file_version']} "
                                   f"(manufacturer {details['manufacturer_code']}, image type {details['image_type']})",
                       details, loop.time() - started)


def _settle(future: "asyncio.Future[DeliveryStatus]", status: DeliveryStatus) -> None:
    """Resolve ``future`` with the delivery outcome unless it already has one."""
    if not future.done():
        future.set_result(status)
