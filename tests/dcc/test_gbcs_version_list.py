"""InvalidGBCSVersionList: a device whose SMI GBCS version the CPL's firmware entries do not
support is refused in the 11.1/11.4 warning, in that list, and the answer is valid DUIS V5.4."""

from __future__ import annotations

import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from dcc_fakes import gbcs_image
from duis_schema import ZAZ1_KEYSTORE, assert_valid, require_tool, sign_wrap_available, sign_wrap_validate
from lxml import etree

from emulator.dcc.duis import render_dsp_response
from emulator.dcc.duis.security import DuisSecurity
from emulator.dcc.messages import RejectionReason
from emulator.dcc.premises import ESME_ID, IMPORT_SUPPLIER_ID, PPMID_ID, TARGET_FIRMWARE_VERSION
from emulator.dcc.service_requests import RequestHeader, UpdateFirmware, UpdatePPMIDFirmware
from emulator.dcc.smi import DEFAULT_GBCS_VERSION, Smi
from emulator.dcc.store import Store
from emulator.eui64 import format_eui64
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import EventBus
from emulator.scenario.spec import ScenarioError, parse_scenario
from emulator.scenario.system import DccSystem

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenario"))
from serve_modes import SERVE_MODES, make_service  # noqa: E402

SAMPLES = Path(__file__).resolve().parent / "data" / "duis"
SECOND_ESME = 0x00DB1234567890B0
LISTS = ("InvalidDeviceIDList", "NotCommissionedDeviceIDList", "NotApplicableFirmwareDeviceIDList",
         "OtherRequestInProgressList", "InvalidGBCSVersionList")


def _scenario(devices: list[dict], **extra: object):
    return parse_scenario({"premises": [{"template": "default", "devices": devices}], **extra}, source="gbcs-test")


def _system(scenario) -> DccSystem:
    clock = VirtualClock()
    return DccSystem.from_scenario(scenario, clock, EventBus(clock))


def _header(variant: str, counter: int) -> RequestHeader:
    return RequestHeader(f"{format_eui64(IMPORT_SUPPLIER_ID)}:90-B3-D5-1F-30-00-00-02:{counter}", 8,
                         variant.rsplit(".", 1)[0], variant, IMPORT_SUPPLIER_ID, 0, counter)


def _lists(body: bytes) -> dict[str, str]:
    root = etree.fromstring(body)
    return {name: root.findtext(f".//{{*}}{name}") for name in LISTS if root.findtext(f".//{{*}}{name}")}


@pytest.mark.parametrize("mode", SERVE_MODES)
async def test_dcc_sample_11_1_to_a_meter_on_an_unsupported_gbcs_version_gets_w110101(tmp_path, mode):
    """Signed with DCC's published ZAZ1 DSP key (TEST ONLY), so DCC Boxed's own validator checks
    the answer too: XSD V5.1 and the signature."""
    missing = sign_wrap_available() or (None if ZAZ1_KEYSTORE.is_file() else f"{ZAZ1_KEYSTORE} missing")
    if missing:
        require_tool(missing)
    scenario = _scenario([{"eui64": format_eui64(ESME_ID), "gbcs_version": "3.2"}])
    service = await make_service(mode, scenario, db=":memory:", journal=None,
                                 security=DuisSecurity.from_options(str(ZAZ1_KEYSTORE)))
    try:
        async with TestClient(TestServer(service.app)) as client:
            xml = (SAMPLES / "11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML").read_bytes()
            reply = await client.post("/api/v1/serviceD", data=xml, headers={"Content-Type": "application/xml"})
            body = await reply.read()
        assert reply.status == 200
        assert_valid(body, "11.1 warning response")
        assert b"<sr:ResponseCode>W110101</sr:ResponseCode>" in body
        assert _lists(body) == {"InvalidGBCSVersionList": "00-DB-12-34-56-78-90-A0"}
        assert service.system.dsp.smi.update_in_progress(ESME_ID) is None  # nothing was distributed
    finally:
        service.close()
    code, log = sign_wrap_validate(body)
    assert code == 0 and "passed signature check" in log, log


