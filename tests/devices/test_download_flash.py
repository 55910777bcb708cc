"""A device's download in flash (SQLite): written a page at a time, read back whole; a failed
write is logged and the download goes on."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from emulator.devices.flash import FlashWriter, SqliteDownloadFlash
from emulator.ota.client import ClientProfile, HeldDownload, ImageUpgradeStatus, OtaClient

DEV = 0xFFDB1234567890A4  # above 2**63: stored as a negative SQLite integer
DATA = bytes(range(256)) * 40
IN_PROGRESS = ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS


def held(offset: int) -> HeldDownload:
    return HeldDownload(0x121D, 0x84, 0xACDCACDD, len(DATA), offset, IN_PROGRESS)


def test_chunks_written_page_by_page_read_back_as_one_image() -> None:
    flash = SqliteDownloadFlash(sqlite3.connect(":memory:", isolation_level=None), page_size=1000)
    flash.save(DEV, held(0), 0, b"")
    flash.save(DEV, held(1000), 0, DATA[:1000])
    flash.save(DEV, held(2040), 1000, DATA[1000:2040])
    kept = flash.load(DEV)
    assert kept == (held(2040), DATA[:2040])
    flash.save(DEV, held(40), 0, DATA[:40])  # a new download from 0 drops the old chunks
    assert flash.load(DEV) == (held(40), DATA[:40])
    flash.erase(DEV)
    assert flash.load(DEV) is None


def test_a_write_that_fails_is_logged_and_the_download_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    flash = SqliteDownloadFlash(db, page_size=100)
    client = OtaClient(DEV, ClientProfile(0x121D, 0x84, 1))
    client.restore_download(held(200), DATA[:200])
    writer = FlashWriter(DEV, flash, client)
    db.execute("DROP TABLE device_download")  # the file went bad under it
    client.restore_download(held(400), DATA[:400])
    with caplog.at_level(logging.ERROR):
        writer.sync()
    assert "download not written to flash" in caplog.text
    assert client.file_offset == 400
