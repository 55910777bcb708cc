"""The emulator's DUIS output read back by DCC's own parser, @smartdcc/duis-parser (node).

Needs node and ``npm ci --prefix tests/dcc/npm``; skipped without them on a developer's machine,
a failure in CI (``.ci/run`` installs both).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from duis_schema import require_tool

from emulator.dcc.duis import UserMessageRenderer, format_eui64, render_dsp_response
from emulator.dcc.messages import DspResponse, MessageKind, RejectionReason, ResponseCode, UserMessage

NPM_DIR = Path(__file__).parent / "npm"
NODE = shutil.which("node")

_MISSING = (NODE is None or not (NPM_DIR / "node_modules" / "@smartdcc" / "duis-parser").is_dir())


@pytest.fixture(autouse=True)
def _needs_node() -> None:
    if _MISSING:
        require_tool("needs node and `npm ci --prefix tests/dcc/npm`")

RID = "90-B3-D5-1F-30-01-00-00:90-B3-D5-1F-30-00-00-02:1000"
PPMID = 0x00DB1234567890A4
AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def _decode(tmp_path: Path, documents: dict[str, bytes]) -> dict[str, dict]:
    paths = []
    for name, data in documents.items():
        path = tmp_path / f"{name}.xml"
        path.write_bytes(data)
        paths.append(str(path))
    run = subprocess.run([NODE, str(NPM_DIR / "check.js"), *paths], capture_output=True, text=True, timeout=60, check=True)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    return {Path(line["file"]).stem: line for line in lines}


def test_dcc_parser_reads_every_kind_of_output(tmp_path):
    renderer = UserMessageRenderer()
    rejected = {RejectionReason.INVALID_DEVICE: (PPMID,), RejectionReason.FIRMWARE_UPDATE_IN_PROGRESS: (5, 6)}
    documents = {
        "warning_11_4": render_dsp_response(DspResponse(RID, "11.4", ResponseCode.W110401, (7,), rejected), at=AT),
        "warning_11_1": render_dsp_response(DspResponse(RID, "11.1", ResponseCode.W110101, (), {RejectionReason.NOT_COMMISSIONED: (8,)}), at=AT),
        "error": render_dsp_response(DspResponse(RID, "11.3", ResponseCode.BAD_SIGNATURE, error="no"), at=AT),
        "dcc_alert": renderer.xml(UserMessage("m1", MessageKind.DCC_ALERT, "N19", 5.0, device=PPMID, request_id=RID), counter=11),
        "bare_dcc_alert": renderer.xml(UserMessage("m2", MessageKind.DCC_ALERT, "N59", 5.0, device=PPMID, details={"device_type": "PPMID", "firmware_version": "ACDCACDC"}), counter=12),
        "device_alert": renderer.xml(UserMessage("m3", MessageKind.DEVICE_ALERT, "0x8F8B", 5.0, device=PPMID, details={"gbcs_payload": b"\x00\x01"}), counter=13),
        "response_11_2": renderer.xml(UserMessage("m4", MessageKind.RESPONSE, "11.2", 5.0, device=PPMID, request_id=RID, details={"firmware_version": "00000002"}), counter=14),
    }
    decoded = _decode(tmp_path, documents)
    assert set(decoded) == set(documents)
    for name, result in decoded.items():
        assert "error" not in result, (name, result)
        assert result["isResponse"] is True, name

    w = decoded["warning_11_4"]
    assert w["responseMessageKinds"] == ["DSPUpdatePPMIDFirmwareWarning"]
    lists = w["parsed"]["body"]["ResponseMessage"]["DSPUpdatePPMIDFirmwareWarning"]
    assert lists["InvalidDeviceIDList"] == format_eui64(PPMID)
    assert lists["OtherRequestInProgressList"] == f"{format_eui64(5)},{format_eui64(6)}"
    assert w["parsed"]["header"]["responseCode"] == "W110401"
    assert w["parsed"]["header"]["requestId"]["counter"] == "1000"
    assert decoded["warning_11_1"]["responseMessageKinds"] == ["DSPUpdateFirmwareWarning"]
    assert decoded["error"]["responseMessageKinds"] == ["NoBody"]

    for name, code, counter in (("dcc_alert", "N19", "11"), ("bare_dcc_alert", "N59", "12")):
        assert decoded[name]["isDCCAlert"] is True
        assert decoded[name]["parsed"]["body"]["DCCAlertMessage"]["DCCAlertCode"] == code
        assert decoded[name]["parsed"]["header"]["responseId"]["counter"] == counter
    device_alert = decoded["device_alert"]
    assert device_alert["isDeviceAlert"] is True
    assert device_alert["parsed"]["body"]["DeviceAlertMessage"]["AlertCode"] == "8F8B"
    assert device_alert["parsed"]["header"]["responseId"]["originatorId"] == format_eui64(PPMID).lower()
    assert decoded["response_11_2"]["responseMessageKinds"] == ["GBCSPayload"]
