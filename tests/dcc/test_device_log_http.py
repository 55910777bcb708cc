"""SR 8.11 Update HAN Device Log on the DUIS front door, end to end.

A supplier of the premises sends 8.11 (Add) to ``serviceS``; the DSP routes it to the Comms Hub,
the DCC side builds GBCS CCS01 (ACB MAC), the CHF's Trust Centre whitelists the device and
answers with the CCS01 response (CHF MAC) and CS14 (0x8F12). A device left out of the Device Log
cannot join; after 8.11 it joins with its install code, completes CBKE and upgrades over
APS-encrypted frames. Every DUIS message is checked against DCC's V5.4 XSD.
"""

from __future__ import annotations

import base64

import pytest
from aiohttp.test_utils import TestClient, TestServer
from duis_schema import (
    ZAZ1_KEYSTORE, assert_valid, require_tool, sign_wrap_available, sign_wrap_validate,
)
from lxml import etree
from test_duis_helpers import request_xml

from emulator.dcc.duis import UserMessageRenderer
from emulator.dcc.duis.builder import RequestOptions, render_request
from emulator.dcc.duis.keystore import load_keystore
from emulator.dcc.duis.signing import DuisSigner
from emulator.dcc.http_api import create_app
from emulator.dcc.messages import MessageKind, UserMessage
from emulator.dcc.premises import CHF_ID, IMPORT_SUPPLIER_ID, PPMID_ID, default_premises
from emulator.dcc.service_requests import RequestHeader, UpdatePPMIDFirmware
from emulator.dcc.system import DccSide, build_dcc
from emulator.gbcs import device_log
from emulator.gbcs.device_log_alert import DeviceLogChangedAlert
from emulator.gbcs.message_codes import CraFlag, MessageCode
from emulator.gbcs.messages import decode_message
from emulator.gbcs.protection import Check
from emulator.han.link_security import PROTECTED_CLUSTERS, SecuredApsPacket
from emulator.han.packet import ApsPacket
from emulator.han.security.aes_mmo import aes_mmo
from emulator.hub.gbcs_commands import default_setup
from emulator.ota.image import parse_image
from emulator.runtime.clock import VirtualClock
from emulator.runtime.events import Event, EventBus
from emulator.scenario.han_security import HanSecurity, HanSecurityMode, install_code_of
from emulator.scenario.premises import Premises
from emulator.scenario.samples import load_sample, trusted_key

USER = "90-B3-D5-1F-30-01-00-00"
GAS_ONLY_USER = "90-B3-D5-1F-30-01-00-09"  # a ZAZ1 Other User: not a supplier
GAS_SUPPLIER = "90-B3-D5-1F-30-02-00-00"
CHF = "00-DB-12-34-56-78-90-A2"
PPMID = "00-DB-12-34-56-78-90-A4"
SECURITY = HanSecurity(HanSecurityMode.CBKE, seed=7, not_whitelisted=frozenset({PPMID_ID}))


class _Site:
    def __init__(self) -> None:
        self.clock = VirtualClock()
        spec = default_premises()
        self.bus = EventBus(self.clock)
        self.events: list[Event] = []
        self.bus.subscribe(self.events.append)
        self.premises = Premises(spec, self.clock, self.bus, trusted_key=trusted_key(), security=SECURITY)
        self.air: list[ApsPacket] = []
        self.premises.han.add_trace_hook(lambda _d, packet: self.air.append(packet))
        self.messages: list[UserMessage] = []
        self.dcc: DccSide = build_dcc(self.clock, self.messages.append, premises=[spec])
        self.dcc.add_hub(self.premises.hub)
        self.premises.start()

    def named(self, name: str, device: int | None = None) -> list[Event]:
        return [e for e in self.events if e.event == name and (device is None or e.device == device)]


