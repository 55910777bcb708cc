"""The timeline's view of an outcome: the one place an outcome record becomes an event name and
the fields users see (versions as 8 hex digits, ZCL statuses by name, hashes as hex).

Nothing decides on what this returns; deciders match on the records themselves.
"""

from __future__ import annotations

import base64
from typing import Any, Mapping

from emulator.gbcs.codes import ActivationResponseCode, TransferResult

from .actions import (
    AlertRaised,
    AllBlocksServed,
    BlockMismatch,
    BlockRefusal,
    BlockRefused,
    BlockRejected,
    DefaultResponseReceived,
    DeviceRebooted,
    DownloadAborted,
    DownloadComplete,
    DownloadStarted,
    FirmwareActivated,
    FirmwareActivationFailed,
    FrameIgnored,
    GaveUp,
    ImageAlreadyHeld,
    ImageChecked,
    ImageNotifyIgnored,
    ImageNotifyJittered,
    ImageNotifySent,
    NoImageHeld,
    NoImageOffered,
    Outcome,
    QueryAnswered,
    QueryIgnored,
    QuerySent,
    Refusal,
    ResponseTimeout,
    SessionRestored,
    LinkLost,
    LinkRestored,
    TestPolicyApplied,
    TransferEnded,
    TransferOutcome,
    TransferProgress,
    TransferResumed,
    TransferStarted,
    UnexpectedResponse,
    UpgradeAbandoned,
    UpgradeCommandSent,
    UpgradeEndReceived,
    UpgradeEndUnanswered,
    UpgradeScheduled,
    WaitForData,
    WaitForDataSent,
    WaitingForUpgradeCommand,
)
from .frames import Status
from .policy import UpgradeTiming

Rendered = tuple[str, dict[str, Any]]


def render(outcome: Outcome) -> Rendered:
    """The event name and fields of ``outcome`` on the timeline (docs/ota.md, "Events")."""
    match outcome:
        case TestPolicyApplied(step=step, offset=offset):
            return "test_policy_applied", {"step": step.value, "offset": offset}
        # server
        case ImageNotifySent(_, jitter, broadcast, version):
            fields: dict[str, Any] = {"query_jitter": jitter, "broadcast": broadcast}
            if version is not None:
                fields["file_version"] = _hex8(version)
            return "image_notify_sent", fields
        case QueryAnswered():
            return "query_answered", _query_answered(outcome)
        case QueryIgnored():
            return "query_ignored", {"reason": "server silent on queries (fault)"}
        case TransferStarted(_, version, size, block, offset):
            return "transfer_started", {"file_version": _hex8(version), "image_size": size,
                                        "block_size": block, "offset": offset}
        case TransferProgress(_, offset, size, percent, served, rate, eta):
            return "transfer_progress", {"offset": offset, "image_size": size, "percent": percent,
                                         "bytes_served": served, "rate_bps": rate, "eta_s": eta}
        case TransferResumed(_, offset):
            return "transfer_resumed", {"offset": offset}
        case WaitForDataSent(_, request_time, period):
            return "wait_for_data_sent", {"request_time_s": request_time, "minimum_block_period_ms": period}
        case BlockRefused(reason=BlockRefusal.NOT_OFFERED):
            return "block_refused", {"status": "ABORT", "reason": outcome.reason.value,
                                     "file_version": _hex8(outcome.file_version)}
        case BlockRefused(reason=BlockRefusal.BEYOND_IMAGE):
            return "block_refused", {"status": "ABORT",
                                     "reason": f"offset {outcome.offset} beyond image size {outcome.image_size}"}
        case AllBlocksServed(_, served, blocks, duration):
            return "all_blocks_served", {"bytes_served": served, "blocks": blocks, "duration_s": duration}
        case UpgradeEndReceived(_, status, version):
            return "upgrade_end_received", {"status": status_name(status), "file_version": _hex8(version)}
        case TransferEnded():
            return _transfer_ended(outcome)
        case UpgradeCommandSent(_, version):
            return "upgrade_command_sent", {"file_version": _hex8(version)}
        case DefaultResponseReceived(_, command_id, status):
            return "default_response_received", {"command_id": command_id, "status": status_name(status)}
        case SessionRestored(_, state, offset):
            return "session_restored", {"state": state, "offset": offset}
        case LinkLost(_, offset, silent, timeout_in):
            return "han_link_lost", {"offset": offset, "silent_s": silent, "timeout_in_s": timeout_in}
        case LinkRestored(_, offset, outage):
            return "han_link_restored", {"offset": offset, "outage_s": outage}
        # client
        case DeviceRebooted(_, offset):
            return "device_rebooted", {"offset": offset}
        case FrameIgnored(_, command):
            return "frame_ignored", {"command": command}
        case QuerySent(_, version):
            return "query_sent", {"current_file_version": _hex8(version)}
        case UnexpectedResponse(_, command, tsn):
            return "unexpected_response", {"command": command, "tsn": tsn}
        case NoImageOffered(_, status):
            return "no_image", {"status": status_name(status)}
        case ImageAlreadyHeld(_, version):
            return "image_already_held", {"file_version": _hex8(version)}
        case DownloadStarted(_, version, size, offset):
            return "download_started", {"file_version": _hex8(version), "image_size": size, "offset": offset}
        case ImageNotifyIgnored():
            return "image_notify_ignored", {}
        case ImageNotifyJittered(_, jitter):
            return "image_notify_jittered", {"query_jitter": jitter}
        case WaitForData(_, wait, period):
            return "wait_for_data", {"wait_s": wait, "minimum_block_period_ms": period}
        case DownloadAborted(_, status):
            return "download_aborted", {"status": status_name(status)}
        case BlockMismatch(_, expected, got):
            return "block_mismatch", {"expected_offset": expected, "got_offset": got}
        case BlockRejected(_, reason, size):
            return "block_rejected", {"reason": reason, "size": size}
        case DownloadComplete(_, size, duration, blocks):
            return "download_complete", {"bytes": size, "duration_s": duration, "blocks": blocks}
        case ImageChecked(sha256=sha256, reason=None):
            return "image_verified", {"status": "SUCCESS", "sha256": sha256}
        case ImageChecked(reason=reason):
            return "image_invalid", {"status": "INVALID_IMAGE", "reason": reason}
        case WaitingForUpgradeCommand(_, version):
            return "waiting_for_upgrade_command", {"file_version": _hex8(version)}
        case UpgradeScheduled(_, delay, read_as_utc):
            fields = {"delay_s": delay}
            if read_as_utc:
                fields["note"] = "upgrade time read as absolute UTC"
            return "upgrade_scheduled", fields
        case UpgradeAbandoned(_, status):
            return "upgrade_abandoned", {"status": status_name(status)}
        case NoImageHeld():
            return "activation_failed", {"reason": "no image held"}
        case ResponseTimeout(_, command, retry):
            return "response_timeout", {"command": command, "retry": retry}
        case UpgradeEndUnanswered():
            return "upgrade_end_unanswered", {}
        case GaveUp(_, offset, downloading):
            return ("download_stalled" if downloading else "query_unanswered"), {"offset": offset}
        # the nodes around the engines
        case FirmwareActivated(_, version, via):
            return "firmware_activated", {"firmware_version": _hex8(version), "via": via}
        case FirmwareActivationFailed(_, version, via):
            return "firmware_activation_failed", {"firmware_version": _hex8(version), "via": via}
        case AlertRaised(_, code, details):
            return "device_alert", {"alert": f"0x{code:04X}", **shown_details(details)}
    raise TypeError(f"not an outcome: {outcome!r}")


