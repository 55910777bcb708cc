"""``[han] security = "cbke"``: devices join by install code, run CBKE with the hub as Trust
Centre, and upgrade over APS-encrypted OTA frames; what a real SMETS2 device refuses, the
emulated one refuses too."""

from __future__ import annotations

import pytest

from emulator.han.link_security import PROTECTED_CLUSTERS, SecuredApsPacket
from emulator.han.packet import ApsPacket, OTA_CLUSTER
from emulator.han.security.provisioning import HanKeyMaterial
from emulator.runtime.events import EventCollector
from emulator.scenario.runner import ScenarioRun
from emulator.scenario.spec import ScenarioError, parse_scenario

PPMID = "00-DB-12-34-56-78-90-A4"
PPMID_ID = 0x00DB1234567890A4
ESME_ID = 0x00DB1234567890A0
HUB_ID = 0x00DB1234567890A2


def scenario(han: dict, devices: list | None = None, requests: list | None = None) -> dict:
    return {"settle_s": 600, "seed": 7, "han": han,
            "premises": [{"template": "default", "devices": devices or []}],
            "requests": requests if requests is not None else
            [{"sr": "11.4", "at_s": 120, "devices": [PPMID], "image": "ppmid"}]}


def play(data: dict) -> tuple[ScenarioRun, EventCollector, list[ApsPacket]]:
    collector = EventCollector()
    run = ScenarioRun(parse_scenario(data, source="cbke.toml"), observers=[collector])
    air: list[ApsPacket] = []
    for site in run.system.premises.values():
        site.han.add_trace_hook(lambda _d, packet: air.append(packet))
    run.run()
    return run, collector, air


def test_devices_join_run_cbke_and_upgrade_over_aps_encrypted_frames() -> None:
    run, events, air = play(scenario({"security": "cbke"}))
    for device in (PPMID_ID, ESME_ID):
        assert events.named("joined", device)
        hub_side, device_side = events.named("cbke_established", device)
        assert (hub_side.source, hub_side.fields["suite"]) == ("comms_hub", 2)
        assert device_side.source != "comms_hub"
    # One partner at a time: the others were told NO_RESOURCES and came back after the wait.
    assert any(e.fields["status"] == "NO_RESOURCES" for e in events.named("cbke_terminated"))
    assert events.named("firmware_activated", PPMID_ID)
    assert "N49" in [e.fields["alert"] for e in events.named("dcc_alert")]
    unicast_ota = [p for p in air if p.cluster in PROTECTED_CLUSTERS and not p.is_broadcast]
    assert unicast_ota and all(isinstance(p, SecuredApsPacket) for p in unicast_ota)
    # On the air the OTA payload is ciphertext: no Image Block Response (command 0x05) in clear.
    assert not any(p.payload[2:3] == b"\x05" for p in unicast_ota if p.cluster == OTA_CLUSTER)
    # The key both sides hold is the one the seed predicts (what `keys export --wireshark` writes).
    site = next(iter(run.system.premises.values()))
    expected = HanKeyMaterial(7).expected_link_key(HUB_ID, PPMID_ID)
    assert site.devices[PPMID_ID].key_establishment.link_key == expected
    assert site.hub.transport.security.key_of(PPMID_ID) == expected


def test_without_security_the_han_carries_plain_frames_and_no_cbke() -> None:
    _, events, air = play(scenario({}))
    assert not events.named("cbke_established")
    assert events.named("firmware_activated", PPMID_ID)
    assert not any(isinstance(p, SecuredApsPacket) for p in air)


def test_a_device_not_in_the_device_log_cannot_join_nor_run_cbke() -> None:
    _, events, _ = play(scenario({"security": "cbke"}, [{"eui64": PPMID, "whitelisted": False}]))
    (refused, *_) = events.named("join_refused", PPMID_ID)
    assert refused.source == "comms_hub" and refused.fields["reason"] == "not_in_device_log"
    assert not events.named("cbke_established", PPMID_ID)
    assert not events.named("firmware_activated", PPMID_ID)
    assert events.named("cbke_established", ESME_ID)  # the others are unaffected


