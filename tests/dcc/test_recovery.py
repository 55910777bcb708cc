"""A DSP process that dies mid-flow and a new one on the same database: nothing accepted is lost or stuck.

The "crash" drops the first system without closing anything (what kill -9 leaves is the committed
database); the second system is built from the same scenario on the same file, on a fresh clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.dcc.messages import UserMessage
from emulator.dcc.premises import ESME_ID, IMPORT_SUPPLIER_ID, PPMID_ID
from emulator.dcc.service_requests import ReadFirmwareVersion, RequestHeader, UpdateFirmware, UpdatePPMIDFirmware
from emulator.dcc.smi import FirmwareStatus
from emulator.dcc.store import Store
from emulator.eui64 import format_eui64
from emulator.ota.image import parse_image
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import EventBus
from emulator.scenario.samples import load_sample
from emulator.scenario.spec import parse_scenario
from emulator.scenario.system import DccSystem

IMPORT = format_eui64(IMPORT_SUPPLIER_ID)
HOURS = 3600.0


def header(variant: str, counter: int, target: int = 0) -> RequestHeader:
    return RequestHeader(f"{IMPORT}:{format_eui64(target)}:{counter}", 8 if variant in ("11.1", "11.4") else 1,
                         variant.split(".")[0], variant, originator=IMPORT_SUPPLIER_ID, target=target,
                         counter=counter)


class Process:
    """One life of the DSP on ``db``; ``outbox`` plays the delivering outbox (keeps IDs, once each)."""

    def __init__(self, db: Path, outbox: dict[str, UserMessage], *, deadline: float | None = None,
                 command_deadline: float | None = None) -> None:
        self.clock = VirtualClock()
        self.store = Store(db)
        self.system = DccSystem.from_scenario(parse_scenario({}, source="default premises"), self.clock,
                                              EventBus(self.clock), store=self.store)
        self.system.dsp.set_distribution_deadline(deadline)
        self.system.dsp.set_command_deadline(command_deadline)
        self.system.restore_devices()
        self.system.add_sink(lambda m: outbox.setdefault(m.message_id, m))
        self.system.start()
        self.report = self.system.recover()


def images() -> tuple[bytes, bytes]:
    try:
        return load_sample("ESME", 0x0000), load_sample("PPMID", 0x0084)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_a_distribution_cut_short_by_a_crash_finishes_after_the_restart(tmp_path: Path) -> None:
    esme_image, ppmid_image = images()
    db, held = tmp_path / "dsp.db", {}
    first = Process(db, held)
    version = parse_image(esme_image).header.file_version
    assert first.system.submit(UpdateFirmware(header("11.1", 1), esme_image, version, (ESME_ID,))).accepted
    assert first.system.submit(UpdatePPMIDFirmware(header("11.4", 2), ppmid_image, version, (PPMID_ID,))).accepted
    first.clock.run(until=5.0)  # CSP checks and WAN delivery done; the HAN transfers are under way
    assert first.system.dsp.smi.update_in_progress(ESME_ID) is not None
    del first  # kill -9: nothing closed, only what was committed stays

    second = Process(db, held)
    assert second.report["distributions"] == 2
    second.clock.run(until=12 * HOURS)
    codes = {device: [m.code for m in held.values() if m.device == device] for device in (ESME_ID, PPMID_ID)}
    assert codes[ESME_ID] == ["N59", "N61", "N62", "0x8F72"]  # 0x8F72 in APS blocks, after the hub's CCS08
    assert codes[PPMID_ID][-3:] == ["N62", "N39", "N49"]
    smi = second.system.dsp.smi
    assert smi.update_in_progress(ESME_ID) is None and smi.update_in_progress(PPMID_ID) is None
    assert smi.require(ESME_ID).firmware_status is FirmwareStatus.IMAGE_HELD
    assert second.system.dsp.ledger.distributions() == []


def test_device_firmware_survives_a_restart_so_11_2_reads_what_the_smi_holds(tmp_path: Path) -> None:
    _esme_image, ppmid_image = images()
    db, held = tmp_path / "dsp.db", {}
    first = Process(db, held)
    version = parse_image(ppmid_image).header.file_version
    first.system.submit(UpdatePPMIDFirmware(header("11.4", 1), ppmid_image, version, (PPMID_ID,)))
    first.clock.run(until=12 * HOURS)
    assert first.system.dsp.smi.require(PPMID_ID).firmware_version == version
    del first

    second = Process(db, held)
    assert second.system.device(PPMID_ID).firmware.active_version == version
    read = ReadFirmwareVersion(header("11.2", 2, PPMID_ID), PPMID_ID)
    assert second.system.submit(read).response_code == "I99"
    second.clock.run(until=60.0)
    answer = [m for m in held.values() if m.request_id == read.header.request_id]
    assert [m.details["firmware_version"] for m in answer] == [f"{version:08X}"]


def test_an_11_2_pending_at_the_crash_is_answered_after_the_restart(tmp_path: Path) -> None:
    db, held = tmp_path / "dsp.db", {}
    first = Process(db, held)
    read = ReadFirmwareVersion(header("11.2", 1, ESME_ID), ESME_ID)
    assert first.system.submit(read).response_code == "I99"
    del first  # before the hub answered

    second = Process(db, held)
    assert second.report["commands"] == 1
    second.clock.run(until=60.0)
    assert [m.code for m in held.values() if m.request_id == read.header.request_id] == ["11.2"]
    again = second.system.submit(ReadFirmwareVersion(header("11.2", 1, ESME_ID), ESME_ID))
    assert again.response_code == "E1"  # the same RequestID counter is never executed twice


def test_messages_committed_but_not_handed_to_the_outbox_are_handed_after_the_restart(tmp_path: Path) -> None:
    esme_image, _ = images()
    db = tmp_path / "dsp.db"
    lost: dict[str, UserMessage] = {}
    first = Process(db, lost)
    first.system._sinks.clear()  # the outbox never got them (the process died between commit and put)
    version = parse_image(esme_image).header.file_version
    first.system.submit(UpdateFirmware(header("11.1", 1), esme_image, version, (ESME_ID,)))
    first.clock.run(until=60.0)
    assert lost == {}
    del first

    held: dict[str, UserMessage] = {}
    second = Process(db, held)
    assert second.report["messages"] == 4
    assert [m.code for m in held.values()] == ["N59", "N61", "N62", "0x8F72"]


def test_past_its_deadline_a_distribution_ends_with_n62_result_3_and_frees_the_device(tmp_path: Path) -> None:
    esme_image, _ = images()
    db, held = tmp_path / "dsp.db", {}
    first = Process(db, held, deadline=30.0)
    for behaviour in first.system.premises.values():
        behaviour.devices[ESME_ID].power_off()  # the meter never fetches its image
    version = parse_image(esme_image).header.file_version
    request = UpdateFirmware(header("11.1", 1), esme_image, version, (ESME_ID,))
    first.system.submit(request)
    first.clock.run(until=2 * HOURS)
    n62 = [m for m in held.values() if m.code == "N62"]
    assert [(m.request_id, m.details["result"]) for m in n62] == [(request.header.request_id, 3)]
    assert first.system.dsp.smi.update_in_progress(ESME_ID) is None
    retry = first.system.submit(UpdateFirmware(header("11.1", 2), esme_image, version, (ESME_ID,)))
    assert retry.accepted == (ESME_ID,)


def test_an_11_4_of_the_version_the_device_runs_ends_with_n62_result_3_and_frees_it(tmp_path: Path) -> None:
    _, ppmid_image = images()
    held: dict[str, UserMessage] = {}
    process = Process(tmp_path / "dsp.db", held)
    version = parse_image(ppmid_image).header.file_version
    process.system.submit(UpdatePPMIDFirmware(header("11.4", 1), ppmid_image, version, (PPMID_ID,)))
    process.clock.run(until=HOURS)
    again = UpdatePPMIDFirmware(header("11.4", 2), ppmid_image, version, (PPMID_ID,))
    assert process.system.submit(again).accepted == (PPMID_ID,)
    process.clock.run(until=8 * HOURS)
    answer = [m for m in held.values() if m.request_id == again.header.request_id]
    assert [(m.code, m.details.get("result")) for m in answer][-1] == ("N62", 3)
    assert process.system.dsp.smi.update_in_progress(PPMID_ID) is None


def test_11_1_to_the_comms_hub_itself_ends_with_n62_and_the_image_held(tmp_path: Path) -> None:
    from emulator.dcc.premises import CHF_ID

    esme_image, _ = images()
    held: dict[str, UserMessage] = {}
    process = Process(tmp_path / "dsp.db", held)
    chf = process.system.dsp.smi.require(CHF_ID)
    image = _retarget(esme_image, chf.model.image_type)
    version = parse_image(image).header.file_version
    request = UpdateFirmware(header("11.1", 1), image, version, (CHF_ID,))
    assert process.system.submit(request).accepted == (CHF_ID,)
    process.clock.run(until=HOURS)
    assert [m.code for m in held.values() if m.request_id == request.header.request_id] == ["N59", "N61", "N62"]
    assert process.system.dsp.smi.update_in_progress(CHF_ID) is None
    assert process.system.dsp.smi.require(CHF_ID).firmware_status is FirmwareStatus.IMAGE_HELD


def test_11_2_to_the_chf_and_gpf_is_answered_with_their_version(tmp_path: Path) -> None:
    from emulator.dcc.premises import CHF_ID, GPF_ID

    held: dict[str, UserMessage] = {}
    process = Process(tmp_path / "dsp.db", held)
    for counter, device in enumerate((CHF_ID, GPF_ID), start=1):
        read = ReadFirmwareVersion(header("11.2", counter, device), device)
        assert process.system.submit(read).response_code == "I99"
        process.clock.run(until=60.0 * counter)
        version = process.system.dsp.smi.require(device).firmware_version
        answer = [m for m in held.values() if m.request_id == read.header.request_id]
        assert [(m.code, m.details["firmware_version"]) for m in answer] == [("11.2", f"{version:08X}")]


def _retarget(image: bytes, image_type: int) -> bytes:
    """``image`` with its OTA header's image type changed (bytes 12-13, little-endian)."""
    return image[:12] + image_type.to_bytes(2, "little") + image[14:]


def test_an_11_2_its_device_never_answers_gets_e20_at_its_deadline_even_across_a_restart(tmp_path: Path) -> None:
    db, held = tmp_path / "dsp.db", {}
    first = Process(db, held, command_deadline=600.0)
    for site in first.system.premises.values():
        site.devices[ESME_ID].power_off()
    read = ReadFirmwareVersion(header("11.2", 1, ESME_ID), ESME_ID)
    assert first.system.submit(read).response_code == "I99"
    first.clock.run(until=60.0)
    del first

    second = Process(db, held, command_deadline=600.0)
    for site in second.system.premises.values():
        site.devices[ESME_ID].power_off()
    second.clock.run(until=HOURS)
    answer = [m for m in held.values() if m.request_id == read.header.request_id]
    assert [(m.code, m.details["response_code"]) for m in answer] == [("11.2", "E20")]
    from duis_schema import assert_valid
    from emulator.dcc.duis import UserMessageRenderer

    assert_valid(UserMessageRenderer().xml(answer[0], counter=1), "E20 response")  # DCC's DUIS XSD
    assert second.system.dsp.ledger.commands("pending") == {}