def _add_xml(counter: int, *, user: str = USER, install_code: bytes, period: int = 3600, variant: int = 1) -> bytes:
    return request_xml("8.11", f"<sr:UpdateHANDeviceLog><sr:DeviceID>{PPMID}</sr:DeviceID><sr:RequestType>Add"
                       f"</sr:RequestType><sr:AddDeviceToCHFWhitelist><sr:JoinTimePeriod>{period}</sr:JoinTimePeriod>"
                       f"<sr:InstallCode>{install_code.hex().upper()}</sr:InstallCode></sr:AddDeviceToCHFWhitelist>"
                       "</sr:UpdateHANDeviceLog>", request_id=f"{user}:{CHF}:{counter}", command_variant=variant)


def _remove_xml(counter: int, *, variant: int = 1) -> bytes:
    return request_xml("8.11", f"<sr:UpdateHANDeviceLog><sr:DeviceID>{PPMID}</sr:DeviceID><sr:RequestType>Remove"
                       "</sr:RequestType></sr:UpdateHANDeviceLog>", request_id=f"{USER}:{CHF}:{counter}",
                       command_variant=variant)


async def _post_xml(site: _Site, body: bytes, path: str = "/api/v1/serviceS") -> bytes:
    """The synchronous answer, checked against the V5.4 XSD."""
    async with TestClient(TestServer(create_app(site.dcc.dsp.submit))) as client:
        response = await client.post(path, data=body, headers={"Content-Type": "application/xml"})
        assert response.status == 200
        data = await response.read()
    assert_valid(data, "synchronous 8.11 response")
    return data


async def _post(site: _Site, body: bytes, path: str = "/api/v1/serviceS") -> str:
    return etree.fromstring(await _post_xml(site, body, path)).findtext(".//{*}ResponseCode") or ""


def _ppmid_code() -> bytes:
    """The PPMID's install code as DUIS carries it: without the CRC."""
    return install_code_of(SECURITY, PPMID_ID)[:-2]


def _valid_xml(site: _Site) -> list[etree._Element]:
    renderer = UserMessageRenderer()
    documents = []
    for number, message in enumerate(site.messages, start=1):
        xml = renderer.xml(message, counter=number)
        assert_valid(xml, f"{message.kind.value} {message.code}")
        documents.append(etree.fromstring(xml))
    return documents


def _cs14_alerts(site: _Site, recipient: str = USER) -> list[UserMessage]:
    """The CS14 alerts forwarded to ``recipient`` (DCC sends the CHF's alerts to each supplier of its premises)."""
    return [m for m in site.messages if m.kind is MessageKind.DEVICE_ALERT and m.code.upper().endswith("8F12")
            and m.recipient == recipient]


def _ppmid_reports(site: _Site, recipient: str = USER) -> list[tuple[UserMessage, DeviceLogChangedAlert]]:
    """The CS14 alerts in which the PPMID's entry changed (added, removed, its hash), with their
    decoded log; the ESME's and GSME's CBKE raise CS14s of their own meanwhile."""
    reports, last = [], None
    for message in _cs14_alerts(site, recipient):
        alert = decode_message(message.details["gbcs_payload"]).payload
        assert isinstance(alert, DeviceLogChangedAlert)
        state = {e.device_id: e.hashed_tc_link_key for e in alert.entries}.get(PPMID_ID)
        if state != last:
            reports.append((message, alert))
            last = state
    return reports


def _upgrade_ppmid(site: _Site) -> None:
    try:
        image = load_sample("PPMID", 0x0084)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    header = RequestHeader(f"{USER}:90-B3-D5-1F-30-00-00-02:6000", 8, "11.4", "11.4", originator=IMPORT_SUPPLIER_ID,
                           counter=6000)
    version = parse_image(image).header.file_version
    assert site.dcc.dsp.submit(UpdatePPMIDFirmware(header, image, version, (PPMID_ID,))).accepted == (PPMID_ID,)


