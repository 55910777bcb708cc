"""Server policies: what the Comms Hub offers, how fast, and when devices activate.

Defaults are what a GB smart-metering hub does: APS-encrypted HAN (40-byte blocks), upgrade only
to newer versions, no pacing. Every field can be overridden per device.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from emulator.runtime.records import reduce_by_init_fields

# Safe OTA block data without APS fragmentation (domain.md §5).
SECURITY_BLOCK_CAP = {"none": 63, "nwk": 49, "aps": 40}


class UpgradeTiming(str, enum.Enum):
    """What the Upgrade End Response tells a device that downloaded successfully."""

    NOW = "now"
    DELAY = "delay"
    WAIT_FOR_COMMAND = "wait_for_command"


class MissingImageResponse(str, enum.Enum):
    """How a block request for an image the server no longer has is answered."""

    DEFAULT_RESPONSE = "default_response"  # Default Response NO_IMAGE_AVAILABLE, as Silicon Labs does
    ABORT = "abort"  # Image Block Response ABORT


class BlockPeriodUnit(str, enum.Enum):
    """The unit of MinimumBlockPeriod for one client: ZCL revisions differ (ms in r6+, s before),
    so the server must use the one the client's stack reads."""

    MILLISECONDS = "ms"
    SECONDS = "s"


class VersionRule(str, enum.Enum):
    """Which file versions a Query Next Image may be offered."""

    NEWER = "newer"  # upgrade only
    REINSTALL = "reinstall"  # newer or the same version
    DOWNGRADE = "downgrade"  # any different version
    FORCE = "force"  # always offer the image


