"""The Comms Hub serving distributions over the HAN and what it reports upstream (GBCS CCS08)."""

from __future__ import annotations

import pytest
from helpers import Site, esme_image_version, one

from emulator.dcc.premises import ESME_ID, PPMID_ID
from emulator.han.packet import ApsPacket, OTA_CLUSTER
from emulator.gbcs.codes import GbcsAlertCode, TransferResult
from emulator.ota import codec
from emulator.ota.actions import AlertRaised, QueryAnswered, Refusal
from emulator.ota.frames import (
    DefaultResponse,
    ImageBlockRequest,
    ImageBlockResponse,
    QueryNextImageResponse,
    Status,
)
from emulator.ota.policy import ServerPolicy
from emulator.ota.sessions import SqliteSessionStore
from emulator.scenario.premises import DeviceBehaviour

NEW_VERSION = 0xACDCACDD
OLD_VERSION = 0xACDC0001
HOUR = 3600.0


def test_ppmid_11_4_reports_transfer_then_activation_with_the_new_version(site: Site, ppmid_image: bytes) -> None:
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("firmware_activated", PPMID_ID, within=HOUR)
    site.run(1.0)

    codes = [m.alert_code for m in site.upstream if m.device == PPMID_ID]
    assert codes == [GbcsAlertCode.CCS08_TRANSFER_SUCCESS, GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION]
    transferred, activated = (m for m in site.upstream if m.device == PPMID_ID)
    assert transferred.details["result"] == TransferResult.TRANSFERRED
    assert transferred.details["request_id"] == "t:11.4:1"
    assert transferred.details["firmware_version"] == NEW_VERSION
    assert activated.details["success"] is True
    assert activated.details["firmware_version"] == NEW_VERSION
    assert transferred.time <= activated.time
    assert all(m.hub == site.hub.eui64 for m in site.upstream)


def test_newer_distribution_discards_the_unfinished_one_and_completes(site: Site, esme_image: bytes) -> None:
    newer = esme_image_version(NEW_VERSION + 1)
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:old")
    site.run_until("download_started", ESME_ID, within=HOUR)
    site.run(3.0)
    assert 0 < site.devices[ESME_ID].client.file_offset < len(esme_image)

    site.hub.distribute_image(newer, [ESME_ID], activate_now=False, request_id="t:11.1:new")
    discarded = one(site.alerts(GbcsAlertCode.CCS08_TRANSFER_FAILURE, ESME_ID), "0x8F89")
    assert discarded.details["result"] == TransferResult.DISCARDED_OR_OVERWRITTEN
    assert discarded.details["request_id"] == "t:11.1:old"
    assert discarded.details["firmware_version"] == NEW_VERSION

    site.run_until("waiting_for_upgrade_command", ESME_ID, within=3 * HOUR)
    site.run(1.0)
    aborts = [f for f in site.frames(ImageBlockResponse, dst=ESME_ID) if f.command.status == Status.ABORT]
    assert aborts, "the old transfer is ended on the air"
    done = one(site.alerts(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, ESME_ID), "0x8F8A")
    assert done.details["request_id"] == "t:11.1:new"
    assert done.details["firmware_version"] == NEW_VERSION + 1
    assert site.devices[ESME_ID].client.pending_image == newer
    assert one(site.alerts(GbcsAlertCode.CCS08_TRANSFER_FAILURE, ESME_ID)) is discarded, "no further failure"


