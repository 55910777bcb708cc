"""SR 11.2 (read firmware version) and 11.3 (activate firmware) through the Comms Hub to a meter."""

from __future__ import annotations

import json

from helpers import Site, one

from emulator.dcc.premises import ESME_ID, PPMID_ID
from emulator.devices.device import DeviceFaults
from emulator.gbcs.asn1_payloads import CommandAccepted
from emulator.gbcs.codes import ActivationResponseCode, GbcsAlertCode
from emulator.gbcs.messages import decode_message
from emulator.hub.port import CommandResponse
from emulator.scenario.premises import DeviceBehaviour
from emulator.scenario.samples import SAMPLES_DIR

NEW_VERSION = 0xACDCACDD
OLD_VERSION = 0xACDC0001
HOUR = 3600.0


def _esme_hash() -> bytes:
    """SHA-256 of the ESME sample's Manufacturer Image, as the sample builder recorded it."""
    manifest = json.loads((SAMPLES_DIR / "samples.json").read_text())
    entry = one([s for s in manifest["samples"] if s["device_type"] == "ESME"])
    return bytes.fromhex(entry["manufacturer_image_sha256"])


def _esme_holding_the_image(site: Site, esme_image: bytes) -> None:
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)
    site.run(1.0)


def _response(site: Site, request_id: str) -> CommandResponse:
    return one(site.responses(request_id), f"response to {request_id}")


def test_read_firmware_version_answers_with_the_active_version(site: Site) -> None:
    site.hub.read_firmware_version(ESME_ID, request_id="t:11.2:1")
    site.run(5.0)
    response = _response(site, "t:11.2:1")
    assert response.service_reference == "11.2"
    assert response.device == ESME_ID and response.hub == site.hub.eui64
    assert response.details["firmware_version"] == OLD_VERSION


def test_activate_with_the_right_hash_runs_the_new_version(site: Site, esme_image: bytes) -> None:
    _esme_holding_the_image(site, esme_image)
    site.hub.activate_firmware(ESME_ID, _esme_hash(), None, request_id="t:11.3:1")
    site.run(5.0)
    response = _response(site, "t:11.3:1")
    assert response.service_reference == "11.3"
    assert response.details["response_code"] == ActivationResponseCode.SUCCESS
    assert response.details["firmware_version"] == NEW_VERSION

    site.hub.read_firmware_version(ESME_ID, request_id="t:11.2:1")
    site.run(5.0)
    assert _response(site, "t:11.2:1").details["firmware_version"] == NEW_VERSION


def test_activate_with_a_wrong_hash_is_a_hash_mismatch(site: Site, esme_image: bytes) -> None:
    _esme_holding_the_image(site, esme_image)
    wrong = bytes(b ^ 0xFF for b in _esme_hash())
    site.hub.activate_firmware(ESME_ID, wrong, None, request_id="t:11.3:1")
    site.run(5.0)
    response = _response(site, "t:11.3:1")
    assert response.details["response_code"] == ActivationResponseCode.HASH_MISMATCH
    assert response.details["firmware_version"] == OLD_VERSION
    assert site.devices[ESME_ID].firmware.pending_version == NEW_VERSION, "the image is still held"


def test_activate_before_any_download_is_no_image_held(site: Site) -> None:
    site.hub.activate_firmware(ESME_ID, _esme_hash(), None, request_id="t:11.3:1")
    site.run(5.0)
    response = _response(site, "t:11.3:1")
    assert response.details["response_code"] == ActivationResponseCode.NO_IMAGE_HELD
    assert response.details["firmware_version"] == OLD_VERSION


