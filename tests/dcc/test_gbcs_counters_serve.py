"""``serve``'s GBCS originator counters rise across restarts on the same database, and a command
returned for local delivery carries them too."""

from __future__ import annotations

import base64

from aiohttp.test_utils import TestClient, TestServer
from lxml import etree
from test_duis_helpers import request_xml

from emulator.dcc.gbcs_counters import PersistedOriginatorCounters
from emulator.dcc.store import Store
from emulator.gbcs.messages import decode_message
from emulator.scenario.serve import build_service
from emulator.scenario.spec import parse_scenario

USER = "90-B3-D5-1F-30-01-00-00"
ESME = "00-DB-12-34-56-78-90-A0"
SUPPLIER = 0x90B3D51F30010000


def _transform(counter: int) -> bytes:
    return request_xml("11.3", f"<sr:ActivateFirmware><sr:FirmwareHash>{'AB' * 32}</sr:FirmwareHash>"
                       "</sr:ActivateFirmware>", request_id=f"{USER}:{ESME}:{counter}")


def _local_read(counter: int) -> bytes:
    return request_xml("11.2", "<sr:ReadFirmwareVersion/>", request_id=f"{USER}:{ESME}:{counter}", command_variant=2)


async def _gbcs_counters(db: str, requests: list[tuple[str, bytes]]) -> list[int]:
    """One ``serve`` process on ``db``: the GBCS originator counter of each answer's GBCSPayload."""
    service = build_service(parse_scenario({}, source="test"), db=db, journal=None)
    counters = []
    try:
        async with TestClient(TestServer(service.app)) as client:
            for path, body in requests:
                reply = await client.post(path, data=body, headers={"Content-Type": "application/xml"})
                root = etree.fromstring(await reply.read())
                assert root.findtext(".//{*}ResponseCode") == "I0", root.findtext(".//{*}ResponseCode")
                payload = base64.b64decode(root.findtext(".//{*}GBCSPayload") or "")
                header = decode_message(payload).header
                assert header.originator == SUPPLIER
                counters.append(header.originator_counter)
    finally:
        service.close()
    return counters


async def test_supplier_counters_keep_rising_after_serve_restarts(tmp_path) -> None:
    db = str(tmp_path / "serve.db")
    first = await _gbcs_counters(db, [("/api/v1/serviceT", _transform(10)), ("/api/v1/serviceD", _local_read(11))])
    second = await _gbcs_counters(db, [("/api/v1/serviceT", _transform(12)), ("/api/v1/serviceD", _local_read(13))])
    third = await _gbcs_counters(db, [("/api/v1/serviceD", _local_read(14))])
    issued = first + second + third
    assert issued == sorted(issued) and len(set(issued)) == len(issued), issued


def test_counters_are_reserved_in_blocks_and_resume_above_them(tmp_path) -> None:
    store = Store(tmp_path / "c.db")
    counters = PersistedOriginatorCounters(store, block=10)
    assert [counters.next(SUPPLIER) for _ in range(12)] == list(range(1, 13))
    assert counters.reserved(SUPPLIER) == 20
    store.close()
    again = PersistedOriginatorCounters(Store(tmp_path / "c.db"), block=10)
    assert again.next(SUPPLIER) == 21, "a restart never reuses a counter an earlier run may have sent"
    assert again.next(0x00DB1234567890A0) == 1, "each originator has its own counter"
