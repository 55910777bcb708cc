"""Power cycles at each stage after the last block: what the device keeps in flash and what it does."""

from __future__ import annotations

import pytest
from helpers import Site, one

from emulator.dcc.premises import ESME_ID, PPMID_ID
from emulator.gbcs.codes import GbcsAlertCode
from emulator.ota.client import ClientAttr, ImageUpgradeStatus
from emulator.ota.frames import ImageBlockRequest, UpgradeEndRequest
from emulator.ota.policy import UpgradeTiming

NEW_VERSION = 0xACDCACDD
OLD_VERSION = 0xACDC0001
HOUR = 3600.0


def _power_cycle(site: Site, device: int, off_for: float = 30.0) -> float:
    site.devices[device].power_off()
    site.run(off_for)
    site.devices[device].power_on()
    return site.clock.now()


def test_power_cycle_in_the_silent_phase_verifies_again_and_activates(site: Site, ppmid_image: bytes) -> None:
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("download_complete", PPMID_ID, within=HOUR)
    blocks_before = len(site.frames(ImageBlockRequest, src=PPMID_ID))
    _power_cycle(site, PPMID_ID)
    site.run_until("firmware_activated", PPMID_ID, within=HOUR)
    site.run(1.0)

    assert len(site.frames(ImageBlockRequest, src=PPMID_ID)) == blocks_before, "nothing downloaded twice"
    assert one(site.frames(UpgradeEndRequest, src=PPMID_ID)).time > 30.0
    assert one(site.alerts(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, PPMID_ID)).details["request_id"] == "t:11.4:1"
    assert not site.alerts(GbcsAlertCode.CCS08_TRANSFER_FAILURE)


def test_power_cycle_during_count_down_asks_again_and_still_activates(site: Site, ppmid_image: bytes) -> None:
    site.hub.add_image(ppmid_image)
    site.hub.set_device_policy(PPMID_ID, upgrade_timing=UpgradeTiming.DELAY, upgrade_delay_s=600)
    site.hub.image_notify(PPMID_ID)
    site.run_until("upgrade_scheduled", PPMID_ID, within=HOUR)
    on_at = _power_cycle(site, PPMID_ID)

    activated = site.run_until("firmware_activated", PPMID_ID, within=HOUR)
    assert len(site.frames(UpgradeEndRequest, src=PPMID_ID)) == 2
    assert activated.time > on_at + 600.0 - 1.0, "a fresh count-down from the hub's answer"
    assert site.devices[PPMID_ID].firmware.active_version == NEW_VERSION


def test_power_cycle_while_waiting_keeps_the_image_for_the_upgrade_command(site: Site, esme_image: bytes) -> None:
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)
    frames_before = len(site.air)
    _power_cycle(site, ESME_ID)
    site.run(HOUR)

    device = site.devices[ESME_ID]
    assert device.client.attributes()[ClientAttr.IMAGE_UPGRADE_STATUS] == ImageUpgradeStatus.WAITING_TO_UPGRADE
    assert not [f for f in site.air[frames_before:] if f.packet.src == ESME_ID], "it waits quietly"
    site.hub.upgrade_now(ESME_ID)
    site.run_until("firmware_activated", ESME_ID, within=60.0)
    assert device.firmware.active_version == NEW_VERSION


@pytest.mark.parametrize("off_for", [60.0, 300.0])
def test_power_cycle_mid_download_completes_without_restarting(site: Site, esme_image: bytes, off_for: float) -> None:
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("transfer_progress", ESME_ID, within=HOUR, percent=30.0)
    _power_cycle(site, ESME_ID, off_for)
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)

    offsets = [f.command.file_offset for f in site.frames(ImageBlockRequest, src=ESME_ID)]
    assert offsets.count(0) == 1, "the download never starts over"
    assert site.devices[ESME_ID].client.pending_image == esme_image