def shown_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """Timeline form of alert and command-response details: versions as 8 hex digits, hashes as
    hex, CCS08 results and 11.3 response codes by name."""
    shown = dict(details)
    version = shown.get("firmware_version")
    if isinstance(version, int):
        shown["firmware_version"] = _hex8(version)
    digest = shown.get("hash")
    if isinstance(digest, bytes):
        shown["hash"] = digest.hex()
    result = shown.get("result")
    if isinstance(result, int):
        shown["result"] = TransferResult(result).name.lower()
    code = shown.get("response_code")
    if isinstance(code, int):
        shown["response_code"] = ActivationResponseCode(code).name
    return shown


def tunnel_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """Wire form of alert details in the GBCS tunnel: a ``hash`` (bytes) travels as base64."""
    out = dict(details)
    digest = out.get("hash")
    if isinstance(digest, bytes):
        out["hash"] = base64.b64encode(digest).decode()
    return out


def _query_answered(q: QueryAnswered) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if q.current_file_version is not None:
        fields["current_file_version"] = _hex8(q.current_file_version)
    if q.hardware_version is not None:
        fields["hardware_version"] = f"{q.hardware_version:04X}"
    if q.refusal is not None:
        status = "NOT_AUTHORIZED" if q.refusal is Refusal.NOT_AUTHORIZED else "NO_IMAGE_AVAILABLE"
        fields.update(status=status, reason=q.refusal.value)
    else:
        assert q.file_version is not None
        fields.update(status="SUCCESS", file_version=_hex8(q.file_version), image_size=q.image_size)
    return fields


def _transfer_ended(t: TransferEnded) -> Rendered:
    match t.outcome:
        case TransferOutcome.COMPLETED:
            timing = t.upgrade_timing
            return "transfer_completed", {
                "file_version": _hex8(t.file_version), "bytes_served": t.bytes_served, "duration_s": t.duration_s,
                "upgrade_time": "now" if t.upgrade_time == 0 or timing is None else timing.value,
                "upgrade_delay_s": t.upgrade_time if timing is UpgradeTiming.DELAY else 0}
        case TransferOutcome.FAILED:
            assert t.status is not None
            return "transfer_failed", {"status": status_name(t.status), "offset": t.offset}
        case TransferOutcome.TIMED_OUT:
            assert t.phase is not None
            return "timed_out", {"phase": t.phase.value, "offset": t.offset, "idle_s": t.idle_s}
        case TransferOutcome.ABORTED:
            return "aborted", {"reason": t.reason, "offset": t.offset}
    raise TypeError(f"unknown transfer outcome {t.outcome!r}")


def status_name(status: int) -> str:
    """A ZCL status by name (``0x..`` when it is not one the OTA cluster defines)."""
    try:
        return Status(status).name
    except ValueError:
        return f"0x{status:02X}"


def _hex8(value: int) -> str:
    return f"{value:08X}"