def test_a_device_with_another_install_code_is_refused_the_join() -> None:
    # The Device Log holds the scenario's code; the device carries the default (seed) one.
    run = ScenarioRun(parse_scenario(scenario({"security": "cbke"}), source="cbke.toml"),
                      observers=[events := EventCollector()])
    site = next(iter(run.system.premises.values()))
    other = HanKeyMaterial(99).install_code(PPMID_ID)
    site.hub.trust_centre.update_device_log(PPMID_ID, other, 3600.0)
    run.run()
    assert [e.fields["reason"] for e in events.named("join_refused", PPMID_ID) if e.source == "comms_hub"][0] \
        == "wrong_link_key"
    assert not events.named("cbke_established", PPMID_ID)
    # CS14 (0x8F12) reported the Device Log change upstream.
    assert any(e.fields.get("alert") == "0x8F12" for e in events.named("device_log_reported"))


def test_after_cbke_a_device_refuses_an_unencrypted_ota_frame() -> None:
    run = ScenarioRun(parse_scenario(scenario({"security": "cbke"}, requests=[]), source="cbke.toml"),
                      observers=[events := EventCollector()])
    site = next(iter(run.system.premises.values()))
    run.run()
    assert events.named("cbke_established", PPMID_ID)
    answered = len(events.named("query_answered", PPMID_ID))
    hub_port = site.hub.transport
    key = hub_port.security.key_of(PPMID_ID)
    # The hub forgets the key for a moment: its Image Notify goes out unencrypted, and the
    # device drops it instead of querying.
    hub_port.security.forget(PPMID_ID)
    site.hub.image_notify(PPMID_ID)
    run.clock.run(until=run.clock.now() + 30)
    (refused,) = events.named("aps_frame_refused", PPMID_ID)
    assert refused.source == "ppmid" and refused.fields["refusal"] == "unencrypted"
    assert refused.fields["cluster"] == "0x0019"
    assert len(events.named("query_answered", PPMID_ID)) == answered
    # With the key back the same notify is taken.
    hub_port.security.set_key(PPMID_ID, key)
    site.hub.image_notify(PPMID_ID)
    run.clock.run(until=run.clock.now() + 30)
    assert len(events.named("query_answered", PPMID_ID)) == answered + 1


def test_a_tampered_encrypted_frame_fails_its_mic_and_is_dropped() -> None:
    run = ScenarioRun(parse_scenario(scenario({"security": "cbke"}, requests=[]), source="cbke.toml"),
                      observers=[events := EventCollector()])
    site = next(iter(run.system.premises.values()))
    run.run()

    def flip(packet: ApsPacket):  # type: ignore[no-untyped-def]
        from emulator.han.virtual import Verdict

        if isinstance(packet, SecuredApsPacket) and packet.dst == PPMID_ID:
            body = bytearray(packet.payload)
            body[-6] ^= 0x01
            return Verdict(packet=packet._replace(payload=bytes(body)))
        return None

    site.han.set_manipulator(flip)
    site.hub.image_notify(PPMID_ID)
    run.clock.run(until=run.clock.now() + 30)
    (refused,) = events.named("aps_frame_refused", PPMID_ID)
    assert refused.fields["refusal"] == "mic_failed"


