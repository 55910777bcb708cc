"""The device mutation matrix: every fault of the catalogue, classified, and the check that catches it.

Each fault of :data:`emulator.faults.FAULTS` is one of: a **device defect** (the suite must fail
the named B check on a device that has it), a **radio condition** (loss on the air: a device that
copes passes), a **server condition** (the hub misbehaves: not something certify device plays, the
test hub is the server), or **legal behaviour** (a device that does it is conformant: no check may
fail, a declared limit may warn). ``benchmarks/certify_matrix.py`` prints the matrix and the
mutation score; tests/certify/test_device_matrix.py asserts it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

from emulator.certify.model import Verdict
from emulator.certify.runner import CertifyReport
from emulator.devices.verification import TrustedKeys
from emulator.faults import FAULTS

from .dut import CONFORMANT, virtual_device
from .runner import certify_device, virtual_factory


class FaultClass(str, enum.Enum):
    DEVICE_DEFECT = "device defect"
    RADIO_CONDITION = "radio condition"
    SERVER_CONDITION = "server condition"
    LEGAL_BEHAVIOUR = "legal behaviour"


@dataclass(frozen=True)
class Classified:
    fault: str
    kind: FaultClass
    expected_check: str | None  # device defects: the B or C check that must fail
    why: str


def _d(fault: str, check: str, why: str) -> Classified:
    return Classified(fault, FaultClass.DEVICE_DEFECT, check, why)


def _r(fault: str, why: str) -> Classified:
    return Classified(fault, FaultClass.RADIO_CONDITION, None, why)


def _s(fault: str, why: str) -> Classified:
    return Classified(fault, FaultClass.SERVER_CONDITION, None, why)


def _l(fault: str, why: str) -> Classified:
    return Classified(fault, FaultClass.LEGAL_BEHAVIOUR, None, why)


CLASSIFICATION: dict[str, Classified] = {c.fault: c for c in (
    _l("sleepy_ignores_notify", "battery devices may sleep through Image Notify (B3 not applicable when declared)"),
    _r("first_request_lost", "the air loses a frame; the device's retry recovers"),
    _r("first_response_lost", "the air loses the hub's answer; a retry is not a back-off violation"),
    _d("stack_fails_above_32", "B5", "a 40-byte block (the APS-secured size) is rejected"),
    _d("fails_on_short_block", "B5", "a block shorter than asked for is rejected"),
    _d("short_final_block", "B5", "the image in flash is truncated: INVALID_IMAGE for a good image"),
    _l("long_silent_phase", "a long silent phase is allowed when declared (B13 warns above the declared bound)"),
    _d("invalid_image_at_end", "B5", "INVALID_IMAGE for the vendor's good image"),
    _r("send_before_confirm", "the device's request collides with its own acknowledgement"),
    _d("absolute_upgrade_time", "B12", "a relative upgrade time read as UTC: never activates"),
    _d("stray_default_responses", "B5", "Default Response to a frame sent with Disable Default Response"),
    _l("page_requests_only", "Image Page Requests are optional but legal (B10 applies and passes)"),
    _d("wrong_file_version", "B15", "the query reports another version than CurrentFileVersion"),
    _l("slow_reannounce", "slow to come back after a power cut, but resumes (B14 passes)"),
    _r("burst_radio_loss", "interference; needs the radio model (run/fleet), not played by certify device"),
    _l("reboot_mid_transfer", "a power cut mid-transfer is what B14 plays; resuming is correct"),
    _s("server_restart_mid_transfer", "the hub restarts: a server condition, not played by certify device"),
    _r("link_outage_mid_transfer", "the HAN link drops for minutes; needs the HAN's air faults (run/fleet), "
                                   "not played by certify device"),
    _r("long_link_outage_mid_transfer", "the HAN link drops past the hub's block gap timeout; needs the HAN's "
                                        "air faults (run/fleet), not played by certify device"),
    _s("server_silent_on_query", "the hub does not answer: a server condition, not played by certify device"),
    _r("lost_delivery_confirmation", "the device never hears its acknowledgements"),
    _d("omits_hardware_version", "B2", "no hardware version in Query Next Image"),
    _d("queries_on_any_notify", "B3", "queries on an Image Notify for another manufacturer"),
    _d("hammers_queries", "B4", "re-queries every 10 s after NO_IMAGE_AVAILABLE"),
    _d("ignores_wait_for_data", "B6", "asks again at once after WAIT_FOR_DATA"),
    _d("aborts_on_duplicate_block", "B7", "a duplicate Image Block Response ends the download"),
    _d("ignores_missing_file", "B8", "keeps asking for blocks after three Default Responses NO_IMAGE_AVAILABLE"),
    _d("no_upgrade_end_on_abort", "B9", "no Upgrade End Request ABORT after Image Block Response ABORT"),
    _d("activates_unverified", "B11", "activates a corrupted image"),
    _d("page_miss_aborts", "B10", "a block missing from a page ends the download"),
    _d("endless_silent_phase", "B13", "no Upgrade End Request within the hub's 4 h silent-phase timeout"),
    _d("gives_up_when_throttled", "B16", "abandons the download on WAIT_FOR_DATA 60 s (slots full)"),
    _d("fixed_server_endpoint", "B1", "talks to endpoint 1 when the OTA server is on endpoint 123"),
    _d("forgets_offset_on_reboot", "B14", "restarts from offset 0 after a power cut"),
    _d("fdra_hash_of_whole_file", "C3", "FDRA 0x8F72 carries SHA-256 of the whole OTA file, not of the Manufacturer Image"),
    _d("joins_with_well_known_key", "D1", "joins with ZigBeeAlliance09 instead of its install-code key: refused"),
    _d("accepts_plaintext_after_cbke", "D4", "answers an unencrypted Image Notify after CBKE"),
    _d("ignores_no_resources_wait", "D3", "retries CBKE after 1 s when Terminate NO_RESOURCES said wait 20 s"),
    _d("slow_key_establishment", "D2", "15 s per CBKE step while advertising 10 s"),
    _d("trusts_any_issuer", "D3", "runs CBKE with a hub certificate from another CA (no Terminate UNKNOWN_ISSUER)"),
    _d("reads_back_boot_version", "C2", "the 11.2 read after activation still says the old version"),
)}

PLAYED = (FaultClass.DEVICE_DEFECT, FaultClass.RADIO_CONDITION, FaultClass.LEGAL_BEHAVIOUR)
"""What the matrix runs (server conditions, and radio loss needing the radio model or the HAN's
air faults, are not)."""
_AIR_ONLY = ("link_outage", "long_link_outage")


@dataclass(frozen=True)
class DeviceMatrixRow:
    name: str  # "conformant" or a fault
    kind: FaultClass | None  # None for the conformant device
    expected_check: str | None
    failed: tuple[str, ...]
    warned: tuple[str, ...]
    report: CertifyReport

    @property
    def caught(self) -> bool | None:
        """Device defects: whether the expected check failed. Others: whether nothing failed."""
        if self.expected_check is not None:
            return self.expected_check in self.failed
        return not self.failed


def playable(fault: str) -> bool:
    """Whether certify device can play ``fault`` on a virtual device."""
    classified = CLASSIFICATION[fault]
    return classified.kind in PLAYED and FAULTS[fault].burst is None and FAULTS[fault].mid_transfer not in _AIR_ONLY


def run_row(name: str, image: bytes, signing_key: EllipticCurvePrivateKey, trusted_key: TrustedKeys,
            *, only: str | None = None) -> DeviceMatrixRow:
    dut = virtual_device(name)
    report = certify_device(dut, "matrix image", image, virtual_factory(dut, trusted_key), signing_key, only=only)
    failed = tuple(r.check_id for r in report.results if r.verdict is Verdict.FAIL)
    warned = tuple(r.check_id for r in report.results if r.verdict is Verdict.WARN)
    classified = CLASSIFICATION.get(name)
    return DeviceMatrixRow(name, classified.kind if classified else None,
                           classified.expected_check if classified else None, failed, warned, report)


def run_device_matrix(image: bytes, signing_key: EllipticCurvePrivateKey, trusted_key: TrustedKeys,
                      progress: Callable[[DeviceMatrixRow], None] | None = None) -> list[DeviceMatrixRow]:
    """The conformant device and every playable fault, each with a full certify device run."""
    rows = []
    for name in (CONFORMANT, *(f for f in FAULTS if playable(f))):
        row = run_row(name, image, signing_key, trusted_key)
        if progress is not None:
            progress(row)
        rows.append(row)
    return rows


def score(rows: list[DeviceMatrixRow]) -> tuple[int, int]:
    """(device defects caught by their check, device defects)."""
    defects = [r for r in rows if r.kind is FaultClass.DEVICE_DEFECT]
    return sum(1 for r in defects if r.caught), len(defects)
