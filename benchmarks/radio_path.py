"""Radio-path benchmark: N device sessions downloading at once through bellows and the dongle emulator.

    .venv/bin/python benchmarks/radio_path.py [--json] [--sessions 100] [--seconds 10] [--ezsp-version 13]

One emulated EZSP dongle with N emulated PPMIDs behind it (no air latency of its own), the real
Comms Hub on bellows over ``socket://``, the TEST ONLY PPMID image offered to all. Measured over a
window of ``--seconds`` once every session has started:

* block exchanges per second (Image Block Responses handed to bellows);
* latency from an Image Block Request received by the hub's transport (its ``rx`` trace hook)
  to the matching Image Block Response handed to bellows (``send_packet`` entered): the hub's own
  turnaround, including the event-loop queueing that N sessions cause, not the radio's.

Everything runs in one process and one event loop, so the figures include bellows, the NCP
emulator and the emulated devices sharing one CPU core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator.dcc.premises import MANUFACTURER_CODE, DeviceSpec, PremisesSpec  # noqa: E402
from emulator.gbcs.codes import DeviceType  # noqa: E402
from emulator.han.ezsp.ncp import EzspNcp  # noqa: E402
from emulator.scenario.ezsp_sim import premises_devices  # noqa: E402
from emulator.han.ezsp.transport import open_ezsp_transport  # noqa: E402
from emulator.han.packet import ApsPacket  # noqa: E402
from emulator.han.virtual import VirtualHan  # noqa: E402
from emulator.hub.comms_hub import CommsHub  # noqa: E402
from emulator.runtime.clock import AsyncioClock  # noqa: E402
from emulator.runtime.events import EventBus  # noqa: E402
from emulator.scenario.samples import load_sample  # noqa: E402

HUB = 0x00DB1234567890A2
IMAGE_BLOCK_REQUEST = 0x03
IMAGE_BLOCK_RESPONSE = 0x05


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def measure(sessions: int, seconds: float, ezsp_version: int) -> dict[str, Any]:
    clock = AsyncioClock()
    bus = EventBus(clock)
    devices = tuple(DeviceSpec(0x00DB123400000000 + i, DeviceType.PPMID, MANUFACTURER_CODE, 0x0084, 0x1200, 0xACDC0001)
                    for i in range(1, sessions + 1))
    built: dict[int, Any] = {}
    ncp = EzspNcp(ezsp_version=ezsp_version, han=VirtualHan(clock, latency=0.0),
                  populate=premises_devices(PremisesSpec("BENCH", HUB, devices), bus, devices=built))
    await ncp.start("127.0.0.1", 0)
    transport = await open_ezsp_transport(ncp.url, hub_eui64=HUB)
    received: dict[tuple[int, int], float] = {}
    latencies: list[float] = []
    started: set[int] = set()
    window: dict[str, float] = {}
    exchanges = 0

    def on_rx(direction: str, packet: ApsPacket) -> None:
        data = packet.payload
        if direction == "rx" and len(data) > 2 and data[2] == IMAGE_BLOCK_REQUEST and not data[0] & 0x04:
            received[(packet.src_nwk, data[1])] = time.perf_counter()
            started.add(packet.src_nwk)
            if len(started) == sessions and "start" not in window:
                window["start"] = time.perf_counter()

    transport.add_trace_hook(on_rx)
    send_packet = transport.app.send_packet

    async def timed_send_packet(packet: Any) -> None:
        nonlocal exchanges
        data = bytes(packet.data.serialize())
        if len(data) > 2 and data[2] == IMAGE_BLOCK_RESPONSE:
            at = received.pop((int(packet.dst.address), data[1]), None)
            if at is not None and "start" in window and "end" not in window:
                latencies.append(time.perf_counter() - at)
                exchanges += 1
        await send_packet(packet)

    transport.app.send_packet = timed_send_packet  # type: ignore[method-assign]
    hub = CommsHub(HUB, transport, clock, bus)
    hub.add_image(load_sample("PPMID", 0x0084))
    try:
        deadline = time.perf_counter() + 60.0
        while "start" not in window and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        if "start" not in window:
            raise RuntimeError(f"only {len(started)} of {sessions} sessions started downloading within 60 s")
        await asyncio.sleep(seconds)
        window["end"] = time.perf_counter()
    finally:
        await transport.stop()
        await ncp.stop()
    elapsed = window["end"] - window["start"]
    return {
        "sessions": sessions,
        "ezsp_version": ezsp_version,
        "window_s": round(elapsed, 3),
        "exchanges": exchanges,
        "exchanges_per_s": round(exchanges / elapsed, 1),
        "p50_ms": round(1000 * percentile(latencies, 50), 3),
        "p99_ms": round(1000 * percentile(latencies, 99), 3),
        "max_ms": round(1000 * max(latencies), 3),
        "mean_ms": round(1000 * statistics.fmean(latencies), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--sessions", type=int, default=100, help="concurrent device sessions (default 100)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window (default 10 s)")
    parser.add_argument("--ezsp-version", type=int, choices=(8, 13), default=13)
    args = parser.parse_args(argv)
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")
    logging.basicConfig(level=logging.ERROR)
    result = asyncio.run(measure(args.sessions, args.seconds, args.ezsp_version))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['sessions']} sessions over EZSP v{result['ezsp_version']} via bellows: "
              f"{result['exchanges_per_s']} block exchanges/s over {result['window_s']} s; "
              f"hub turnaround p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
