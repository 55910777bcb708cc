"""The OTA client of an emulated device, driven by the real Comms Hub over the virtual HAN.

Everything runs in virtual time; what the tests look at is what a test engineer would see in a
capture (frames on the air, decoded with the production codec) or read from the device (its OTA
client attributes), plus the timeline events.
"""

from __future__ import annotations

import math

import pytest
from helpers import AirFrame, Site, esme_image_version

from emulator.dcc.premises import ESME_ID, PPMID_ID, TARGET_FIRMWARE_VERSION
from emulator.han.packet import OTA_CLUSTER
from emulator.han.virtual import Verdict
from emulator.ota.client import ClientAttr, ImageUpgradeStatus
from emulator.ota.frames import (
    ImageBlockRequest,
    ImageBlockResponse,
    ImagePageRequest,
    QueryNextImageRequest,
    Status,
    UpgradeEndRequest,
)
from emulator.ota.image import parse_image
from emulator.scenario.premises import DeviceBehaviour

NEW_VERSION = 0xACDCACDD  # file version of the TEST ONLY samples
OLD_VERSION = 0xACDC0001  # what the default premises' devices run
HOUR = 3600.0


def test_sample_versions_are_what_these_tests_assume(ppmid_image: bytes) -> None:
    header = parse_image(ppmid_image, source="PPMID sample").header
    assert header.file_version == NEW_VERSION > OLD_VERSION
    assert TARGET_FIRMWARE_VERSION != OLD_VERSION


def _watch_requests(site: Site, device: int, request_type: type = ImageBlockRequest) -> list[dict]:
    """The device's client attributes at the moment each of its block requests goes on the air."""
    seen: list[dict] = []
    client = site.devices[device].client

    def hook(direction: str, packet) -> None:
        if packet.src == device and site.air and isinstance(site.air[-1].command, request_type):
            seen.append(client.attributes())

    site.han.add_trace_hook(hook)
    return seen


def test_full_download_then_activation_sets_the_client_attributes(site: Site, ppmid_image: bytes) -> None:
    during = _watch_requests(site, PPMID_ID)
    client = site.devices[PPMID_ID].client
    assert client.attributes()[ClientAttr.IMAGE_UPGRADE_STATUS] == ImageUpgradeStatus.NORMAL

    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("firmware_activated", PPMID_ID, within=HOUR)

    # During the download: status 1, FileOffset starts at 0 and grows with every block.
    assert len(during) > 100
    assert {a[ClientAttr.IMAGE_UPGRADE_STATUS] for a in during} == {ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS}
    offsets = [a[ClientAttr.FILE_OFFSET] for a in during]
    assert offsets[0] == 0
    assert all(b > a for a, b in zip(offsets, offsets[1:]))
    assert offsets[-1] < len(ppmid_image)
    # The offsets on the air are the attribute's values.
    assert [f.command.file_offset for f in site.frames(ImageBlockRequest, src=PPMID_ID)] == offsets
    assert {a[ClientAttr.CURRENT_FILE_VERSION] for a in during} == {OLD_VERSION}

    after = client.attributes()
    assert after[ClientAttr.CURRENT_FILE_VERSION] == NEW_VERSION
    assert after[ClientAttr.DOWNLOADED_FILE_VERSION] == NEW_VERSION
    assert after[ClientAttr.FILE_OFFSET] == 0
    assert after[ClientAttr.IMAGE_UPGRADE_STATUS] == ImageUpgradeStatus.NORMAL
    assert after[ClientAttr.UPGRADE_SERVER_ID] == site.hub.eui64
    end = [f.command for f in site.frames(UpgradeEndRequest, src=PPMID_ID)]
    assert [(e.status, e.file_version) for e in end] == [(Status.SUCCESS, NEW_VERSION)]


def test_downloaded_image_is_byte_identical_to_the_one_distributed(site: Site, esme_image: bytes) -> None:
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)
    client = site.devices[ESME_ID].client
    assert client.pending_image == esme_image
    assert client.attributes()[ClientAttr.DOWNLOADED_FILE_VERSION] == NEW_VERSION
    assert client.attributes()[ClientAttr.IMAGE_UPGRADE_STATUS] == ImageUpgradeStatus.WAITING_TO_UPGRADE


def test_client_honours_wait_for_data_and_minimum_block_period(site: Site, ppmid_image: bytes) -> None:
    site.hub.set_device_policy(PPMID_ID, minimum_block_period_ms=500)
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("firmware_activated", PPMID_ID, within=2 * HOUR)

    waits = [f for f in site.frames(ImageBlockResponse, dst=PPMID_ID) if f.command.status == Status.WAIT_FOR_DATA]
    assert len(waits) == 1, "after one WAIT_FOR_DATA the client keeps to the period on its own"
    assert waits[0].command.minimum_block_period == 500
    requests = [f for f in site.frames(ImageBlockRequest, src=PPMID_ID) if f.time > waits[0].time]
    assert len(requests) > 100
    gaps = [b.time - a.time for a, b in zip(requests, requests[1:])]
    assert min(gaps) >= 0.5
    # It also tells the server the period it keeps (field control bit 1).
    assert all(f.command.minimum_block_period == 500 and f.command.field_control & 0x02 for f in requests)
    assert site.devices[PPMID_ID].client.attributes()[ClientAttr.MINIMUM_BLOCK_PERIOD] == 500