@dataclass(frozen=True, slots=True)
class ServerPolicy:
    # Optional fields are annotated "Optional[X]", quoted: scenario files set them by their
    # annotations (emulator.config), and the compiled build (mypyc, docs/fleet.md) keeps a quoted
    # annotation as written but turns an unquoted `X | None` into `type`.
    security_mode: str = "aps"
    max_block_size: "Optional[int]" = None  # per-device override of the block cap
    version_rule: VersionRule = VersionRule.NEWER
    upgrade_timing: UpgradeTiming = UpgradeTiming.NOW
    upgrade_delay_s: int = 0
    # Rate control: server-side pacing holds each block response this long; a client asking
    # faster than minimum_block_period_ms gets WAIT_FOR_DATA carrying the period.
    response_delay_s: float = 0.0
    minimum_block_period_ms: int = 0
    # Timeouts: gap between block requests, and the silent phase before Upgrade End Request.
    block_gap_timeout_s: float = 600.0
    upgrade_end_timeout_s: float = 4 * 3600.0
    # Mid-download silence (beyond any wait the server asked for) after which the hub reports
    # the device's HAN link lost (han_link_lost), and han_link_restored when it is heard again.
    # None: not reported. The transfer itself ends only at block_gap_timeout_s.
    link_lost_after_s: "Optional[float]" = 15.0
    progress_step_percent: int = 10
    silent_on_query: bool = False  # fault: the server ignores Query Next Image Requests
    missing_image_response: MissingImageResponse = MissingImageResponse.DEFAULT_RESPONSE
    minimum_block_period_unit: BlockPeriodUnit = BlockPeriodUnit.MILLISECONDS
    # Unicast Image Notify (OTA spec 095264r19 6.10.3.5.1: payload type 0, jitter 100, Default
    # Response allowed); a broadcast names the image (payload type 3) so only its devices ask.
    image_notify_payload_type: int = 0
    image_notify_jitter: int = 100
    # Test policies (certify device, in the style of Silicon Labs' OTA test harness); off by default.
    test_wait_for_data_at_block: "Optional[int]" = None  # answer this block request (0 = first) WAIT_FOR_DATA
    test_wait_for_data_s: int = 0  # ... asking the client to come back after this many seconds
    test_abort_after_blocks: "Optional[int]" = None  # Image Block Response ABORT once this many blocks are served
    test_image_removed_after_blocks: "Optional[int]" = None  # the file disappears once this many are served
    test_duplicate_block_every: "Optional[int]" = None  # every Nth Image Block Response is sent twice
    test_page_miss_every: "Optional[int]" = None  # every Nth block of an Image Page Response is never sent
    test_throttle_requests: int = 0  # the first N block requests: WAIT_FOR_DATA, slots full
    test_throttle_wait_s: int = 60
    test_query_status: "Optional[int]" = None  # answer every Query Next Image with this status (0x98, 0x7E)
    # Whether a block test policy applies: computed once, so the block hot path reads one flag.
    testing: bool = field(default=False, init=False, repr=False, compare=False)
    # The largest block served (the security mode's cap, and max_block_size): read every block.
    block_cap: int = field(default=0, init=False, repr=False, compare=False)

    def block_period_value(self) -> int:
        """``minimum_block_period_ms`` in this client's unit (seconds rounded up)."""
        ms = self.minimum_block_period_ms
        if self.minimum_block_period_unit is BlockPeriodUnit.SECONDS:
            return (ms + 999) // 1000
        return ms
    # Query Next Image with no image loaded for the device at all: "no_image_available" (ZCL),
    # or "not_authorized" as a reference GBCS hub answers until an image is loaded.
    no_image_status: str = "no_image_available"

    def __post_init__(self) -> None:
        object.__setattr__(self, "testing", (
            self.test_wait_for_data_at_block is not None or self.test_abort_after_blocks is not None
            or self.test_image_removed_after_blocks is not None or self.test_throttle_requests > 0
            or self.test_duplicate_block_every is not None))
        if self.security_mode not in SECURITY_BLOCK_CAP:
            raise ValueError(
                f"security_mode must be one of {sorted(SECURITY_BLOCK_CAP)}, got {self.security_mode!r}"
            )
        cap = SECURITY_BLOCK_CAP[self.security_mode]
        object.__setattr__(self, "block_cap", cap if self.max_block_size is None else min(cap, self.max_block_size))
        if self.no_image_status not in ("no_image_available", "not_authorized"):
            raise ValueError("no_image_status must be 'no_image_available' or 'not_authorized', "
                             f"got {self.no_image_status!r}")
        if self.max_block_size is not None and not 1 <= self.max_block_size <= 255:
            raise ValueError(f"max_block_size must be 1..255, got {self.max_block_size}")
        if not 0 <= self.minimum_block_period_ms <= 0xFFFF:
            raise ValueError(f"minimum_block_period_ms must be 0..65535, got {self.minimum_block_period_ms}")
        if not 0 <= self.image_notify_payload_type <= 3:
            raise ValueError(f"image_notify_payload_type must be 0..3, got {self.image_notify_payload_type}")
        if not 1 <= self.image_notify_jitter <= 100:
            raise ValueError(f"image_notify_jitter must be 1..100, got {self.image_notify_jitter}")
        if self.link_lost_after_s is not None and not self.link_lost_after_s > 0:
            raise ValueError(f"link_lost_after_s must be above 0 seconds (or none), got {self.link_lost_after_s}")
        if self.upgrade_delay_s < 0 or self.upgrade_delay_s >= 0xFFFFFFFF:
            raise ValueError(f"upgrade_delay_s out of range: {self.upgrade_delay_s}")

    def with_(self, **changes: object) -> "ServerPolicy":
        return replace(self, **changes)  # type: ignore[arg-type]

    def __reduce__(self) -> tuple[Any, ...]:
        return reduce_by_init_fields(self)  # pickled and copied alike in the compiled build


@dataclass(slots=True)
class PolicyBook:
    """The default policy plus per-device overrides (keyed by EUI-64)."""

    default: ServerPolicy = field(default_factory=ServerPolicy)
    per_device: dict[int, ServerPolicy] = field(default_factory=dict)

    def for_device(self, eui64: int) -> ServerPolicy:
        return self.per_device.get(eui64, self.default)

    def override(self, eui64: int, **changes: object) -> ServerPolicy:
        policy = self.for_device(eui64).with_(**changes)
        self.per_device[eui64] = policy
        return policy
