"""Benchmark: kill -9 ``serve`` at random moments of a mixed 11.1/11.2/11.3/11.4 load, restart it on
the same database each time, and count what was lost.

DCC's sample requests (``tests/dcc/data/duis``: 11.1, 11.4, 11.2 ECS52/CS08, 11.3 immediate,
future-dated and cancellation) go out from a few concurrent clients, each with a fresh RequestID
counter. A DCC User endpoint on 127.0.0.1 records every message ``serve`` delivers (by
``X-DCC-Message-ID``). After the last kill the service is restarted once more and left to finish;
then it prints:

- accepted: requests answered I99/W… (the client got the synchronous answer);
- delivered: distinct messages the User received; duplicated: deliveries of an ID already received
  (at-least-once: allowed, the receiver de-duplicates);
- lost: accepted requests whose outcome (11.2/11.3 response; 11.1/11.4 N62/N60/N39/CSP alert per
  accepted device) never arrived;
- stuck: devices still marked "update in progress" in the database at the end;
- HAN transfers interrupted by a kill (an emulated device's download in flash at the kill): how
  many the next process resumed at the offset held in flash (its first Image Block Request
  there, after a Query Next Image), how many started over from offset 0 (killed before the
  first 4 KiB page was written), and how many ended otherwise (e.g. overwritten by a newer
  distribution); with the resumed offsets.

Usage: ``python benchmarks/crash.py [--kills 50] [--clients 4] [--seed 1] [--settle 240]
[--project-images] [--json]``. DCC's sample 11.1/11.4 carry images of a few hundred bytes, whose HAN
transfers end well within a second; ``--project-images`` puts the project's TEST ONLY samples in
them instead (ESME 49 KB, PPMID 24 KB: transfers of 10-30 s, so kills land mid-transfer).
Network traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiohttp import ClientError, ClientSession, ClientTimeout, web

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "dcc" / "data" / "duis"
REQUESTS = {
    "11.1": ("11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML", "serviceD"),
    "11.4": ("11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML", "serviceD"),
    "11.2-ESME": ("ECS52_11.2_SUCCESS_REQUEST_DUIS.XML", "serviceS"),
    "11.2-PPMID": ("CS08_11.2_SUCCESS_REQUEST_DUIS.XML", "serviceS"),
    "11.3-now": ("CS06_11.3_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML", "serviceS"),
    "11.3-future": ("CS06_11.3_FUTURE_DATED_SUCCESS_REQUEST_DUIS.XML", "serviceS"),
    "11.3-cancel": ("CS06_11.3_CANCELLATION_SUCCESS_REQUEST_DUIS.XML", "serviceS"),
}
_REQUEST_ID = re.compile(rb"<sr:RequestID>([^<:]+):([^<:]+):(\d+)</sr:RequestID>")
_CODE = re.compile(rb"<sr:ResponseCode>([^<]+)</sr:ResponseCode>")
_SERVING = re.compile(r"serving DUIS on (http://[^\s]+)/api/v1/serviceD")
FINAL_DISTRIBUTION_CODES = {"N60", "N62", "N18", "N19", "N20", "N22", "N39"}


@dataclass
class Figures:
    kills: int = 0
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    unanswered: int = 0  # no synchronous answer (connection cut by the kill)
    edge_kills: int = 0  # --workers 2: kills of the edge process (the core restarts it), part of kills
    unavailable: int = 0  # 503
    delivered: int = 0
    duplicated: int = 0
    lost: int = 0
    stuck: int = 0
    lost_requests: list[str] = field(default_factory=list)
    seconds: float = 0.0
    transfers_interrupted: int = 0
    transfers_resumed: int = 0
    transfers_restarted: int = 0  # from offset 0: nothing in flash yet at the kill
    transfers_offset_lost: int = 0  # from offset 0 although flash held more (must be 0)
    transfers_ended_otherwise: int = 0
    resumed_offsets: list[int] = field(default_factory=list)


class Receiver:
    """The DCC User's endpoint: counts each message ID it is given."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.counts[request.headers.get("X-DCC-Message-ID", "?")] += 1
        return web.Response(text="ok")


def _template(name: str, image: bytes | None = None) -> bytes:
    data = (SAMPLES / name).read_bytes()
    data = re.sub(rb"\s*<ds:Signature.*</ds:Signature>", b"", data, flags=re.S)
    if image is not None:
        import base64

        from emulator.ota.image import parse_image

        version = f"{parse_image(image).header.file_version:08X}".encode()
        data = re.sub(rb"<sr:FirmwareImage>[^<]*</sr:FirmwareImage>",
                      b"<sr:FirmwareImage>" + base64.b64encode(image) + b"</sr:FirmwareImage>", data)
        data = re.sub(rb"<sr:FirmwareVersion>[^<]*</sr:FirmwareVersion>",
                      b"<sr:FirmwareVersion>" + version + b"</sr:FirmwareVersion>", data)
    return data


