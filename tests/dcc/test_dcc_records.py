"""Store, SMI, SAT, alert codes, the image identity reader and the default premises."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from dcc_fakes import MANUFACTURER_IMAGE_HASH, gbcs_image
from zigpy.ota.image import OTAImageHeader

from emulator.dcc.alerts import CSP_REJECTION_CODES, DccAlertCode, dcc_alert, message_id
from emulator.dcc.firmware_image import FirmwareImageError, read_image_identity
from emulator.dcc.messages import MessageKind
from emulator.dcc.premises import (
    CHF_ID,
    ESME_ID,
    GAS_SUPPLIER_ID,
    GSME_ID,
    HARDWARE_VERSION_RANGE,
    IMPORT_SUPPLIER_ID,
    MANUFACTURER_CODE,
    PPMID_ID,
    TARGET_FIRMWARE_VERSION,
    default_premises,
    smi_devices,
)
from emulator.dcc.sat import SatEvent, ServiceAuditTrail
from emulator.dcc.smi import DeviceStatus, FirmwareStatus, Smi, SmiError, UpdateInProgress
from emulator.gbcs.codes import DeviceType
from emulator.dcc.store import Store

REPO = Path(__file__).resolve().parents[2]


def loaded_smi(store: Store) -> Smi:
    smi = Smi(store)
    smi.add_all(smi_devices(default_premises()))
    return smi


def test_smi_round_trips_every_field() -> None:
    smi = loaded_smi(Store())
    expected = {d.eui64: d for d in smi_devices(default_premises())}
    assert {d.eui64: d for d in smi.devices()} == expected


def test_smi_refuses_a_duplicate_and_names_it() -> None:
    smi = loaded_smi(Store())
    with pytest.raises(SmiError, match="00-DB-12-34-56-78-90-A4 is already in the SMI"):
        smi.add(smi_devices(default_premises())[-1])


def test_smi_and_sat_survive_reopening_the_database(tmp_path: Path) -> None:
    path = tmp_path / "dcc.sqlite"
    store = Store(path)
    smi = loaded_smi(store)
    smi.set_firmware(PPMID_ID, TARGET_FIRMWARE_VERSION)
    smi.start_update(UpdateInProgress(ESME_ID, "r:1", "11.1", TARGET_FIRMWARE_VERSION, IMPORT_SUPPLIER_ID, 3.0))
    ServiceAuditTrail(store).append(1.0, SatEvent.SERVICE_REQUEST, request_id="r:1", code="11.1")
    store.close()
    reopened = Store(path)
    smi = Smi(reopened)
    assert smi.require(PPMID_ID).firmware_version == TARGET_FIRMWARE_VERSION
    assert smi.update_in_progress(ESME_ID) == UpdateInProgress(
        ESME_ID, "r:1", "11.1", TARGET_FIRMWARE_VERSION, IMPORT_SUPPLIER_ID, 3.0)
    assert [e.request_id for e in ServiceAuditTrail(reopened).entries()] == ["r:1"]


def test_a_failed_step_leaves_nothing_half_applied() -> None:
    store = Store()
    smi = loaded_smi(store)
    sat = ServiceAuditTrail(store)
    with pytest.raises(SmiError):
        with store.transaction():
            smi.set_firmware(PPMID_ID, TARGET_FIRMWARE_VERSION)
            sat.append(1.0, SatEvent.SMI_UPDATED, device=PPMID_ID)
            smi.set_status(0x1234, DeviceStatus.SUSPENDED)  # unknown device: the step fails
    assert smi.require(PPMID_ID).firmware_version != TARGET_FIRMWARE_VERSION
    assert len(sat) == 0


def test_a_device_read_inside_a_failed_step_is_read_again_as_it_was() -> None:
    """The SMI keeps the devices it has read; a read inside a step that then rolls back (its
    own transaction or a savepoint of it) must not outlive the rollback."""
    store = Store()
    smi = loaded_smi(store)
    before = smi.require(PPMID_ID).firmware_version
    with pytest.raises(SmiError):
        with store.transaction():
            smi.set_firmware(PPMID_ID, TARGET_FIRMWARE_VERSION)
            assert smi.require(PPMID_ID).firmware_version == TARGET_FIRMWARE_VERSION  # read, kept
            smi.set_status(0x1234, DeviceStatus.SUSPENDED)  # unknown device: the step fails
    assert smi.require(PPMID_ID).firmware_version == before
    with store.transaction():
        with pytest.raises(SmiError):
            with store.transaction():  # a savepoint
                smi.set_firmware(PPMID_ID, TARGET_FIRMWARE_VERSION)
                smi.require(PPMID_ID)
                raise SmiError("inner step fails")
        assert smi.require(PPMID_ID).firmware_version == before
    smi.set_firmware(PPMID_ID, TARGET_FIRMWARE_VERSION)
    assert smi.require(PPMID_ID).firmware_version == TARGET_FIRMWARE_VERSION


def test_sat_is_append_only() -> None:
    store = Store()
    sat = ServiceAuditTrail(store)
    sat.append(1.0, SatEvent.CSP_REJECTED, device=PPMID_ID, code="N19", details={"hash": b"\x01\x02"})
    for statement in ("UPDATE sat SET code='N18'", "DELETE FROM sat"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            store.connection.execute(statement)
    [entry] = sat.entries(code="N19")
    assert (entry.device, entry.details) == (PPMID_ID, {"hash": "0102"})


def test_update_in_progress_mark_is_cleared_once() -> None:
    smi = loaded_smi(Store())
    mark = UpdateInProgress(PPMID_ID, "r:1", "11.4", TARGET_FIRMWARE_VERSION, None, 0.0)
    smi.start_update(mark)
    assert smi.finish_update(PPMID_ID) == mark
    assert smi.finish_update(PPMID_ID) is None
    assert smi.update_in_progress(PPMID_ID) is None


# -- alerts ----------------------------------------------------------------------------------
def test_every_alert_code_has_a_description_and_four_are_csp_rejections() -> None:
    assert all(code.description for code in DccAlertCode)
    assert {c.value for c in CSP_REJECTION_CODES} == {"N18", "N19", "N20", "N22"}
    message = dcc_alert(DccAlertCode.N61, time=4.0, device=PPMID_ID, request_id="r:1", recipient="x")
    assert message.kind is MessageKind.DCC_ALERT and message.code == "N61"


def test_message_id_depends_on_each_part_of_the_event() -> None:
    base = dict(time=4.0, device=PPMID_ID, request_id="r:1", recipient="x")
    reference = message_id(MessageKind.DCC_ALERT, "N61", **base)
    assert reference == message_id(MessageKind.DCC_ALERT, "N61", **base)
    assert reference.startswith("N61-")
    variants = [message_id(MessageKind.DCC_ALERT, "N60", **base)] + [
        message_id(MessageKind.DCC_ALERT, "N61", **{**base, key: value})
        for key, value in (("time", 5.0), ("device", ESME_ID), ("request_id", "r:2"), ("recipient", "y"))
    ]
    assert reference not in variants and len(set(variants)) == len(variants)


# -- image identity --------------------------------------------------------------------------
@pytest.mark.parametrize("signed", [False, True], ids=["ppmid-layout", "meter-layout"])
def test_image_identity_agrees_with_zigpy(signed: bool) -> None:
    image = gbcs_image(signed=signed)
    identity = read_image_identity(image, source="test")
    header, _ = OTAImageHeader.deserialize(image)
    assert (identity.manufacturer_code, identity.image_type, identity.file_version) == (
        header.manufacturer_id, header.image_type, header.file_version)
    assert (identity.min_hardware_version, identity.max_hardware_version) == (
        header.minimum_hardware_version, header.maximum_hardware_version)
    assert identity.manufacturer_image_sha256 == MANUFACTURER_IMAGE_HASH


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"\x1e\xf1\xee\x0b" + bytes(10), "offset 14 (file_version)"),
        (b"\x00" * 60, "offset 0 (file_identifier)"),
        (gbcs_image()[:58], "offset 58 (max_hardware_version)"),
    ],
)
def test_unreadable_image_names_source_offset_and_field(data: bytes, where: str) -> None:
    with pytest.raises(FirmwareImageError, match="upload.ota") as info:
        read_image_identity(data, source="upload.ota")
    assert where in str(info.value)


# -- default premises ------------------------------------------------------------------------
def test_default_premises_matches_the_rtds_test_ids_and_its_choices() -> None:
    premises = default_premises()
    by_type = {spec.device_type: spec for spec in premises.devices}
    assert premises.comms_hub == CHF_ID == 0x00DB1234567890A2
    assert (by_type[DeviceType.ESME].eui64, by_type[DeviceType.GSME].eui64, by_type[DeviceType.PPMID].eui64) == (
        ESME_ID, GSME_ID, PPMID_ID) == (0x00DB1234567890A0, 0x00DB1234567890A1, 0x00DB1234567890A4)
    assert (by_type[DeviceType.PPMID].image_type, by_type[DeviceType.ESME].image_type) == (0x0084, 0x0000)
    low, high = HARDWARE_VERSION_RANGE
    for spec in premises.devices:
        assert spec.manufacturer_code == MANUFACTURER_CODE == 0x121D
        assert low <= spec.hardware_version <= high
        assert spec.firmware_version < TARGET_FIRMWARE_VERSION
        assert spec.status is DeviceStatus.COMMISSIONED
    assert set(premises.suppliers.values()) == {IMPORT_SUPPLIER_ID, GAS_SUPPLIER_ID}


def test_default_premises_devices_accept_the_projects_sample_images() -> None:
    """The TEST ONLY samples in firmware_images/ fit the default devices (same model data)."""
    catalogue = REPO / "firmware_images" / "samples.json"
    if not catalogue.exists():
        pytest.skip("firmware_images/samples.json not present")
    premises = default_premises()
    for sample in json.loads(catalogue.read_text())["samples"]:
        identity = read_image_identity((catalogue.parent / sample["file"]).read_bytes(), source=sample["file"])
        [spec] = premises.of_type(DeviceType(sample["device_type"]))
        assert (identity.manufacturer_code, identity.image_type) == (spec.manufacturer_code, spec.image_type)
        assert identity.min_hardware_version <= spec.hardware_version <= identity.max_hardware_version
        assert spec.firmware_version < identity.file_version


def test_firmware_status_defaults_to_active() -> None:
    assert {d.firmware_status for d in smi_devices(default_premises())} == {FirmwareStatus.ACTIVE}
