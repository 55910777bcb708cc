"""What the DSP makes of Comms Hub messages: N62, N39/N49, device alerts, 11.2/11.3 responses."""

from __future__ import annotations

import dataclasses

from datetime import datetime, timedelta, timezone

import pytest
from dcc_fakes import MANUFACTURER_IMAGE_HASH, Harness

from emulator.dcc.dsp import ERROR_DEVICE_REJECTED, ERROR_MALFORMED, GBCS_EPOCH, RESPONSE_ACCEPTED
from emulator.eui64 import format_eui64
from emulator.dcc.messages import MessageKind, RejectionReason
from emulator.dcc.premises import (
    ESME_ID,
    GAS_SUPPLIER_ID,
    GSME_ID,
    IMPORT_SUPPLIER_ID,
    PPMID_ID,
    TARGET_FIRMWARE_VERSION,
)
from emulator.dcc.sat import SatEvent
from emulator.dcc.store import Store
from emulator.dcc.anti_replay import RequestSchemaVersions
from emulator.dcc.smi import DeviceStatus, FirmwareStatus
from emulator.gbcs.codes import ActivationResponseCode, GbcsAlertCode, TransferResult

IMPORT = format_eui64(IMPORT_SUPPLIER_ID)
OLD_VERSION = 0xACDC0001


def distributed_ppmid(h: Harness) -> str:
    sr = h.update_ppmid([PPMID_ID])
    h.dsp.submit(sr)
    h.clock.run()
    return sr.header.request_id


def esme_holding_image(h: Harness) -> None:
    h.dsp.submit(h.update_meters([ESME_ID]))
    h.clock.run()
    h.hub.alert(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, ESME_ID, h.clock.now(), result=0)
    h.hub.alert(GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL, ESME_ID, h.clock.now(),
                firmware_hash=MANUFACTURER_IMAGE_HASH)


# -- CCS08 -> N62 -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("alert_code", "result"),
    [
        (GbcsAlertCode.CCS08_TRANSFER_SUCCESS, TransferResult.TRANSFERRED),
        (GbcsAlertCode.CCS08_TRANSFER_FAILURE, TransferResult.DISCARDED_OR_OVERWRITTEN),
        (GbcsAlertCode.CCS08_TRANSFER_FAILURE, TransferResult.HARDWARE_VERSION_MISMATCH),
        (GbcsAlertCode.CCS08_TRANSFER_FAILURE, TransferResult.TRANSFER_FAILED),
    ],
)
def test_ccs08_result_becomes_n62_with_the_result(alert_code: int, result: TransferResult) -> None:
    h = Harness()
    request_id = distributed_ppmid(h)
    h.hub.alert(alert_code, PPMID_ID, 120.0, result=int(result))
    [n62] = h.with_code("N62")
    assert (n62.device, n62.request_id, n62.recipient, n62.time) == (PPMID_ID, request_id, IMPORT, 120.0)
    assert n62.details["result"] == int(result) and n62.details["result_name"] == result.name
    assert n62.details["alert_code"] == f"0x{alert_code:04X}"
    still_busy = h.dsp.submit(h.update_ppmid([PPMID_ID])).rejected
    if result is TransferResult.TRANSFERRED:  # the PPMID has yet to activate
        assert still_busy == {RejectionReason.FIRMWARE_UPDATE_IN_PROGRESS: (PPMID_ID,)}
    else:  # a failed transfer ends the update
        assert still_busy == {}


# -- PPMID 0x8F8B -> N39, N49 -------------------------------------------------------------------
def test_ppmid_activation_success_gives_n39_then_n49_and_updates_the_smi() -> None:
    h = Harness()
    request_id = distributed_ppmid(h)
    h.hub.alert(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, PPMID_ID, 200.0, result=0)
    h.hub.alert(GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION, PPMID_ID, 260.0, success=True,
                firmware_version=TARGET_FIRMWARE_VERSION)
    assert h.codes() == ["N59", "N61", "N62", "N39", "N49"]
    n39, n49 = h.with_code("N39")[0], h.with_code("N49")[0]
    assert n39.details["firmware_version"] == f"{TARGET_FIRMWARE_VERSION:08X}" and n39.details["success"] is True
    assert (n49.details["previous_version"], n49.details["firmware_version"]) == (
        f"{OLD_VERSION:08X}", f"{TARGET_FIRMWARE_VERSION:08X}")
    assert n49.request_id == request_id
    device = h.dsp.smi.require(PPMID_ID)
    assert (device.firmware_version, device.firmware_status) == (TARGET_FIRMWARE_VERSION, FirmwareStatus.ACTIVE)
    [change] = h.dsp.sat.entries(event=SatEvent.SMI_UPDATED, device=PPMID_ID)
    assert change.details["firmware_version"] == f"{TARGET_FIRMWARE_VERSION:08X}"


