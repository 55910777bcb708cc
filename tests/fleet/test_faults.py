"""Every fault of the catalogue on one premises: the system recovers, or fails with the right
alert and reason (docs/faults.md)."""

from __future__ import annotations

import pytest

from emulator.fleet.faults import FAULTS, SUCCEEDED
from emulator.fleet.run import run_fleet
from emulator.fleet.shard import Shard
from emulator.fleet.spec import FleetSpec
from emulator.runtime.events import EventCollector


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_gives_its_documented_outcome(name: str, small_fleet: FleetSpec) -> None:
    spec = small_fleet.with_(premises=1, faults={name: 100.0})
    result = run_fleet(spec, workers=1)
    (device,) = result.results
    assert device.fault == name
    got = SUCCEEDED if device.outcome == SUCCEEDED else device.reason
    assert got == FAULTS[name].expected


def _shard_with(spec: FleetSpec) -> tuple[Shard, EventCollector]:
    shard = Shard(spec, range(spec.premises))
    events = EventCollector()
    shard.bus.subscribe(events)
    return shard, events


@pytest.mark.parametrize("name", ["reboot_mid_transfer", "slow_reannounce"])
def test_rebooted_device_resumes_from_its_offset(name: str, small_fleet: FleetSpec) -> None:
    shard, events = _shard_with(small_fleet.with_(premises=1, faults={name: 100.0}))
    result = shard.run()
    assert result.results[0].outcome == SUCCEEDED
    (reboot,) = events.named("device_rebooted")
    assert reboot.fields["offset"] > 0
    # Resuming, not restarting: the hub never serves offset 0 again after the reboot.
    size = events.named("download_started")[0].fields["image_size"]
    blocks = -(-size // 40)
    assert result.block_exchanges < blocks * 1.05


def test_server_restart_keeps_the_transfer(small_fleet: FleetSpec) -> None:
    shard, events = _shard_with(small_fleet.with_(premises=1, faults={"server_restart_mid_transfer": 100.0}))
    result = shard.run()
    assert events.named("server_restarted") and events.named("session_restored")
    assert result.results[0].outcome == SUCCEEDED


def test_failures_raise_the_transfer_failure_alert(small_fleet: FleetSpec) -> None:
    shard, events = _shard_with(small_fleet.with_(premises=1, faults={"invalid_image_at_end": 100.0}))
    shard.run()
    alerts = [e for e in events.named("dcc_alert") if e.fields.get("alert") == "N62"]
    assert alerts and alerts[0].fields["alert_code"] == "0x8F89"
    assert not events.named("firmware_activated")


def test_first_request_lost_costs_one_retry(small_fleet: FleetSpec) -> None:
    clean = run_fleet(small_fleet.with_(premises=1), workers=1).results[0]
    lossy = run_fleet(small_fleet.with_(premises=1, faults={"first_request_lost": 100.0}), workers=1).results[0]
    assert clean.duration_s is not None and lossy.duration_s is not None
    assert lossy.duration_s > clean.duration_s


def test_burst_radio_loss_really_loses_frames_and_the_transfer_recovers(small_fleet: FleetSpec) -> None:
    shard, _ = _shard_with(small_fleet.with_(premises=1, faults={"burst_radio_loss": 100.0}))
    result = shard.run()
    (site,) = shard._sites.values()
    stats = site.han.link.stats
    assert stats.attempts_lost > 0 and stats.attempts > stats.frames  # MAC retries happened
    assert result.results[0].outcome == SUCCEEDED
