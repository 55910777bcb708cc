"""A second 11.1 of the image an ESME already holds verified ends like the first, at once."""

from __future__ import annotations

from pathlib import Path

from emulator.dcc.premises import ESME_ID
from emulator.dcc.service_requests import UpdateFirmware
from emulator.ota.image import parse_image
from test_recovery import Process, header, images


def test_a_second_11_1_of_the_held_image_ends_with_n62_and_its_receipt_and_frees_the_esme(tmp_path: Path) -> None:
    """The ESME confirms the image it holds (Upgrade End Request SUCCESS) and reports its receipt
    (0x8F72) again, so the second distribution ends within seconds: N62 result 0 and the alert,
    both under the second RequestID, and the ESME takes the next request (no W110101)."""
    esme_image, _ppmid = images()
    held: dict = {}
    dsp_life = Process(tmp_path / "dsp.db", held)
    clock, dsp = dsp_life.clock, dsp_life.system.dsp
    version = parse_image(esme_image).header.file_version
    first = UpdateFirmware(header("11.1", 1), esme_image, version, (ESME_ID,))
    assert dsp_life.system.submit(first).accepted
    clock.run(until=clock.now() + 3600.0)
    assert dsp.smi.update_in_progress(ESME_ID) is None  # transferred and reported

    second = UpdateFirmware(header("11.1", 2), esme_image, version, (ESME_ID,))
    assert dsp_life.system.submit(second).accepted
    started = clock.now()
    clock.run(until=started + 120.0)
    about_second = [m for m in held.values() if m.request_id == second.header.request_id]
    n62 = [m for m in about_second if m.code == "N62"]
    assert [m.details["result"] for m in n62] == [0]
    assert sorted(m.code for m in about_second) == ["0x8F72", "N59", "N61", "N62"], sorted(m.code for m in about_second)
    assert dsp.smi.update_in_progress(ESME_ID) is None
    third = UpdateFirmware(header("11.1", 3), esme_image, version, (ESME_ID,))
    assert dsp_life.system.submit(third).accepted  # the ESME is free: not "update in progress"