def test_ppmid_activation_failure_gives_n39_only_and_frees_the_device() -> None:
    h = Harness()
    distributed_ppmid(h)
    h.hub.alert(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, PPMID_ID, 200.0, result=0)
    h.hub.alert(GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION, PPMID_ID, 260.0, success=False,
                firmware_version=OLD_VERSION)
    assert h.codes()[-1] == "N39" and h.with_code("N49") == []
    assert h.with_code("N39")[0].details["success"] is False
    assert h.dsp.smi.require(PPMID_ID).firmware_version == OLD_VERSION
    assert h.dsp.submit(h.update_ppmid([PPMID_ID])).accepted == (PPMID_ID,)


# -- meters: 0x8F72 / 0x8F1C ----------------------------------------------------------------------
def test_verification_success_is_forwarded_and_the_image_is_held() -> None:
    h = Harness()
    esme_holding_image(h)
    [alert] = h.with_code("0x8F72")
    assert alert.kind is MessageKind.DEVICE_ALERT and alert.recipient == IMPORT
    assert alert.details["firmware_hash"] == MANUFACTURER_IMAGE_HASH.hex()
    device = h.dsp.smi.require(ESME_ID)
    assert (device.firmware_status, device.pending_firmware_version, device.firmware_version) == (
        FirmwareStatus.IMAGE_HELD, TARGET_FIRMWARE_VERSION, OLD_VERSION)
    assert h.dsp.submit(h.update_meters([ESME_ID])).accepted == (ESME_ID,)


def test_verification_failure_is_forwarded_and_ends_the_update() -> None:
    h = Harness()
    h.dsp.submit(h.update_meters([ESME_ID]))
    h.clock.run()
    h.hub.alert(GbcsAlertCode.FIRMWARE_VERIFICATION_FAILED, ESME_ID, h.clock.now())
    assert h.codes()[-1] == "0x8F1C"
    h.hub.alert(GbcsAlertCode.CCS08_TRANSFER_FAILURE, ESME_ID, h.clock.now(), result=3)
    assert h.dsp.smi.require(ESME_ID).firmware_status is FirmwareStatus.ACTIVE
    assert h.dsp.submit(h.update_meters([ESME_ID])).accepted == (ESME_ID,)


# -- 11.3 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", list(ActivationResponseCode))
def test_activate_firmware_response(code: ActivationResponseCode) -> None:
    h = Harness()
    esme_holding_image(h)
    sr = h.activate(ESME_ID)
    assert h.dsp.submit(sr).response_code == RESPONSE_ACCEPTED
    h.clock.run()
    assert h.hub.activations == [{"device": ESME_ID, "hash": MANUFACTURER_IMAGE_HASH, "execution_time": None,
                                  "request_id": sr.header.request_id}]
    reported = TARGET_FIRMWARE_VERSION if code is ActivationResponseCode.SUCCESS else OLD_VERSION
    h.hub.respond(sr.header.request_id, "11.3", ESME_ID, h.clock.now(), response_code=int(code),
                  firmware_version=reported)
    [response] = h.with_code("11.3")
    assert response.kind is MessageKind.RESPONSE
    assert (response.details["activation_result"], response.details["activation_result_name"]) == (
        int(code), code.name)
    assert response.details["firmware_version"] == f"{reported:08X}"
    device = h.dsp.smi.require(ESME_ID)
    if code is ActivationResponseCode.SUCCESS:
        assert (device.firmware_version, device.firmware_status) == (TARGET_FIRMWARE_VERSION, FirmwareStatus.ACTIVE)
    else:
        assert (device.firmware_version, device.firmware_status) == (OLD_VERSION, FirmwareStatus.IMAGE_HELD)


