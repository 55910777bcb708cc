"""Every outcome record has its one timeline form: the event names and fields users read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emulator.gbcs.codes import GbcsAlertCode, TransferResult
from emulator.ota import actions as a
from emulator.ota.frames import Status
from emulator.ota.policy import UpgradeTiming
from emulator.ota.timeline import render

D = 0x00DB1234567890A4
V = 0xACDCACDD

SERVER_SAMPLES = [
    (a.ImageNotifySent(0, 100, True, None), "image_notify_sent", {"query_jitter": 100, "broadcast": True}),
    (a.QueryAnswered(D, None, 0xACDC0001, 0x1200, V, 4096), "query_answered",
     {"current_file_version": "ACDC0001", "hardware_version": "1200", "status": "SUCCESS",
      "file_version": "ACDCACDD", "image_size": 4096}),
    (a.QueryAnswered(D, a.Refusal.NO_NEWER_VERSION, V), "query_answered",
     {"current_file_version": "ACDCACDD", "status": "NO_IMAGE_AVAILABLE", "reason": "no newer version"}),
    (a.QueryIgnored(D), "query_ignored", {"reason": "server silent on queries (fault)"}),
    (a.TestPolicyApplied(D, a.TestStep.IMAGE_REMOVED, 400), "test_policy_applied",
     {"step": "image_removed", "offset": 400}),
    (a.TransferStarted(D, V, 4096, 40, 0), "transfer_started",
     {"file_version": "ACDCACDD", "image_size": 4096, "block_size": 40, "offset": 0}),
    (a.TransferProgress(D, 400, 4096, 9.8, 400, 80.0, 46.2), "transfer_progress",
     {"offset": 400, "image_size": 4096, "percent": 9.8, "bytes_served": 400, "rate_bps": 80.0, "eta_s": 46.2}),
    (a.TransferResumed(D, 5000), "transfer_resumed", {"offset": 5000}),
    (a.WaitForDataSent(D, 3, 2500), "wait_for_data_sent", {"request_time_s": 3, "minimum_block_period_ms": 2500}),
    (a.AllBlocksServed(D, 4096, 103, 12.5), "all_blocks_served", {"bytes_served": 4096, "blocks": 103, "duration_s": 12.5}),
    (a.UpgradeEndReceived(D, Status.SUCCESS, V), "upgrade_end_received", {"status": "SUCCESS", "file_version": "ACDCACDD"}),
    (a.TransferEnded(D, a.TransferOutcome.COMPLETED, V, 4096, bytes_served=4096, duration_s=20.0, upgrade_time=90,
                     upgrade_timing=UpgradeTiming.DELAY), "transfer_completed",
     {"file_version": "ACDCACDD", "bytes_served": 4096, "duration_s": 20.0, "upgrade_time": "delay",
      "upgrade_delay_s": 90}),
    (a.TransferEnded(D, a.TransferOutcome.FAILED, V, 4096, status=Status.INVALID_IMAGE), "transfer_failed",
     {"status": "INVALID_IMAGE", "offset": 4096}),
    (a.TransferEnded(D, a.TransferOutcome.TIMED_OUT, V, 80, phase=a.TimeoutPhase.DOWNLOAD, idle_s=600.0), "timed_out",
     {"phase": "download", "offset": 80, "idle_s": 600.0}),
    (a.TransferEnded(D, a.TransferOutcome.ABORTED, V, 80, reason="aborted by hub"), "aborted",
     {"reason": "aborted by hub", "offset": 80}),
    (a.UpgradeCommandSent(D, V), "upgrade_command_sent", {"file_version": "ACDCACDD"}),
    (a.BlockRefused(D, a.BlockRefusal.BEYOND_IMAGE, V, 4097, 4096), "block_refused",
     {"status": "ABORT", "reason": "offset 4097 beyond image size 4096"}),
    (a.DefaultResponseReceived(D, 0x05, 0x99), "default_response_received", {"command_id": 5, "status": "REQUIRE_MORE_IMAGE"}),
    (a.SessionRestored(D, "downloading", 4000), "session_restored", {"state": "downloading", "offset": 4000}),
    (a.LinkLost(D, 4000, 15.2, 584.8), "han_link_lost", {"offset": 4000, "silent_s": 15.2, "timeout_in_s": 584.8}),
    (a.LinkRestored(D, 4000, 95.0), "han_link_restored", {"offset": 4000, "outage_s": 95.0}),
]

OTHER_SAMPLES = [
    (a.QuerySent(D, 0xACDC0001), "query_sent", {"current_file_version": "ACDC0001"}),
    (a.NoImageOffered(D, 0x42), "no_image", {"status": "0x42"}),
    (a.ImageChecked(D, V, "ab" * 32, None), "image_verified", {"status": "SUCCESS", "sha256": "ab" * 32}),
    (a.ImageChecked(D, V, None, "bad signature"), "image_invalid", {"status": "INVALID_IMAGE", "reason": "bad signature"}),
    (a.UpgradeScheduled(D, 90.0, read_as_utc=True), "upgrade_scheduled",
     {"delay_s": 90.0, "note": "upgrade time read as absolute UTC"}),
    (a.GaveUp(D, 0, downloading=False), "query_unanswered", {"offset": 0}),
    (a.GaveUp(D, 800, downloading=True), "download_stalled", {"offset": 800}),
    (a.DeviceRebooted(D, 800), "device_rebooted", {"offset": 800}),
    (a.FrameIgnored(D, "ImagePageRequest"), "frame_ignored", {"command": "ImagePageRequest"}),
    (a.UnexpectedResponse(D, "ImageBlockResponse", 7), "unexpected_response", {"command": "ImageBlockResponse", "tsn": 7}),
    (a.ImageAlreadyHeld(D, V), "image_already_held", {"file_version": "ACDCACDD"}),
    (a.DownloadStarted(D, V, 4096, 0), "download_started", {"file_version": "ACDCACDD", "image_size": 4096, "offset": 0}),
    (a.ImageNotifyIgnored(D), "image_notify_ignored", {}),
    (a.ImageNotifyJittered(D, 50), "image_notify_jittered", {"query_jitter": 50}),
    (a.WaitForData(D, 3, 2500), "wait_for_data", {"wait_s": 3, "minimum_block_period_ms": 2500}),
    (a.DownloadAborted(D, Status.ABORT), "download_aborted", {"status": "ABORT"}),
    (a.BlockMismatch(D, 40, 80), "block_mismatch", {"expected_offset": 40, "got_offset": 80}),
    (a.BlockRejected(D, "bad block length", 0), "block_rejected", {"reason": "bad block length", "size": 0}),
    (a.DownloadComplete(D, 4096, 12.5, 103), "download_complete", {"bytes": 4096, "duration_s": 12.5, "blocks": 103}),
    (a.WaitingForUpgradeCommand(D, V), "waiting_for_upgrade_command", {"file_version": "ACDCACDD"}),
    (a.UpgradeAbandoned(D, Status.SUCCESS), "upgrade_abandoned", {"status": "SUCCESS"}),
    (a.NoImageHeld(D), "activation_failed", {"reason": "no image held"}),
    (a.ResponseTimeout(D, "ImageBlockRequest", 2), "response_timeout", {"command": "ImageBlockRequest", "retry": 2}),
    (a.UpgradeEndUnanswered(D), "upgrade_end_unanswered", {}),
    (a.FirmwareActivated(D, V, "ota"), "firmware_activated", {"firmware_version": "ACDCACDD", "via": "ota"}),
    (a.FirmwareActivationFailed(D, 0xACDC0001, "11.3"), "firmware_activation_failed",
     {"firmware_version": "ACDC0001", "via": "11.3"}),
    (a.AlertRaised(D, GbcsAlertCode.CCS08_TRANSFER_FAILURE,
                   {"result": int(TransferResult.TRANSFER_FAILED), "firmware_version": V, "reason": "download"}),
     "device_alert", {"alert": "0x8F89", "result": "transfer_failed", "firmware_version": "ACDCACDD",
                      "reason": "download"}),
    (a.AlertRaised(D, GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL, {"hash": b"\x01\xff"}), "device_alert",
     {"alert": "0x8F72", "hash": "01ff"}),
]


@pytest.mark.parametrize("outcome, name, fields", SERVER_SAMPLES + OTHER_SAMPLES,
                         ids=lambda v: type(v).__name__ if not isinstance(v, (str, dict)) else None)
def test_outcome_is_shown_as_users_know_it(outcome, name, fields) -> None:
    shown_name, shown = render(outcome)
    assert (shown_name, shown) == (name, fields)
    assert list(shown) == list(fields), "field order is part of the text timeline"


def test_every_outcome_type_has_a_timeline_form() -> None:
    assert {type(o) for o, _, _ in SERVER_SAMPLES + OTHER_SAMPLES} == set(a.OUTCOME_TYPES)
    with pytest.raises(TypeError, match="not an outcome"):
        render(object())  # type: ignore[arg-type]


def test_docs_list_the_events_the_server_reports() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "ota.md").read_text()
    listed = text[text.index("**Events**"):].split("\n\n")[0]
    documented = set(re.findall(r"`([a-z_]+)`", listed)) - {"time", "device"}
    host_only = {"malformed_frame"}  # the host reports an undecodable frame; no engine outcome
    assert documented - host_only == {name for _, name, _ in SERVER_SAMPLES}


def test_docs_list_the_events_a_device_reports() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "ota.md").read_text()
    listed = text[text.index("**Device events**"):].split("\n\n")[0]
    documented = set(re.findall(r"`([a-z_]+)`", listed)) - {"time", "source", "device"}
    not_records = {"device_started", "power_off", "command_response", "delivery_failed", "malformed_frame"}
    from_records = {name for _, name, _ in OTHER_SAMPLES} | {"default_response_received"}
    assert documented - not_records == from_records