async def test_a_device_joins_runs_cbke_and_upgrades_only_after_8_11_whitelists_it() -> None:
    site = _Site()
    site.clock.run(until=600.0)
    refused = [e for e in site.named("join_refused", PPMID_ID) if e.source == "comms_hub"]
    assert refused and refused[0].fields["reason"] == "not_in_device_log"
    assert not site.named("cbke_established", PPMID_ID)

    assert await _post(site, _add_xml(5000, install_code=_ppmid_code())) == "I99"
    site.clock.run(until=site.clock.now() + 10.0)
    # The asynchronous 8.11 response carries the CHF's CCS01 response, MAC'd by the CHF.
    (response,) = [m for m in site.messages if m.kind is MessageKind.RESPONSE and m.code == "8.11"]
    assert response.request_id == f"{USER}:{CHF}:5000" and response.details["success"] is True
    gbcs = response.details["gbcs_payload"]
    decoded = decode_message(gbcs)
    assert decoded.header.message_code == MessageCode.CCS01_ADD_DEVICE_TO_CHF_DEVICE_LOG
    assert decoded.header.cra_flag is CraFlag.RESPONSE and decoded.header.originator == CHF_ID
    assert isinstance(decoded.payload, device_log.DeviceLogResponse) and decoded.payload.success
    assert default_setup().protection.verify(decoded.envelope).mac is Check.VALID
    # CS14 (0x8F12) with the updated log follows: the CHF's GBCS alert, MAC'd by the CHF.
    ((alert, _),) = _ppmid_reports(site)
    assert len(_ppmid_reports(site, GAS_SUPPLIER)) == 1  # every supplier of the CHF's premises gets it
    cs14 = decode_message(alert.details["gbcs_payload"])
    assert cs14.header.message_code == MessageCode.CS14_DEVICE_LOG_CHANGED_ALERT and cs14.header.originator == CHF_ID
    assert default_setup().protection.verify(cs14.envelope).mac is Check.VALID
    assert isinstance(cs14.payload, DeviceLogChangedAlert) and cs14.payload.extended_pan_id == CHF_ID
    logged = {e.device_id: e.hashed_tc_link_key for e in cs14.payload.entries}
    assert logged[PPMID_ID] == b""  # no TC link key established yet (GBCS CCS01/CS14)

    site.clock.run(until=site.clock.now() + 400.0)  # the device's next join attempt (every 300 s)
    assert [e for e in site.named("device_joined", PPMID_ID) if e.source == "comms_hub"]
    assert len(site.named("cbke_established", PPMID_ID)) == 2  # hub side and device side
    # Its hashed TC link key changed in the log: another CS14, with the hash of the CBKE key.
    (_, (_, rekeyed)) = _ppmid_reports(site)
    link_key = site.premises.hub.trust_centre.device_log[PPMID_ID].link_key
    assert link_key is not None
    assert {e.device_id: e.hashed_tc_link_key for e in rekeyed.entries}[PPMID_ID] == aes_mmo(link_key)
    _upgrade_ppmid(site)
    site.clock.run(until=site.clock.now() + 3 * 3600.0)
    assert site.named("firmware_activated", PPMID_ID)
    assert "N49" in [m.code for m in site.messages if m.kind is MessageKind.DCC_ALERT]
    ppmid_ota = [p for p in site.air if p.cluster in PROTECTED_CLUSTERS and not p.is_broadcast
                 and PPMID_ID in (p.src, p.dst)]
    assert ppmid_ota and all(isinstance(p, SecuredApsPacket) for p in ppmid_ota)
    documents = _valid_xml(site)
    answer = next(d for d in documents if d.findtext(".//{*}ServiceReferenceVariant") == "8.11")
    assert base64.b64decode(answer.findtext(".//{*}GBCSPayload") or "") == gbcs
    # The User gets CS14 as DCC forwards a CHF alert: DeviceAlertMessage, AlertCode 8F12, from the CHF.
    forwarded = documents[site.messages.index(alert)]
    assert forwarded.find(".//{*}DeviceAlertMessage") is not None and forwarded.findtext(".//{*}AlertCode") == "8F12"
    assert (forwarded.findtext(".//{*}ResponseID") or "").startswith(CHF + ":")
    assert forwarded.find(".//{*}RequestID") is None
    assert base64.b64decode(forwarded.findtext(".//{*}GBCSPayload") or "") == alert.details["gbcs_payload"]