def test_activate_firmware_response_without_a_code_does_not_touch_the_smi() -> None:
    h = Harness()
    esme_holding_image(h)
    sr = h.activate(ESME_ID)
    h.dsp.submit(sr)
    h.clock.run()
    h.hub.respond(sr.header.request_id, "11.3", ESME_ID, h.clock.now(), response_code=99)
    assert h.with_code("11.3")[0].details["activation_result_name"] == "ACTIVATION_FAILURE"
    assert h.dsp.smi.require(ESME_ID).firmware_version == OLD_VERSION


def hours_from_now(h: Harness, hours: float) -> datetime:
    return GBCS_EPOCH + timedelta(seconds=h.clock.now(), hours=hours)


@pytest.mark.parametrize("succeeds", [True, False])
def test_future_dated_activation_is_acknowledged_then_reported(succeeds: bool) -> None:
    h = Harness()
    esme_holding_image(h)
    when = hours_from_now(h, 6)
    sr = h.activate(ESME_ID, when)
    h.dsp.submit(sr)
    h.clock.run()
    execution_time = (when - GBCS_EPOCH).total_seconds()
    assert h.hub.activations[0]["execution_time"] == execution_time
    h.hub.respond(sr.header.request_id, "11.3", ESME_ID, h.clock.now())
    [ack] = h.with_code("11.3")
    assert ack.details == {"acknowledged": True, "execution_time": execution_time, "cancelled": False}
    assert h.dsp.smi.require(ESME_ID).firmware_status is FirmwareStatus.ACTIVATION_SCHEDULED
    h.clock.run(until=execution_time)
    if succeeds:
        h.hub.alert(GbcsAlertCode.FUTURE_DATED_ACTIVATION_SUCCESS, ESME_ID, execution_time,
                    firmware_version=TARGET_FIRMWARE_VERSION)
    else:
        h.hub.alert(GbcsAlertCode.FUTURE_DATED_ACTIVATION_FAILURE, ESME_ID, execution_time)
    [outcome] = [m for m in h.messages if m.code in ("0x8F66", "0x8F67")]
    assert outcome.request_id == sr.header.request_id and outcome.kind is MessageKind.DEVICE_ALERT
    device = h.dsp.smi.require(ESME_ID)
    if succeeds:
        assert (device.firmware_version, device.firmware_status) == (TARGET_FIRMWARE_VERSION, FirmwareStatus.ACTIVE)
    else:
        assert (device.firmware_version, device.firmware_status) == (OLD_VERSION, FirmwareStatus.IMAGE_HELD)


def test_execution_date_3000_12_31_cancels_a_pending_activation() -> None:
    h = Harness()
    esme_holding_image(h)
    first = h.activate(ESME_ID, hours_from_now(h, 6))
    h.dsp.submit(first)
    h.clock.run()
    h.hub.respond(first.header.request_id, "11.3", ESME_ID, h.clock.now())
    cancel = h.activate(ESME_ID, datetime(3000, 12, 31, tzinfo=timezone.utc))
    assert h.dsp.submit(cancel).response_code == RESPONSE_ACCEPTED
    h.clock.run()
    # The hub is asked to cancel, not to activate at 3000-12-31.
    assert h.hub.cancellations == [{"device": ESME_ID, "request_id": cancel.header.request_id}]
    assert len(h.hub.activations) == 1
    assert h.dsp.smi.require(ESME_ID).firmware_status is FirmwareStatus.IMAGE_HELD
    [entry] = h.dsp.sat.entries(code="FutureActivationCancelled")
    assert entry.details["cancelled_request_id"] == first.header.request_id
    h.hub.respond(cancel.header.request_id, "11.3", ESME_ID, h.clock.now())
    assert h.with_code("11.3")[-1].details["cancelled"] is True
    assert h.dsp.smi.require(ESME_ID).firmware_status is FirmwareStatus.IMAGE_HELD


def test_execution_date_in_the_past_means_now() -> None:
    h = Harness()
    h.clock.advance(3600)
    h.dsp.submit(h.activate(ESME_ID, GBCS_EPOCH))
    h.clock.run()
    assert h.hub.activations[0]["execution_time"] is None