def test_future_dated_activation_acknowledges_now_and_alerts_0x8f66_at_that_time(
    site: Site, esme_image: bytes
) -> None:
    _esme_holding_the_image(site, esme_image)
    when = float(int(site.clock.now() + 2 * HOUR))  # GBCS date-times are whole seconds
    site.hub.activate_firmware(ESME_ID, _esme_hash(), when, request_id="t:11.3:1")
    site.run(5.0)
    ack = _response(site, "t:11.3:1")
    assert ack.details["response_code"] == ActivationResponseCode.SUCCESS
    assert ack.details["scheduled"] is True
    assert ack.details["execution_time"] == when
    # GBCS answers a future-dated CS06 "command accepted" (ASN.1 NULL): no version in it
    assert isinstance(decode_message(ack.gbcs or b"").payload, CommandAccepted)
    assert not site.alerts(GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS)

    activated = site.run_until("firmware_activated", ESME_ID, within=3 * HOUR)
    assert activated.time == when
    site.run(1.0)
    alert = one(site.alerts(GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS, ESME_ID), "0x8F66")
    assert alert.details["firmware_version"] == NEW_VERSION
    assert site.devices[ESME_ID].firmware.active_version == NEW_VERSION


def test_cancelled_future_dated_activation_never_happens(site: Site, esme_image: bytes) -> None:
    _esme_holding_the_image(site, esme_image)
    site.hub.activate_firmware(ESME_ID, _esme_hash(), site.clock.now() + HOUR, request_id="t:11.3:1")
    site.run(60.0)
    site.hub.cancel_activation(ESME_ID, request_id="t:11.3:cancel")
    site.run(2 * HOUR)

    assert _response(site, "t:11.3:cancel").details["cancelled"] is True
    assert not site.named("firmware_activated", ESME_ID)
    assert not site.alerts(GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS)
    assert not site.alerts(GbcsAlertCode.FUTURE_DATED_ACTIVATION_FAILURE)
    assert site.devices[ESME_ID].firmware.active_version == OLD_VERSION
    assert site.devices[ESME_ID].firmware.pending_version == NEW_VERSION


def test_cancel_with_nothing_scheduled_is_accepted_and_changes_nothing(site: Site) -> None:
    site.hub.cancel_activation(ESME_ID, request_id="t:11.3:cancel")
    site.run(5.0)
    response = _response(site, "t:11.3:cancel")
    assert isinstance(decode_message(response.gbcs or b"").payload, CommandAccepted), "GBCS: command accepted"
    assert one(site.named("command_response", ESME_ID)).fields["cancelled"] is False, "the meter's timeline says"


def _failing_meter_site(make_site) -> Site:
    return make_site((ESME_ID,), behaviours={ESME_ID: DeviceBehaviour(faults=DeviceFaults(activation_fails=True))})


def test_activation_failure_fault_answers_activation_failure(make_site, esme_image: bytes) -> None:
    site = _failing_meter_site(make_site)
    _esme_holding_the_image(site, esme_image)
    site.hub.activate_firmware(ESME_ID, _esme_hash(), None, request_id="t:11.3:1")
    site.run(5.0)
    response = _response(site, "t:11.3:1")
    assert response.details["response_code"] == ActivationResponseCode.ACTIVATION_FAILURE
    assert response.details["firmware_version"] == OLD_VERSION
    assert site.devices[ESME_ID].firmware.active_version == OLD_VERSION


def test_future_dated_activation_failure_alerts_0x8f67(make_site, esme_image: bytes) -> None:
    site = _failing_meter_site(make_site)
    _esme_holding_the_image(site, esme_image)
    site.hub.activate_firmware(ESME_ID, _esme_hash(), site.clock.now() + HOUR, request_id="t:11.3:1")
    site.run(2 * HOUR)
    assert _response(site, "t:11.3:1").details["scheduled"] is True
    alert = one(site.alerts(GbcsAlertCode.FUTURE_DATED_ACTIVATION_FAILURE, ESME_ID), "0x8F67")
    assert alert.details["firmware_version"] == OLD_VERSION
    assert not site.alerts(GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS)


def test_commands_to_an_unknown_device_are_refused_clearly(site: Site) -> None:
    import pytest

    stranger = 0x00DB1234567890FF
    with pytest.raises(ValueError, match="00DB1234567890FF is not known on this HAN"):
        site.hub.read_firmware_version(stranger, request_id="t:11.2:x")
    assert PPMID_ID in site.devices
