"""Issued 11.3 pre-commands expire: a signed pre-command returned after the DSP's pre-command
lifetime is E100 and the meter is not activated; pre-commands live in their own table (a database
of the earlier layout is migrated)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from lxml import etree
from test_precommand_http import ESME, SUPPLIER_KEY, USER, _holding, _precommand, _signed_xml, _Site

from emulator.dcc.http_api import REASON_HEADER, create_app
from emulator.dcc.ledger import Ledger, StoredCommand
from emulator.dcc.premises import ESME_ID, IMPORT_SUPPLIER_ID
from emulator.dcc.store import Store
from emulator.dcc.system import build_dcc
from emulator.gbcs.precommand import sign_precommand
from emulator.keys.pem import load_private_pem
from emulator.runtime.clock import VirtualClock


async def _send(site: _Site, body: bytes) -> tuple[str, str]:
    async with TestClient(TestServer(create_app(site.dcc.dsp.submit))) as client:
        response = await client.post("/api/v1/serviceS", data=body, headers={"Content-Type": "application/xml"})
        root = etree.fromstring(await response.read())
        return root.findtext(".//{*}ResponseCode") or "", response.headers.get(REASON_HEADER, "")


async def _signed_after(site: _Site, seconds: float) -> tuple[str, str, int]:
    """CV 4, wait ``seconds``, CV 5 signed with the supplier's key: (code, reason, meter's version)."""
    image_hash, _ = _holding(site)
    pre = await _precommand(site, image_hash, 2000)
    site.clock.run(until=site.clock.now() + seconds)
    key = load_private_pem(SUPPLIER_KEY.read_bytes(), str(SUPPLIER_KEY))
    code, reason = await _send(site, _signed_xml(sign_precommand(pre, key), 2001))
    site.clock.run(until=site.clock.now() + 3600)
    return code, reason, site.dcc.dsp.smi.require(ESME_ID).firmware_version


async def test_a_pre_command_signed_after_its_lifetime_is_e100_and_nothing_runs() -> None:
    site = _Site()
    site.dcc.dsp.set_precommand_lifetime(600)
    before = site.dcc.dsp.smi.require(ESME_ID).firmware_version
    code, reason, version = await _signed_after(site, 601)
    assert code == "E100" and "expired" in reason and f"{USER}:{ESME}:2000" in reason, reason
    assert version == before, "the meter was not activated"
    assert site.dcc.dsp.issued_precommand(f"{USER}:{ESME}:2000") is None
    assert not [m for m in site.messages if m.code == "11.3"]


async def test_a_pre_command_signed_within_its_lifetime_runs() -> None:
    site = _Site()
    site.dcc.dsp.set_precommand_lifetime(600)
    code, _, version = await _signed_after(site, 599)
    assert code == "I99" and version == site.dcc.dsp.smi.require(ESME_ID).firmware_version
    assert [m.details["activation_result_name"] for m in site.messages if m.code == "11.3"] == ["SUCCESS"]


def test_pre_commands_of_the_earlier_layout_move_to_their_own_table(tmp_path) -> None:
    store = Store(tmp_path / "old.db")
    request_id = f"{USER}:{ESME}:2000"
    precommand = bytes.fromhex("df09") + b"\x01" * 40  # the bytes as the earlier layout kept them
    Ledger(store).put_command(f"precommand:{request_id}", StoredCommand(
        "precommand", request_id, "11.3", ESME_ID, IMPORT_SUPPLIER_ID, None, False, precommand, 1.8e9))
    dcc = build_dcc(VirtualClock(), lambda message: None, store=store)
    issued = dcc.dsp.issued_precommand(request_id)
    assert issued is not None and issued.precommand == precommand and issued.device == ESME_ID
    assert issued.issued == 1.8e9 and issued.originator == IMPORT_SUPPLIER_ID
    assert not Ledger(store).commands("precommand"), "nothing left in the pending-command table"