def test_hardware_version_outside_the_image_range_is_a_ccs08_mismatch(make_site, ppmid_image: bytes) -> None:
    site = make_site((PPMID_ID,), behaviours={PPMID_ID: DeviceBehaviour(profile_changes={"hardware_version": 0x2000})})
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run(HOUR)

    answer = one(site.frames(QueryNextImageResponse, dst=PPMID_ID))
    assert answer.command.status == Status.NO_IMAGE_AVAILABLE
    mismatch = one(site.alerts(GbcsAlertCode.CCS08_TRANSFER_FAILURE, PPMID_ID), "0x8F89")
    assert mismatch.details["result"] == TransferResult.HARDWARE_VERSION_MISMATCH
    assert mismatch.details["request_id"] == "t:11.4:1"
    assert not site.frames(ImageBlockRequest, src=PPMID_ID)
    assert site.devices[PPMID_ID].firmware.active_version == OLD_VERSION
    # The alert is born from the server's typed refusal, which the timeline carries beside its text.
    refused = [e for e in site.named("query_answered", PPMID_ID) if e.fields["status"] == "NO_IMAGE_AVAILABLE"]
    assert refused[0].outcome == QueryAnswered(PPMID_ID, Refusal.HARDWARE_VERSION_MISMATCH, OLD_VERSION, 0x2000)
    assert refused[0].fields["reason"] == "hardware_version_mismatch"
    alert = one([e for e in site.named("device_alert", PPMID_ID) if e.fields["alert"] == "0x8F89"])
    assert isinstance(alert.outcome, AlertRaised) and alert.outcome.cause == refused[0].outcome
    assert alert.fields["result"] == "hardware_version_mismatch" and alert.fields["hardware_version"] == "2000"


def test_the_hub_counts_its_ota_and_tunnel_frames_with_one_aps_counter(site: Site, esme_image: bytes) -> None:
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run(20.0)  # a few hundred blocks
    site.hub.read_firmware_version(ESME_ID, request_id="t:11.2:1")  # through the GBCS tunnel
    site.run(5.0)
    for node in (site.hub.eui64, ESME_ID):
        sent = [f.packet for f in site.air if f.packet.src == node]
        assert {p.cluster for p in sent} == {OTA_CLUSTER, 0x0704}, "both clusters were used"
        counters = [p.aps_counter for p in sent]
        assert counters[0] == 1
        assert all(b == (a + 1) & 0xFF for a, b in zip(counters, counters[1:])), f"{node:016X}: {counters[:20]}"


def test_hub_restart_mid_transfer_serves_the_next_block_and_completes(make_site, tmp_path, esme_image: bytes) -> None:
    store = SqliteSessionStore(str(tmp_path / "sessions.sqlite"))
    try:
        site = make_site((ESME_ID,), sessions=store)
        site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
        site.run_until("transfer_progress", ESME_ID, within=HOUR, percent=50.0)
        restarted_at = site.clock.now()
        site.hub.restart()
        site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)
        site.run(1.0)
    finally:
        store.close()

    assert site.named("server_restarted")
    after = [f for f in site.air if f.time > restarted_at and f.packet.cluster == OTA_CLUSTER]
    first_request = next(f for f in after if isinstance(f.command, ImageBlockRequest))
    answer = next(f for f in after if isinstance(f.command, ImageBlockResponse))
    assert answer.command.status == Status.SUCCESS
    assert answer.command.file_offset == first_request.command.file_offset > 0
    assert answer.frame.header.tsn == first_request.frame.header.tsn
    assert site.devices[ESME_ID].client.pending_image == esme_image
    assert one(site.alerts(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, ESME_ID)).details["request_id"] == "t:11.1:1"
    assert not site.alerts(GbcsAlertCode.CCS08_TRANSFER_FAILURE, ESME_ID)


@pytest.mark.parametrize(
    ("security_mode", "requested", "override", "expected"),
    [
        ("aps", 64, None, 40),
        ("nwk", 64, None, 49),
        ("none", 64, None, 63),
        ("none", 30, None, 30),  # the device asks for less than the cap
        ("aps", 64, 25, 25),  # per-device override below the cap
        ("nwk", 64, 60, 49),  # an override cannot raise the security cap
    ],
)
def test_block_size_is_the_smallest_of_request_security_cap_and_override(
    make_site, ppmid_image: bytes, security_mode: str, requested: int, override: int | None, expected: int
) -> None:
    site = make_site((PPMID_ID, ESME_ID), policy=ServerPolicy(security_mode=security_mode),
                     behaviours={PPMID_ID: DeviceBehaviour(profile_changes={"max_data_size": requested})})
    if override is not None:
        site.hub.set_device_policy(PPMID_ID, max_block_size=override)
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("firmware_activated", PPMID_ID, within=HOUR)

    assert {f.command.maximum_data_size for f in site.frames(ImageBlockRequest, src=PPMID_ID)} == {requested}
    sizes = [len(f.command.image_data) for f in site.frames(ImageBlockResponse, dst=PPMID_ID)]
    assert set(sizes[:-1]) == {expected}
    assert 0 < sizes[-1] <= expected
    assert sum(sizes) == len(ppmid_image)