def project_images() -> dict[str, bytes]:
    """The project's TEST ONLY sample images for the 11.1 (ESME) and 11.4 (PPMID) requests."""
    sys.path.insert(0, str(ROOT))
    from emulator.scenario.samples import load_sample

    return {"11.1": load_sample("ESME", 0x0000), "11.4": load_sample("PPMID", 0x0084)}


class Load:
    """Clients sending DCC's sample requests with increasing counters; records the answers."""

    def __init__(self, rng: random.Random, clients: int, images: dict[str, bytes] | None = None) -> None:
        self.rng = rng
        self.clients = clients
        images = images or {}
        self.templates = {kind: (_template(name, images.get(kind)), path) for kind, (name, path) in REQUESTS.items()}
        self.counter = int(time.time() * 1000)
        self.accepted: dict[str, str] = {}  # request ID -> kind
        self.figures = Figures()
        self.base_url = ""

    def _next(self) -> tuple[str, str, bytes]:
        kind = self.rng.choice(list(self.templates))
        body, path = self.templates[kind]
        self.counter += 1
        counter = str(self.counter).encode()
        body = _REQUEST_ID.sub(lambda m: b"<sr:RequestID>" + m.group(1) + b":" + m.group(2) + b":" + counter
                               + b"</sr:RequestID>", body, count=1)
        match = _REQUEST_ID.search(body)
        request_id = b":".join(match.groups()).decode() if match else "?"
        return kind, request_id, body

    async def client(self, session: ClientSession, stop: asyncio.Event) -> None:
        while not stop.is_set():
            kind, request_id, body = self._next()
            self.figures.sent += 1
            try:
                async with session.post(f"{self.base_url}/api/v1/{self.templates[kind][1]}", data=body,
                                        headers={"Content-Type": "application/xml"}) as reply:
                    text = await reply.read()
                    if reply.status == 503:
                        self.figures.unavailable += 1
                        await asyncio.sleep(0.05)
                        continue
                    code = _CODE.search(text)
                    if code and code.group(1).decode().startswith(("I", "W")):
                        self.accepted[request_id] = kind
                        self.figures.accepted += 1
                    else:
                        self.figures.refused += 1
            except (ClientError, asyncio.TimeoutError, ConnectionError):
                self.figures.unanswered += 1
                await asyncio.sleep(0.05)
            await asyncio.sleep(self.rng.uniform(0.0, 0.05))


