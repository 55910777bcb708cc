"""Emulated meters and PPMIDs: image verification and when they activate what they downloaded."""

from __future__ import annotations

import hashlib
import json

import pytest
from helpers import Site, one

from emulator.dcc.premises import ESME_ID, PPMID_ID
from emulator.gbcs.codes import GbcsAlertCode, TransferResult
from emulator.ota.client import ClientAttr, ImageUpgradeStatus
from emulator.ota.frames import DefaultResponse, Status, UpgradeEndRequest, UpgradeEndResponse
from emulator.ota.policy import UpgradeTiming
from emulator.scenario.premises import DeviceBehaviour
from emulator.scenario.samples import SAMPLES_DIR

NEW_VERSION = 0xACDCACDD
OLD_VERSION = 0xACDC0001
HOUR = 3600.0
DAY = 86400.0


def _manifest_hash(device_type: str) -> str:
    """The Manufacturer Image hash as the sample builder recorded it (independent of the device)."""
    manifest = json.loads((SAMPLES_DIR / "samples.json").read_text())
    return one([s for s in manifest["samples"] if s["device_type"] == device_type])["manufacturer_image_sha256"]


def _break_signature(image: bytes) -> bytes:
    """Flip one bit in the r half of the trailing 64-byte ECDSA signature of a GBCS image."""
    broken = bytearray(image)
    broken[-48] ^= 0x01
    return bytes(broken)


def test_meter_reports_verified_image_with_its_manufacturer_image_hash(site: Site, esme_image: bytes) -> None:
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)
    site.run(1.0)  # the alert crosses the HAN
    alert = one(site.alerts(GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL, ESME_ID), "0x8F72")
    assert alert.details["hash"] == _manifest_hash("ESME")
    assert alert.details["hash"] != hashlib.sha256(esme_image).hexdigest(), "the hash covers the Manufacturer Image only"