@pytest.mark.parametrize("han, device, message", [
    ({"security": "tls"}, {}, "han.security: unknown HAN security 'tls'"),
    ({"security": "cbke"}, {"install_code": "83FED3407A939723A5C639B26916D505C3B6"}, "install_code: install code CRC"),
    ({"security": "cbke"}, {"install_code": "zz"}, "install_code: 'zz' is not hex"),
    ({"security": "cbke", "join_time_period_s": 0}, {}, "join_time_period_s: must be positive"),
])
def test_bad_security_settings_are_one_clear_line(han: dict, device: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_scenario(scenario(han, [{"eui64": PPMID, **device}]), source="cbke.toml")


def test_an_install_code_from_the_scenario_is_the_one_the_device_joins_with() -> None:
    code = "83FED3407A939723A5C639B26916D505C3B5"  # the published example, TEST ONLY
    run, events, _ = play(scenario({"security": "cbke"}, [{"eui64": PPMID, "install_code": code}]))
    site = next(iter(run.system.premises.values()))
    assert site.hub.trust_centre.device_log[PPMID_ID].install_code_key.hex().upper() == \
        "66B6900981E1EE3CA4206B6B861C02BB"
    assert events.named("cbke_established", PPMID_ID)


@pytest.mark.parametrize("ezsp_version", [8, 13], ids=["ezsp8", "ezsp13"])
async def test_cbke_and_an_encrypted_upgrade_through_bellows_and_the_dongle(ezsp_version: int) -> None:
    """The hub on bellows computes CBKE on the host, installs the key in the NCP's key table and
    sends OTA with the APS ENCRYPTION option; the dongle encrypts on its air side."""
    import asyncio

    from emulator.scenario.ezsp_sim import EzspSimRadios
    from emulator.scenario.runner import RadioScenarioRun

    data = {"seed": 7, "settle_s": 20, "duration_s": 50, "han": {"security": "cbke"},
            "expect": [{"event": "dcc_alert", "alert": "N49"}],
            "premises": [{"comms_hub": "00-DB-12-34-56-78-90-A2",
                          "devices": [{"eui64": PPMID, "type": "PPMID"}]}],
            "requests": [{"sr": "11.4", "at_s": 2, "devices": [PPMID], "image": "ppmid"}]}
    radios = EzspSimRadios(ezsp_version=ezsp_version)
    events = EventCollector()
    run = RadioScenarioRun(parse_scenario(data, source="cbke.toml"), radios, observers=[events])
    await asyncio.wait_for(run.run(), 60)
    assert [e.source for e in events.named("cbke_established", PPMID_ID)] == ["comms_hub", "ppmid"]
    assert events.named("firmware_activated", PPMID_ID)
    assert "N49" in [e.fields["alert"] for e in events.named("dcc_alert")]
    ncp = radios.ncps["PREMISES-00DB1234567890A2"]
    expected = HanKeyMaterial(7).expected_link_key(HUB_ID, PPMID_ID)
    assert ncp.dongle.link_keys[PPMID_ID] == expected  # installed by the host through EZSP
    device = run.system.premises["PREMISES-00DB1234567890A2"].devices[PPMID_ID]
    assert device.transport.security.frame_counter > 50  # the download's requests went encrypted
    assert not events.named("aps_frame_refused")


def test_the_demo_with_cbke_gives_the_same_dcc_outcome_as_without() -> None:
    """PPMID 11.4, ESME 11.1 then 11.3 and 11.2 through the (encrypted) tunnel: same alerts and
    responses with security on, and every OTA and tunnel unicast on the air APS-secured."""
    from emulator.scenario.cli import DEMO_SCENARIO
    from emulator.scenario.han_security import HanSecurity, HanSecurityMode
    from emulator.scenario.spec import load_scenario

    def outcome(secured: bool) -> tuple[list, list, list[ApsPacket], int]:
        scenario = load_scenario(DEMO_SCENARIO)
        if secured:
            scenario.han_security = HanSecurity(HanSecurityMode.CBKE, scenario.seed)
        events = EventCollector()
        run = ScenarioRun(scenario, observers=[events])
        air: list[ApsPacket] = []
        for site in run.system.premises.values():
            site.han.add_trace_hook(lambda _d, packet: air.append(packet))
        run.run()
        alerts = sorted((e.fields["alert"], e.device) for e in events.named("dcc_alert"))
        responses = sorted((e.fields["service_reference_variant"], e.device) for e in events.named("sr_response"))
        refused = [e for e in events.named("aps_frame_refused") if e.fields["refusal"] == "unencrypted"]
        return alerts, responses, air, len(refused)

    plain_alerts, plain_responses, _, _ = outcome(False)
    alerts, responses, air, refused = outcome(True)
    assert (alerts, responses) == (plain_alerts, plain_responses)
    assert any(r[0] == "11.2" for r in responses) and ("N49", PPMID_ID) in alerts
    tunnel = [p for p in air if p.cluster == 0x0704]
    assert tunnel and all(isinstance(p, SecuredApsPacket) for p in tunnel)
    # The SRs arrive at t=0, before the devices' CBKE: the hub's first unicast Image Notify to a
    # device still without a key goes unencrypted and the device drops it (it queries after CBKE).
    clear = [p for p in air if p.cluster == OTA_CLUSTER and not p.is_broadcast and not isinstance(p, SecuredApsPacket)]
    assert len(clear) == refused
    assert sum(isinstance(p, SecuredApsPacket) for p in air if p.cluster == OTA_CLUSTER) > 1000


@pytest.mark.parametrize("ezsp_version", [8, 13], ids=["ezsp8", "ezsp13"])
async def test_with_a_cbke_library_on_the_ncp_the_dongle_computes_the_hubs_side(ezsp_version: int) -> None:
    """A dongle holding CBKE data (an image with the CBKE library): the hub answers with the NCP's
    certificate, the NCP makes the ephemeral key and SMACs and stores the link key (EZSP
    getCertificate283k1, generateCbkeKeys283k1, calculateSmacs283k1,
    clearTemporaryDataMaybeStoreLinkKey283k1); the PPMID upgrades over APS-encrypted frames."""
    import asyncio

    from emulator.scenario.ezsp_sim import EzspSimRadios
    from emulator.scenario.runner import RadioScenarioRun

    data = {"seed": 7, "settle_s": 20, "duration_s": 50, "han": {"security": "cbke"},
            "expect": [{"event": "dcc_alert", "alert": "N49"}],
            "premises": [{"comms_hub": "00-DB-12-34-56-78-90-A2",
                          "devices": [{"eui64": PPMID, "type": "PPMID"}]}],
            "requests": [{"sr": "11.4", "at_s": 2, "devices": [PPMID], "image": "ppmid"}]}
    radios = EzspSimRadios(ezsp_version=ezsp_version, ncp_cbke=True)
    events = EventCollector()
    run = RadioScenarioRun(parse_scenario(data, source="cbke.toml"), radios, observers=[events])
    await asyncio.wait_for(run.run(), 60)
    hub_side, device_side = events.named("cbke_established", PPMID_ID)
    assert (hub_side.source, hub_side.fields["computed_by"]) == ("comms_hub", "ncp")
    assert device_side.source == "ppmid"
    site = run.system.premises["PREMISES-00DB1234567890A2"]
    library = site.hub.transport.ncp_cbke
    assert library is not None and library.calls == [
        "getCertificate283k1", "generateCbkeKeys283k1", "calculateSmacs283k1",
        "clearTemporaryDataMaybeStoreLinkKey283k1"]
    device = site.devices[PPMID_ID]
    ncp = radios.ncps["PREMISES-00DB1234567890A2"]
    # The key the NCP stored is the one the device derived; the host never had it, and it is not
    # the host's seed-predicted key (the NCP's ephemeral key is its own).
    assert ncp.dongle.link_keys[PPMID_ID] == device.key_establishment.link_key
    assert ncp.dongle.link_keys[PPMID_ID] != HanKeyMaterial(7).expected_link_key(HUB_ID, PPMID_ID)
    assert site.hub.trust_centre.device_log[PPMID_ID].link_key is None
    assert events.named("firmware_activated", PPMID_ID)
    assert "N49" in [e.fields["alert"] for e in events.named("dcc_alert")]
    assert device.transport.security.frame_counter > 50  # the download's requests went encrypted
    assert not events.named("aps_frame_refused")