def _drop_first(command_type: type, src: int | None = None, dst: int | None = None):
    """A manipulator dropping the first OTA frame of ``command_type`` (from ``src`` / to ``dst``)."""
    from emulator.ota import codec

    dropped: list[object] = []

    def manipulate(packet) -> Verdict | None:
        if dropped or (src is not None and packet.src != src) or (dst is not None and packet.dst != dst):
            return None
        try:
            frame = codec.decode(packet.payload)
        except codec.FrameError:
            return None
        if isinstance(frame.command, command_type):
            dropped.append(frame.command)
            return Verdict(drop=True)
        return None

    return manipulate, dropped


def test_lost_first_block_response_is_retried_and_the_download_completes(site: Site, ppmid_image: bytes) -> None:
    manipulator, dropped = _drop_first(ImageBlockResponse, dst=PPMID_ID)
    site.han.set_manipulator(manipulator)
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("firmware_activated", PPMID_ID, within=HOUR)

    assert len(dropped) == 1 and dropped[0].file_offset == 0
    requests = site.frames(ImageBlockRequest, src=PPMID_ID)
    assert [r.command.file_offset for r in requests[:2]] == [0, 0], "the retry asks for the same offset"
    assert requests[1].time - requests[0].time >= site.devices[PPMID_ID].profile.response_timeout_s
    assert site.named("response_timeout", PPMID_ID)
    assert site.devices[PPMID_ID].firmware.active_version == NEW_VERSION


def test_lost_first_query_is_repeated_and_the_device_recovers(site: Site, ppmid_image: bytes) -> None:
    manipulator, dropped = _drop_first(QueryNextImageRequest, src=PPMID_ID)
    site.han.set_manipulator(manipulator)
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("firmware_activated", PPMID_ID, within=HOUR)

    assert len(dropped) == 1
    queries = site.frames(QueryNextImageRequest, src=PPMID_ID)
    assert len(queries) == 2
    assert queries[1].command == queries[0].command
    assert site.devices[PPMID_ID].firmware.active_version == NEW_VERSION


def test_image_notify_makes_an_awake_device_query_at_once(make_site, ppmid_image: bytes) -> None:
    site = make_site((PPMID_ID,), behaviours={PPMID_ID: DeviceBehaviour(
        profile_changes={"initial_query_delay_s": 600.0, "query_interval_s": 6 * HOUR})})
    site.run(100.0)
    assert not site.frames(QueryNextImageRequest), "nothing asked the device to query yet"
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("firmware_activated", PPMID_ID, within=HOUR)

    first_query = site.frames(QueryNextImageRequest, src=PPMID_ID)[0]
    assert 100.0 < first_query.time < 101.0


def test_device_ignoring_image_notify_queries_on_its_own_schedule_and_completes(
    make_site, ppmid_image: bytes
) -> None:
    site = make_site((PPMID_ID,), behaviours={PPMID_ID: DeviceBehaviour(profile_changes={
        "ignore_image_notify": True, "initial_query_delay_s": 10.0, "query_interval_s": 1800.0})})
    site.run(100.0)
    (early,) = site.frames(QueryNextImageRequest, src=PPMID_ID)
    assert early.time == pytest.approx(10.0)
    assert site.named("query_answered", PPMID_ID)[0].fields["status"] == "NO_IMAGE_AVAILABLE"

    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    activated = site.run_until("firmware_activated", PPMID_ID, within=HOUR)

    assert site.named("image_notify_ignored", PPMID_ID)
    queries = site.frames(QueryNextImageRequest, src=PPMID_ID)
    assert len(queries) == 2
    assert queries[1].time - early.time == pytest.approx(1800.0, abs=1.0), "the next query is the scheduled one"
    assert activated.time > queries[1].time