def test_broken_signature_is_reported_invalid_and_the_hub_reports_failure(site: Site, esme_image: bytes) -> None:
    site.hub.distribute_image(_break_signature(esme_image), [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("transfer_failed", ESME_ID, within=HOUR)
    site.run(1.0)

    end = one(site.frames(UpgradeEndRequest, src=ESME_ID), "Upgrade End Request")
    assert end.command.status == Status.INVALID_IMAGE
    assert not site.frames(UpgradeEndResponse, dst=ESME_ID), "a failed Upgrade End gets no Upgrade End Response"
    answer = one(site.frames(DefaultResponse, dst=ESME_ID), "Default Response")
    assert answer.command.command_id == 0x06
    assert answer.frame.header.tsn == end.frame.header.tsn

    ccs08 = one(site.alerts(GbcsAlertCode.CCS08_TRANSFER_FAILURE, ESME_ID), "0x8F89")
    assert ccs08.details["result"] == TransferResult.TRANSFER_FAILED
    assert ccs08.details["request_id"] == "t:11.1:1"
    assert not site.alerts(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, ESME_ID)
    one(site.alerts(GbcsAlertCode.FIRMWARE_VERIFICATION_FAILED, ESME_ID), "0x8F1C")
    raised = one([e for e in site.named("device_alert", ESME_ID) if e.fields["alert"] == "0x8F1C"])
    assert "signature" in raised.fields["reason"], "the FDRA carries no reason: the meter's timeline does"
    assert not site.alerts(GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL, ESME_ID)

    device = site.devices[ESME_ID]
    assert device.firmware.active_version == OLD_VERSION
    assert device.firmware.pending_version is None
    assert device.client.attributes()[ClientAttr.IMAGE_UPGRADE_STATUS] == ImageUpgradeStatus.NORMAL


def test_delayed_upgrade_activates_the_given_seconds_after_upgrade_end_response(
    site: Site, ppmid_image: bytes
) -> None:
    site.hub.add_image(ppmid_image)
    site.hub.set_device_policy(PPMID_ID, upgrade_timing=UpgradeTiming.DELAY, upgrade_delay_s=120)
    site.hub.image_notify(PPMID_ID)
    site.run_until("upgrade_scheduled", PPMID_ID, within=HOUR)
    response = one(site.frames(UpgradeEndResponse, dst=PPMID_ID), "Upgrade End Response")
    assert (response.command.current_time, response.command.upgrade_time) == (0, 120)

    site.run(60.0)
    client = site.devices[PPMID_ID].client
    assert client.attributes()[ClientAttr.IMAGE_UPGRADE_STATUS] == ImageUpgradeStatus.COUNT_DOWN
    assert site.devices[PPMID_ID].firmware.active_version == OLD_VERSION

    activated = site.run_until("firmware_activated", PPMID_ID, within=HOUR)
    heard_at = response.time + site.han.latency
    assert activated.time - heard_at == pytest.approx(120.0)
    assert client.attributes()[ClientAttr.CURRENT_FILE_VERSION] == NEW_VERSION


def test_meter_keeps_the_image_pending_until_the_upgrade_command(site: Site, esme_image: bytes) -> None:
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)
    response = one(site.frames(UpgradeEndResponse, dst=ESME_ID))
    assert response.command.upgrade_time == 0xFFFFFFFF

    site.run(DAY)
    device = site.devices[ESME_ID]
    assert device.client.attributes()[ClientAttr.IMAGE_UPGRADE_STATUS] == ImageUpgradeStatus.WAITING_TO_UPGRADE
    assert device.firmware.active_version == OLD_VERSION
    assert device.firmware.pending_version == NEW_VERSION

    site.hub.upgrade_now(ESME_ID)
    site.run_until("firmware_activated", ESME_ID, within=60.0)
    site.run(1.0)
    command = site.frames(UpgradeEndResponse, dst=ESME_ID)[-1].command
    assert (command.current_time, command.upgrade_time) == (0, 0)
    assert device.firmware.active_version == NEW_VERSION
    assert device.client.attributes()[ClientAttr.IMAGE_UPGRADE_STATUS] == ImageUpgradeStatus.NORMAL
    changed = one(site.alerts(GbcsAlertCode.EXECUTING_FIRMWARE_VERSION_CHANGED, ESME_ID), "0x8F43")
    assert changed.details["firmware_version"] == NEW_VERSION


def test_upgrade_command_to_a_device_not_waiting_is_refused(site: Site) -> None:
    with pytest.raises(ValueError, match="not waiting for an upgrade command"):
        site.hub.upgrade_now(ESME_ID)


def test_device_reading_a_relative_upgrade_time_as_utc_never_activates(make_site, ppmid_image: bytes) -> None:
    site = make_site((PPMID_ID,), behaviours={
        PPMID_ID: DeviceBehaviour(profile_changes={"absolute_upgrade_time": True})})
    site.hub.add_image(ppmid_image)
    site.hub.set_device_policy(PPMID_ID, upgrade_timing=UpgradeTiming.DELAY, upgrade_delay_s=120)
    site.hub.image_notify(PPMID_ID)
    scheduled = site.run_until("upgrade_scheduled", PPMID_ID, within=HOUR)
    assert scheduled.fields["delay_s"] > 50 * 365 * DAY

    site.run(DAY)
    assert not site.named("firmware_activated", PPMID_ID)
    device = site.devices[PPMID_ID]
    assert device.firmware.active_version == OLD_VERSION
    assert device.client.attributes()[ClientAttr.IMAGE_UPGRADE_STATUS] == ImageUpgradeStatus.COUNT_DOWN


def test_device_with_the_utc_fault_still_activates_on_now(make_site, ppmid_image: bytes) -> None:
    """Upgrade time 0 with current time 0 means "now" to every device, quirky or not."""
    site = make_site((PPMID_ID,), behaviours={
        PPMID_ID: DeviceBehaviour(profile_changes={"absolute_upgrade_time": True})})
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("firmware_activated", PPMID_ID, within=HOUR)
    assert site.devices[PPMID_ID].firmware.active_version == NEW_VERSION