def test_only_the_device_on_the_unsupported_version_is_listed_the_other_is_accepted():
    scenario = _scenario([{"eui64": format_eui64(SECOND_ESME), "type": "ESME", "gbcs_version": "3.2"}])
    system = _system(scenario)
    sr = UpdateFirmware(_header("11.1", 1), gbcs_image(image_type=0x0000, signed=True), TARGET_FIRMWARE_VERSION,
                        (ESME_ID, SECOND_ESME))
    response = system.submit(sr)
    assert response.response_code == "W110101"
    assert response.accepted == (ESME_ID,)
    assert response.rejected == {RejectionReason.INVALID_GBCS_VERSION: (SECOND_ESME,)}
    body = render_dsp_response(response, at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert_valid(body, "11.1 warning response")
    assert _lists(body) == {"InvalidGBCSVersionList": format_eui64(SECOND_ESME)}


def test_several_devices_on_unsupported_versions_are_one_comma_separated_list():
    scenario = _scenario([{"eui64": format_eui64(ESME_ID), "gbcs_version": "2.0"},
                          {"eui64": format_eui64(SECOND_ESME), "type": "ESME", "gbcs_version": "3.2"}])
    response = _system(scenario).submit(UpdateFirmware(
        _header("11.1", 1), gbcs_image(image_type=0x0000, signed=True), TARGET_FIRMWARE_VERSION, (ESME_ID, SECOND_ESME)))
    body = render_dsp_response(response, at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert_valid(body)
    assert _lists(body)["InvalidGBCSVersionList"] == f"{format_eui64(ESME_ID)},{format_eui64(SECOND_ESME)}"


def test_11_4_to_a_ppmid_on_an_unsupported_version_gets_w110401():
    system = _system(_scenario([{"eui64": format_eui64(PPMID_ID), "gbcs_version": "4.3"}]))
    response = system.submit(UpdatePPMIDFirmware(_header("11.4", 1), gbcs_image(), TARGET_FIRMWARE_VERSION,
                                                 (PPMID_ID,)))
    assert response.response_code == "W110401"
    body = render_dsp_response(response, at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert_valid(body, "11.4 warning response")
    assert _lists(body) == {"InvalidGBCSVersionList": format_eui64(PPMID_ID)}


def test_a_version_the_cpl_lists_is_accepted():
    scenario = _scenario([{"eui64": format_eui64(PPMID_ID), "gbcs_version": "4.3"}],
                         cpl={"gbcs_versions": ["4.2", "4.3"]})
    response = _system(scenario).submit(UpdatePPMIDFirmware(_header("11.4", 1), gbcs_image(), TARGET_FIRMWARE_VERSION,
                                                            (PPMID_ID,)))
    assert response.response_code == "I99" and response.accepted == (PPMID_ID,)


def test_default_devices_carry_dcc_boxeds_gbcs_version_and_are_accepted():
    system = _system(_scenario([]))
    assert {d.gbcs_version for d in system.dsp.smi.devices()} == {DEFAULT_GBCS_VERSION} == {"4.2"}
    response = system.submit(UpdatePPMIDFirmware(_header("11.4", 1), gbcs_image(), TARGET_FIRMWARE_VERSION,
                                                 (PPMID_ID,)))
    assert response.response_code == "I99"


def test_the_smi_keeps_the_version_and_an_older_database_gets_the_default(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the table as it was before the SMI held GBCS versions
        conn.execute("CREATE TABLE smi_device (eui64 TEXT PRIMARY KEY, device_type TEXT NOT NULL, "
                     "manufacturer_code INTEGER NOT NULL, image_type INTEGER NOT NULL, hardware_version INTEGER "
                     "NOT NULL, status TEXT NOT NULL, firmware_version INTEGER NOT NULL, firmware_status TEXT NOT "
                     "NULL, pending_firmware_version INTEGER, comms_hub TEXT, premises TEXT, suppliers TEXT NOT NULL)")
        conn.execute("INSERT INTO smi_device VALUES ('00-DB-12-34-56-78-90-A0', 'ESME', 4637, 0, 4608, "
                     "'Commissioned', 1, 'Active', NULL, '00-DB-12-34-56-78-90-A2', 'P', '{}')")
    store = Store(str(path))
    try:
        assert Smi(store).require(ESME_ID).gbcs_version == DEFAULT_GBCS_VERSION
    finally:
        store.close()
    system = _system(_scenario([{"eui64": format_eui64(ESME_ID), "gbcs_version": "3.2"}]))
    assert system.dsp.smi.require(ESME_ID).gbcs_version == "3.2"


@pytest.mark.parametrize(("data", "words"), [
    ({"premises": [{"template": "default", "devices": [{"eui64": "00-DB-12-34-56-78-90-A0", "gbcs_version": ""}]}]},
     ("premises[0].devices[0].gbcs_version", "empty")),
    ({"premises": [{"template": "default", "devices": [{"eui64": "00-DB-12-34-56-78-90-A0", "gbcs_version": 4.2}]}]},
     ("premises[0].devices[0].gbcs_version", "expected str")),
    ({"cpl": {"gbcs_versions": []}}, ("cpl.gbcs_versions", "list of GBCS versions")),
    ({"cpl": {"gbcs_versions": "4.2"}}, ("cpl.gbcs_versions", "expected list")),
    ({"cpl": {"versions": ["4.2"]}}, ("cpl", "unknown key(s) versions")),
])
def test_bad_gbcs_settings_name_the_key(data, words):
    with pytest.raises(ScenarioError) as error:
        parse_scenario(data, source="bad.toml")
    for word in words:
        assert word in str(error.value)