def test_page_requests_download_completely_with_spaced_responses(make_site, ppmid_image: bytes) -> None:
    spacing_ms, page_size = 200, 512
    site = make_site((PPMID_ID,), behaviours={PPMID_ID: DeviceBehaviour(profile_changes={
        "use_page_requests": True, "response_spacing_ms": spacing_ms, "page_size": page_size})})
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("firmware_activated", PPMID_ID, within=2 * HOUR)

    assert not site.frames(ImageBlockRequest, src=PPMID_ID), "a page-only device never sends Image Block Request"
    pages = site.frames(ImagePageRequest, src=PPMID_ID)
    assert len(pages) == math.ceil(len(ppmid_image) / page_size)
    assert [p.command.file_offset for p in pages] == list(range(0, len(ppmid_image), page_size))
    assert all(p.command.response_spacing == spacing_ms and p.command.page_size == page_size for p in pages)

    responses = site.frames(ImageBlockResponse, dst=PPMID_ID)
    data = b"".join(r.command.image_data for r in responses)
    assert data == ppmid_image
    # Within a page, responses follow each other at the requested spacing.
    by_page: dict[int, list[AirFrame]] = {}
    for r in responses:
        by_page.setdefault(r.command.file_offset // page_size, []).append(r)
    gaps = [b.time - a.time for page in by_page.values() for a, b in zip(page, page[1:])]
    assert gaps and min(gaps) == pytest.approx(spacing_ms / 1000.0)
    assert site.devices[PPMID_ID].firmware.active_version == NEW_VERSION


def test_power_cycle_mid_transfer_resumes_from_the_offset_reached(site: Site, esme_image: bytes) -> None:
    hub_heard: list[ImageBlockRequest] = []
    from emulator.ota import codec

    def hub_rx(direction: str, packet) -> None:
        if direction == "rx" and packet.src == ESME_ID and packet.cluster == OTA_CLUSTER:
            command = codec.decode(packet.payload).command
            if isinstance(command, ImageBlockRequest):
                hub_heard.append(command)

    site.hub.transport.add_trace_hook(hub_rx)
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("download_started", ESME_ID, within=HOUR)
    site.run(5.0)  # part of the image
    device = site.devices[ESME_ID]
    offset_at_power_off = device.client.file_offset
    assert 0 < offset_at_power_off < len(esme_image) // 2

    device.power_off()
    off_at = site.clock.now()
    site.run(120.0)
    assert not [f for f in site.air if f.packet.src == ESME_ID and f.time >= off_at], "a powered-off device is silent"
    heard_before = len(hub_heard)
    device.power_on()
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)

    resumed = hub_heard[heard_before]
    assert resumed.file_offset == offset_at_power_off > 0
    assert all(r.file_offset >= offset_at_power_off for r in hub_heard[heard_before:])
    assert device.client.pending_image == esme_image


def test_whole_exchange_on_the_air_decodes_with_zigpy(site: Site) -> None:
    """zigpy's ZCL OTA definitions, an independent decoder, read every frame of a transfer the same way."""
    from zigpy.zcl import foundation
    from zigpy.zcl.clusters.general import Ota

    image = esme_image_version(NEW_VERSION + 1, payload_length=2048)  # small: zigpy decodes slowly
    site.hub.distribute_image(image, [ESME_ID], activate_now=True, request_id="t:11.1:1")
    site.run_until("firmware_activated", ESME_ID, within=HOUR)

    names: list[str] = []
    reassembled = bytearray()
    for f in site.air:
        if f.packet.cluster != OTA_CLUSTER:
            continue
        header, rest = foundation.ZCLHeader.deserialize(f.packet.payload)
        assert header.tsn == f.frame.header.tsn and header.command_id == f.frame.header.command_id
        to_server = header.direction == foundation.Direction.Client_to_Server
        definition = (Ota.server_commands if to_server else Ota.client_commands)[header.command_id]
        decoded, extra = definition.schema.deserialize(rest)
        assert extra == b"", f"{definition.name}: zigpy left {extra.hex()} undecoded"
        names.append(definition.name)
        if definition.name == "image_block":
            assert decoded.file_offset == f.command.file_offset == len(reassembled)
        if definition.name == "image_block_response":
            assert decoded.file_offset == len(reassembled)
            reassembled += decoded.image_data
    assert bytes(reassembled) == image
    assert names[:3] == ["image_notify", "query_next_image", "query_next_image_response"]
    assert names[-2:] == ["upgrade_end", "upgrade_end_response"]


def test_an_image_already_held_offered_again_is_confirmed_at_once(site: Site, esme_image: bytes) -> None:
    """A second 11.1 of the image an ESME holds for its activation ends as transferred within
    seconds (Upgrade End Request SUCCESS, no block fetched again), not at the hub's 600 s block
    gap timeout."""
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)
    blocks_before = len(site.frames(ImageBlockRequest, src=ESME_ID))
    started = site.clock.now()

    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:2")
    done = site.run_until("transfer_completed", ESME_ID, within=HOUR)

    assert done.time - started < 60.0
    assert done.fields["bytes_served"] == 0
    assert len(site.frames(ImageBlockRequest, src=ESME_ID)) == blocks_before
    end = [f.command for f in site.frames(UpgradeEndRequest, src=ESME_ID)]
    assert [(e.status, e.file_version) for e in end] == [(Status.SUCCESS, NEW_VERSION)] * 2
    client = site.devices[ESME_ID].client
    assert client.pending_image == esme_image
    assert client.attributes()[ClientAttr.IMAGE_UPGRADE_STATUS] == ImageUpgradeStatus.WAITING_TO_UPGRADE
