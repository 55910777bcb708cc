"""Signatures on the way out (the DSP's key) and in (the Users' certificates), checked by DCC's
own validator where it matters; the keystore loader; the serve flags."""

from __future__ import annotations


import pytest
from aiohttp.test_utils import TestClient, TestServer
from duis_schema import ZAZ1_KEYSTORE, assert_valid, require_tool, sign_wrap_available, sign_wrap_validate
from lxml import etree
from test_duis_helpers import request_xml, sample, update_body

from emulator.cli import main
from emulator.dcc.duis.keystore import DSP_EUI, KeystoreError, KeyUsage, default_keystore, load_keystore
from emulator.dcc.duis.security import DuisSecurity
from emulator.dcc.duis.signing import DuisSigner, RequestVerifier, SignatureVerdict
from emulator.dcc.duis.xmlsafe import parse_document
from emulator.scenario.spec import parse_scenario

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenario"))
from serve_modes import SERVE_MODES, make_service  # noqa: E402

USER = 0x90B3D51F30010000


@pytest.fixture(scope="module")
def zaz1():
    missing = sign_wrap_available() or (None if ZAZ1_KEYSTORE.is_file() else f"{ZAZ1_KEYSTORE} missing")
    if missing:
        require_tool(missing)
    return load_keystore(ZAZ1_KEYSTORE)


def test_default_security_signs_with_the_test_only_key_and_trusts_the_zaz1_users():
    security = DuisSecurity.from_options()
    assert security.signer is not None and "TEST ONLY" in security.signer.entry.certificate.subject.rfc4514_string()
    trusted = {e.eui for e in default_keystore().entries if e.usage is KeyUsage.XML_SIGN}
    assert {USER, 0x90B3D51F30020000} <= trusted


def test_zaz1_keystore_json_loads_as_npm_ships_it(zaz1):
    entry = zaz1.signing_entry(DSP_EUI)
    assert entry.name == "dsp-xml-sign-90B3D51F30000002-ds" and entry.issuer_name == "CN=Z1,OU=07"
    assert zaz1.signing_entry(USER).name == "xml-sign-90B3D51F30010000-ds"


