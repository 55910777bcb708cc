"""An emulated device's OTA Upgrade client as a protocol engine without I/O.

Mirror of :mod:`emulator.ota.server`: inputs are decoded frames, timer expiries and delivery
reports; outputs are actions. A device's quirks are data (:class:`ClientProfile`), never subclasses.

States follow the ImageUpgradeStatus attribute (ZCL 11.10.7): NORMAL -> (Query Next Image) ->
DOWNLOADING -> DOWNLOAD_COMPLETE (verify, silent phase, Upgrade End Request) -> WAITING_TO_UPGRADE
(0xFFFFFFFF) or COUNT_DOWN (relative delay) -> activation -> NORMAL with the new version. The moves
are the table :data:`emulator.ota.transitions.CLIENT` (rendered in docs/ota.md); ``_move`` refuses
any other. Outcomes are typed records (:mod:`emulator.ota.actions`): the device raises its GBCS
alerts from :class:`~emulator.ota.actions.ImageChecked`, not from the timeline.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import random
from dataclasses import dataclass
from typing import Any, Callable, Final

from emulator.runtime.records import reduce_by_init_fields

from .actions import (
    Action,
    Activate,
    BlockMismatch,
    BlockRejected,
    DefaultResponseReceived,
    DeviceRebooted,
    DownloadAborted,
    DownloadComplete,
    DownloadStarted,
    FrameIgnored,
    GaveUp,
    ImageAlreadyHeld,
    ImageChecked,
    ImageNotifyIgnored,
    ImageNotifyJittered,
    NoImageHeld,
    NoImageOffered,
    QuerySent,
    ResponseTimeout,
    Send,
    SetTimer,
    TimerKind,
    UnexpectedResponse,
    UpgradeAbandoned,
    UpgradeEndUnanswered,
    UpgradeScheduled,
    WaitForData,
    WaitingForUpgradeCommand,
)
from .frames import (
    DefaultResponse,
    ImageBlockRequest,
    ImageBlockResponse,
    ImageNotify,
    ImageNotifyPayloadType,
    ImagePageRequest,
    QueryNextImageRequest,
    QueryNextImageResponse,
    Status,
    UPGRADE_TIME_WAIT_FOR_COMMAND,
    UpgradeEndRequest,
    UpgradeEndResponse,
    ZclFrame,
)
from .profile import ClientProfile
from .transitions import CLIENT, ImageUpgradeStatus

__all__ = ["ClientAttr", "ClientProfile", "HeldDownload", "ImageUpgradeStatus", "ImageVerifier", "OtaClient",
           "accept_any"]

_LOGGER = logging.getLogger(__name__)

_new: Final = tuple.__new__  # builds a NamedTuple from all its fields, without the keyword-handling __new__

# ZigBee UTCTime counts seconds from 2000-01-01; a real device's clock reads about 26 years.
_DEVICE_UTC_NOW: Final = 0x30F1_0000
# A count-down longer than this is never scheduled: the device would sit in COUNT_DOWN for years.
_NEVER_S: Final = 365 * 86400


# Module constants are Final: the compiled build (docs/fleet.md) reads them from C statics (an enum
# member through its class, or a plain global, is a dictionary look-up there).
_QUERY: Final = TimerKind.QUERY
_RESPONSE: Final = TimerKind.RESPONSE
_NEXT_BLOCK: Final = TimerKind.NEXT_BLOCK
_SUCCESS: Final = Status.SUCCESS
_WAIT_FOR_DATA: Final = Status.WAIT_FOR_DATA
_MISSING_FILE_LIMIT: Final = 3  # Default Responses NO_IMAGE_AVAILABLE before a client gives a file up

_last_digest: tuple[bytes, str] | None = None


def _image_sha256(image: bytes) -> str:
    """SHA-256 (hex) of a downloaded image. A fleet's clients all hand in the one shared image
    object (``reference_images``), so the last digest is kept with the object it belongs to
    (held, so its identity cannot be reused): 64 KiB hashed once a process, not once a device."""
    global _last_digest
    last = _last_digest
    if last is not None and last[0] is image:
        return last[1]
    digest = hashlib.sha256(image).hexdigest()
    if type(image) is bytes:  # immutable: the digest stays true
        _last_digest = (image, digest)
    return digest


class ClientAttr(enum.IntEnum):
    """OTA client attribute IDs (cluster 0x0019, client side)."""

    UPGRADE_SERVER_ID = 0x0000
    FILE_OFFSET = 0x0001
    CURRENT_FILE_VERSION = 0x0002
    CURRENT_ZIGBEE_STACK_VERSION = 0x0003
    DOWNLOADED_FILE_VERSION = 0x0004
    DOWNLOADED_ZIGBEE_STACK_VERSION = 0x0005
    IMAGE_UPGRADE_STATUS = 0x0006
    MANUFACTURER_ID = 0x0007
    IMAGE_TYPE_ID = 0x0008
    MINIMUM_BLOCK_PERIOD = 0x0009


@dataclass(frozen=True, slots=True)
class HeldDownload:
    """What a device keeps in flash of the image it is fetching, so that a restart resumes the
    download at ``file_offset`` instead of starting over (the bytes are kept beside it)."""

    manufacturer_code: int
    image_type: int
    file_version: int
    image_size: int
    file_offset: int
    status: ImageUpgradeStatus  # DOWNLOAD_IN_PROGRESS, or DOWNLOAD_COMPLETE (not yet verified)

    def __reduce__(self) -> tuple[Any, ...]:
        return reduce_by_init_fields(self)  # pickled and copied alike in the compiled build


_HELD: Final = (ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS, ImageUpgradeStatus.DOWNLOAD_COMPLETE)


ReferenceImages = Callable[[tuple[int, int, int]], bytes | None]
"""Image bytes by (manufacturer, type, version): lets a fleet keep one copy of each image."""

ImageVerifier = Callable[[bytes], str | None]
"""Returns ``None`` if the downloaded OTA file is acceptable, else why not."""


def accept_any(_: bytes) -> str | None:
    return None


class OtaClient:
    """OTA client of one emulated device."""

    # one per emulated device of a fleet
    __slots__ = ("eui64", "profile", "server_eui64", "server_nwk", "verifier", "reference_images",
                 "current_file_version", "image_upgrade_status", "downloaded_file_version", "pending_image",
                 "file_offset", "blocks_received", "started_at", "minimum_block_period", "_buffer", "_draws",
                 "_image_size", "_last_block_len", "_missing_file", "_page_end", "_pending", "_pending_tsn",
                 "_reference", "_retries", "_rng_instance", "_stalls", "_target", "_tsn")

    def __init__(
        self,
        eui64: int,
        profile: ClientProfile,
        *,
        server_eui64: int = 0,
        server_nwk: int = 0x0000,
        verifier: ImageVerifier = accept_any,
        rng: random.Random | None = None,
    ) -> None:
        self.eui64 = eui64
        self.profile = profile
        self.server_eui64 = server_eui64
        self.server_nwk = server_nwk
        self.verifier = verifier
        self._rng_instance = rng  # None: draws come from _random(), no 2.5 KiB generator a device
        self._draws = 0
        # attributes
        self.current_file_version = profile.current_file_version
        self.image_upgrade_status = ImageUpgradeStatus.NORMAL
        self.file_offset = 0
        self.downloaded_file_version: int | None = None
        self.minimum_block_period = 0  # ms, set by the server
        # download state
        self._target: tuple[int, int, int] | None = None
        self._image_size = 0
        self._buffer = bytearray()
        self._pending: Any = None  # last request sent, for retries
        self._pending_tsn = -1
        self._retries = 0
        self._stalls = 0  # downloads stalled in a row, reset once a query is answered
        self._tsn = (eui64 * 0x9E3779B1 >> 16) & 0xFF  # a per-device start, no generator needed
        self._page_end = 0
        self.pending_image: bytes | None = None
        self.started_at: float | None = None
        self.blocks_received = 0
        self._last_block_len = 0
        self._missing_file = 0  # Default Responses NO_IMAGE_AVAILABLE to block requests in a row
        # Memory for fleets: with a reference, blocks that match the known image are not copied;
        # the buffer stays a length until the first block that differs (then it is materialised).
        self.reference_images: ReferenceImages | None = None
        self._reference: bytes | None = None

    def _random(self) -> float:
        """A deterministic draw in [0, 1) per device (splitmix64 of the EUI-64 and a counter):
        the same run twice gives the same jitter, and no generator object is kept per device."""
        if self._rng_instance is not None:
            return self._rng_instance.random()
        self._draws += 1
        z = (self.eui64 + self._draws * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return ((z ^ (z >> 31)) >> 11) / float(1 << 53)

    # -- attributes ------------------------------------------------------------------------------
    def attributes(self) -> dict[ClientAttr, int | None]:
        return {
            ClientAttr.UPGRADE_SERVER_ID: self.server_eui64,
            ClientAttr.FILE_OFFSET: self.file_offset,
            ClientAttr.CURRENT_FILE_VERSION: self.current_file_version,
            ClientAttr.DOWNLOADED_FILE_VERSION: self.downloaded_file_version,
            ClientAttr.IMAGE_UPGRADE_STATUS: int(self.image_upgrade_status),
            ClientAttr.MANUFACTURER_ID: self.profile.manufacturer_code,
            ClientAttr.IMAGE_TYPE_ID: self.profile.image_type,
            ClientAttr.MINIMUM_BLOCK_PERIOD: self.minimum_block_period,
        }

    # -- inputs ----------------------------------------------------------------------------------
    def start(self, now: float) -> list[Action]:
        """Power on: query after the profile's initial delay (and on every query interval). With
        a download restored from flash (:meth:`restore_download`) the query finds the same image
        and the download goes on at the held offset; a complete image is checked again first."""
        if self.image_upgrade_status is ImageUpgradeStatus.DOWNLOAD_COMPLETE:
            return [SetTimer(self.eui64, TimerKind.VERIFIED, self.profile.initial_query_delay_s
                             + self.profile.verify_delay_s)]
        return [SetTimer(self.eui64, _QUERY, self.profile.initial_query_delay_s)]

    # -- the download in flash -------------------------------------------------------------------
    @property
    def download_target(self) -> tuple[int, int, int] | None:
        """(manufacturer, image type, file version) of the image being fetched or held."""
        return self._target

    def held_download(self) -> HeldDownload | None:
        """The download a power cut would leave in flash, if one is under way or complete."""
        target = self._target
        if target is None or self.image_upgrade_status not in _HELD:
            return None
        return HeldDownload(*target, self._image_size, self.file_offset, self.image_upgrade_status)

    def downloaded_slice(self, start: int, end: int) -> bytes:
        """Bytes ``start:end`` of the download (no copy of the rest)."""
        if self._reference is not None:
            return self._reference[start:min(end, self.file_offset)]
        return bytes(self._buffer[start:min(end, self.file_offset)])

    def restore_download(self, held: HeldDownload, data: bytes) -> None:
        """Before :meth:`start`: take up ``held`` from flash with its first ``len(data)`` bytes
        (the offset is what was kept, never beyond it). Not a state move of the table: the
        device was in this state when the power went."""
        if held.status not in _HELD:
            raise ValueError(f"device {self.eui64:016X}: {held.status.name} is not a download to restore")
        offset = min(held.file_offset, len(data), held.image_size)
        self._target = (held.manufacturer_code, held.image_type, held.file_version)
        self._image_size = held.image_size
        self._buffer = bytearray(data[:offset])
        self._reference = None
        self.file_offset = offset
        status = held.status if offset >= held.image_size else ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS
        self.image_upgrade_status = status
        if status is ImageUpgradeStatus.DOWNLOAD_COMPLETE:
            self.downloaded_file_version = held.file_version

    def reboot(self, now: float, *, reannounce_delay_s: float | None = None) -> list[Action]:
        """Power cycle: RAM is lost but the received bytes and offset survive in flash."""
        self._pending = None
        self._pending_tsn = -1
        delay = self.profile.initial_query_delay_s if reannounce_delay_s is None else reannounce_delay_s
        actions: list[Action] = [DeviceRebooted(self.eui64, self.file_offset)]
        status = self.image_upgrade_status
        if status is ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS and self.profile.forgets_offset_on_reboot:
            self.file_offset = 0  # the fault: the offset was only in RAM
            self._buffer = bytearray()
            self._reference = None
        if status is ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS:
            actions.append(SetTimer(self.eui64, TimerKind.RESUME, delay))
        elif status in (ImageUpgradeStatus.DOWNLOAD_COMPLETE, ImageUpgradeStatus.COUNT_DOWN):
            # The whole image is in flash but the verdict or the count-down was in RAM: check it
            # again and ask the server anew with an Upgrade End Request.
            actions.append(SetTimer(self.eui64, TimerKind.VERIFIED, delay + self.profile.verify_delay_s))
        elif status is ImageUpgradeStatus.WAITING_TO_UPGRADE:
            pass  # the image stays held; the upgrade command (or an Image Notify) moves it on
        else:
            actions.append(SetTimer(self.eui64, _QUERY, delay))
        return actions

    def on_frame(self, now: float, frame: ZclFrame) -> list[Action]:
        cmd = frame.command
        tsn = frame.header.tsn
        if isinstance(cmd, ImageBlockResponse):
            return self._on_block_response(now, tsn, cmd)
        if isinstance(cmd, QueryNextImageResponse):
            return self._on_query_response(now, tsn, cmd)
        if isinstance(cmd, UpgradeEndResponse):
            return self._on_upgrade_end_response(now, tsn, cmd)
        if isinstance(cmd, ImageNotify):
            return self._on_image_notify(now, cmd)
        if isinstance(cmd, DefaultResponse):
            return self._on_default_response(now, tsn, cmd)
        return [FrameIgnored(self.eui64, type(cmd).__name__)]

    def on_timer(self, now: float, kind: TimerKind) -> list[Action]:
        match kind:
            case TimerKind.QUERY:
                return self._query(now)
            case TimerKind.RESPONSE:
                return self._on_response_timeout(now)
            case TimerKind.NEXT_BLOCK | TimerKind.RESUME:
                if self.image_upgrade_status is ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS:
                    return self._request_block(now)
                return []
            case TimerKind.VERIFIED:
                return self._send_upgrade_end(now)
            case TimerKind.UPGRADE:
                return self._activate(now)
        raise ValueError(f"the OTA client has no {kind!r} timer")

    def _move(self, target: ImageUpgradeStatus) -> None:
        """The one place ImageUpgradeStatus changes: only moves in the transition table."""
        CLIENT.check(self.image_upgrade_status, target, f"device {self.eui64:016X}")
        self.image_upgrade_status = target

    # -- query -----------------------------------------------------------------------------------
    def _next_tsn(self) -> int:
        self._tsn = (self._tsn + 1) & 0xFF
        return self._tsn

    def _send(self, command: Any, delay: float = 0.0) -> list[Action]:
        tsn = self._next_tsn()
        self._pending = command
        self._pending_tsn = tsn
        # Every field in order (no NamedTuple __new__ call): sent once a block exchange.
        return [_new(Send, (self.server_eui64, self.server_nwk, command, tsn, delay)),
                _new(SetTimer, (self.eui64, _RESPONSE, self.profile.response_timeout_s + delay))]

    def _query(self, now: float) -> list[Action]:
        if self.image_upgrade_status not in (ImageUpgradeStatus.NORMAL, ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS,
                                             ImageUpgradeStatus.WAITING_TO_UPGRADE):
            return []
        if self._pending is not None:
            return []  # a request is in flight (a query, or a block of a running download)
        p = self.profile
        reported = p.reported_file_version if p.reported_file_version is not None else self.current_file_version
        hw = p.hardware_version
        command = QueryNextImageRequest(1 if hw is not None else 0, p.manufacturer_code, p.image_type, reported, hw)
        self._retries = 0
        return [*self._send(command), QuerySent(self.eui64, reported)]

    def _on_query_response(self, now: float, tsn: int, rsp: QueryNextImageResponse) -> list[Action]:
        if not isinstance(self._pending, QueryNextImageRequest) or tsn != self._pending_tsn:
            return [UnexpectedResponse(self.eui64, "QueryNextImageResponse", tsn)]
        self._pending = None
        if self._stalls:
            self._stalls = 0
        if rsp.status != Status.SUCCESS:
            offered: list[Action] = [NoImageOffered(self.eui64, rsp.status)]
            if self.image_upgrade_status is ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS:
                # The server no longer offers the image being fetched (its transfer ended while
                # the link was down): the partial download is dropped, so the next Image Notify
                # or query starts afresh.
                self._reset_download()
                offered.append(DownloadAborted(self.eui64, rsp.status))
            return [*offered, SetTimer(self.eui64, _QUERY, self.profile.query_interval_s)]
        assert rsp.manufacturer_code is not None and rsp.image_type is not None
        assert rsp.file_version is not None and rsp.image_size is not None
        target = (rsp.manufacturer_code, rsp.image_type, rsp.file_version)
        if self.image_upgrade_status is ImageUpgradeStatus.WAITING_TO_UPGRADE:
            if target == self._target:
                # Offered the image it already holds verified (a second 11.1 while the first
                # awaits its activation): confirm it at once with Upgrade End Request SUCCESS, so
                # the hub ends this transfer as completed (CCS08 result 0) instead of waiting out
                # its block gap timeout for blocks nobody will ask for.
                self._retries = 0
                return [ImageAlreadyHeld(self.eui64, rsp.file_version),
                        *self._send(UpgradeEndRequest(Status.SUCCESS, *target))]
            self.pending_image = None  # a newer distribution replaces the image held
            self.downloaded_file_version = None
        if target != self._target or self._image_size != rsp.image_size:
            # New image: start from the beginning; the same one: resume at our offset.
            self._target = target
            self._image_size = rsp.image_size
            self._buffer = bytearray()
            self._reference = None
            if self.reference_images is not None:
                reference = self.reference_images(target)
                if reference is not None and len(reference) == rsp.image_size:
                    self._reference = reference
            self.file_offset = 0
            self.blocks_received = 0
            self._last_block_len = 0
            self.started_at = now
        self._move(ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS)
        return [DownloadStarted(self.eui64, rsp.file_version, rsp.image_size, self.file_offset),
                *self._request_block(now)]

    def _on_image_notify(self, now: float, notify: ImageNotify) -> list[Action]:
        p = self.profile
        if p.ignore_image_notify:
            return [ImageNotifyIgnored(self.eui64)]
        if self._pending is not None:
            return []  # a query or a block request is in flight
        pt = notify.payload_type
        waiting = self.image_upgrade_status is ImageUpgradeStatus.WAITING_TO_UPGRADE
        if self.image_upgrade_status is not ImageUpgradeStatus.NORMAL and not waiting:
            return []  # downloading, verifying or counting down
        if p.queries_on_any_notify:
            pass  # the fault: no filter on the notify's manufacturer, image type or version
        elif pt >= ImageNotifyPayloadType.JITTER_MFR and notify.manufacturer_code not in (p.manufacturer_code, 0xFFFF):
            return []
        elif pt >= ImageNotifyPayloadType.JITTER_MFR_TYPE and notify.image_type not in (p.image_type, 0xFFFF):
            return []
        elif pt >= ImageNotifyPayloadType.JITTER_MFR_TYPE_VERSION and notify.file_version == self.current_file_version:
            return []
        if waiting and pt >= ImageNotifyPayloadType.JITTER_MFR_TYPE_VERSION and (
                self._target is None or notify.file_version == self._target[2]):
            # Holding an image for the upgrade command: a notify naming the version held changes
            # nothing; one naming another version, or none (payload type 0-2), makes the device
            # ask (the server answers with a newer distribution, or the image held).
            return []
        if int(self._random() * 100) + 1 > notify.query_jitter:
            return [ImageNotifyJittered(self.eui64, notify.query_jitter)]
        return [SetTimer(self.eui64, _QUERY, 0.05 + 0.45 * self._random())]

    # -- download --------------------------------------------------------------------------------
    def _request_block(self, now: float, delay: float = 0.0) -> list[Action]:
        assert self._target is not None
        p = self.profile
        mfr, itype, version = self._target
        node = self.eui64 if p.send_node_address else None
        if p.use_page_requests:
            command: Any = ImagePageRequest(1 if node is not None else 0, mfr, itype, version, self.file_offset,
                                            p.max_data_size, p.page_size, p.response_spacing_ms, node)
            self._page_end = min(self.file_offset + p.page_size, self._image_size)
        else:
            fc = (1 if node is not None else 0) | (2 if self.minimum_block_period else 0)
            command = _new(ImageBlockRequest, (fc, mfr, itype, version, self.file_offset, p.max_data_size, node,
                                               self.minimum_block_period if self.minimum_block_period else None))
        return self._send(command, delay)

    def _on_block_response(self, now: float, tsn: int, rsp: ImageBlockResponse) -> list[Action]:
        pending = self._pending
        paged = isinstance(pending, ImagePageRequest)
        if not isinstance(pending, (ImageBlockRequest, ImagePageRequest)) or (tsn != self._pending_tsn):
            if (self.profile.aborts_on_duplicate_block and rsp.status == Status.SUCCESS
                    and self.image_upgrade_status is ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS):
                self._pending = None  # the fault: a repeated block is taken for a broken download
                self._reset_download()
                return [DownloadAborted(self.eui64, Status.ABORT),
                        SetTimer(self.eui64, _QUERY, self.profile.query_interval_s)]
            return [UnexpectedResponse(self.eui64, "ImageBlockResponse", tsn)]
        if rsp.status == _WAIT_FOR_DATA:
            assert rsp.current_time is not None and rsp.request_time is not None
            wait = max(rsp.request_time - rsp.current_time, 0)
            limit = self.profile.gives_up_on_wait_above_s
            if limit is not None and wait > limit:
                self._pending = None  # the fault: a long wait (a busy server) is taken for a failure
                self._reset_download()
                return [DownloadAborted(self.eui64, rsp.status),
                        SetTimer(self.eui64, _QUERY, self.profile.query_interval_s)]
            if self.profile.ignores_wait_for_data:
                wait = 0  # the fault: asks again at once and keeps its own pace
            elif rsp.minimum_block_period is not None:
                self.minimum_block_period = rsp.minimum_block_period
            self._pending = None
            self._move(ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS)
            return [WaitForData(self.eui64, wait, self.minimum_block_period),
                    SetTimer(self.eui64, _NEXT_BLOCK, float(wait))]
        if rsp.status != _SUCCESS:
            self._pending = None
            target = self._target
            self._reset_download()
            aborted: list[Action] = [DownloadAborted(self.eui64, rsp.status),
                                     SetTimer(self.eui64, _QUERY, self.profile.query_interval_s)]
            if rsp.status == Status.ABORT and target is not None and not self.profile.no_upgrade_end_on_abort:
                # Confirm the abort with Upgrade End Request ABORT (ZBOSS RTP_OTA_SRV_04), then query.
                self._retries = 0
                aborted[1:1] = self._send(UpgradeEndRequest(Status.ABORT, *target))
            return aborted
        data = rsp.image_data or b""
        p = self.profile
        if (rsp.manufacturer_code, rsp.image_type, rsp.file_version) != self._target or rsp.file_offset != self.file_offset:
            if paged and p.page_miss_aborts and rsp.file_offset is not None and rsp.file_offset > self.file_offset:
                self._pending = None  # the fault: a gap in the page is taken for a broken download
                self._reset_download()
                return [BlockMismatch(self.eui64, self.file_offset, rsp.file_offset),
                        DownloadAborted(self.eui64, Status.ABORT),
                        SetTimer(self.eui64, _QUERY, self.profile.query_interval_s)]
            return [BlockMismatch(self.eui64, self.file_offset, rsp.file_offset)]
        if p.stack_fails_above is not None and len(data) > p.stack_fails_above:
            self._pending = None
            return [BlockRejected(self.eui64, f"stack fails above {p.stack_fails_above} bytes", len(data)),
                    *self._retry_or_give_up(now)]
        asked = p.max_data_size
        remaining = self._image_size - self.file_offset
        if p.fails_on_short_block and len(data) < min(asked, remaining):
            self._pending = None
            return [BlockRejected(self.eui64, "block shorter than requested", len(data)),
                    *self._retry_or_give_up(now)]
        if not data or len(data) > remaining:
            return [BlockRejected(self.eui64, "bad block length", len(data))]
        offset = self.file_offset
        n = len(data)
        if p.drops_short_final_block and n == remaining and n < self._last_block_len:
            # The quirk: the short block that ends the image is taken for an end marker and not
            # stored, so the image in flash is truncated (real stacks with an off-by-one here).
            self._store(offset, b"")
            self.file_offset = self._image_size
        else:
            self._store(offset, data)
            self.file_offset = offset + n
        self._last_block_len = n
        self.blocks_received += 1
        self._retries = 0
        self._missing_file = 0
        extra: list[Action] = []
        every = p.stray_default_response_every
        if every and self.blocks_received % every == 0:
            extra = [Send(self.server_eui64, self.server_nwk,
                          DefaultResponse(0x05, Status.SUCCESS), tsn)]
        if paged and self.file_offset < self._page_end:
            return [*extra, SetTimer(self.eui64, _RESPONSE, p.response_timeout_s)]  # more of the page follows
        self._pending = None
        if self.file_offset >= self._image_size:
            return [*extra, *self._download_complete(now)]
        delay = self.block_period_s()
        if extra:
            return [*extra, *self._request_block(now, delay)]
        return self._request_block(now, delay)

    def block_period_s(self) -> float:
        """MinimumBlockPeriod as this stack reads it, in seconds."""
        if self.profile.minimum_block_period_unit == "s":
            return float(self.minimum_block_period)
        return self.minimum_block_period / 1000.0

    # -- the batch transition (the fast path, docs/fleet.md) ---------------------------------------
    def pending_block_request(self) -> tuple[ImageBlockRequest, int] | None:
        """The Image Block Request in flight and its TSN, if the next block responses are plain
        for this client: a download in progress by Image Block Requests, no MinimumBlockPeriod,
        and none of the profile's block-handling faults."""
        p = self.profile
        pending = self._pending
        if (type(pending) is not ImageBlockRequest or self.image_upgrade_status is not ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS
                or self.minimum_block_period or p.stack_fails_above is not None or p.fails_on_short_block
                or p.stray_default_response_every or p.send_node_address):
            return None
        return pending, self._pending_tsn

    def receive_blocks(self, count: int, size: int, image: bytes) -> tuple[Send, SetTimer]:
        """Take ``count`` plain SUCCESS blocks of ``size`` bytes of ``image`` from the file offset
        on, each followed by the next Image Block Request, as :meth:`on_frame` takes them one by
        one (none ends the image); returns the last request's Send and SetTimer. The server
        decided they are plain (:meth:`OtaServer.plain_blocks`)."""
        assert self._target is not None
        offset = self.file_offset
        if self._reference is not image:
            for k in range(count):
                self._store(offset + k * size, image[offset + k * size:offset + (k + 1) * size])
        self.file_offset = offset + count * size
        self._last_block_len = size
        self.blocks_received += count
        self._retries = 0
        self._tsn = (self._tsn + count - 1) & 0xFF  # the requests before the last one
        send, timer = self._request_block(0.0)
        assert isinstance(send, Send) and isinstance(timer, SetTimer)
        return send, timer

    def _store(self, offset: int, data: bytes) -> None:
        reference = self._reference
        if reference is not None:
            if data and data == reference[offset:offset + len(data)]:
                return  # identical to the shared image: nothing to keep
            self._buffer = bytearray(reference[:offset])
            self._reference = None
        del self._buffer[offset:]
        self._buffer += data

    def downloaded_bytes(self) -> bytes:
        """The bytes received so far (the shared image itself when every block matched it)."""
        if self._reference is not None:
            if self.file_offset >= len(self._reference):
                return self._reference
            return self._reference[:self.file_offset]
        return bytes(self._buffer)

    def _download_complete(self, now: float) -> list[Action]:
        self._move(ImageUpgradeStatus.DOWNLOAD_COMPLETE)
        assert self._target is not None
        self.downloaded_file_version = self._target[2]
        return [DownloadComplete(self.eui64, self.file_offset, round(now - (self.started_at or now), 3),
                                 self.blocks_received),
                SetTimer(self.eui64, TimerKind.VERIFIED, self.profile.verify_delay_s)]

    def _send_upgrade_end(self, now: float) -> list[Action]:
        assert self._target is not None
        image = self.downloaded_bytes()
        if self.profile.invalid_image_at_end:
            reason: str | None = "reported INVALID_IMAGE (fault)"
        elif self.profile.accepts_unverified_image:
            reason = None  # the fault: the image is never checked
        else:
            reason = self.verifier(image)
        status = Status.SUCCESS if reason is None else Status.INVALID_IMAGE
        digest = None
        if status is Status.SUCCESS:
            self.pending_image = image
            digest = _image_sha256(image)
        self._retries = 0
        return [ImageChecked(self.eui64, self._target[2], digest, reason),
                *self._send(UpgradeEndRequest(status, *self._target))]

    def _on_upgrade_end_response(self, now: float, tsn: int, rsp: UpgradeEndResponse) -> list[Action]:
        unsolicited = not isinstance(self._pending, UpgradeEndRequest)
        if unsolicited and self.image_upgrade_status is not ImageUpgradeStatus.WAITING_TO_UPGRADE:
            return [UnexpectedResponse(self.eui64, "UpgradeEndResponse", tsn)]
        self._pending = None
        if rsp.upgrade_time == UPGRADE_TIME_WAIT_FOR_COMMAND:
            self._move(ImageUpgradeStatus.WAITING_TO_UPGRADE)
            return [WaitingForUpgradeCommand(self.eui64, rsp.file_version)]
        if self.profile.absolute_upgrade_time and rsp.current_time == 0 and rsp.upgrade_time != 0:
            # The quirk: a relative time (seconds from now) read as UTC. That date lies in 2000,
            # behind the device's clock, and the unsigned 32-bit difference wraps to a century.
            # An upgrade time of 0 is "now" for every device, so it is not affected.
            delay = float((rsp.upgrade_time - _DEVICE_UTC_NOW) & 0xFFFFFFFF)
            if delay > _NEVER_S:
                self._move(ImageUpgradeStatus.COUNT_DOWN)
                return [UpgradeScheduled(self.eui64, delay, read_as_utc=True)]
        else:
            delay = float(max(rsp.upgrade_time - rsp.current_time, 0))
        if delay == 0:
            return self._activate(now)
        self._move(ImageUpgradeStatus.COUNT_DOWN)
        return [UpgradeScheduled(self.eui64, delay), SetTimer(self.eui64, TimerKind.UPGRADE, delay)]

    def _on_default_response(self, now: float, tsn: int, rsp: DefaultResponse) -> list[Action]:
        if isinstance(self._pending, UpgradeEndRequest) and tsn == self._pending_tsn:
            # The answer to a non-SUCCESS Upgrade End Request: the attempt is over.
            self._pending = None
            self._reset_download()
            return [UpgradeAbandoned(self.eui64, rsp.status), SetTimer(self.eui64, _QUERY, self.profile.query_interval_s)]
        if (isinstance(self._pending, (ImageBlockRequest, ImagePageRequest)) and tsn == self._pending_tsn
                and rsp.status == Status.NO_IMAGE_AVAILABLE and not self.profile.ignores_missing_file):
            # The server no longer has the file: ask again, and after three such answers go back
            # to querying (Silicon Labs ota-client; ZBOSS RTP_OTA_SRV_02).
            self._pending = None
            self._missing_file += 1
            if self._missing_file >= _MISSING_FILE_LIMIT:
                self._missing_file = 0
                self._reset_download()
                return [DownloadAborted(self.eui64, rsp.status),
                        SetTimer(self.eui64, _QUERY, self.profile.query_interval_s)]
            return [DefaultResponseReceived(self.eui64, rsp.command_id, rsp.status),
                    *self._request_block(now, self.profile.response_timeout_s)]
        return [DefaultResponseReceived(self.eui64, rsp.command_id, rsp.status)]

    def _activate(self, now: float) -> list[Action]:
        if self.downloaded_file_version is None or self.pending_image is None:
            return [NoImageHeld(self.eui64)]
        version = self.downloaded_file_version
        return [Activate(self.eui64, version)]

    def activated(self, now: float, file_version: int) -> list[Action]:
        """The device now runs ``file_version``: back to normal, schedule the next query."""
        self.current_file_version = file_version
        self._reset_download()
        self.pending_image = None
        return [SetTimer(self.eui64, _QUERY, self.profile.query_interval_s)]

    def _reset_download(self) -> None:
        self._move(ImageUpgradeStatus.NORMAL)
        self._target = None
        self._image_size = 0
        self._buffer = bytearray()
        self._reference = None
        self.file_offset = 0

    # -- retries ---------------------------------------------------------------------------------
    def stall_delay_s(self) -> float:
        """The wait before querying again after the download stalled for the n-th time in a row:
        ``stall_retry_s * 2**(n-1)``, at most ``stall_retry_max_s``, scaled by [0.8, 1.2]."""
        p = self.profile
        self._stalls += 1
        base = min(p.stall_retry_s * 2.0 ** min(self._stalls - 1, 30), p.stall_retry_max_s)
        return round(base * (0.8 + 0.4 * self._random()), 3)

    def _on_response_timeout(self, now: float) -> list[Action]:
        if self._pending is None:
            return []
        return [ResponseTimeout(self.eui64, type(self._pending).__name__, self._retries + 1),
                *self._retry_or_give_up(now, unanswered=True)]

    def _retry_or_give_up(self, now: float, *, unanswered: bool = False) -> list[Action]:
        """Retry the request, or after ``max_retries`` give up: a download stalled for want of
        answers (``unanswered``: the link is down) queries again after :meth:`stall_delay_s`;
        one whose blocks the device itself rejects, after its query interval."""
        pending = self._pending
        self._retries += 1
        if self._retries > self.profile.max_retries:
            self._pending = None
            if isinstance(pending, UpgradeEndRequest):
                return [UpgradeEndUnanswered(self.eui64)]
            keep = self.image_upgrade_status is ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS
            if not keep:
                self._move(ImageUpgradeStatus.NORMAL)
                return [GaveUp(self.eui64, self.file_offset, keep),
                        SetTimer(self.eui64, _QUERY, self.profile.query_interval_s)]
            delay = self.stall_delay_s() if unanswered else self.profile.query_interval_s
            return [GaveUp(self.eui64, self.file_offset, keep), SetTimer(self.eui64, _QUERY, delay)]
        if pending is None or isinstance(pending, (ImageBlockRequest, ImagePageRequest)):
            return self._request_block(now)
        return self._send(pending)