def start_serve(db: Path, endpoint: str, log: Path, extra: list[str] | None = None, *,
                code: Path = ROOT, prefix: list[str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``serve`` from the checkout ``code`` (default this one), its command after ``prefix`` (a profiler)."""
    err = open(log, "ab")
    process = subprocess.Popen(
        [*(prefix or []), sys.executable, "-m", "emulator.cli", "serve", "--db", str(db), "--port", "0",
         "--user-endpoint", endpoint, "--journal", "", "--json", *(extra or [])],
        cwd=code, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONPATH": str(code)},
    )
    start = log.stat().st_size if log.exists() else 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}; see {log}")
        with open(log, "rb") as f:
            f.seek(max(0, start - 4096))
            found = _SERVING.findall(f.read().decode(errors="replace"))
        if found:
            return process, found[-1]
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"serve did not start within 60 s; see {log}")


def outcomes(db: Path, delivered: set[str]) -> dict[str, set[tuple[str, str | None, int | None]]]:
    """Request ID -> {(code, device, CCS08 result)} of the delivered messages."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT message_id, record FROM outbox").fetchall()
    finally:
        conn.close()
    found: dict[str, set[tuple[str, str | None, int | None]]] = {}
    for message_id, record in rows:
        if message_id not in delivered:
            continue
        data = json.loads(record)
        result = (data.get("details") or {}).get("result")
        found.setdefault(data.get("request_id") or "", set()).add((data["code"], data.get("device"), result))
    return found


def accepted_devices(db: Path) -> dict[str, int]:
    """Request ID -> how many devices the DSP accepted (its audit trail)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT request_id, COUNT(*) FROM sat WHERE event='DspAccepted' GROUP BY request_id")
        return {rid: count for rid, count in rows}
    finally:
        conn.close()


def stuck_devices(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM smi_update_in_progress").fetchone()[0])
    finally:
        conn.close()


def interrupted_downloads(db: Path) -> dict[str, tuple[int, int]]:
    """Device (EUI-64 as the timeline writes it) -> (file version, offset held in flash), for
    every download in progress in the database (read after a kill)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT eui64, file_version, file_offset FROM device_download WHERE status = 1").fetchall()
    except sqlite3.OperationalError:  # no table yet: nothing was ever downloaded
        return {}
    finally:
        conn.close()
    return {_eui_text(eui % (1 << 64)): (version, offset) for eui, version, offset in rows}


def _eui_text(eui: int) -> str:
    return "-".join(f"{b:02X}" for b in eui.to_bytes(8, "big"))


def first_downloads(log: Path, start: int) -> dict[str, tuple[int, int]]:
    """Device -> (file version, offset) of its first ``download_started`` in the timeline
    written after byte ``start`` of ``log`` (one life of ``serve``)."""
    first: dict[str, tuple[int, int]] = {}
    with open(log, "rb") as f:
        f.seek(start)
        for line in f:
            if b'"download_started"' not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line cut by the kill
            device = event.get("device")
            if event.get("event") == "download_started" and device and device not in first:
                first[device] = (int(event.get("file_version", "0"), 16), int(event.get("offset", 0)))
    return first


def count_resumed(figures: Figures, held: dict[str, tuple[int, int]], first: dict[str, tuple[int, int]],
                  now_held: dict[str, tuple[int, int]] | None) -> dict[str, tuple[int, int]]:
    """Judge the downloads ``held`` at the last kill by how the next life started them
    (``first``); one that life never reached (killed before the device asked again) is judged
    in the life after, if it is still in flash then (``now_held``; None: the last life)."""
    for device, (version, offset) in held.items():
        started = first.get(device)
        if started is None and now_held is not None and device in now_held:
            continue  # still waiting in flash: the new entry stands for it
        figures.transfers_interrupted += 1
        if started is None or started[0] != version:
            figures.transfers_ended_otherwise += 1
        elif started[1] == offset and offset > 0:
            figures.transfers_resumed += 1
            figures.resumed_offsets.append(offset)
        elif started[1] == 0 and offset == 0:
            figures.transfers_restarted += 1
        elif started[1] == 0:
            figures.transfers_offset_lost += 1
        else:
            figures.transfers_ended_otherwise += 1
    return now_held or {}


def finished(kind: str, seen: set[tuple[str, str | None, int | None]]) -> bool:
    codes = {code for code, _, _ in seen}
    if kind.startswith("11.2"):
        return "11.2" in codes
    if kind.startswith("11.3"):
        return "11.3" in codes
    if kind == "11.1":
        return bool(codes & FINAL_DISTRIBUTION_CODES)
    return bool(codes & {"N39", "N60", "N18", "N19", "N20", "N22"}) or any(
        code == "N62" and result not in (0, None) for code, _, result in seen)


def edge_pid(core_pid: int) -> int | None:
    """``serve --workers 2``: the edge process (the core's child)."""
    try:
        with open(f"/proc/{core_pid}/task/{core_pid}/children") as f:
            children = f.read().split()
    except OSError:
        return None
    return int(children[0]) if children else None


async def crash_loop(kills: int, *, clients: int = 4, seed: int = 1, settle: float = 240.0,
                     workdir: Path | None = None, min_gap: float = 0.3, max_gap: float = 3.0,
                     images: dict[str, bytes] | None = None, workers: int = 1,
                     edge_share: float = 0.3) -> Figures:
    """With ``workers`` 2, ``serve --workers 2``: a share ``edge_share`` of the kills hit the edge
    process (its core starts it again; ``serve`` is not restarted), the others the core (the
    edge dies with it; ``serve`` is restarted)."""
    rng = random.Random(seed)
    # The kills' moments and targets come from their own generator, so a seed gives the same
    # kills whatever the clients drew meanwhile (the load's draws depend on real timing).
    chooser = random.Random(f"kills:{seed}")
    extra = ["--workers", str(workers)] if workers != 1 else []
    started = time.monotonic()
    folder = Path(workdir or tempfile.mkdtemp(prefix="ch-crash-"))
    db, log = folder / "serve.db", folder / "serve.log"
    receiver = Receiver()
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/user", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    endpoint = f"http://127.0.0.1:{port}/user"
    load = Load(rng, clients, images)
    held: dict[str, tuple[int, int]] = {}  # downloads in flash at the last kill
    try:
        async with ClientSession(timeout=ClientTimeout(total=15)) as session:
            process: subprocess.Popen[bytes] | None = None
            life = 0
            for _ in range(kills):
                if process is None:
                    life = log.stat().st_size if log.exists() else 0
                    process, load.base_url = await asyncio.to_thread(start_serve, db, endpoint, log, extra)
                stop = asyncio.Event()
                tasks = [asyncio.create_task(load.client(session, stop)) for _ in range(clients)]
                await asyncio.sleep(chooser.uniform(min_gap, max_gap))
                hit_edge = workers == 2 and chooser.random() < edge_share
                edge = edge_pid(process.pid) if hit_edge else None
                if edge is not None:
                    os.kill(edge, signal.SIGKILL)
                    load.figures.edge_kills += 1
                else:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                load.figures.kills += 1
                stop.set()
                await asyncio.gather(*tasks)
                if edge is None:
                    process = None
                    held = count_resumed(load.figures, held, first_downloads(log, life), interrupted_downloads(db))
            if process is None:
                life = log.stat().st_size if log.exists() else 0
                process, load.base_url = await asyncio.to_thread(start_serve, db, endpoint, log, extra)
            try:
                deadline = time.monotonic() + settle
                while time.monotonic() < deadline:
                    await asyncio.sleep(1.0)
                    seen = outcomes(db, set(receiver.counts))
                    targets = accepted_devices(db)
                    if all(finished(kind, seen.get(rid, set())) for rid, kind in load.accepted.items()
                           if targets.get(rid) or kind not in ("11.1", "11.4")) \
                            and stuck_devices(db) == 0:
                        break
            finally:
                process.send_signal(signal.SIGTERM)
                await asyncio.to_thread(process.wait, 30)
            count_resumed(load.figures, held, first_downloads(log, life), None)
    finally:
        await runner.cleanup()
    figures = load.figures
    seen = outcomes(db, set(receiver.counts))
    targets = accepted_devices(db)
    for rid, kind in list(load.accepted.items()):
        if kind in ("11.1", "11.4") and not targets.get(rid):  # W110101/W110401 with every device refused
            del load.accepted[rid]
            figures.accepted -= 1
            figures.refused += 1
    figures.lost_requests = sorted(f"{kind} {rid}" for rid, kind in load.accepted.items()
                                   if not finished(kind, seen.get(rid, set())))
    figures.lost = len(figures.lost_requests)
    figures.delivered = len(receiver.counts)
    figures.duplicated = sum(count - 1 for count in receiver.counts.values())
    figures.stuck = stuck_devices(db)
    figures.seconds = round(time.monotonic() - started, 1)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle", type=float, default=240.0, help="seconds to let the last run finish")
    parser.add_argument("--project-images", action="store_true",
                        help="11.1/11.4 carry the project's 24-49 KB TEST ONLY samples (transfers a kill can cut)")
    parser.add_argument("--workers", type=int, choices=(1, 2), default=1,
                        help="2: serve --workers 2 (core + edge process); --edge-share of the kills hit the edge")
    parser.add_argument("--edge-share", type=float, default=0.3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(crash_loop(args.kills, clients=args.clients, seed=args.seed, settle=args.settle,
                                     images=project_images() if args.project_images else None,
                                     workers=args.workers, edge_share=args.edge_share))
    if args.json:
        print(json.dumps(asdict(figures), indent=2))
    else:
        split = f" (--workers 2: {figures.edge_kills} of the edge, {figures.kills - figures.edge_kills} of the core)" \
            if args.workers == 2 else ""
        print(f"kill -9 of serve: {figures.kills} kills{split}, {figures.seconds} s")
        print(f"  requests sent {figures.sent}: accepted {figures.accepted}, refused {figures.refused}, "
              f"503 {figures.unavailable}, no answer (cut by a kill) {figures.unanswered}")
        print(f"  messages delivered {figures.delivered}, duplicated deliveries {figures.duplicated}")
        print(f"  lost (accepted, outcome never delivered) {figures.lost}   [target 0]")
        print(f"  stuck (update in progress at the end) {figures.stuck}   [target 0]")
        for line in figures.lost_requests[:20]:
            print(f"    lost: {line}")
        offsets = sorted(figures.resumed_offsets)
        print(f"  HAN transfers interrupted by a kill {figures.transfers_interrupted}: resumed at their offset "
              f"{figures.transfers_resumed}, started over from 0 {figures.transfers_restarted} (killed before the "
              f"first page was in flash), from 0 although flash held more {figures.transfers_offset_lost} [target 0], "
              f"ended otherwise {figures.transfers_ended_otherwise}")
        if offsets:
            print(f"    resumed at offset (bytes): min {offsets[0]}, median {offsets[len(offsets) // 2]}, "
                  f"max {offsets[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
