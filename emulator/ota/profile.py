"""How one device model behaves as an OTA client: the profile the client engine runs with.

Scenario and fleet files set its fields by their annotations (emulator.config), so its optional
fields are annotated ``"Optional[X]"``, quoted: the compiled build (mypyc, docs/fleet.md) keeps a
quoted annotation as written but turns an unquoted ``X | None`` into ``type``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

from emulator.runtime.records import reduce_by_init_fields


@dataclass(frozen=True, slots=True)
class ClientProfile:
    """How one device model behaves as an OTA client (timings, limits, faults)."""

    manufacturer_code: int
    image_type: int
    current_file_version: int
    hardware_version: "Optional[int]" = None
    max_data_size: int = 63
    initial_query_delay_s: float = 1.0
    query_interval_s: float = 3600.0
    response_timeout_s: float = 5.0
    max_retries: int = 5
    # A download stalled (every retry of a request went unanswered: the HAN link is down): query again
    # after stall_retry_s, doubling at each stall up to stall_retry_max_s (each delay scaled by a
    # draw in [0.8, 1.2]), not after query_interval_s; the download goes on at its offset.
    stall_retry_s: float = 10.0
    stall_retry_max_s: float = 300.0
    use_page_requests: bool = False
    page_size: int = 256
    response_spacing_ms: int = 50
    verify_delay_s: float = 2.0  # silent phase: checking/copying the image before Upgrade End
    send_node_address: bool = False
    # Faults (docs/faults.md): each a switch; None/False = a well-behaved device.
    ignore_image_notify: bool = False
    stack_fails_above: "Optional[int]" = None  # blocks bigger than this crash the download
    fails_on_short_block: bool = False  # a block shorter than asked for is treated as an error
    invalid_image_at_end: bool = False  # reports INVALID_IMAGE whatever it received
    absolute_upgrade_time: bool = False  # reads a relative upgrade time as UTC
    reported_file_version: "Optional[int]" = None  # reports this instead of the real version
    stray_default_response_every: "Optional[int]" = None  # a Default Response after every N blocks
    drops_short_final_block: bool = False  # a last block shorter than the others is not stored
    # How the stack reads MinimumBlockPeriod ("ms": ZCL OTA r6 and later; "s": older stacks).
    minimum_block_period_unit: str = "ms"
    # Device defects certify device must catch (docs/certify.md, the device mutation matrix).
    ignores_wait_for_data: bool = False  # asks again at once, whatever WAIT_FOR_DATA said
    aborts_on_duplicate_block: bool = False  # a repeated Image Block Response ends the download
    accepts_unverified_image: bool = False  # reports SUCCESS (and activates) without verifying
    ignores_missing_file: bool = False  # keeps asking for blocks after Default Response NO_IMAGE_AVAILABLE
    no_upgrade_end_on_abort: bool = False  # Image Block Response ABORT without Upgrade End Request ABORT
    forgets_offset_on_reboot: bool = False  # restarts a download from offset 0 after a power cycle
    queries_on_any_notify: bool = False  # queries on an Image Notify meant for another image
    fixed_server_endpoint: bool = False  # always talks to endpoint 1, wherever the OTA server is
    page_miss_aborts: bool = False  # a block missing from an Image Page Response ends the download
    gives_up_on_wait_above_s: "Optional[float]" = None  # a longer WAIT_FOR_DATA ends the download

    def __post_init__(self) -> None:
        if not self.stall_retry_s > 0 or not self.stall_retry_max_s >= self.stall_retry_s:
            raise ValueError(f"stall_retry_s must be above 0 and at most stall_retry_max_s, got "
                             f"{self.stall_retry_s} and {self.stall_retry_max_s}")

    def with_(self, **changes: Any) -> "ClientProfile":
        return replace(self, **changes)

    def __reduce__(self) -> tuple[Any, ...]:
        return reduce_by_init_fields(self)  # pickled and copied alike in the compiled build