async def test_8_11_with_a_wrong_install_code_whitelists_a_key_the_device_cannot_join_with() -> None:
    site = _Site()
    wrong = bytes(16)
    assert await _post(site, _add_xml(5000, install_code=wrong)) == "I99"
    site.clock.run(until=900.0)
    reasons = {e.fields["reason"] for e in site.named("join_refused", PPMID_ID) if e.source == "comms_hub"}
    assert "wrong_link_key" in reasons and not site.named("cbke_established", PPMID_ID)


async def test_8_11_remove_takes_the_device_out_of_the_log() -> None:
    site = _Site()
    assert await _post(site, _add_xml(5000, install_code=_ppmid_code())) == "I99"
    site.clock.run(until=10.0)
    assert PPMID_ID in site.premises.hub.trust_centre.device_log
    assert await _post(site, _remove_xml(5001)) == "I99"
    site.clock.run(until=20.0)
    assert PPMID_ID not in site.premises.hub.trust_centre.device_log
    removal = [m for m in site.messages if m.code == "8.11" and m.request_id == f"{USER}:{CHF}:5001"]
    assert removal and removal[0].details["success"] is True
    decoded = decode_message(removal[0].details["gbcs_payload"])
    assert decoded.header.message_code == MessageCode.CCS02_REMOVE_DEVICE_FROM_CHF_DEVICE_LOG
    # Each change is followed by a CS14 with the log as it now is: the PPMID in, then out.
    (_, added), (_, removed) = _ppmid_reports(site)
    assert PPMID_ID in {e.device_id for e in added.entries} and PPMID_ID not in {e.device_id for e in removed.entries}
    # Removing it again: the CHF answers CCS02 with a failure result, the DUIS response says so,
    # and the log has not changed: no CS14.
    assert await _post(site, _remove_xml(5002)) == "I99"
    site.clock.run(until=30.0)
    again = [m for m in site.messages if m.code == "8.11" and m.request_id == f"{USER}:{CHF}:5002"]
    assert again and again[0].details["success"] is False
    assert len(_ppmid_reports(site)) == 2
    _valid_xml(site)


async def test_8_11_add_for_a_device_already_in_the_log_keeps_its_key_and_raises_no_cs14() -> None:
    site = _Site()
    assert await _post(site, _add_xml(5000, install_code=_ppmid_code())) == "I99"
    site.clock.run(until=10.0)
    key_before = site.premises.hub.trust_centre.device_log[PPMID_ID].install_code_key
    assert await _post(site, _add_xml(5001, install_code=bytes(16))) == "I99"
    site.clock.run(until=20.0)
    (again,) = [m for m in site.messages if m.code == "8.11" and m.request_id == f"{USER}:{CHF}:5001"]
    assert again.details["success"] is True  # register_device succeeds; the key is discarded
    assert site.premises.hub.trust_centre.device_log[PPMID_ID].install_code_key == key_before
    assert len(_ppmid_reports(site)) == 1
    _valid_xml(site)


async def test_8_11_add_to_a_full_device_log_fails_and_raises_no_cs14() -> None:
    site = _Site()
    trust_centre = site.premises.hub.trust_centre
    filler = 0x00DB1234567800F0
    while len(trust_centre.device_log) < 16:
        trust_centre.update_device_log(filler, install_code_of(SECURITY, filler), 60.0, report=False)
        filler += 1
    assert await _post(site, _add_xml(5000, install_code=_ppmid_code())) == "I99"
    site.clock.run(until=10.0)
    (answer,) = [m for m in site.messages if m.code == "8.11" and m.recipient == USER]
    assert answer.details["success"] is False
    decoded = decode_message(answer.details["gbcs_payload"])
    assert isinstance(decoded.payload, device_log.DeviceLogResponse) and not decoded.payload.success
    assert PPMID_ID not in trust_centre.device_log and not _ppmid_reports(site)
    reasons = [str(e.fields.get("reason")) for e in site.named("device_log_refused", PPMID_ID)]
    assert any("full (16 devices)" in reason for reason in reasons)
    _valid_xml(site)


