"""11.3 as DCC runs it, at the hub: DCC issues the CS06 pre-command, the User signs it with its DS
key (TEST ONLY ZAZ1 supplier key), the ACB MACs it and the meter checks the KRP signature."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import Site, one

from emulator.dcc.premises import ESME_ID
from emulator.gbcs.codes import ActivationResponseCode, GbcsAlertCode
from emulator.gbcs.precommand import PreCommandError, check_signed_precommand, read_precommand, sign_precommand
from emulator.keys.embedded import REMOTE_PARTIES_DIR
from emulator.keys.pem import load_private_pem
from emulator.scenario.samples import SAMPLES_DIR

HOUR = 3600.0
NEW_VERSION = 0xACDCACDD
SUPPLIER_KEY = REMOTE_PARTIES_DIR / "90b3d51f30010000-ds.key"


def _esme_hash() -> bytes:
    manifest = json.loads((SAMPLES_DIR / "samples.json").read_text())
    entry = one([s for s in manifest["samples"] if s["device_type"] == "ESME"])
    return bytes.fromhex(entry["manufacturer_image_sha256"])


def _supplier_key() -> ec.EllipticCurvePrivateKey:
    return load_private_pem(SUPPLIER_KEY.read_bytes(), str(SUPPLIER_KEY))


def _holding(site: Site, esme_image: bytes) -> None:
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)
    site.run(1.0)


def _send_signed(site: Site, signed: bytes, request_id: str) -> None:
    command = site.hub.gbcs.signed_command(ESME_ID, signed, request_id=request_id)
    site.hub.send_gbcs(ESME_ID, command, request_id=request_id, service_reference="11.3")


def test_a_pre_command_signed_by_the_user_activates(site: Site, esme_image: bytes) -> None:
    _holding(site, esme_image)
    pre = site.hub.gbcs.precommand(ESME_ID, _esme_hash(), None, request_id="t:11.3:1")
    assert read_precommand(pre, signed=False).signature is None, "DCC's pre-command carries no signature field"
    signed = sign_precommand(pre, _supplier_key())
    assert signed[:len(pre)] == pre and signed[len(pre)] == 0x40 and len(signed) == len(pre) + 65
    check_signed_precommand(signed, pre)
    _send_signed(site, signed, "t:11.3:1")
    site.run(5.0)
    response = one(site.responses("t:11.3:1"))
    assert response.details["response_code"] == ActivationResponseCode.SUCCESS
    assert response.details["firmware_version"] == NEW_VERSION
    assert site.devices[ESME_ID].firmware.active_version == NEW_VERSION


def test_a_future_dated_signed_pre_command_alerts_0x8f66_at_its_time(site: Site, esme_image: bytes) -> None:
    _holding(site, esme_image)
    when = float(int(site.clock.now() + 2 * HOUR))
    pre = site.hub.gbcs.precommand(ESME_ID, _esme_hash(), when, request_id="t:11.3:1")
    _send_signed(site, sign_precommand(pre, _supplier_key()), "t:11.3:1")
    site.run(5.0)
    ack = one(site.responses("t:11.3:1"))
    assert ack.details["scheduled"] is True and ack.details["execution_time"] == when
    activated = site.run_until("firmware_activated", ESME_ID, within=3 * HOUR)
    assert activated.time == when
    site.run(1.0)
    assert one(site.alerts(GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS, ESME_ID)).details["firmware_version"] == NEW_VERSION


def test_a_pre_command_signed_with_the_wrong_key_is_refused_by_the_meter(site: Site, esme_image: bytes) -> None:
    _holding(site, esme_image)
    pre = site.hub.gbcs.precommand(ESME_ID, _esme_hash(), None, request_id="t:11.3:1")
    _send_signed(site, sign_precommand(pre, ec.generate_private_key(ec.SECP256R1())), "t:11.3:1")
    site.run(5.0)
    (refused,) = site.named("command_refused", ESME_ID)
    assert "KRP signature does not verify" in refused.fields["reason"]
    assert not site.responses("t:11.3:1"), "a meter does not answer a command it cannot authenticate"
    assert not site.named("firmware_activated", ESME_ID)
    assert site.devices[ESME_ID].firmware.pending_version == NEW_VERSION


def test_a_signed_pre_command_must_be_the_one_issued(site: Site) -> None:
    pre = site.hub.gbcs.precommand(ESME_ID, _esme_hash(), None, request_id="t:11.3:1")
    other = site.hub.gbcs.precommand(ESME_ID, _esme_hash(), None, request_id="t:11.3:2")  # the next counter
    with pytest.raises(PreCommandError, match="differs from the pre-command issued"):
        check_signed_precommand(sign_precommand(other, _supplier_key()), pre)
    with pytest.raises(PreCommandError, match="KRP signature"):
        check_signed_precommand(pre, pre)
    with pytest.raises(PreCommandError, match="not a GBCS message"):
        check_signed_precommand(b"\xdf\x09", pre)
