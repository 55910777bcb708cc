"""What the OTA engines ask their runtime to do, and what they report. Engines never do I/O.

Three commands (:class:`Send`, :class:`SetTimer`, :class:`Activate`) and *outcome* records: typed
facts about one device (a query answered or refused, a transfer ended, an image checked). Whoever
decides something (the hub's CCS08 alerts, the device's GBCS alerts, the fleet's verdicts) matches
on these types; the timeline is only their projection (:func:`emulator.ota.timeline.render`).
The records of the nodes around the engines (firmware activated, a GBCS alert raised) are here
too, so one renderer covers every outcome the timeline shows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Union

from .policy import UpgradeTiming


class TimerKind(str, enum.Enum):
    """The timers an engine asks for (keyed per device: setting one again replaces it)."""

    # server
    TIMEOUT = "timeout"  # block gap / silent phase deadline of a session
    PAGE = "page"  # next Image Block Response of an Image Page Request
    # client
    QUERY = "query"  # next Query Next Image Request
    RESPONSE = "response"  # response timeout of the request in flight
    NEXT_BLOCK = "next_block"  # pace (MinimumBlockPeriod, WAIT_FOR_DATA)
    RESUME = "resume"  # continue a download after a reboot
    VERIFIED = "verified"  # end of the silent phase: send Upgrade End Request
    UPGRADE = "upgrade"  # end of the count-down: activate


class Send(NamedTuple):
    """Send ``command`` to ``device`` (EUI-64; NWK ``nwk``) with ZCL sequence number ``tsn``,
    after ``delay`` seconds (server-side pacing, page response spacing)."""

    device: int
    nwk: int
    command: Any
    tsn: int
    delay: float = 0.0


class SetTimer(NamedTuple):
    """Call the engine's ``on_timer`` for ``(device, kind)`` after ``delay`` seconds."""

    device: int
    kind: TimerKind
    delay: float


class Activate(NamedTuple):
    """Client only: the device should now run ``file_version`` from the downloaded image."""

    device: int
    file_version: int


# -- enums the outcomes carry ------------------------------------------------------------------
class Refusal(str, enum.Enum):
    """Why a Query Next Image (or device-specific file) request got NO_IMAGE_AVAILABLE."""

    NO_MATCHING_IMAGE = "no image for this manufacturer and image type"
    HARDWARE_VERSION_MISMATCH = "hardware_version_mismatch"
    NO_NEWER_VERSION = "no newer version"
    DEVICE_SPECIFIC_FILE = "device specific files are not served"
    NOT_AUTHORIZED = "no image loaded for this device (answered NOT_AUTHORIZED)"


class TransferOutcome(str, enum.Enum):
    """How a server session ended."""

    COMPLETED = "completed"  # Upgrade End Request SUCCESS answered
    FAILED = "failed"  # Upgrade End Request with another status
    TIMED_OUT = "timed_out"
    ABORTED = "aborted"  # by the hub (a newer distribution)


class TimeoutPhase(str, enum.Enum):
    DOWNLOAD = "download"  # gap between block requests
    SILENT_PHASE = "silent_phase"  # between the last block and Upgrade End Request


class BlockRefusal(enum.Enum):
    NOT_OFFERED = "image not offered to this device"
    BEYOND_IMAGE = "offset beyond the image"


# -- server outcomes ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ImageNotifySent:
    device: int  # 0 for a broadcast
    query_jitter: int
    broadcast: bool
    file_version: int | None


@dataclass(frozen=True, slots=True)
class QueryAnswered:
    """A Query Next Image (or device-specific file) request answered: ``refusal`` None = offered."""

    device: int
    refusal: Refusal | None
    current_file_version: int | None = None
    hardware_version: int | None = None
    file_version: int | None = None  # offered
    image_size: int | None = None


@dataclass(frozen=True, slots=True)
class QueryIgnored:
    """Fault ``silent_on_query``: the server did not answer."""

    device: int


@dataclass(frozen=True, slots=True)
class TransferStarted:
    device: int
    file_version: int
    image_size: int
    block_size: int
    offset: int


@dataclass(frozen=True, slots=True)
class TransferProgress:
    device: int
    offset: int
    image_size: int
    percent: float
    bytes_served: int
    rate_bps: float
    eta_s: float | None


