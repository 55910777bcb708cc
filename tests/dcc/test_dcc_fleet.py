"""A fleet of premises through the 11.4 flow in virtual time, wired with build_dcc."""

from __future__ import annotations

import dataclasses
from collections import Counter

from dcc_fakes import FakeHub, gbcs_image

from emulator.dcc.csp import CspOutcome, CspPolicy, HubDelivery
from emulator.dcc.messages import UserMessage
from emulator.dcc.premises import IMPORT_SUPPLIER_ID, TARGET_FIRMWARE_VERSION, PremisesSpec, default_premises
from emulator.dcc.service_requests import RequestHeader, UpdatePPMIDFirmware
from emulator.dcc.system import build_dcc
from emulator.gbcs.codes import GbcsAlertCode
from emulator.runtime.clock import VirtualClock

PREMISES = 200


def numbered_premises(i: int) -> PremisesSpec:
    base = 0x00DB000000000000 + (i << 8)
    spec = default_premises(f"P{i:04d}")
    devices = tuple(dataclasses.replace(d, eui64=base | (d.eui64 & 0xFF)) for d in spec.devices)
    return dataclasses.replace(spec, comms_hub=base | 0xA2, devices=devices)


def test_fleet_update_reaches_every_ppmid_except_the_scenario_failures() -> None:
    fleet = [numbered_premises(i) for i in range(PREMISES)]
    ppmids = [p.comms_hub + 2 for p in fleet]  # ...A4
    policy = CspPolicy(
        device_outcomes={ppmids[0]: CspOutcome.N19, ppmids[1]: CspOutcome.N18},
        hub_delivery={fleet[2].comms_hub: HubDelivery(fail=True)},
    )
    clock = VirtualClock()
    messages: list[UserMessage] = []
    dcc = build_dcc(clock, messages.append, policy=policy, premises=fleet)
    hubs = [FakeHub(p.comms_hub) for p in fleet]
    for hub in hubs:
        dcc.add_hub(hub)
    header = RequestHeader("90-B3-D5-1F-30-01-00-00:00-00-00-00-00-00-00-00:1", 8, "11", "11.4",
                           originator=IMPORT_SUPPLIER_ID)
    response = dcc.dsp.submit(UpdatePPMIDFirmware(header, gbcs_image(), TARGET_FIRMWARE_VERSION, tuple(ppmids)))
    assert len(response.accepted) == PREMISES
    clock.run()
    for hub in hubs:  # each hub transfers and each PPMID activates
        for delivery in hub.distributions:
            for device in delivery["targets"]:
                hub.alert(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, device, clock.now(), result=0)
                hub.alert(GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION, device, clock.now(), success=True,
                          firmware_version=TARGET_FIRMWARE_VERSION)
    counts = Counter(m.code for m in messages)
    done = PREMISES - 3
    assert counts == {"N19": 1, "N18": 1, "N59": PREMISES - 2, "N60": 1, "N61": done, "N62": done,
                      "N39": done, "N49": done}
    updated = [d for d in dcc.dsp.smi.devices() if d.firmware_version == TARGET_FIRMWARE_VERSION]
    assert sorted(d.eui64 for d in updated) == sorted(ppmids[3:])
