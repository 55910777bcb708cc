"""CSP checks (N18/N19/N20/N22), N59 to the other suppliers, WAN delivery (N60/N61)."""

from __future__ import annotations

import pytest
from dcc_fakes import FakeHub, Harness, gbcs_image

from emulator.dcc.csp import CspOutcome, CspPolicy, HubDelivery
from emulator.dcc.messages import MessageKind
from emulator.dcc.premises import (
    ESME_ID,
    GAS_SUPPLIER_ID,
    GSME_ID,
    IMPORT_SUPPLIER_ID,
    PPMID_ID,
    default_premises,
)
from emulator.eui64 import format_eui64
from emulator.dcc.sat import SatEvent
from emulator.dcc.smi import DeviceStatus, SmiDevice
from emulator.gbcs.codes import DeviceType

IMPORT = format_eui64(IMPORT_SUPPLIER_ID)
GAS = format_eui64(GAS_SUPPLIER_ID)
EXTRA_PPMIDS = (0x00DB1234567890B1, 0x00DB1234567890B2, 0x00DB1234567890B3)


def add_ppmids(h: Harness, ids: tuple[int, ...] = EXTRA_PPMIDS, hub: int | None = None,
               premises: str = "PREMISES-0001") -> None:
    ppmid = h.dsp.smi.require(PPMID_ID)
    for eui in ids:
        h.dsp.smi.add(SmiDevice(eui, DeviceType.PPMID, ppmid.model, DeviceStatus.COMMISSIONED,
                                ppmid.firmware_version, comms_hub=hub or ppmid.comms_hub, premises=premises,
                                suppliers=dict(ppmid.suppliers)))


@pytest.mark.parametrize("outcome", [CspOutcome.N18, CspOutcome.N19, CspOutcome.N20, CspOutcome.N22])
def test_csp_rejection_raises_its_dcc_alert_and_skips_the_device(outcome: CspOutcome) -> None:
    h = Harness(CspPolicy(device_outcomes={PPMID_ID: outcome}))
    add_ppmids(h, EXTRA_PPMIDS[:1])
    sr = h.update_ppmid([PPMID_ID, EXTRA_PPMIDS[0]])
    assert h.dsp.submit(sr).accepted == (PPMID_ID, EXTRA_PPMIDS[0])  # the DSP knows nothing of the CSP yet
    h.clock.run()
    [alert] = h.with_code(outcome.value)
    assert alert.kind is MessageKind.DCC_ALERT
    assert (alert.device, alert.request_id, alert.recipient) == (PPMID_ID, sr.header.request_id, IMPORT)
    assert [d["targets"] for d in h.hub.distributions] == [(EXTRA_PPMIDS[0],)]
    assert [e.device for e in h.dsp.sat.entries(event=SatEvent.CSP_REJECTED, code=outcome.value)] == [PPMID_ID]
    # A rejected device is free for the next update.
    assert h.dsp.submit(h.update_ppmid([PPMID_ID])).accepted == (PPMID_ID,)


def test_every_n19_device_gets_its_own_sat_entry() -> None:
    h = Harness(CspPolicy(device_outcomes={eui: CspOutcome.N19 for eui in EXTRA_PPMIDS}))
    add_ppmids(h)
    sr = h.update_ppmid([PPMID_ID, *EXTRA_PPMIDS])
    h.dsp.submit(sr)
    h.clock.run()
    entries = h.dsp.sat.entries(event=SatEvent.CSP_REJECTED, code="N19", request_id=sr.header.request_id)
    assert sorted(e.device for e in entries) == sorted(EXTRA_PPMIDS)
    assert sorted(m.device for m in h.with_code("N19")) == sorted(EXTRA_PPMIDS)
    assert [d["targets"] for d in h.hub.distributions] == [(PPMID_ID,)]


def test_all_devices_rejected_by_the_csp_means_no_delivery_and_no_n59() -> None:
    h = Harness(CspPolicy(device_outcomes={PPMID_ID: CspOutcome.N20}))
    h.dsp.submit(h.update_ppmid([PPMID_ID]))
    h.clock.run()
    assert h.codes() == ["N20"]
    assert h.hub.distributions == []


def test_n59_goes_to_the_other_responsible_supplier_only() -> None:
    h = Harness()
    h.dsp.submit(h.update_ppmid([PPMID_ID], originator=IMPORT_SUPPLIER_ID))
    h.clock.run()
    [n59] = h.with_code("N59")
    assert (n59.device, n59.recipient) == (PPMID_ID, GAS)
    assert all(m.recipient == IMPORT for m in h.messages if m.code != "N59")


def test_n59_follows_the_requester_when_the_gas_supplier_sends_the_request() -> None:
    h = Harness()
    h.dsp.submit(h.update_meters([GSME_ID], gbcs_image(image_type=0x0001, signed=True), originator=GAS_SUPPLIER_ID))
    h.clock.run()
    # The GSME's premises also has the import supplier (responsible for the ESME, CH and PPMID).
    assert [m.recipient for m in h.with_code("N59")] == [IMPORT]


