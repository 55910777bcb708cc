"""11.3 as DCC runs it over the DUIS front door: CV 4 on serviceT answers I0 with the CS06
pre-command (``PreCommand``) for the User to sign, and the DSP keeps what it issued."""

from __future__ import annotations

import base64

import pytest
from aiohttp.test_utils import TestClient, TestServer
from duis_schema import assert_valid
from lxml import etree
from test_duis_helpers import request_xml

from emulator.dcc.http_api import create_app
from emulator.dcc.ledger import Ledger
from emulator.dcc.messages import UserMessage
from emulator.dcc.premises import ESME_ID, default_premises
from emulator.dcc.system import DccSide, build_dcc
from emulator.gbcs.message_codes import MessageCode
from emulator.gbcs.messages import decode_message
from emulator.gbcs.precommand import read_precommand
from emulator.ota.image import parse_image
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import EventBus
from emulator.scenario.premises import Premises
from emulator.scenario.samples import load_sample, trusted_key

pytest.importorskip("emulator.scenario.premises")

USER = "90-B3-D5-1F-30-01-00-00"
ESME = "00-DB-12-34-56-78-90-A0"
HOURS = 3600.0


class _Site:
    def __init__(self) -> None:
        self.clock = VirtualClock()
        spec = default_premises()
        self.premises = Premises(spec, self.clock, EventBus(self.clock), trusted_key=trusted_key())
        self.messages: list[UserMessage] = []
        self.dcc: DccSide = build_dcc(self.clock, self.messages.append, premises=[spec])
        self.dcc.add_hub(self.premises.hub)
        self.premises.start()


def _activate_xml(image_hash: bytes, counter: int, *, command_variant: int = 4) -> bytes:
    return request_xml("11.3", f"<sr:ActivateFirmware><sr:FirmwareHash>{image_hash.hex().upper()}</sr:FirmwareHash>"
                       "</sr:ActivateFirmware>", request_id=f"{USER}:{ESME}:{counter}", command_variant=command_variant)


async def _post(site: _Site, path: str, body: bytes) -> bytes:
    async with TestClient(TestServer(create_app(site.dcc.dsp.submit))) as client:
        response = await client.post(path, data=body, headers={"Content-Type": "application/xml"})
        assert response.status == 200
        return await response.read()


def _esme_hash() -> bytes:
    try:
        image = load_sample("ESME", 0x0000)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    image_hash = parse_image(image).manufacturer_image_sha256
    assert image_hash is not None
    return image_hash


async def test_cv4_on_service_t_answers_i0_with_the_precommand_and_keeps_it() -> None:
    site = _Site()
    image_hash = _esme_hash()
    data = await _post(site, "/api/v1/serviceT", _activate_xml(image_hash, 2000))
    assert_valid(data)
    root = etree.fromstring(data)
    assert root.findtext(".//{*}ResponseCode") == "I0"
    assert root.findtext(".//{*}PreCommand/{*}GBCSVersion")
    payload = base64.b64decode(root.findtext(".//{*}PreCommand/{*}GBCSPayload") or "")
    pre = read_precommand(payload, signed=False)  # DCC's pre-command: no signature field yet
    assert pre.header.message_code == MessageCode.CS06_ACTIVATE_FIRMWARE
    assert decode_message(payload).header.originator == int(USER.replace("-", ""), 16)
    assert image_hash in payload, "the pre-command carries the Manufacturer Image hash asked for"
    site.clock.run(until=site.clock.now() + HOURS)
    assert not [m for m in site.messages if m.code == "11.3"], "nothing reaches the meter before the User signs"
    request_id = f"{USER}:{ESME}:2000"
    issued = site.dcc.dsp.issued_precommand(request_id)
    assert issued is not None and issued.device == ESME_ID and issued.firmware_hash == payload
    stored = Ledger(site.dcc.store).commands("precommand")
    assert [(c.request_id, c.device, c.firmware_hash) for c in stored.values()] == [(request_id, ESME_ID, payload)]


async def test_two_cv4s_get_pre_commands_with_increasing_counters() -> None:
    site = _Site()
    image_hash = _esme_hash()
    first = etree.fromstring(await _post(site, "/api/v1/serviceT", _activate_xml(image_hash, 2000)))
    second = etree.fromstring(await _post(site, "/api/v1/serviceT", _activate_xml(image_hash, 2001)))
    counters = [decode_message(base64.b64decode(r.findtext(".//{*}GBCSPayload") or "")).header.originator_counter
                for r in (first, second)]
    assert counters[1] > counters[0]