def test_block_size_override_applies_to_its_device_only(make_site, esme_image: bytes) -> None:
    site = make_site((PPMID_ID, ESME_ID))
    site.hub.set_device_policy(PPMID_ID, max_block_size=20)
    site.hub.add_image(esme_image)
    site.hub.image_notify(ESME_ID)
    site.run_until("transfer_completed", ESME_ID, within=HOUR)
    sizes = [len(f.command.image_data) for f in site.frames(ImageBlockResponse, dst=ESME_ID)]
    assert max(sizes) == 40, "the ESME keeps the hub's default (APS security cap)"


def test_malformed_ota_frame_gets_default_response_and_the_hub_carries_on(site: Site, ppmid_image: bytes) -> None:
    port = site.devices[ESME_ID].transport
    # Query Next Image Request (cluster specific, client to server, TSN 0x42) cut after its field control.
    truncated = bytes([0x01, 0x42, 0x01, 0x00])
    port.send(ApsPacket(ESME_ID, site.hub.eui64, port.nwk, 0x0000, truncated, cluster=OTA_CLUSTER))
    site.run(1.0)

    answer = one(site.frames(DefaultResponse, dst=ESME_ID), "Default Response")
    assert answer.command == DefaultResponse(0x01, Status.MALFORMED_COMMAND)
    assert answer.frame.header.tsn == 0x42
    assert answer.frame.header.direction == 1
    report = one(site.named("malformed_frame", ESME_ID))
    assert report.source == "comms_hub"
    # The raw bytes of the answer decode with the production codec (sanity of what went out).
    assert codec.decode(answer.packet.payload).command.status == Status.MALFORMED_COMMAND

    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("firmware_activated", PPMID_ID, within=HOUR)


def test_newer_distribution_to_a_meter_holding_an_image_replaces_it(site: Site, esme_image: bytes) -> None:
    newer = esme_image_version(NEW_VERSION + 1)
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)
    site.run(1.0)  # the meter's 0x8F72 (three APS blocks in the tunnel) lands before the next distribution
    site.hub.distribute_image(newer, [ESME_ID], activate_now=False, request_id="t:11.1:2")
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)
    site.run(1.0)

    second = [a for a in site.alerts(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, ESME_ID)
              if a.details["request_id"] == "t:11.1:2"]
    assert one(second).details["firmware_version"] == NEW_VERSION + 1
    device = site.devices[ESME_ID]
    assert device.client.pending_image == newer
    assert device.firmware.pending_version == NEW_VERSION + 1
    verified = site.alerts(GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL, ESME_ID)
    assert [a.details["firmware_version"] for a in verified] == [NEW_VERSION, NEW_VERSION + 1]


def test_overwritten_transfer_is_shown_aborted_on_the_timeline(site: Site, esme_image: bytes) -> None:
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:old")
    site.run_until("download_started", ESME_ID, within=HOUR)
    site.run(3.0)
    site.hub.distribute_image(esme_image_version(NEW_VERSION + 1), [ESME_ID], activate_now=False,
                              request_id="t:11.1:new")
    aborted = one(site.named("aborted", ESME_ID))
    assert aborted.source == "comms_hub"
    assert "overwritten" in aborted.fields["reason"]


def test_transfer_reported_failed_does_not_then_silently_activate(site: Site, ppmid_image: bytes) -> None:
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("transfer_progress", PPMID_ID, within=HOUR, percent=30.0)
    site.devices[PPMID_ID].power_off()
    site.run(900.0)  # longer than the hub's 600 s block-gap timeout
    assert site.alerts(GbcsAlertCode.CCS08_TRANSFER_FAILURE, PPMID_ID), "precondition: the hub gave up"
    site.devices[PPMID_ID].power_on()
    site.run(2 * HOUR)

    activated = [a for a in site.alerts(GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION, PPMID_ID) if a.details["success"]]
    transferred = site.alerts(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, PPMID_ID)
    assert not activated or transferred, "upstream: 0x8F89 transfer failed, then the image runs (0x8F8B)"
