"""The fault catalogue: what real devices, hubs and radios do wrong, each a named switch.

A :class:`Fault` is data: the client-profile fields, device faults and per-device server policy it
sets, how it treats the device's frames on the air, what it does mid-transfer, and the outcome a
correct emulator must show (``succeeded`` when the system recovers, otherwise the failure reason
the fleet reports). docs/faults.md describes each one and the real-world problem behind it.

It is plain data that names switches of the lower layers, so scenarios (``faults = [...]`` on a
device) and fleets (``[faults] NAME = PCT``) share one vocabulary; the composition root
(:mod:`emulator.scenario.injection`) turns a name into what it switches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from emulator.han.radio import BurstLoss

SUCCEEDED = "succeeded"


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    problem: str  # the real-world problem it reproduces
    expected: str  # SUCCEEDED, or the failure reason the fleet reports
    profile: Mapping[str, Any] = field(default_factory=dict)  # ClientProfile changes
    device: Mapping[str, Any] = field(default_factory=dict)  # DeviceFaults changes
    server: Mapping[str, Any] = field(default_factory=dict)  # ServerPolicy changes for this device
    sleepy: bool = False  # radio: frames wait for the device's poll
    frames: str | None = None  # an air rule, see emulator.scenario.injection.AirFaults
    mid_transfer: str | None = None  # "reboot", "slow_reannounce", "server_restart", "link_outage" or
    # "long_link_outage" at 50 %
    burst: BurstLoss | None = None  # burst loss on the premises' channel


def _catalogue(*faults: Fault) -> dict[str, Fault]:
    return {f.name: f for f in faults}


FAULTS: dict[str, Fault] = _catalogue(
    Fault("sleepy_ignores_notify",
          "battery devices sleep through Image Notify and only query on their own schedule",
          SUCCEEDED, profile={"ignore_image_notify": True, "query_interval_s": 900.0}, sleepy=True),
    Fault("first_request_lost", "the first request of a device never reaches the hub", SUCCEEDED,
          frames="first_request"),
    Fault("first_response_lost", "the hub's first response never reaches the device", SUCCEEDED,
          frames="first_response"),
    Fault("stack_fails_above_32", "a device's stack fails on blocks larger than 32 bytes",
          "0x8F89 timed out (download)", profile={"stack_fails_above": 32}),
    Fault("fails_on_short_block", "a device fails when given fewer bytes than it asked for",
          "0x8F89 timed out (download)", profile={"fails_on_short_block": True, "max_data_size": 64}),
    Fault("short_final_block", "a device mishandles the short block at the end of the image",
          "0x8F89 INVALID_IMAGE", profile={"drops_short_final_block": True}),
    Fault("long_silent_phase", "up to an hour of silence between the last block and Upgrade End Request",
          SUCCEEDED, profile={"verify_delay_s": 3000.0}),
    Fault("invalid_image_at_end", "a device reports INVALID_IMAGE after downloading everything",
          "0x8F89 INVALID_IMAGE", profile={"invalid_image_at_end": True}),
    Fault("send_before_confirm",
          "a device sends its next request before its acknowledgement of the previous response",
          SUCCEEDED, frames="response_confirm_lost"),
    Fault("absolute_upgrade_time", "a device reads the Upgrade End Response's upgrade time as UTC",
          SUCCEEDED, profile={"absolute_upgrade_time": True}),
    Fault("stray_default_responses", "a device sends Default Responses in the middle of a transfer",
          SUCCEEDED, profile={"stray_default_response_every": 50}),
    Fault("page_requests_only", "a device only uses Image Page Requests", SUCCEEDED,
          profile={"use_page_requests": True}),
    Fault("wrong_file_version", "a device reports a wrong (too new) current file version",
          "no image offered", profile={"reported_file_version": 0xFFFFFFF0}),
    Fault("slow_reannounce", "a device takes minutes to re-announce after a reboot mid-transfer",
          SUCCEEDED, mid_transfer="slow_reannounce"),
    Fault("burst_radio_loss", "interference wipes out seconds of traffic at a time", SUCCEEDED,
          burst=BurstLoss(mean_good_s=2.0, mean_bad_s=1.0, loss_good=0.0, loss_bad=0.95)),
    Fault("reboot_mid_transfer", "a device reboots or loses its battery mid-transfer and resumes",
          SUCCEEDED, mid_transfer="reboot"),
    Fault("server_restart_mid_transfer", "the hub's OTA server restarts mid-transfer", SUCCEEDED,
          mid_transfer="server_restart"),
    Fault("link_outage_mid_transfer",
          "the HAN link to a device drops for two minutes mid-transfer (interference, a metal cupboard door "
          "closed): the hub reports the link lost, the device retries with back-off and resumes at its offset",
          SUCCEEDED, mid_transfer="link_outage"),
    Fault("long_link_outage_mid_transfer",
          "the HAN link to a device drops mid-transfer for 15 minutes, longer than the hub's block gap timeout",
          "0x8F89 timed out (download)", mid_transfer="long_link_outage"),
    Fault("server_silent_on_query", "the hub does not answer Query Next Image Requests",
          "query unanswered", server={"silent_on_query": True}),
    Fault("lost_delivery_confirmation", "the device's frames arrive but it never hears the acknowledgement",
          SUCCEEDED, frames="request_confirm_lost"),
    # Device defects added so that every B check of certify device has a mutant (docs/certify.md).
    Fault("omits_hardware_version", "a device leaves the hardware version out of Query Next Image",
          SUCCEEDED, profile={"hardware_version": None}),
    Fault("queries_on_any_notify", "a device queries on an Image Notify meant for another image",
          SUCCEEDED, profile={"queries_on_any_notify": True}),
    Fault("hammers_queries", "a device re-queries every 10 s after NO_IMAGE_AVAILABLE", SUCCEEDED,
          profile={"query_interval_s": 10.0}),
    Fault("ignores_wait_for_data", "a device asks again at once whatever WAIT_FOR_DATA said", SUCCEEDED,
          profile={"ignores_wait_for_data": True}),
    Fault("aborts_on_duplicate_block", "a device abandons its download on a repeated Image Block Response",
          SUCCEEDED, profile={"aborts_on_duplicate_block": True}),
    Fault("ignores_missing_file", "a device keeps asking for blocks of a file the server no longer has",
          SUCCEEDED, profile={"ignores_missing_file": True}),
    Fault("no_upgrade_end_on_abort", "a device drops an aborted download without Upgrade End Request ABORT",
          SUCCEEDED, profile={"no_upgrade_end_on_abort": True}),
    Fault("activates_unverified", "a device activates an image it never verified (a corrupted one too)",
          SUCCEEDED, profile={"accepts_unverified_image": True}),
    Fault("page_miss_aborts", "a page-request device abandons its download when a block of a page is missing",
          SUCCEEDED, profile={"use_page_requests": True, "page_miss_aborts": True}),
    Fault("endless_silent_phase", "a device takes five hours between the last block and Upgrade End Request",
          "0x8F89 timed out (silent_phase)", profile={"verify_delay_s": 5 * 3600.0}),
    Fault("gives_up_when_throttled", "a device abandons its download when told to wait more than 30 s",
          SUCCEEDED, profile={"gives_up_on_wait_above_s": 30.0}),
    Fault("fixed_server_endpoint", "a device talks to endpoint 1 whatever endpoint the OTA server is on",
          SUCCEEDED, profile={"fixed_server_endpoint": True}),
    Fault("forgets_offset_on_reboot", "a device restarts its download from offset 0 after a power cut",
          SUCCEEDED, profile={"forgets_offset_on_reboot": True}),
    # Device defects for the C and D checks of certify device (docs/certify.md).
    Fault("fdra_hash_of_whole_file",
          "a meter's Firmware Distribution Receipt Alert carries the SHA-256 of the whole OTA file, not of the "
          "Manufacturer Image (what the CPL and CS06 carry)", SUCCEEDED, device={"fdra_hash_of_whole_file": True}),
    Fault("joins_with_well_known_key",
          "a device joins with the ZigBee HA default TC link key (ZigBeeAlliance09), not its install code's",
          SUCCEEDED, device={"joins_with_well_known_key": True}),
    Fault("accepts_plaintext_after_cbke",
          "a device acts on OTA and Tunneling frames that arrive without APS encryption after CBKE",
          SUCCEEDED, device={"accepts_plaintext_aps": True}),
    Fault("ignores_no_resources_wait",
          "a device retries Key Establishment at once after Terminate NO_RESOURCES, whatever wait time it was given",
          SUCCEEDED, device={"ignores_no_resources_wait": True}),
    Fault("trusts_any_issuer",
          "a device runs Key Establishment with a certificate from any CA: no Terminate UNKNOWN_ISSUER",
          SUCCEEDED, device={"trusts_any_issuer": True}),
    Fault("slow_key_establishment",
          "a device takes 15 s for each CBKE step while it advertises 10 s (ephemeral data, confirm key)",
          SUCCEEDED, device={"cbke_send_delay_s": 15.0}),
    Fault("reads_back_boot_version",
          "a device answers the SR 11.2 firmware version read with the version it was built with, not the one it runs",
          SUCCEEDED, device={"reads_back_boot_version": True}),
)