@pytest.mark.parametrize(
    ("device", "status", "reason", "code"),
    [
        (PPMID_ID, DeviceStatus.COMMISSIONED, RejectionReason.INVALID_DEVICE, "E11"),
        (0x00DB1234567890FF, DeviceStatus.COMMISSIONED, RejectionReason.INVALID_DEVICE, "E19"),
        (GSME_ID, DeviceStatus.SUSPENDED, RejectionReason.NOT_COMMISSIONED, "E5"),
    ],
)
def test_activate_firmware_rejects_invalid_targets(device: int, status: DeviceStatus,
                                                   reason: RejectionReason, code: str) -> None:
    h = Harness()
    if h.dsp.smi.get(device) is not None:
        h.dsp.smi.set_status(device, status)
    response = h.dsp.submit(h.activate(device))
    assert response.response_code == code
    assert response.rejected == {reason: (device,)} and format_eui64(device) in (response.error or "")
    h.clock.run()
    assert h.hub.activations == []


def test_activate_firmware_with_a_short_hash_is_malformed() -> None:
    h = Harness()
    response = h.dsp.submit(h.activate(ESME_ID, firmware_hash=b"\x01" * 20))
    assert response.response_code == ERROR_MALFORMED and "FirmwareHash is 20 bytes" in (response.error or "")


# -- 11.2 ----------------------------------------------------------------------------------------
def test_read_firmware_version_with_a_new_version_updates_the_smi() -> None:
    h = Harness()
    sr = h.read(GSME_ID)
    assert h.dsp.submit(sr).accepted == (GSME_ID,)
    h.clock.run()
    assert h.hub.reads == [{"device": GSME_ID, "request_id": sr.header.request_id}]
    h.hub.respond(sr.header.request_id, "11.2", GSME_ID, h.clock.now(), firmware_version=0xACDC0002)
    [response] = h.with_code("11.2")
    assert response.details == {"firmware_version": "ACDC0002"} and response.recipient == IMPORT
    assert h.dsp.smi.require(GSME_ID).firmware_version == 0xACDC0002
    assert len(h.dsp.sat.entries(event=SatEvent.SMI_UPDATED, device=GSME_ID)) == 1


def test_read_firmware_version_with_the_same_version_changes_nothing() -> None:
    h = Harness()
    sr = h.read(GSME_ID)
    h.dsp.submit(sr)
    h.clock.run()
    h.hub.respond(sr.header.request_id, "11.2", GSME_ID, h.clock.now(), firmware_version=OLD_VERSION)
    assert h.codes() == ["11.2"]
    assert h.dsp.sat.entries(event=SatEvent.SMI_UPDATED) == []


def test_read_firmware_version_is_allowed_to_any_ppmid_and_clears_a_stuck_update() -> None:
    h = Harness()
    distributed_ppmid(h)  # the PPMID's 0x8F8B never arrives
    h.dsp.smi.set_firmware(PPMID_ID, 0x00000001)  # whatever version the SMI has
    sr = h.read(PPMID_ID)
    assert h.dsp.submit(sr).accepted == (PPMID_ID,)
    h.clock.run()
    h.hub.respond(sr.header.request_id, "11.2", PPMID_ID, h.clock.now(), firmware_version=TARGET_FIRMWARE_VERSION)
    assert h.dsp.smi.require(PPMID_ID).firmware_version == TARGET_FIRMWARE_VERSION
    assert h.dsp.submit(h.update_ppmid([PPMID_ID])).rejected == {}


def test_a_0x8f8b_arriving_just_after_an_11_2_read_the_new_version_still_names_its_11_4() -> None:
    """The PPMID activates; an 11.2 in flight reads the new version and reaches the DSP a moment
    before the PPMID's own 0x8F8B: N39 and N49 still carry the 11.4's RequestID and the version
    the PPMID ran before."""
    h = Harness()
    request_id = distributed_ppmid(h)
    h.hub.alert(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, PPMID_ID, 200.0, result=0)
    sr = h.read(PPMID_ID)
    assert h.dsp.submit(sr).accepted == (PPMID_ID,)
    h.clock.run()
    h.hub.respond(sr.header.request_id, "11.2", PPMID_ID, h.clock.now(), firmware_version=TARGET_FIRMWARE_VERSION)
    h.hub.alert(GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION, PPMID_ID, h.clock.now(), success=True,
                firmware_version=TARGET_FIRMWARE_VERSION)
    [n39], [n49] = h.with_code("N39"), h.with_code("N49")
    assert (n39.request_id, n49.request_id) == (request_id, request_id)
    assert (n39.recipient, n49.recipient) == (IMPORT, IMPORT)
    assert (n49.details["previous_version"], n49.details["firmware_version"]) == (
        f"{OLD_VERSION:08X}", f"{TARGET_FIRMWARE_VERSION:08X}")
    assert h.dsp.submit(h.update_ppmid([PPMID_ID])).rejected == {}  # the device is free