def test_pem_directory_keystore(tmp_path, zaz1):
    entry = zaz1.signing_entry(DSP_EUI)
    from cryptography.hazmat.primitives import serialization

    (tmp_path / "90B3D51F30000002-xml-sign.pem").write_bytes(entry.certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "90B3D51F30000002-xml-sign.key").write_bytes(entry.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    loaded = load_keystore(tmp_path)
    assert loaded.signing_entry(DSP_EUI).serial == entry.serial


@pytest.mark.parametrize(("content", "message"), [
    ("{", "cannot read keystore JSON"),
    ('{"zz": {}}', "is not <16 hex digits>"),
    ('{"90b3d51f30000002": {"digitalSignature": {"1": {"certificate": "junk"}}}}', "not a PEM certificate"),
])
def test_bad_keystore_is_named_with_its_entry(tmp_path, content, message):
    path = tmp_path / "keystore.json"
    path.write_text(content)
    if "junk" in content:
        # a certificate DCC's own file could carry is skipped with a warning; then no DSP key is left
        with pytest.raises(KeystoreError, match="no signing key"):
            DuisSecurity.from_options(path)
        return
    with pytest.raises(KeystoreError, match=message):
        load_keystore(path)


def test_serve_with_a_bad_keystore_exits_2_naming_it(tmp_path, capsys):
    assert main(["serve", "--keystore", str(tmp_path / "nope.json"), "--db", ":memory:"]) == 2
    err = capsys.readouterr().err
    assert "nope.json: no such file or directory" in err and "Traceback" not in err


def test_a_request_signed_by_dcc_boxed_tooling_verifies(zaz1, tmp_path):
    """DCC Boxed's Sign (duis-sign-wrap) signs a template with the ZAZ1 user key; we verify it."""
    import subprocess

    from duis_schema import SIGN_WRAP_JAR

    template = sample("ECS52_11.2_SUCCESS_REQUEST_DUIS.XML")
    done = subprocess.run(["java", "-cp", str(SIGN_WRAP_JAR), "uk.co.smartdcc.boxed.xmldsig.Sign", "-"],
                          input=template, capture_output=True, timeout=120, check=True)
    signed = done.stdout
    check = RequestVerifier(default_keystore()).check(parse_document(signed), USER)
    assert check.valid, check
    tampered = signed.replace(b"<sr:CommandVariant>1<", b"<sr:CommandVariant>3<")
    assert RequestVerifier(default_keystore()).check(parse_document(tampered), USER).verdict is SignatureVerdict.INVALID


def test_template_placeholder_signature_counts_as_unsigned():
    check = RequestVerifier(default_keystore()).check(
        parse_document(sample("11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML")), USER)
    assert check.unsigned and check.verdict is SignatureVerdict.PLACEHOLDER


def _premises():
    return parse_scenario({"premises": [{"template": "default"}]}, source="test")


async def _post(service, path, body) -> tuple[int, bytes, dict]:
    async with TestClient(TestServer(service.app)) as client:
        reply = await client.post(path, data=body, headers={"Content-Type": "application/xml"})
        return reply.status, await reply.read(), dict(reply.headers)


@pytest.mark.parametrize("mode", SERVE_MODES)
async def test_serve_with_the_zaz1_keystore_signs_what_dcc_boxed_accepts(zaz1, mode):
    security = DuisSecurity.from_options(ZAZ1_KEYSTORE)
    service = await make_service(mode, _premises(), db=":memory:", journal=None, security=security)
    try:
        signed_request = DuisSigner(zaz1.signing_entry(USER)).sign(
            request_xml("11.2", "<sr:ReadFirmwareVersion/>", request_id=f"90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{7}"))
        status, data, headers = await _post(service, "/api/v1/serviceS", signed_request)
    finally:
        service.close()
    assert status == 200 and "X-CH-Emulator-Warning" not in headers
    assert_valid(data)
    assert etree.fromstring(data).findtext("{*}Header/{*}ResponseCode") == "I99"
    code, log = sign_wrap_validate(data)
    assert code == 0 and "passed signature check" in log, log


@pytest.mark.parametrize("mode", SERVE_MODES)
async def test_require_signatures_refuses_unsigned_requests_and_nothing_runs(mode):
    service = await make_service(mode, _premises(), db=":memory:", journal=None,
                                 security=DuisSecurity.from_options(require_signatures=True))
    try:
        status, data, headers = await _post(service, "/api/v1/serviceD", sample("11.4_UPDATE_PPMID_FIRMWARE_REQUEST_DUIS.XML"))
        assert service.system.dsp.sat.entries() == []
    finally:
        service.close()
    assert status == 200 and etree.fromstring(data).findtext("{*}Header/{*}ResponseCode") == "E1"
    assert "placeholder" in headers["X-CH-Emulator-Reason"]


def _without_signature_value(document: bytes) -> bytes:
    import re

    return re.sub(rb"<ds:SignatureValue>[^<]*</ds:SignatureValue>", b"<ds:SignatureValue/>", document)


@pytest.mark.parametrize("kind", ["answer", "response", "request"])
def test_template_signature_is_the_document_signxml_makes_and_verifies(kind):
    """The DSP signs from a precomputed template; the document must be byte for byte what signxml
    makes (but the ECDSA value, random in both), and verify with signxml and DCC's key."""
    from datetime import datetime, timezone

    from signxml import XMLVerifier

    from emulator.dcc.duis import UserMessageRenderer, render_dsp_response
    from emulator.dcc.messages import DspResponse, MessageKind, ResponseCode, UserMessage

    signer = DuisSecurity.from_options().signer
    assert signer is not None
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    renderer = UserMessageRenderer(epoch=at)

    def root():
        if kind == "answer":
            return etree.fromstring(render_dsp_response(
                DspResponse("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:7", "11.2", ResponseCode.ACKNOWLEDGED), at=at))
        if kind == "response":
            return renderer.element(UserMessage("m-1", MessageKind.RESPONSE, "11.2", 3.0, 0x00DB1234567890A0,
                                                "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:7",
                                                details={"payload": bytes.fromhex("DD00")}), counter=1)
        return parse_document(request_xml("11.2", "<sr:ReadFirmwareVersion/>"))

    ours, theirs = signer.sign_element(root()), signer.sign_element_with_signxml(root())
    assert _without_signature_value(ours) == _without_signature_value(theirs)
    assert ours != theirs  # a fresh ECDSA value each time, as signxml's
    XMLVerifier().verify(ours, x509_cert=signer.entry.certificate)
    tampered = ours.replace(b"11.2</sr:ServiceReferenceVariant>", b"11.3</sr:ServiceReferenceVariant>", 1)
    assert tampered != ours
    from signxml.exceptions import InvalidSignature
    with pytest.raises(InvalidSignature):
        XMLVerifier().verify(tampered, x509_cert=signer.entry.certificate)


def _java_signed(template: bytes) -> bytes:
    import subprocess

    from duis_schema import SIGN_WRAP_JAR

    return subprocess.run(["java", "-cp", str(SIGN_WRAP_JAR), "uk.co.smartdcc.boxed.xmldsig.Sign", "-"],
                          input=template, capture_output=True, timeout=120, check=True).stdout


def test_the_quick_check_of_dcc_boxed_signatures_agrees_with_signxml(zaz1):
    """A request signed by DCC Boxed's own tool takes the quick path (no signxml) and verifies;
    any change to what it signs, or the wrong key, is refused the same way signxml refuses it."""
    from signxml import XMLVerifier
    from signxml.exceptions import InvalidSignature

    from emulator.dcc.duis.signing import verify_dsp_profile

    user = zaz1.signing_entry(USER).certificate
    signed = _java_signed(sample("ECS52_11.2_SUCCESS_REQUEST_DUIS.XML"))

    def quick(document: bytes, key=None):
        root = parse_document(document)
        return verify_dsp_profile(root, root.find("{http://www.w3.org/2000/09/xmldsig#}Signature"),
                                  key or user.public_key())

    def signxml_accepts(document: bytes) -> bool:
        try:
            XMLVerifier().verify(document, x509_cert=user)
        except InvalidSignature:
            return False
        return True

    assert quick(signed) is True and signxml_accepts(signed)
    other_key = DuisSecurity.from_options().signer.entry.certificate.public_key()
    assert quick(signed, other_key) is False
    for tampered in (signed.replace(b"<sr:CommandVariant>1<", b"<sr:CommandVariant>3<"),
                     signed.replace(b"<sr:ReadFirmwareVersion", b"<sr:ReadFirmwareVersion x=\"1\""),
                     signed.replace(b"</sr:Header>", b"<!-- not signed? comments are left out of c14n -->"
                                    b"</sr:Header>")):
        assert tampered != signed
        assert quick(tampered) is signxml_accepts(tampered)
    assert quick(signed.replace(b"<sr:CommandVariant>1<", b"<sr:CommandVariant>3<")) is False
    # another shape (a second Reference) is not the quick path's to judge: signxml does
    wrapped = signed.replace(b"</ds:Reference>", b"</ds:Reference><ds:Reference URI=\"#x\"></ds:Reference>", 1)
    assert quick(wrapped) is None
    assert RequestVerifier(default_keystore()).check(parse_document(wrapped), USER).verdict is SignatureVerdict.INVALID


def test_the_quick_check_accepts_what_the_dsp_signs():
    from emulator.dcc.duis.signing import verify_dsp_profile

    signer = DuisSecurity.from_options().signer
    root = parse_document(signer.sign(request_xml("11.2", "<sr:ReadFirmwareVersion/>")))
    signature = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    assert verify_dsp_profile(root, signature, signer.entry.certificate.public_key()) is True
    root.find("{*}Header/{*}CommandVariant").text = "3"
    assert verify_dsp_profile(root, signature, signer.entry.certificate.public_key()) is False