@dataclass(frozen=True, slots=True)
class TransferResumed:
    """A block request at a non-zero offset for a session the server did not know."""

    device: int
    offset: int


@dataclass(frozen=True, slots=True)
class WaitForDataSent:
    device: int
    request_time_s: int
    minimum_block_period_ms: int


@dataclass(frozen=True, slots=True)
class BlockRefused:
    device: int
    reason: BlockRefusal
    file_version: int
    offset: int = 0
    image_size: int = 0


@dataclass(frozen=True, slots=True)
class AllBlocksServed:
    device: int
    bytes_served: int
    blocks: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class UpgradeEndReceived:
    device: int
    status: int
    file_version: int


@dataclass(frozen=True, slots=True)
class TransferEnded:
    """A session ended. Which fields mean something depends on ``outcome``: COMPLETED carries the
    upgrade time sent, FAILED the client's ``status``, TIMED_OUT the ``phase``, ABORTED a ``reason``."""

    device: int
    outcome: TransferOutcome
    file_version: int
    offset: int
    bytes_served: int = 0
    duration_s: float | None = None
    upgrade_time: int = 0  # COMPLETED: the Upgrade End Response's upgrade time (relative)
    upgrade_timing: UpgradeTiming | None = None  # COMPLETED: the policy that chose it
    status: int | None = None  # FAILED
    phase: TimeoutPhase | None = None  # TIMED_OUT
    idle_s: float = 0.0  # TIMED_OUT
    reason: str | None = None  # ABORTED


@dataclass(frozen=True, slots=True)
class UpgradeCommandSent:
    device: int
    file_version: int


@dataclass(frozen=True, slots=True)
class DefaultResponseReceived:
    """A Default Response outside a request/answer pair (server or client)."""

    device: int
    command_id: int
    status: int


@dataclass(frozen=True, slots=True)
class SessionRestored:
    device: int
    state: str
    offset: int


@dataclass(frozen=True, slots=True)
class LinkLost:
    """Mid-download the hub has heard nothing from the device for ``silent_s`` seconds, longer
    than its ``link_lost_after_s`` (beyond any wait it asked for): the HAN link is taken as
    lost. The transfer stays open until the block gap timeout (``timeout_in_s`` from now)."""

    device: int
    offset: int
    silent_s: float
    timeout_in_s: float


@dataclass(frozen=True, slots=True)
class LinkRestored:
    """The device is heard again after a :class:`LinkLost`, ``outage_s`` seconds after it was
    last heard; its transfer goes on (from the offset the device asks for)."""

    device: int
    offset: int
    outage_s: float


# -- client outcomes ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeviceRebooted:
    device: int
    offset: int


@dataclass(frozen=True, slots=True)
class FrameIgnored:
    device: int
    command: str


@dataclass(frozen=True, slots=True)
class QuerySent:
    device: int
    current_file_version: int  # as reported (a fault may report another)


@dataclass(frozen=True, slots=True)
class UnexpectedResponse:
    device: int
    command: str
    tsn: int


@dataclass(frozen=True, slots=True)
class NoImageOffered:
    """Query Next Image Response with a status other than SUCCESS."""

    device: int
    status: int


@dataclass(frozen=True, slots=True)
class ImageAlreadyHeld:
    device: int
    file_version: int


@dataclass(frozen=True, slots=True)
class DownloadStarted:
    device: int
    file_version: int
    image_size: int
    offset: int


@dataclass(frozen=True, slots=True)
class ImageNotifyIgnored:
    """Fault ``ignore_image_notify``."""

    device: int


@dataclass(frozen=True, slots=True)
class ImageNotifyJittered:
    """The notify's query jitter said: not this device, not now."""

    device: int
    query_jitter: int


@dataclass(frozen=True, slots=True)
class WaitForData:
    device: int
    wait_s: int
    minimum_block_period_ms: int


@dataclass(frozen=True, slots=True)
class DownloadAborted:
    device: int
    status: int


@dataclass(frozen=True, slots=True)
class BlockMismatch:
    device: int
    expected_offset: int
    got_offset: int | None


@dataclass(frozen=True, slots=True)
class BlockRejected:
    device: int
    reason: str
    size: int


