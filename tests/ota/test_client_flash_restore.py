"""The OTA client engine taking up a download kept in flash (no I/O, no clock)."""

from __future__ import annotations

import pytest

from emulator.ota.actions import DownloadAborted, NoImageOffered, Send, SetTimer, TimerKind
from emulator.ota.client import ClientProfile, HeldDownload, ImageUpgradeStatus, OtaClient
from emulator.ota.frames import (
    ImageBlockRequest,
    QueryNextImageRequest,
    QueryNextImageResponse,
    Status,
    UpgradeEndRequest,
    ZclFrame,
    ZclHeader,
)

DEV = 0x00DB1234567890A4
MFR, TYPE, OLD, NEW = 0x121D, 0x0084, 0xACDC0001, 0xACDCACDD
DATA = bytes(range(256)) * 40


def client() -> OtaClient:
    return OtaClient(DEV, ClientProfile(MFR, TYPE, OLD, max_data_size=64))


def answer(c: OtaClient, actions: list, response: QueryNextImageResponse) -> list:
    (send,) = [a for a in actions if isinstance(a, Send)]
    return c.on_frame(1.0, ZclFrame(ZclHeader(1, 1, True, send.tsn, 0x02), response))


def test_a_restored_download_queries_then_asks_from_the_offset_in_flash() -> None:
    c = client()
    c.restore_download(HeldDownload(MFR, TYPE, NEW, len(DATA), 4096, ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS),
                       DATA[:4096])
    assert c.file_offset == 4096 and c.held_download() is not None
    (timer,) = c.start(0.0)
    assert timer == SetTimer(DEV, TimerKind.QUERY, c.profile.initial_query_delay_s)
    sent = c.on_timer(1.0, TimerKind.QUERY)
    assert isinstance([a for a in sent if isinstance(a, Send)][0].command, QueryNextImageRequest)
    after = answer(c, sent, QueryNextImageResponse(Status.SUCCESS, MFR, TYPE, NEW, len(DATA)))
    (request,) = [a.command for a in after if isinstance(a, Send)]
    assert isinstance(request, ImageBlockRequest) and request.file_offset == 4096
    assert c.downloaded_slice(0, 4096) == DATA[:4096]


def test_a_restored_complete_download_is_verified_again() -> None:
    c = client()
    c.restore_download(HeldDownload(MFR, TYPE, NEW, len(DATA), len(DATA), ImageUpgradeStatus.DOWNLOAD_COMPLETE), DATA)
    (timer,) = c.start(0.0)
    assert isinstance(timer, SetTimer) and timer.kind is TimerKind.VERIFIED
    sent = c.on_timer(timer.delay, TimerKind.VERIFIED)
    (end,) = [a.command for a in sent if isinstance(a, Send)]
    assert isinstance(end, UpgradeEndRequest) and end.status == Status.SUCCESS and c.pending_image == DATA


def test_flash_shorter_than_its_offset_resumes_where_the_bytes_end() -> None:
    c = client()
    c.restore_download(HeldDownload(MFR, TYPE, NEW, len(DATA), 8192, ImageUpgradeStatus.DOWNLOAD_COMPLETE),
                       DATA[:4096])
    assert c.file_offset == 4096 and c.image_upgrade_status is ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS


def test_only_downloads_can_be_restored() -> None:
    with pytest.raises(ValueError, match="NORMAL is not a download"):
        client().restore_download(HeldDownload(MFR, TYPE, NEW, 10, 0, ImageUpgradeStatus.NORMAL), b"")


def test_an_image_no_longer_offered_drops_the_partial_download() -> None:
    c = client()
    c.restore_download(HeldDownload(MFR, TYPE, NEW, len(DATA), 4096, ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS),
                       DATA[:4096])
    c.start(0.0)
    after = answer(c, c.on_timer(1.0, TimerKind.QUERY), QueryNextImageResponse(Status.NO_IMAGE_AVAILABLE))
    assert [type(a) for a in after if not isinstance(a, SetTimer)] == [NoImageOffered, DownloadAborted]
    assert c.image_upgrade_status is ImageUpgradeStatus.NORMAL and c.file_offset == 0 and c.held_download() is None