def test_n59_is_not_sent_for_devices_the_csp_rejected() -> None:
    h = Harness(CspPolicy(device_outcomes={EXTRA_PPMIDS[0]: CspOutcome.N18}))
    add_ppmids(h, EXTRA_PPMIDS[:1])
    h.dsp.submit(h.update_ppmid([PPMID_ID, EXTRA_PPMIDS[0]]))
    h.clock.run()
    assert [m.device for m in h.with_code("N59")] == [PPMID_ID]


def test_n61_delivered_to_the_hub_then_the_hub_distributes_with_activate_now_for_11_4() -> None:
    h = Harness(CspPolicy(default_wan_delay=30.0))
    sr = h.update_ppmid([PPMID_ID])
    h.dsp.submit(sr)
    h.clock.advance(29.0)
    assert h.with_code("N61") == [] and h.hub.distributions == []
    h.clock.run()
    [n61] = h.with_code("N61")
    assert (n61.device, n61.time, n61.details["comms_hub"]) == (PPMID_ID, 30.0, format_eui64(h.hub.eui64))
    [delivery] = h.hub.distributions
    assert delivery == {"image": sr.firmware_image, "targets": (PPMID_ID,), "activate_now": True,
                        "request_id": sr.header.request_id}


def test_11_1_is_distributed_without_activation() -> None:
    h = Harness()
    h.dsp.submit(h.update_meters([ESME_ID]))
    h.clock.run()
    assert [(d["targets"], d["activate_now"]) for d in h.hub.distributions] == [((ESME_ID,), False)]
    assert h.codes() == ["N59", "N61"]  # the ESME's premises has a gas supplier too


def test_n60_when_the_wan_transfer_fails_and_the_device_is_free_again() -> None:
    premises = default_premises()
    h = Harness(CspPolicy(hub_delivery={premises.comms_hub: HubDelivery(fail=True)}))
    h.dsp.submit(h.update_ppmid([PPMID_ID]))
    h.clock.run()
    assert h.codes() == ["N59", "N60"]
    assert h.hub.distributions == []
    assert h.dsp.submit(h.update_ppmid([PPMID_ID])).accepted == (PPMID_ID,)


def test_devices_are_grouped_by_comms_hub_each_with_its_own_wan_outcome() -> None:
    other_hub = FakeHub(0x00DB1234567890C2)
    h = Harness(CspPolicy(hub_delivery={other_hub.eui64: HubDelivery(fail=False, delay=5.0)},
                          default_wan_delay=2.0))
    h.csp.add_hub(other_hub)
    add_ppmids(h, EXTRA_PPMIDS[:2], hub=other_hub.eui64, premises="PREMISES-0002")
    h.dsp.submit(h.update_ppmid([PPMID_ID, *EXTRA_PPMIDS[:2]]))
    h.clock.run()
    assert [d["targets"] for d in h.hub.distributions] == [(PPMID_ID,)]
    assert [d["targets"] for d in other_hub.distributions] == [EXTRA_PPMIDS[:2]]
    assert sorted((m.time, m.device) for m in h.with_code("N61")) == [
        (2.0, PPMID_ID), (5.0, EXTRA_PPMIDS[0]), (5.0, EXTRA_PPMIDS[1])]


def test_a_hub_the_csp_cannot_reach_gives_n60() -> None:
    h = Harness()
    add_ppmids(h, EXTRA_PPMIDS[:1], hub=0x00DB1234567890C9, premises="PREMISES-0009")
    h.dsp.submit(h.update_ppmid([EXTRA_PPMIDS[0]]))
    h.clock.run()
    assert [m.code for m in h.messages if m.device == EXTRA_PPMIDS[0]] == ["N59", "N60"]


def test_csp_checks_wait_for_the_configured_delay() -> None:
    h = Harness(CspPolicy(check_delay=10.0, device_outcomes={PPMID_ID: CspOutcome.N22}))
    h.dsp.submit(h.update_ppmid([PPMID_ID]))
    h.clock.advance(9.5)
    assert h.messages == []
    h.clock.run()
    assert [(m.code, m.time) for m in h.messages] == [("N22", 10.0)]


def test_policy_from_scenario_data() -> None:
    policy = CspPolicy.from_mapping({
        "devices": {"00-DB-12-34-56-78-90-A4": "N19"},
        "hubs": {"00-DB-12-34-56-78-90-A2": {"fail": True}},
        "default_wan_delay": 3,
    })
    assert policy.outcome_for(PPMID_ID) is CspOutcome.N19
    assert policy.outcome_for(ESME_ID) is CspOutcome.PASS
    assert policy.delivery_for(0x00DB1234567890A2) == (True, 3.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"device": {}}, "unknown key(s) ['device']"),
        ({"devices": {"00-DB-12-34-56-78-90-A4": "N21"}}, "devices.00-DB-12-34-56-78-90-A4"),
        ({"devices": {"00-DB-12": "N19"}}, "devices.00-DB-12"),
        ({"hubs": {"00-DB-12-34-56-78-90-A2": {"fail": "yes"}}}, "hubs.00-DB-12-34-56-78-90-A2.fail"),
        ({"hubs": {"00-DB-12-34-56-78-90-A2": {"delay": -1}}}, "hubs.00-DB-12-34-56-78-90-A2.delay"),
        ({"check_delay": "soon"}, "check_delay"),
    ],
)
def test_policy_errors_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match="scenario.yaml") as info:
        CspPolicy.from_mapping(data, source="scenario.yaml")
    assert message in str(info.value)