@dataclass(frozen=True, slots=True)
class DownloadComplete:
    device: int
    bytes: int
    duration_s: float
    blocks: int


@dataclass(frozen=True, slots=True)
class ImageChecked:
    """The silent phase is over: the downloaded image was verified (``reason`` None) or refused."""

    device: int
    file_version: int
    sha256: str | None  # of the image held, when it verified
    reason: str | None  # why not, when it did not

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class WaitingForUpgradeCommand:
    device: int
    file_version: int


@dataclass(frozen=True, slots=True)
class UpgradeScheduled:
    device: int
    delay_s: float
    read_as_utc: bool = False  # fault absolute_upgrade_time


@dataclass(frozen=True, slots=True)
class UpgradeAbandoned:
    """The Default Response to a non-SUCCESS Upgrade End Request: the attempt is over."""

    device: int
    status: int


@dataclass(frozen=True, slots=True)
class NoImageHeld:
    """Told to activate with no verified image in store."""

    device: int


@dataclass(frozen=True, slots=True)
class ResponseTimeout:
    device: int
    command: str
    retry: int


@dataclass(frozen=True, slots=True)
class UpgradeEndUnanswered:
    device: int


@dataclass(frozen=True, slots=True)
class GaveUp:
    """Retries exhausted: a download stalls (it resumes on the next query) or a query went
    unanswered."""

    device: int
    offset: int
    downloading: bool


class TestStep(str, enum.Enum):
    """What a server test policy (certify device) did to a device's request."""

    THROTTLED = "throttled"  # WAIT_FOR_DATA: slots full
    WAIT_FOR_DATA = "wait_for_data"
    ABORTED = "aborted"  # Image Block Response ABORT
    IMAGE_REMOVED = "image_removed"  # the file is gone: Default Response NO_IMAGE_AVAILABLE or ABORT
    DUPLICATE_BLOCK = "duplicate_block"  # the Image Block Response is sent twice (a lost APS ACK)
    PAGE_BLOCK_MISSED = "page_block_missed"  # a block of a page is never sent


@dataclass(frozen=True, slots=True)
class TestPolicyApplied:
    """Server: a test policy changed the answer to a device's request (only under certify)."""

    device: int
    step: TestStep
    offset: int = 0


# -- outcomes of the nodes around the engines ------------------------------------------------
@dataclass(frozen=True, slots=True)
class FirmwareActivated:
    device: int
    firmware_version: int
    via: str


@dataclass(frozen=True, slots=True)
class FirmwareActivationFailed:
    """The new image did not start; ``firmware_version`` is the one still running."""

    device: int
    firmware_version: int
    via: str


@dataclass(frozen=True, slots=True)
class AlertRaised:
    """A GBCS alert raised by a device or the hub (CCS08), with the values sent upstream
    (``result`` an int :class:`~emulator.gbcs.codes.TransferResult`, ``hash`` bytes, ...) and,
    for CCS08, the :class:`TransferEnded` or :class:`QueryAnswered` that caused it."""

    device: int
    code: int
    details: Mapping[str, Any]
    cause: "TransferEnded | QueryAnswered | None" = None


Outcome = Union[
    ImageNotifySent, QueryAnswered, QueryIgnored, TransferStarted, TransferProgress, TransferResumed,
    WaitForDataSent, BlockRefused, AllBlocksServed, UpgradeEndReceived, TransferEnded, UpgradeCommandSent,
    DefaultResponseReceived, SessionRestored, LinkLost, LinkRestored, TestPolicyApplied,
    DeviceRebooted, FrameIgnored, QuerySent, UnexpectedResponse, NoImageOffered, ImageAlreadyHeld,
    DownloadStarted, ImageNotifyIgnored, ImageNotifyJittered, WaitForData, DownloadAborted, BlockMismatch,
    BlockRejected, DownloadComplete, ImageChecked, WaitingForUpgradeCommand, UpgradeScheduled,
    UpgradeAbandoned, NoImageHeld, ResponseTimeout, UpgradeEndUnanswered, GaveUp,
    FirmwareActivated, FirmwareActivationFailed, AlertRaised,
]

OUTCOME_TYPES: tuple[type, ...] = Outcome.__args__  # type: ignore[attr-defined]

Action = Union[Send, SetTimer, Activate, Outcome]
