"""Under ``[han] security = "cbke"`` the 81-octet Initiate Key Establishment messages go as two
APS blocks on the virtual HAN, and a block that is never acknowledged makes the device's CBKE
time out and start again (docs/cbke.md, "APS fragmentation")."""

from __future__ import annotations

from emulator.han.aps_fragmentation import FRAGMENT_PAYLOAD, ApsFragment
from emulator.han.fragmented_send import FragmentedDelivery
from emulator.han.packet import ApsPacket
from emulator.han.security.ke_frames import KEY_ESTABLISHMENT_CLUSTER
from emulator.han.virtual import Verdict
from emulator.runtime.events import EventCollector
from emulator.scenario.runner import ScenarioRun
from emulator.scenario.spec import parse_scenario

PPMID = "00-DB-12-34-56-78-90-A4"
PPMID_ID = 0x00DB1234567890A4
INITIATE = 0x00  # Initiate Key Establishment Request / Response (both 81 octets with suite 2)


def _run(drop_first_initiate_of: int | None = None):
    data = {"settle_s": 600, "seed": 7, "han": {"security": "cbke"}, "premises": [{"template": "default"}],
            "requests": [{"sr": "11.4", "at_s": 120, "devices": [PPMID], "image": "ppmid"}]}
    events = EventCollector()
    run = ScenarioRun(parse_scenario(data, source="cbke.toml"), observers=[events])
    site = next(iter(run.system.premises.values()))
    air: list[ApsPacket] = []
    outcomes: list[FragmentedDelivery] = []
    site.han.add_trace_hook(lambda _d, packet: air.append(packet))
    site.han.add_fragment_listener(outcomes.append)
    dropped: list[ApsPacket] = []
    if drop_first_initiate_of is not None:
        def drop(packet: ApsPacket) -> Verdict | None:
            # The second block of the device's first Initiate request is never acknowledged.
            if (not dropped and isinstance(packet, ApsFragment) and packet.src == drop_first_initiate_of
                    and packet.cluster == KEY_ESTABLISHMENT_CLUSTER and packet.extended_header == b"\x02\x01"):
                dropped.append(packet)
                return Verdict(drop=True)
            return None
        site.han.set_manipulator(drop)
    run.run()
    return events, air, outcomes, dropped


def test_the_initiate_messages_go_as_two_blocks_and_cbke_completes() -> None:
    events, air, outcomes, _ = _run()
    ke = [p for p in air if p.cluster == KEY_ESTABLISHMENT_CLUSTER]
    firsts = [p for p in ke if isinstance(p, ApsFragment) and p.extended_header[:1] == b"\x01"]
    initiates = [p for p in firsts if p.body[2] == INITIATE]
    assert initiates and all(p.extended_header == b"\x01\x02" and len(p.body) == FRAGMENT_PAYLOAD for p in initiates)
    # Both directions: each device's request and the hub's response carry a 74-octet certificate.
    assert {p.src for p in initiates} >= {PPMID_ID, 0x00DB1234567890A2}
    ke_outcomes = [o for o in outcomes if o.cluster == KEY_ESTABLISHMENT_CLUSTER]
    assert ke_outcomes and all(o.length == 81 and o.blocks == 2 for o in ke_outcomes)
    # The other KE messages (ephemeral data, confirm, terminate) fit one frame.
    assert all(isinstance(p, ApsFragment) for p in ke if len(p.payload) > 73)
    assert events.named("cbke_established", PPMID_ID)
    assert events.named("firmware_activated", PPMID_ID)


def test_an_unacknowledged_block_makes_cbke_time_out_and_run_again() -> None:
    events, _, outcomes, dropped = _run(drop_first_initiate_of=PPMID_ID)
    assert dropped
    failed = [o for o in outcomes if not o.delivered]
    assert [(o.src, o.cluster, o.failed_block) for o in failed] == [(PPMID_ID, KEY_ESTABLISHMENT_CLUSTER, 1)]
    device_side = [e for e in events.named("cbke_terminated", PPMID_ID) if e.source != "comms_hub"]
    assert device_side and device_side[0].fields["reason"].startswith("timed out")
    runs = [e.fields["run"] for e in events.named("cbke_started", PPMID_ID)]
    assert len(runs) >= 2  # started again after CBKE_RETRY_S
    assert events.named("cbke_established", PPMID_ID)
    assert events.named("firmware_activated", PPMID_ID)


def test_in_a_scenario_the_hub_checks_certificate_dates_in_the_run_time() -> None:
    """The scenario clock starts at 2026-01-01 (the system epoch): a device whose certificate
    expired the day before is refused with INVALID_CERTIFICATE, every time it tries."""
    from emulator.han.security.provisioning import HanKeyMaterial
    from emulator.scenario.system import SCENARIO_EPOCH

    data = {"settle_s": 600, "seed": 7, "han": {"security": "cbke"}, "premises": [{"template": "default"}],
            "requests": []}
    events = EventCollector()
    run = ScenarioRun(parse_scenario(data, source="cbke.toml"), observers=[events])
    site = next(iter(run.system.premises.values()))
    epoch = int(SCENARIO_EPOCH.timestamp())
    expired = HanKeyMaterial(7).ca.issue(PPMID_ID, valid_from=epoch - 2 * 86_400, valid_to=86_400)
    site.devices[PPMID_ID].key_establishment.ke.identity = expired
    run.run()
    hub_side = [e for e in events.named("cbke_terminated", PPMID_ID) if e.source == "comms_hub"]
    refused = [e for e in hub_side if e.fields["status"] != "NO_RESOURCES"]  # NO_RESOURCES: the hub was busy
    assert refused and {e.fields["status"] for e in refused} == {"INVALID_CERTIFICATE"}
    assert "expired at 2025-12-31T00:00:00Z" in refused[0].fields["reason"]
    assert not events.named("cbke_established", PPMID_ID)
    assert events.named("cbke_established", 0x00DB1234567890A0)  # the ESME's certificate never expires