def test_read_firmware_version_restores_a_suspended_device_with_a_new_version() -> None:
    h = Harness()
    h.dsp.smi.set_status(ESME_ID, DeviceStatus.SUSPENDED)
    sr = h.read(ESME_ID)
    assert h.dsp.submit(sr).response_code == RESPONSE_ACCEPTED
    h.clock.run()
    h.hub.respond(sr.header.request_id, "11.2", ESME_ID, h.clock.now(), firmware_version=TARGET_FIRMWARE_VERSION)
    device = h.dsp.smi.require(ESME_ID)
    assert (device.status, device.firmware_version) == (DeviceStatus.COMMISSIONED, TARGET_FIRMWARE_VERSION)
    [change] = h.dsp.sat.entries(event=SatEvent.SMI_UPDATED, device=ESME_ID)
    assert change.details["status"] == "Commissioned"


def test_read_firmware_version_is_refused_for_a_decommissioned_device() -> None:
    h = Harness()
    h.dsp.smi.set_status(ESME_ID, DeviceStatus.DECOMMISSIONED)
    response = h.dsp.submit(h.read(ESME_ID))
    assert response.rejected == {RejectionReason.NOT_COMMISSIONED: (ESME_ID,)}
    h.clock.run()
    assert h.hub.reads == []


def test_a_replayed_request_is_refused_and_never_executed_again() -> None:
    h = Harness()
    sr = h.read(ESME_ID)
    assert h.dsp.submit(sr).response_code == "I99"
    response = h.dsp.submit(sr)
    assert response.response_code == "E1" and "not greater than" in (response.error or "")
    h.clock.run()
    assert len(h.hub.reads) == 1


def test_counters_survive_a_restart_of_the_dsp(tmp_path) -> None:
    db = tmp_path / "dsp.sqlite"
    first = Harness(store=Store(db))
    sr = first.read(ESME_ID)
    assert first.dsp.submit(sr).response_code == "I99"
    first.store.close()
    again = Harness(store=Store(db), load_smi=False)
    assert again.dsp.submit(sr).response_code == "E1"
    again.clock.run()
    assert again.hub.reads == []


@pytest.mark.parametrize(("originator", "code"), [
    (0x90B3D51F3FFF0000, "E1"),  # nobody the DSP knows
    (0x00DB123456780004, "E2"),  # a ZAZ1 Other User: may read, not activate
])
def test_users_and_roles_are_checked_before_anything_runs(originator: int, code: str) -> None:
    h = Harness()
    sr = h.activate(ESME_ID)
    sr = dataclasses.replace(sr, header=dataclasses.replace(sr.header, originator=originator))
    response = h.dsp.submit(sr)
    assert response.response_code == code
    h.clock.run()
    assert h.hub.activations == [] and h.messages == []


def test_a_supplier_of_another_premises_is_not_responsible() -> None:
    h = Harness()
    sr = h.read(ESME_ID)
    sr = dataclasses.replace(sr, header=dataclasses.replace(sr.header, originator=0x90B3D51F30030000))
    assert h.dsp.submit(sr).response_code == "E4"
    h.clock.run()
    assert h.hub.reads == []


# -- robustness, recipients, IDs -----------------------------------------------------------------
def test_messages_about_unknown_devices_or_requests_are_audited_not_raised() -> None:
    h = Harness()
    h.hub.alert(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, 0x00DB1234567890FF, 1.0, result=0)
    h.hub.respond("no-such-request", "11.2", ESME_ID, 2.0, firmware_version=1)
    assert h.messages == []
    problems = [e.details["problem"] for e in h.dsp.sat.entries(event=SatEvent.HUB_MESSAGE)]
    assert problems == ["device not in the SMI", "response to no forwarded request"]


def test_unsolicited_device_alert_goes_to_every_responsible_supplier() -> None:
    h = Harness()
    h.hub.alert(GbcsAlertCode.EXECUTING_FIRMWARE_VERSION_CHANGED, PPMID_ID, 5.0)
    assert sorted(m.recipient for m in h.with_code("0x8F43")) == sorted(
        [IMPORT, format_eui64(GAS_SUPPLIER_ID)])


