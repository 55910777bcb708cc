"""A transfer cut short by a kill of the process resumes at its offset in the next process.

The "kill" drops the first system without closing anything or running any shutdown code (what
kill -9 leaves is the committed database); the second system is built from the same scenario on
the same file, on a fresh virtual clock that starts again at zero.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from emulator.dcc.messages import UserMessage
from emulator.dcc.premises import ESME_ID, IMPORT_SUPPLIER_ID
from emulator.dcc.service_requests import RequestHeader, UpdateFirmware
from emulator.dcc.store import Store
from emulator.devices.device import EmulatedDevice
from emulator.devices.flash import SqliteDownloadFlash
from emulator.eui64 import format_eui64
from emulator.han.packet import OTA_CLUSTER, ApsPacket
from emulator.ota import codec
from emulator.ota.frames import ImageBlockRequest, QueryNextImageRequest
from emulator.ota.image import parse_image
from emulator.ota.sessions import SessionState, connect
from emulator.ota.transitions import ImageUpgradeStatus
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import Event, EventBus
from emulator.scenario.samples import load_sample
from emulator.scenario.spec import parse_scenario
from emulator.scenario.system import DccSystem

IMPORT = format_eui64(IMPORT_SUPPLIER_ID)
HOURS = 3600.0


class Process:
    """One life of ``serve``'s system on ``db``: the DSP's store and the HAN side's database."""

    def __init__(self, db: Path, outbox: dict[str, UserMessage]) -> None:
        self.clock = VirtualClock()
        self.bus = EventBus(self.clock)
        self.events: list[Event] = []
        self.bus.subscribe(self.events.append)
        self.han_db = connect(str(db))
        self.system = DccSystem.from_scenario(parse_scenario({}, source="default premises"), self.clock, self.bus,
                                              store=Store(db), han_db=self.han_db)
        self.requests: list[tuple[float, object]] = []  # (time, command) of every OTA request put on the air
        for site in self.system.premises.values():
            site.han.add_trace_hook(self._trace)
        self.system.restore_devices()
        self.system.add_sink(lambda m: outbox.setdefault(m.message_id, m))
        self.system.start()
        self.report = self.system.recover()

    def _trace(self, direction: str, packet: ApsPacket) -> None:
        if packet.cluster == OTA_CLUSTER and packet.dst == self.system.device(ESME_ID).client.server_eui64:
            self.requests.append((self.clock.now(), codec.decode(packet.payload).command))

    @property
    def esme(self) -> EmulatedDevice:
        device = self.system.device(ESME_ID)
        assert isinstance(device, EmulatedDevice)
        return device

    def run_until_offset(self, offset: int, within: float) -> None:
        deadline = self.clock.now() + within
        while self.esme.client.file_offset < offset:
            assert self.clock.now() < deadline, f"offset {self.esme.client.file_offset} < {offset} at {deadline} s"
            self.clock.run(until=self.clock.now() + 1.0)


def esme_image() -> bytes:
    try:
        return load_sample("ESME", 0x0000)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def submit_11_1(process: Process, image: bytes) -> None:
    version = parse_image(image).header.file_version
    header = RequestHeader(f"{IMPORT}:{format_eui64(0)}:1", 8, "11", "11.1", originator=IMPORT_SUPPLIER_ID,
                           target=0, counter=1)
    assert process.system.submit(UpdateFirmware(header, image, version, (ESME_ID,))).accepted


def test_a_transfer_killed_midway_resumes_at_its_offset_and_completes(tmp_path: Path) -> None:
    image = esme_image()
    db, held = tmp_path / "serve.db", dict[str, UserMessage]()
    first = Process(db, held)
    submit_11_1(first, image)
    first.run_until_offset(len(image) // 2, within=2 * HOURS)
    reached = first.esme.client.file_offset
    flash = first.esme.flash
    assert flash is not None
    kept = flash.flash.load(ESME_ID)
    assert kept is not None and 0 < kept[0].file_offset <= reached
    persisted = kept[0].file_offset
    assert reached - persisted < flash.flash.page_size  # throttled: at most a page behind
    del first, flash  # kill -9

    second = Process(db, held)
    client = second.esme.client
    assert client.image_upgrade_status is ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS
    assert client.file_offset == persisted
    session = second.system.premises[next(iter(second.system.premises))].hub.server.sessions.get(ESME_ID)
    assert session is not None and session.state is SessionState.DOWNLOADING and session.offset > 0
    second.clock.run(until=12 * HOURS)

    # the device asked again (Query Next Image), then went on from the offset it held in flash
    commands = [c for _, c in second.requests]
    assert isinstance(commands[0], QueryNextImageRequest)
    first_block = next(c for c in commands if isinstance(c, ImageBlockRequest))
    assert first_block.file_offset == persisted > 0
    restored = [e for e in second.events if e.event == "session_restored" and e.device == ESME_ID]
    assert restored and restored[0].fields["offset"] > 0
    started = [e for e in second.events if e.event == "download_started" and e.device == ESME_ID]
    assert [e.fields["offset"] for e in started] == [persisted]
    blocks = sum(1 for c in commands if isinstance(c, ImageBlockRequest))
    assert blocks < (len(image) - persisted) // 40 + 10  # the rest only, not the image again
    # the image the device verified is the one sent, byte for byte
    verified = [e for e in second.events if e.event == "image_verified" and e.device == ESME_ID]
    assert [e.fields["sha256"] for e in verified] == [hashlib.sha256(image).hexdigest()]
    codes = [m.code for m in held.values() if m.device == ESME_ID]
    assert codes == ["N59", "N61", "N62", "0x8F72"]  # the ESME's 0x8F72 crosses the tunnel in APS blocks
    assert second.system.dsp.smi.update_in_progress(ESME_ID) is None
    # nothing of the download is left in flash once it is over
    assert second.esme.flash is not None and second.esme.flash.flash.load(ESME_ID) is None


def test_flash_is_written_a_page_at_a_time_not_once_per_block(tmp_path: Path) -> None:
    image = esme_image()
    db, held = tmp_path / "serve.db", dict[str, UserMessage]()
    process = Process(db, held)
    submit_11_1(process, image)
    process.clock.run(until=12 * HOURS)
    flash = process.esme.flash
    assert flash is not None
    blocks = sum(1 for _, c in process.requests if isinstance(c, ImageBlockRequest))
    pages = -(-len(image) // flash.flash.page_size)
    assert isinstance(flash.flash, SqliteDownloadFlash)
    writes = flash.flash.writes
    assert blocks > 10 * pages  # many blocks a page
    assert pages <= writes <= pages + 4  # a write a page, plus start, completion and the end


def test_a_restart_without_a_download_in_flash_starts_from_offset_zero(tmp_path: Path) -> None:
    image = esme_image()
    db, held = tmp_path / "serve.db", dict[str, UserMessage]()
    first = Process(db, held)
    submit_11_1(first, image)
    first.run_until_offset(len(image) // 2, within=2 * HOURS)
    with sqlite3.connect(db) as conn:  # the device's flash was wiped (a replaced meter)
        conn.execute("DELETE FROM device_download")
        conn.execute("DELETE FROM device_download_chunk")
    del first

    second = Process(db, held)
    second.clock.run(until=12 * HOURS)
    first_block = next(c for _, c in second.requests if isinstance(c, ImageBlockRequest))
    assert first_block.file_offset == 0
    verified = [e for e in second.events if e.event == "image_verified" and e.device == ESME_ID]
    assert [e.fields["sha256"] for e in verified] == [hashlib.sha256(image).hexdigest()]