@pytest.mark.parametrize(("body", "code"), [
    (lambda: _add_xml(5000, user=GAS_ONLY_USER, install_code=_ppmid_code()), "E2"),  # not a supplier role
    (lambda: _add_xml(5000, install_code=bytes(7)), "E100"),  # 7 octets: no install code has that length
    (lambda: _add_xml(5000, install_code=_ppmid_code(), period=3601), "E100"),  # over DUIS's 3600
    (lambda: _add_xml(5000, install_code=_ppmid_code()).replace(CHF.encode(), PPMID.encode(), 1), "E11"),  # not a CHF
])
async def test_8_11_refusals_are_duis_codes(body, code: str) -> None:  # type: ignore[no-untyped-def]
    site = _Site()
    assert await _post(site, body()) == code
    site.clock.run(until=10.0)
    assert not [m for m in site.messages if m.code == "8.11"]
    assert PPMID_ID not in site.premises.hub.trust_centre.device_log


async def test_8_11_belongs_on_service_s() -> None:
    site = _Site()
    assert await _post(site, _add_xml(5000, install_code=_ppmid_code()), "/api/v1/serviceT") == "E13"


async def test_the_8_11_request_and_its_answers_pass_dcc_boxed_validation() -> None:
    """DCC's own validator (duis-sign-wrap: XSD and XML signature) on the 8.11 a User builds with
    ``duis build`` and on the DSP's 8.11 answers, each signed with a ZAZ1 key (TEST ONLY)."""
    missing = sign_wrap_available() or (None if ZAZ1_KEYSTORE.is_file() else f"{ZAZ1_KEYSTORE} missing")
    if missing:
        require_tool(missing)
    keystore = load_keystore(ZAZ1_KEYSTORE)
    user_entry, dsp_entry = keystore.signing_entry(IMPORT_SUPPLIER_ID), keystore.signing_entry(0x90B3D51F30000002)
    assert user_entry is not None and dsp_entry is not None
    request = render_request(RequestOptions("8.11", (PPMID_ID,), comms_hub=CHF_ID, counter=5000,
                                            install_code=install_code_of(SECURITY, PPMID_ID), join_time_period=600),
                             DuisSigner(user_entry))
    site = _Site()
    assert await _post(site, request) == "I99"
    site.clock.run(until=10.0)
    (answer,) = [m for m in site.messages if m.code == "8.11"]
    ((cs14, _),) = _ppmid_reports(site)
    renderer, dsp = UserMessageRenderer(), DuisSigner(dsp_entry)
    for what, document in (("request", request), ("response", dsp.sign(renderer.xml(answer, counter=1))),
                           ("CS14 device alert", dsp.sign(renderer.xml(cs14, counter=2)))):
        code, log = sign_wrap_validate(document)
        assert code == 0 and "passed signature check" in log, f"{what}: exit {code}\n{log}"


# -- CV 2/3: local delivery, as 11.2 CV 2/3 -------------------------------------------------------

def _local_command(data: bytes) -> bytes:
    """``I0`` with ``ResponseMessage/LocalCommand/GBCSPayload``: the CCS01/CCS02 for the User."""
    root = etree.fromstring(data)
    assert root.findtext("{*}Header/{*}ResponseCode") == "I0"
    assert root.findtext("{*}Body/{*}ResponseMessage/{*}ServiceReferenceVariant") == "8.11"
    payload = root.findtext("{*}Body/{*}ResponseMessage/{*}LocalCommand/{*}GBCSPayload")
    assert payload, data.decode()
    return base64.b64decode(payload)


