"""``hil run`` with ``[han] security = "cbke"``: test-certificate devices on a bench (here the
dongle emulator with secured stand-in devices behind it) join through the NCP, run CBKE with the
hub and upgrade over APS-encrypted frames. With CBKE data on the NCP, the NCP computes the hub's
side; without, the host computes and installs the key (EZSP 8 and 13)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import AsyncIterator

import pytest

from emulator.cli import main
from emulator.dcc.premises import default_premises
from emulator.han.ezsp.dongle import DongleState
from emulator.han.ezsp.ncp import EzspNcp
from emulator.han.security.provisioning import HanKeyMaterial
from emulator.han.virtual import VirtualHan
from emulator.runtime.clock import AsyncioClock
from emulator.runtime.events import EventBus, EventCollector
from emulator.scenario.han_security import key_material, secure_device
from emulator.scenario.premises import build_devices
from emulator.scenario.samples import trusted_key

REPO = Path(__file__).resolve().parents[2]
PPMID = "00-DB-12-34-56-78-90-A4"
PPMID_ID = 0x00DB1234567890A4
DEVICE_SEED = 3  # the stand-ins' install codes and certificates (default TEST ONLY CA, as the hub's)
WALL_LIMIT_S = 90.0


class SecuredBench:
    def __init__(self, ncp: EzspNcp, devices: dict, events: EventCollector) -> None:
        self.ncp, self.devices, self.events = ncp, devices, events

    def bench_toml(self) -> str:
        code = HanKeyMaterial(DEVICE_SEED).install_code(PPMID_ID).hex().upper()
        return (f'[dongle]\npath = "{self.ncp.url}"\n\n[[devices]]\neui64 = "{PPMID}"\ntype = "PPMID"\n'
                f'install_code = "{code}"\n')


@pytest.fixture(params=[(8, False), (8, True), (13, False), (13, True)],
                ids=["ezsp8-host", "ezsp8-ncp", "ezsp13-host", "ezsp13-ncp"])
async def bench(request: pytest.FixtureRequest) -> AsyncIterator[SecuredBench]:
    version, ncp_cbke = request.param
    events = EventCollector()
    clock = AsyncioClock()
    bus = EventBus(clock)
    bus.subscribe(events)
    devices: dict = {}
    spec = default_premises()

    def populate(han, clock) -> None:  # type: ignore[no-untyped-def]
        """Test-certificate devices that join with their install code and run CBKE with the
        dongle as Trust Centre, powered on when the hub first sends a Smart Energy unicast (so
        their first Key Establishment finds it running; one powered earlier retries after 60 s)."""
        keys = key_material(DEVICE_SEED)
        made = build_devices(spec, han, clock, bus, trusted_key=trusted_key())
        for eui64, device in made.items():
            secure_device(device, keys, keys.install_code(eui64), ncp.dongle.eui64, 0x0000)
        devices.update(made)
        unicast = ncp._unicast

        def unicast_and_power_on(session, nwk, aps, *args, **kwargs):  # type: ignore[no-untyped-def]
            if aps.profileId == 0x0109:  # the hub's first Smart Energy unicast (its Image Notify): once
                ncp._unicast = unicast  # type: ignore[method-assign]
                for device in made.values():  # after this command's response
                    ncp.clock.call_later(0.0, device.start)
            return unicast(session, nwk, aps, *args, **kwargs)

        ncp._unicast = unicast_and_power_on  # type: ignore[method-assign]

    ncp = EzspNcp(ezsp_version=version, han=VirtualHan(clock, latency=0.0), populate=populate,
                  dongle=DongleState(eui64=spec.comms_hub, extended_pan_id=spec.comms_hub))
    if ncp_cbke:  # an NCP image with the CBKE library and the dongle's TEST ONLY suite-2 data
        ncp.dongle.cbke_identities[2] = HanKeyMaterial(DEVICE_SEED).identity(ncp.dongle.eui64)
    await ncp.start("127.0.0.1", 0)
    try:
        yield SecuredBench(ncp, devices, events)
    finally:
        await ncp.stop()


async def test_hil_run_with_cbke_upgrades_the_bench_ppmid_over_aps_encrypted_frames(
        bench: SecuredBench, tmp_path: Path, capsys) -> None:
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(bench.bench_toml())
    scenario = tmp_path / "cbke-upgrade.toml"
    scenario.write_text((REPO / "hil" / "scenarios" / "ppmid-upgrade.toml").read_text()
                        + '\n[han]\nsecurity = "cbke"\n')
    code = await asyncio.wait_for(asyncio.to_thread(main, ["hil", "run", str(bench_file), str(scenario)]),
                                  WALL_LIMIT_S)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = lines[-1]
    assert code == 0 and summary["ok"] is True, summary
    ppmid = bench.devices[PPMID_ID]
    assert ppmid.firmware.active_version == 0xACDCACDD
    hub_side = [e for e in lines if e["event"] == "cbke_established" and e["device"] == PPMID]
    assert len(hub_side) == 1
    by_ncp = bench.ncp.dongle.cbke_identities.get(2) is not None
    assert hub_side[0]["computed_by"] == ("ncp" if by_ncp else "host")
    # The key in the NCP's table is the one the device derived (stored by the NCP itself, or
    # installed by the host with addOrUpdateKeyTableEntry / importLinkKey).
    assert bench.ncp.dongle.link_keys[PPMID_ID] == ppmid.key_establishment.link_key
    assert ppmid.transport.security.frame_counter > 50  # the download's requests went encrypted
    assert not bench.events.named("aps_frame_refused")
