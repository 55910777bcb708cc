"""The whole chain through bellows and the dongle emulator (EZSP 8 and 13): the hub's Device Log is
carried out on the NCP's own Trust Centre, a whitelisted PPMID joins with its install-code key,
runs CBKE and upgrades over APS-encrypted frames; a meter left out of the Device Log is denied the
join by the NCP and never runs CBKE."""

from __future__ import annotations

import asyncio

import pytest

from emulator.han.ezsp.ncp_trust_centre import JoinOutcome
from emulator.han.security.aes_mmo import link_key_from_install_code
from emulator.runtime.events import EventCollector
from emulator.scenario.ezsp_sim import EzspSimRadios
from emulator.scenario.han_security import key_material
from emulator.scenario.runner import RadioScenarioRun
from emulator.scenario.spec import parse_scenario

HUB = "00-DB-12-34-56-78-90-A2"
PREMISES = "PREMISES-00DB1234567890A2"
PPMID = "00-DB-12-34-56-78-90-A4"
PPMID_ID = 0x00DB1234567890A4
ESME = "00-DB-12-34-56-78-90-A0"
ESME_ID = 0x00DB1234567890A0


@pytest.mark.parametrize("ezsp_version", [8, 13], ids=["ezsp8", "ezsp13"])
async def test_install_code_join_cbke_and_encrypted_upgrade_through_the_dongle(ezsp_version: int) -> None:
    data = {"seed": 7, "settle_s": 20, "duration_s": 50, "han": {"security": "cbke"},
            "expect": [{"event": "dcc_alert", "alert": "N49"}],
            "premises": [{"comms_hub": HUB, "devices": [{"eui64": PPMID, "type": "PPMID"},
                                                         {"eui64": ESME, "type": "ESME", "whitelisted": False}]}],
            "requests": [{"sr": "11.4", "at_s": 2, "devices": [PPMID], "image": "ppmid"}]}
    radios = EzspSimRadios(ezsp_version=ezsp_version)
    events = EventCollector()
    run = RadioScenarioRun(parse_scenario(data, source="dongle-join.toml"), radios, observers=[events])
    await asyncio.wait_for(run.run(), 60)
    ncp = radios.ncps[PREMISES]
    site = run.system.premises[PREMISES]  # type: ignore[union-attr]

    # The host told the NCP what the Device Log says, with the commands of its EZSP version.
    key_command = "importTransientKey" if ezsp_version >= 13 else "addTransientLinkKey"
    assert {key_command, "clearTransientLinkKeys", "setPolicy", "permitJoining"} <= set(ncp.commands)
    assert site.hub.transport.join_window.allowed[PPMID_ID][0] == \
        link_key_from_install_code(key_material(7).install_code(PPMID_ID))

    # On the air: the PPMID admitted with its install-code key, the ESME denied (no transient key).
    outcomes = {eui64: verdict.outcome for eui64, verdict in ncp.joins}
    assert outcomes[PPMID_ID] is JoinOutcome.ADMITTED
    assert outcomes[ESME_ID] is JoinOutcome.DENIED

    # The hub learnt both from trustCenterJoinHandler, not from the medium.
    (joined,) = [e for e in events.named("device_joined", PPMID_ID) if e.source == "comms_hub"]
    assert joined.fields == {"through": "ncp", "decision": "USE_PRECONFIGURED_KEY"}
    (denied, *_) = [e for e in events.named("join_refused", ESME_ID) if e.source == "comms_hub"]
    assert denied.fields["reason"] == "not_in_device_log" and denied.fields["through"] == "ncp"

    # Then CBKE and the upgrade, APS-encrypted; the ESME never got on the network.
    assert [e.source for e in events.named("cbke_established", PPMID_ID)] == ["comms_hub", "ppmid"]
    assert not events.named("cbke_established", ESME_ID)
    assert events.named("firmware_activated", PPMID_ID)
    assert "N49" in [e.fields["alert"] for e in events.named("dcc_alert")]
    assert site.devices[PPMID_ID].transport.security.frame_counter > 50
    assert not site.devices[ESME_ID].transport.attached
    assert not events.named("aps_frame_refused")
