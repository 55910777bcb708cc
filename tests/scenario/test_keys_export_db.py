"""``ch-emulator keys export DIR --db PATH``: the device keys ``serve`` stored with the premises in
its database verify what its devices sent (a DUIS GBCSPayload of a ``serve`` run)."""

from __future__ import annotations

import asyncio
import base64

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from emulator.cli import main
from emulator.dcc.store import Store, StoreError
from emulator.dcc.device_keys import store_device_keys, stored_device_keys
from emulator.gbcs.flow import remote_party_keys_dir
from emulator.gbcs.messages import decode_message
from emulator.gbcs.protection import MessageProtection
from emulator.keys.store import CombinedKeyStore, DirectoryKeyStore
from emulator.scenario.serve import build_service
from emulator.scenario.spec import parse_scenario

USER = "90-B3-D5-1F-30-01-00-00"
ESME = "00-DB-12-34-56-78-90-A0"
ESME_ID = 0x00DB1234567890A0
SEED = 7  # not the default seeds (0, 1): keys derived without the database's seed do not verify


def _scenario():
    return parse_scenario({"seed": SEED, "han": {"latency_s": 0.0}, "premises": [{"template": "default", "devices": [
        {"eui64": ESME, "ota": {"initial_query_delay_s": 0.05}}]}]}, source="test")


def _read_request() -> bytes:
    return (f'<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">'
            f"<sr:Header><sr:RequestID>{USER}:{ESME}:5000</sr:RequestID><sr:CommandVariant>1</sr:CommandVariant>"
            "<sr:ServiceReference>11.2</sr:ServiceReference><sr:ServiceReferenceVariant>11.2"
            "</sr:ServiceReferenceVariant></sr:Header><sr:Body><sr:ReadFirmwareVersion/></sr:Body></sr:Request>"
            ).encode()


async def _serve_an_11_2(db: str) -> bytes:
    """A ``serve`` run on ``db``: the ESME's GBCS response to an 11.2, as the User received it."""
    payloads: list[bytes] = []
    got = asyncio.Event()

    async def user(request: web.Request) -> web.Response:
        root = etree.fromstring(await request.read())
        if root.findtext(".//{*}ServiceReferenceVariant") == "11.2" and root.findtext(".//{*}GBCSPayload"):
            payloads.append(base64.b64decode(root.findtext(".//{*}GBCSPayload") or ""))
            got.set()
        return web.Response(status=200)

    user_app = web.Application()
    user_app.router.add_post("/user", user)
    async with TestServer(user_app) as user_server:
        service = build_service(_scenario(), db=db, user_endpoint=str(user_server.make_url("/user")), journal=None)
        outbox = await service.start_outbox()
        try:
            async with TestClient(TestServer(service.app)) as client:
                reply = await client.post("/api/v1/serviceS", data=_read_request(),
                                          headers={"Content-Type": "application/xml"})
                assert b"<sr:ResponseCode>I99</sr:ResponseCode>" in await reply.read()
                await asyncio.wait_for(got.wait(), timeout=30)
        finally:
            outbox.cancel()
            await asyncio.gather(outbox, return_exceptions=True)
            service.close()
    return payloads[0]


def _verifies(message: bytes, keys_dir) -> bool:
    keys = CombinedKeyStore([DirectoryKeyStore(remote_party_keys_dir()), DirectoryKeyStore(keys_dir)])
    return MessageProtection(keys).verify(decode_message(message).envelope).ok


async def test_a_serve_runs_device_messages_verify_with_the_keys_exported_from_its_database(tmp_path, capsys):
    db = str(tmp_path / "serve.db")
    response = await _serve_an_11_2(db)
    assert decode_message(response).header.originator == ESME_ID
    assert main(["keys", "export", str(tmp_path / "from-db"), "--db", db]) == 0
    assert "seed 7" in capsys.readouterr().out
    assert (tmp_path / "from-db" / "00db1234567890a0-ka.pem").is_file()
    assert _verifies(response, tmp_path / "from-db")
    assert main(["keys", "export", str(tmp_path / "seed-0"), "--device", ESME]) == 0
    assert not _verifies(response, tmp_path / "seed-0"), "only the keys of the run's seed verify it"


def test_export_from_db_refuses_what_it_cannot_use(tmp_path, capsys):
    assert main(["keys", "export", str(tmp_path / "k"), "--db", str(tmp_path / "none.db")]) == 2
    assert "no such file" in capsys.readouterr().err
    empty = tmp_path / "empty.db"
    Store(empty).close()
    assert main(["keys", "export", str(tmp_path / "k"), "--db", str(empty)]) == 2
    assert "holds no device keys" in capsys.readouterr().err
    store = Store(tmp_path / "serve.db")
    store_device_keys(store, [ESME_ID], SEED)
    store.close()
    assert main(["keys", "export", str(tmp_path / "k"), "--db", str(tmp_path / "serve.db"),
                 "--device", "00-DB-12-34-56-78-90-FF"]) == 2
    assert "not in the premises" in capsys.readouterr().err
    assert main(["keys", "export", str(tmp_path / "k"), "--db", str(tmp_path / "serve.db"), "--seed", "3"]) == 2


def test_a_database_keeps_the_keys_of_one_seed(tmp_path):
    store = Store(tmp_path / "serve.db")
    assert store_device_keys(store, [ESME_ID], SEED) == 2
    assert store_device_keys(store, [ESME_ID], SEED) == 0, "stored once"
    with pytest.raises(StoreError, match=f"seed {SEED}, not {SEED + 1}"):
        store_device_keys(store, [ESME_ID], SEED + 1)
    assert {key.seed for key in stored_device_keys(store)} == {SEED}
