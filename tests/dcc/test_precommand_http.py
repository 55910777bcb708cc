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
from emulator.dcc.premises import ESME_ID, IMPORT_SUPPLIER_ID, default_premises
from emulator.dcc.service_requests import RequestHeader, UpdateFirmware
from emulator.dcc.smi import FirmwareStatus
from emulator.gbcs.precommand import sign_precommand
from emulator.keys.embedded import REMOTE_PARTIES_DIR
from emulator.keys.pem import load_private_pem
from cryptography.hazmat.primitives.asymmetric import ec
from emulator.dcc.system import DccSide, build_dcc
from emulator.gbcs.message_codes import MessageCode
from emulator.gbcs.messages import decode_message
from emulator.gbcs.precommand import read_precommand
from emulator.ota.image import parse_image
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import Event, EventBus
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
        self.bus = EventBus(self.clock)
        self.events: list[Event] = []
        self.bus.subscribe(self.events.append)
        self.premises = Premises(spec, self.clock, self.bus, trusted_key=trusted_key())
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
    assert issued is not None and issued.device == ESME_ID and issued.precommand == payload
    stored = Ledger(site.dcc.store).precommands()
    assert [(c.request_id, c.device, c.precommand) for c in stored.values()] == [(request_id, ESME_ID, payload)]
    assert not Ledger(site.dcc.store).commands("precommand"), "pre-commands have their own table"
    restarted = build_dcc(site.clock, site.messages.append, store=site.dcc.store)  # a new DSP on the same database
    again = restarted.dsp.issued_precommand(request_id)
    assert again is not None and again.precommand == payload, "the issued pre-command survives a restart"


async def test_two_cv4s_get_pre_commands_with_increasing_counters() -> None:
    site = _Site()
    image_hash = _esme_hash()
    first = etree.fromstring(await _post(site, "/api/v1/serviceT", _activate_xml(image_hash, 2000)))
    second = etree.fromstring(await _post(site, "/api/v1/serviceT", _activate_xml(image_hash, 2001)))
    counters = [decode_message(base64.b64decode(r.findtext(".//{*}GBCSPayload") or "")).header.originator_counter
                for r in (first, second)]
    assert counters[1] > counters[0]


SUPPLIER_KEY = REMOTE_PARTIES_DIR / "90b3d51f30010000-ds.key"  # TEST ONLY: the published ZAZ1 supplier key


def _holding(site: _Site) -> tuple[bytes, int]:
    """11.1 to the ESME (in process) until the meter holds the image: (its hash, its version)."""
    image = load_sample("ESME", 0x0000)
    version = parse_image(image).header.file_version
    header = RequestHeader(f"{USER}:{ESME}:1", 8, "11", "11.1", originator=IMPORT_SUPPLIER_ID, target=ESME_ID,
                           counter=1)
    assert site.dcc.dsp.submit(UpdateFirmware(header, image, version, (ESME_ID,))).accepted == (ESME_ID,)
    site.clock.run(until=site.clock.now() + 6 * HOURS)
    assert site.dcc.dsp.smi.require(ESME_ID).firmware_status is FirmwareStatus.IMAGE_HELD
    return _esme_hash(), version


def _signed_xml(signed: bytes, counter: int) -> bytes:
    return request_xml("11.3", f"<sr:SignedPreCommand><sr:GBCSPayload>{base64.b64encode(signed).decode()}"
                       "</sr:GBCSPayload></sr:SignedPreCommand>", request_id=f"{USER}:{ESME}:{counter}",
                       command_variant=5)


async def _precommand(site: _Site, image_hash: bytes, counter: int) -> bytes:
    data = await _post(site, "/api/v1/serviceT", _activate_xml(image_hash, counter))
    return base64.b64decode(etree.fromstring(data).findtext(".//{*}PreCommand/{*}GBCSPayload") or "")


def _code(data: bytes) -> str:
    assert_valid(data)
    return etree.fromstring(data).findtext(".//{*}ResponseCode") or ""


async def test_cv4_sign_cv5_activates_the_meter() -> None:
    site = _Site()
    image_hash, version = _holding(site)
    pre = await _precommand(site, image_hash, 2000)
    key = load_private_pem(SUPPLIER_KEY.read_bytes(), str(SUPPLIER_KEY))
    assert _code(await _post(site, "/api/v1/serviceS", _signed_xml(sign_precommand(pre, key), 2001))) == "I99"
    site.clock.run(until=site.clock.now() + HOURS)
    [activation] = [m for m in site.messages if m.code == "11.3"]
    assert activation.request_id == f"{USER}:{ESME}:2001"
    assert activation.details["activation_result_name"] == "SUCCESS"
    assert site.dcc.dsp.smi.require(ESME_ID).firmware_version == version
    assert site.dcc.dsp.issued_precommand(f"{USER}:{ESME}:2000") is None, "a pre-command is used once"


async def test_a_pre_command_signed_with_another_key_is_refused_by_the_meter() -> None:
    site = _Site()
    image_hash, version = _holding(site)
    pre = await _precommand(site, image_hash, 2000)
    wrong = sign_precommand(pre, ec.generate_private_key(ec.SECP256R1()))
    assert _code(await _post(site, "/api/v1/serviceS", _signed_xml(wrong, 2001))) == "I99"
    site.clock.run(until=site.clock.now() + HOURS)
    refused = [e for e in site.events if e.event == "command_refused"]
    assert refused and "KRP signature does not verify" in refused[0].fields["reason"]
    assert not [m for m in site.messages if m.code == "11.3"]
    assert site.dcc.dsp.smi.require(ESME_ID).firmware_version != version


async def test_a_signed_pre_command_never_issued_is_e100() -> None:
    site = _Site()
    image_hash, _ = _holding(site)
    key = load_private_pem(SUPPLIER_KEY.read_bytes(), str(SUPPLIER_KEY))
    made_up = site.premises.hub.gbcs.precommand(ESME_ID, image_hash, None, request_id="x")  # not issued by the DSP
    data = await _post(site, "/api/v1/serviceS", _signed_xml(sign_precommand(made_up, key), 2001))
    assert _code(data) == "E100"
    pre = await _precommand(site, image_hash, 2002)
    assert _code(await _post(site, "/api/v1/serviceS", _signed_xml(pre, 2003))) == "E100", "unsigned"
    assert _code(await _post(site, "/api/v1/serviceS", _signed_xml(b"\xdf\x09", 2004))) == "E100", "not GBCS"
    site.clock.run(until=site.clock.now() + HOURS)
    assert not [m for m in site.messages if m.code == "11.3"]


async def test_cv5_may_carry_the_request_id_of_its_cv4_as_dcc_boxed_tools_send_it() -> None:
    """dccboxed-nodered-nodes sends the SignedPreCommand under the Transform's RequestID: not a
    replay while its pre-command awaits; the same RequestID once more is."""
    site = _Site()
    image_hash, version = _holding(site)
    pre = await _precommand(site, image_hash, 2000)
    key = load_private_pem(SUPPLIER_KEY.read_bytes(), str(SUPPLIER_KEY))
    signed = sign_precommand(pre, key)
    assert _code(await _post(site, "/api/v1/serviceS", _signed_xml(signed, 2000))) == "I99"
    site.clock.run(until=site.clock.now() + HOURS)
    [activation] = [m for m in site.messages if m.code == "11.3"]
    assert activation.request_id == f"{USER}:{ESME}:2000"
    assert site.dcc.dsp.smi.require(ESME_ID).firmware_version == version
    assert _code(await _post(site, "/api/v1/serviceS", _signed_xml(signed, 2000))) == "E1", "a replay"
