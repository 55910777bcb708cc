"""An emulated device's download kept in "flash": SQLite, so a killed process resumes it.

A real device writes the blocks it receives to flash and keeps its offset there, so after a power
cut it asks for the rest, not for the whole image again (ZCL OTA 11.10.7, the FileOffset
attribute). ``serve`` runs its emulated devices in its own process; with this store they behave
the same way across a kill -9 of ``serve``: the next process finds each device's partial image and
the device re-queries and continues at the offset it held.

Writes are throttled by *page*: the device writes what it received once its offset has moved a
page (:data:`PAGE_SIZE`, 4 KiB: 64 blocks of 64 bytes) past the last write, and at once when a
download starts, completes or ends; never once per block. After a kill the device resumes at the
last page written, so up to a page is fetched again. The bytes are stored as appended chunks (one
row per page), so a write costs a page, not the whole image.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Protocol

from emulator.ota.client import HeldDownload, ImageUpgradeStatus, OtaClient
from emulator.ota.sessions import sqlite_int as _key

_LOGGER = logging.getLogger(__name__)

PAGE_SIZE = 4096
"""Bytes received between two writes of a download (the throttle)."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS device_download (
        eui64 INTEGER PRIMARY KEY, manufacturer_code INTEGER NOT NULL, image_type INTEGER NOT NULL,
        file_version INTEGER NOT NULL, image_size INTEGER NOT NULL, file_offset INTEGER NOT NULL,
        status INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS device_download_chunk (
        eui64 INTEGER NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (eui64, offset))""",
)


class DownloadFlash(Protocol):
    """Where devices keep their downloads (one store for all devices of a process)."""

    page_size: int

    def load(self, eui64: int) -> tuple[HeldDownload, bytes] | None: ...

    def save(self, eui64: int, held: HeldDownload, start: int, data: bytes) -> None: ...

    def erase(self, eui64: int) -> None: ...


class SqliteDownloadFlash:
    """Downloads in the tables ``device_download`` and ``device_download_chunk`` of ``db``."""

    def __init__(self, db: sqlite3.Connection, *, page_size: int = PAGE_SIZE) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1 byte, got {page_size}")
        self._db = db
        self.page_size = page_size
        for statement in _SCHEMA:
            db.execute(statement)
        self.writes = 0

    def load(self, eui64: int) -> tuple[HeldDownload, bytes] | None:
        row = self._db.execute(
            "SELECT manufacturer_code, image_type, file_version, image_size, file_offset, status "
            "FROM device_download WHERE eui64 = ?", (_key(eui64),)).fetchone()
        if row is None:
            return None
        mfr, itype, version, size, offset, status = row
        data = bytearray()
        for start, chunk in self._db.execute(
                "SELECT offset, data FROM device_download_chunk WHERE eui64 = ? ORDER BY offset", (_key(eui64),)):
            if start != len(data):
                _LOGGER.warning("device %016X: flash chunk at %d after %d bytes; kept what precedes it",
                                eui64, start, len(data))
                break
            data += chunk
        held = HeldDownload(mfr, itype, version, size, min(offset, len(data)), ImageUpgradeStatus(status))
        return held, bytes(data[:held.file_offset])

    def save(self, eui64: int, held: HeldDownload, start: int, data: bytes) -> None:
        """``held`` and its bytes ``start:held.file_offset`` (``data``), in one transaction;
        ``start`` 0 drops whatever was kept before."""
        key = _key(eui64)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if start == 0:
                db.execute("DELETE FROM device_download_chunk WHERE eui64 = ?", (key,))
            else:
                db.execute("DELETE FROM device_download_chunk WHERE eui64 = ? AND offset >= ?", (key, start))
            if data:
                db.execute("INSERT INTO device_download_chunk (eui64, offset, data) VALUES (?, ?, ?)",
                           (key, start, data))
            db.execute("INSERT OR REPLACE INTO device_download VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (key, held.manufacturer_code, held.image_type, held.file_version, held.image_size,
                        held.file_offset, int(held.status)))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.writes += 1

    def erase(self, eui64: int) -> None:
        key = _key(eui64)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM device_download_chunk WHERE eui64 = ?", (key,))
            db.execute("DELETE FROM device_download WHERE eui64 = ?", (key,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.writes += 1


class FlashWriter:
    """Keeps one device's flash in step with its OTA client, a page at a time."""

    __slots__ = ("eui64", "flash", "client", "_target", "_status", "_offset", "_stored")

    def __init__(self, eui64: int, flash: DownloadFlash, client: OtaClient) -> None:
        self.eui64 = eui64
        self.flash = flash
        self.client = client
        self._target = client.download_target
        self._status = client.image_upgrade_status
        self._offset = client.file_offset
        self._stored = False  # whether flash holds a download of this device

    def restore(self) -> HeldDownload | None:
        """Give the client the download kept in flash (before it starts); returns it."""
        kept = self.flash.load(self.eui64)
        if kept is None:
            return None
        held, data = kept
        self.client.restore_download(held, data)
        self._target = self.client.download_target
        self._status = self.client.image_upgrade_status
        self._offset = self.client.file_offset
        self._stored = True
        return held

    def sync(self) -> None:
        """After the client handled a frame: write if a page was received or the download
        started, completed or ended (cheap otherwise: three comparisons)."""
        client = self.client
        if (client.image_upgrade_status is self._status and client.download_target is self._target
                and 0 <= client.file_offset - self._offset < self.flash.page_size):
            return
        target = client.download_target
        held = client.held_download()
        try:
            if held is None:
                if self._stored:
                    self.flash.erase(self.eui64)
                    self._stored = False
                self._target, self._status, self._offset = target, client.image_upgrade_status, client.file_offset
                return
            start = self._offset if self._stored and target == self._target and held.file_offset >= self._offset else 0
            self.flash.save(self.eui64, held, start, client.downloaded_slice(start, held.file_offset))
        except sqlite3.Error as exc:
            # The download goes on in RAM; the next frame tries the write again.
            _LOGGER.error("device %016X: download not written to flash: %s", self.eui64, exc)
            return
        self._stored = True
        self._target, self._status, self._offset = target, held.status, held.file_offset
