"""The DCC flow end to end: DSP and CSP driving the emulated Comms Hub and devices on the virtual HAN.

Fakes stop here: the hub transfers the sample images over ZigBee OTA, the devices verify and
activate them, and the DSP hears about it only through what the hub sends upstream.
"""

from __future__ import annotations

import pytest

pytest.importorskip("emulator.scenario.premises")

from emulator.eui64 import format_eui64  # noqa: E402
from emulator.dcc.messages import UserMessage  # noqa: E402
from emulator.dcc.premises import (  # noqa: E402
    ESME_ID,
    GAS_SUPPLIER_ID,
    IMPORT_SUPPLIER_ID,
    PPMID_ID,
    default_premises,
)
from emulator.dcc.service_requests import (  # noqa: E402
    ActivateFirmware,
    ReadFirmwareVersion,
    RequestHeader,
    UpdateFirmware,
    UpdatePPMIDFirmware,
)
from emulator.dcc.smi import FirmwareStatus  # noqa: E402
from emulator.dcc.system import build_dcc  # noqa: E402
from emulator.ota.image import parse_image  # noqa: E402
from emulator.runtime.clock import VirtualClock  # noqa: E402
from emulator.runtime.events import EventBus  # noqa: E402
from emulator.scenario.premises import Premises  # noqa: E402
from emulator.scenario.samples import load_sample, trusted_key  # noqa: E402

IMPORT = format_eui64(IMPORT_SUPPLIER_ID)
HOURS = 3600.0


def header(variant: str, counter: int, target: int = 0) -> RequestHeader:
    return RequestHeader(f"{IMPORT}:{format_eui64(target)}:{counter}", 8 if variant in ("11.1", "11.4") else 1,
                         variant.split(".")[0], variant, originator=IMPORT_SUPPLIER_ID, target=target,
                         counter=counter)


def test_11_4_then_11_1_11_3_11_2_against_the_emulated_hub() -> None:
    try:
        ppmid_image, esme_image = load_sample("PPMID", 0x0084), load_sample("ESME", 0x0000)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    clock = VirtualClock()
    spec = default_premises()
    premises = Premises(spec, clock, EventBus(clock), trusted_key=trusted_key())
    messages: list[UserMessage] = []
    dcc = build_dcc(clock, messages.append, premises=[spec])
    dcc.add_hub(premises.hub)
    premises.start()
    new_version = parse_image(ppmid_image).header.file_version

    ppmid_sr = UpdatePPMIDFirmware(header("11.4", 1), ppmid_image, new_version, (PPMID_ID,))
    assert dcc.dsp.submit(ppmid_sr).accepted == (PPMID_ID,)
    esme_sr = UpdateFirmware(header("11.1", 2), esme_image, new_version, (ESME_ID,))
    assert dcc.dsp.submit(esme_sr).accepted == (ESME_ID,)
    clock.run(until=6 * HOURS)

    ppmid_codes = [m.code for m in messages if m.device == PPMID_ID]
    assert ppmid_codes == ["N59", "N61", "N62", "N39", "N49"]
    assert [m.recipient for m in messages if m.code == "N59"] == [format_eui64(GAS_SUPPLIER_ID)] * 2
    assert dcc.dsp.smi.require(PPMID_ID).firmware_version == new_version
    esme = dcc.dsp.smi.require(ESME_ID)
    # The meter sends 0x8F72 with its Upgrade End Request, but in three APS blocks through
    # the tunnel: the hub's CCS08 (N62) reaches the DSP first; both reach the requester.
    esme_messages = [m for m in messages if m.device == ESME_ID]
    assert [m.code for m in esme_messages] == ["N59", "N61", "N62", "0x8F72"]
    assert {m.recipient for m in esme_messages[1:]} == {IMPORT}
    assert {m.request_id for m in esme_messages} == {esme_sr.header.request_id}
    assert dcc.dsp.smi.update_in_progress(ESME_ID) is None
    assert (esme.firmware_status, esme.pending_firmware_version) == (FirmwareStatus.IMAGE_HELD, new_version)

    image_hash = parse_image(esme_image).manufacturer_image_sha256
    assert image_hash is not None
    messages.clear()
    assert dcc.dsp.submit(ActivateFirmware(header("11.3", 3, ESME_ID), ESME_ID, image_hash)).accepted == (ESME_ID,)
    clock.run(until=clock.now() + HOURS)
    [activation] = [m for m in messages if m.code == "11.3"]
    assert activation.details["activation_result_name"] == "SUCCESS"
    assert dcc.dsp.smi.require(ESME_ID).firmware_version == new_version

    messages.clear()
    dcc.dsp.submit(ReadFirmwareVersion(header("11.2", 4, PPMID_ID), PPMID_ID))
    clock.run(until=clock.now() + HOURS)
    [read] = [m for m in messages if m.code == "11.2"]
    assert read.details["firmware_version"] == f"{new_version:08X}"