def test_message_ids_are_stable_across_runs_and_distinct_per_event() -> None:
    def run() -> list[str]:
        h = Harness()
        distributed_ppmid(h)
        h.hub.alert(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, PPMID_ID, 200.0, result=0)
        h.hub.alert(GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION, PPMID_ID, 260.0, success=True,
                    firmware_version=TARGET_FIRMWARE_VERSION)
        return [m.message_id for m in h.messages]

    first, second = run(), run()
    assert first == second
    assert len(set(first)) == len(first) == 5


def test_every_user_message_has_a_sat_entry() -> None:
    h = Harness()
    distributed_ppmid(h)
    h.hub.alert(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, PPMID_ID, 200.0, result=0)
    audited = [e.details["message_id"] for e in h.dsp.sat.entries(event=SatEvent.USER_MESSAGE)]
    assert audited == [m.message_id for m in h.messages]


def test_cancellation_uses_the_hubs_cancel_activation_when_it_has_one() -> None:
    h = Harness()
    cancels: list[tuple[int, str]] = []
    h.hub.cancel_activation = lambda device, *, request_id: cancels.append((device, request_id))  # type: ignore[attr-defined]
    sr = h.activate(ESME_ID, datetime(3000, 12, 31, 0, 0, tzinfo=timezone.utc))
    h.dsp.submit(sr)
    h.clock.run()
    assert cancels == [(ESME_ID, sr.header.request_id)] and h.hub.activations == []


def test_ccs08_about_an_earlier_distribution_leaves_the_current_update_running() -> None:
    h = Harness()
    current = distributed_ppmid(h)
    h.hub.alert(GbcsAlertCode.CCS08_TRANSFER_FAILURE, PPMID_ID, 50.0, result=1, request_id="earlier:request:1")
    n62s = h.with_code("N62")  # not the current request's: to every responsible supplier
    assert sorted(m.recipient for m in n62s) == sorted([IMPORT, format_eui64(GAS_SUPPLIER_ID)])
    assert {(m.request_id, m.details["result_name"]) for m in n62s} == {
        ("earlier:request:1", "DISCARDED_OR_OVERWRITTEN")}
    assert h.dsp.smi.update_in_progress(PPMID_ID).request_id == current


@pytest.mark.parametrize("device_first", [True, False], ids=["device-alert-first", "ccs08-first"])
def test_update_ends_when_both_the_ccs08_and_the_device_alert_arrived(device_first: bool) -> None:
    h = Harness()
    request_id = distributed_ppmid(h)
    ccs08 = (GbcsAlertCode.CCS08_TRANSFER_SUCCESS, PPMID_ID, 200.0)
    activation = (GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION, PPMID_ID, 200.0)
    first, second = (activation, ccs08) if device_first else (ccs08, activation)
    h.hub.alert(*first, result=0, success=True, firmware_version=TARGET_FIRMWARE_VERSION)
    assert h.dsp.submit(h.update_ppmid([PPMID_ID])).rejected == {
        RejectionReason.FIRMWARE_UPDATE_IN_PROGRESS: (PPMID_ID,)}
    h.hub.alert(*second, result=0, success=True, firmware_version=TARGET_FIRMWARE_VERSION)
    assert {m.request_id for m in h.messages} == {request_id}
    assert all(m.recipient == IMPORT for m in h.messages if m.code != "N59")
    assert h.dsp.submit(h.update_ppmid([PPMID_ID])).rejected == {}


def test_answers_are_written_in_the_requests_schema_version() -> None:
    h = Harness()
    sr = h.read(ESME_ID)
    sr = dataclasses.replace(sr, header=dataclasses.replace(sr.header, schema_version="5.4"))
    assert h.dsp.submit(sr).response_code == "I99"
    h.clock.run()
    h.hub.respond(sr.header.request_id, "11.2", ESME_ID, h.clock.now(), firmware_version=0xACDC0002)
    (response,) = h.with_code("11.2")
    assert response.schema_version == "5.4"


def test_schema_versions_are_kept_in_the_dsp_database(tmp_path) -> None:
    db = tmp_path / "dsp.sqlite"
    store = Store(db)
    RequestSchemaVersions(store).record("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:9", "5.4")
    store.close()
    assert RequestSchemaVersions(Store(db)).get("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:9") == "5.4"