def _ccs0x(command: bytes) -> device_log.AddDeviceToLog | device_log.RemoveDeviceFromLog:
    """The returned command is the DCC's CCS01/CCS02 to the CHF, from the ACB and MAC'd by it."""
    decoded = decode_message(command)
    assert decoded.header.cra_flag is CraFlag.COMMAND and decoded.header.recipient == CHF_ID
    assert decoded.header.originator == default_setup().access_control_broker
    assert default_setup().protection.verify(decoded.envelope).mac is Check.VALID
    assert isinstance(decoded.payload, (device_log.AddDeviceToLog, device_log.RemoveDeviceFromLog))
    return decoded.payload


async def test_8_11_cv_2_returns_ccs01_for_local_delivery_and_sends_nothing() -> None:
    site = _Site()
    data = await _post_xml(site, _add_xml(5000, install_code=_ppmid_code(), variant=2), "/api/v1/serviceD")
    payload = _ccs0x(_local_command(data))
    assert isinstance(payload, device_log.AddDeviceToLog)
    assert payload.device_id == PPMID_ID and payload.install_code == _ppmid_code() and payload.join_time_period == 3600
    site.clock.run(until=600.0)
    # Nothing went over the WAN: the log is unchanged, no response and no CS14 follow.
    assert PPMID_ID not in site.premises.hub.trust_centre.device_log
    assert not [m for m in site.messages if m.code == "8.11"] and not _ppmid_reports(site)
    _valid_xml(site)


async def test_8_11_cv_2_remove_returns_ccs02() -> None:
    site = _Site()
    data = await _post_xml(site, _remove_xml(5000, variant=2), "/api/v1/serviceD")
    payload = _ccs0x(_local_command(data))
    assert isinstance(payload, device_log.RemoveDeviceFromLog) and payload.device_id == PPMID_ID


async def test_8_11_cv_2_belongs_on_service_d() -> None:
    site = _Site()
    assert await _post(site, _add_xml(5000, install_code=_ppmid_code(), variant=2)) == "E13"


async def test_8_11_cv_3_sends_the_returned_ccs01_and_the_chf_answers_it() -> None:
    site = _Site()
    data = await _post_xml(site, _add_xml(5000, install_code=_ppmid_code(), variant=3))
    command = _local_command(data)
    assert isinstance(_ccs0x(command), device_log.AddDeviceToLog)
    site.clock.run(until=10.0)
    assert PPMID_ID in site.premises.hub.trust_centre.device_log
    (response,) = [m for m in site.messages if m.code == "8.11" and m.recipient == USER]
    assert response.request_id == f"{USER}:{CHF}:5000" and response.details["success"] is True
    # The CHF answered the very command the User got: the response repeats its counter.
    answered = decode_message(response.details["gbcs_payload"]).header
    assert answered.originator_counter == decode_message(command).header.originator_counter
    assert len(_ppmid_reports(site)) == 1  # and CS14 follows, as for CV 1
    _valid_xml(site)


async def test_8_11_local_delivery_answers_pass_dcc_boxed_validation() -> None:
    missing = sign_wrap_available() or (None if ZAZ1_KEYSTORE.is_file() else f"{ZAZ1_KEYSTORE} missing")
    if missing:
        require_tool(missing)
    dsp_entry = load_keystore(ZAZ1_KEYSTORE).signing_entry(0x90B3D51F30000002)
    assert dsp_entry is not None
    site = _Site()
    for variant, path in ((2, "/api/v1/serviceD"), (3, "/api/v1/serviceS")):
        data = await _post_xml(site, _add_xml(5000 + variant, install_code=_ppmid_code(), variant=variant), path)
        code, log = sign_wrap_validate(DuisSigner(dsp_entry).sign(data))
        assert code == 0 and "passed signature check" in log, f"CV {variant}: exit {code}\n{log}"
