"""``ch-emulator duis build``: requests that DCC's schema accepts, the emulator parses, DCC Boxed's
validator verifies when signed, and serve carries out."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from duis_schema import ZAZ1_KEYSTORE, assert_valid, require_tool, sign_wrap_available, sign_wrap_validate
from lxml import etree

from emulator.cli import main
from emulator.dcc.duis import parse_request
from emulator.dcc.duis.keystore import load_keystore
from emulator.dcc.duis.security import DuisSecurity
from emulator.dcc.duis.xmlsafe import parse_document
from emulator.scenario.serve import build_service
from emulator.scenario.spec import parse_scenario

IMAGES = Path(__file__).resolve().parents[2] / "firmware_images"
PPMID_IMAGE = IMAGES / "ppmid-121D-0084-ACDCACDD-TEST-ONLY.ota"
ESME_IMAGE = IMAGES / "esme-121D-0000-ACDCACDD-TEST-ONLY.ota"
PPMID, ESME = "00-DB-12-34-56-78-90-A4", "00-DB-12-34-56-78-90-A0"
CHF = "00-DB-12-34-56-78-90-A2"
LABEL_CODE = "83FED3407A939723A5C639B26916D505C3B5"  # the published example install code and its CRC


def _build(capsys, *args: str) -> bytes:
    assert main(["duis", "build", *args]) == 0
    captured = capsys.readouterr()
    assert "POST it to /api/v1/service" in captured.err
    return captured.out.encode().strip()


@pytest.mark.parametrize(("args", "cv"), [
    (["11.4", "--image", str(PPMID_IMAGE), "--device", PPMID], 8),
    (["11.1", "--image", str(ESME_IMAGE), "--device", ESME, "--device", "00-DB-12-34-56-78-90-A1"], 8),
    (["11.2", "--device", ESME], 1),
    (["11.3", "--image", str(ESME_IMAGE), "--device", ESME, "--execute-at", "2031-01-01T00:00:00Z"], 4),
    (["11.3", "--hash", "AB" * 32, "--device", ESME, "--execute-at", "cancel"], 4),
    (["8.11", "--comms-hub", CHF, "--device", PPMID, "--install-code", LABEL_CODE, "--join-time-period", "600"], 1),
    (["8.11", "--comms-hub", CHF, "--device", PPMID, "--remove"], 1),
])
def test_built_requests_are_schema_valid_and_parse_back(capsys, args, cv):
    data = _build(capsys, *args, "--counter", "42")
    assert_valid(data, "built request")
    request = parse_request(data)
    assert request.header.command_variant == cv and request.header.counter == 42
    if args[0] == "11.4":
        assert request.firmware_image == PPMID_IMAGE.read_bytes() and request.firmware_version == 0xACDCACDD
    if args[0] == "8.11":  # the target is the Comms Hub; the label's CRC is not sent (DUIS InstallCode)
        assert request.header.target == int(CHF.replace("-", ""), 16) and request.add is ("--remove" not in args)
        if request.add:
            assert request.install_code == bytes.fromhex(LABEL_CODE[:-4]) and request.join_time_period == 600
    if args[0] == "11.1":
        assert etree.fromstring(data).findtext(".//{*}DeviceIDList") == f"{ESME},00-DB-12-34-56-78-90-A1"


def test_counter_defaults_to_milliseconds_and_rises(capsys):
    first = parse_request(_build(capsys, "11.2", "--device", ESME)).header.counter
    second = parse_request(_build(capsys, "11.2", "--device", ESME)).header.counter
    assert first is not None and second is not None and 1_700_000_000_000 < first <= second


@pytest.mark.parametrize(("args", "message"), [
    (["11.2", "--device", ESME, "--device", PPMID], "exactly one device"),
    (["11.4", "--device", PPMID], "--image"),
    (["11.4", "--image", "/nonexistent.ota", "--device", PPMID], "--image /nonexistent.ota"),
    (["11.2", "--device", "00-DB"], "not an EUI-64"),
    (["11.3", "--device", ESME, "--hash", "ABCD"], "32"),
    (["11.2", "--device", ESME, "--sign-with", "k.pem"], "go together"),
    (["8.11", "--device", PPMID, "--install-code", LABEL_CODE, "--join-time-period", "60"], "--comms-hub"),
    (["8.11", "--comms-hub", CHF, "--device", PPMID, "--install-code", "83FE", "--join-time-period", "60"],
     "--install-code: 2 octets"),
    (["8.11", "--comms-hub", CHF, "--device", PPMID, "--install-code", LABEL_CODE, "--join-time-period", "3601"],
     "1-3600"),
    (["8.11", "--comms-hub", CHF, "--device", PPMID], "--install-code and --join-time-period"),
])
def test_bad_options_exit_2_naming_the_option(capsys, args, message):
    assert main(["duis", "build", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.fixture(scope="module")
def zaz1_user_key(tmp_path_factory):
    missing = sign_wrap_available() or (None if ZAZ1_KEYSTORE.is_file() else f"{ZAZ1_KEYSTORE} missing")
    if missing:
        require_tool(missing)
    from cryptography.hazmat.primitives import serialization

    entry = load_keystore(ZAZ1_KEYSTORE).signing_entry(0x90B3D51F30010000)
    folder = tmp_path_factory.mktemp("zaz1")
    (folder / "user.key").write_bytes(entry.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (folder / "user.pem").write_bytes(entry.certificate.public_bytes(serialization.Encoding.PEM))
    return folder / "user.key", folder / "user.pem"


async def test_a_signed_11_4_verifies_with_dcc_boxed_and_serve_carries_it_out(capsys, zaz1_user_key):
    key, cert = zaz1_user_key
    data = _build(capsys, "11.4", "--image", str(PPMID_IMAGE), "--device", PPMID, "--sign-with", str(key),
                  "--cert", str(cert))
    assert_valid(data)
    code, log = sign_wrap_validate(data)
    assert code == 0 and "passed signature check" in log, log
    security = DuisSecurity.from_options(require_signatures=True)
    assert security.verifier is not None and security.verifier.check(parse_document(data), 0x90B3D51F30010000).valid
    service = build_service(parse_scenario({}, source="test"), db=":memory:", journal=None, security=security)
    try:
        async with TestClient(TestServer(service.app)) as client:
            reply = await client.post("/api/v1/serviceD", data=data, headers={"Content-Type": "application/xml"})
            answer = await reply.read()
    finally:
        service.close()
    assert etree.fromstring(answer).findtext("{*}Header/{*}ResponseCode") == "I99"
