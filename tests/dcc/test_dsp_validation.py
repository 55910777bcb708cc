"""DSP validation of 11.1/11.4 (seed: 'DSP Validation Checks') and malformed requests."""

from __future__ import annotations

import pytest
from dcc_fakes import Harness, gbcs_image

from emulator.dcc.dsp import ERROR_MALFORMED, RESPONSE_ACCEPTED
from emulator.dcc.messages import RejectionReason
from emulator.dcc.premises import (
    CHF_ID,
    ESME_ID,
    GPF_ID,
    GSME_ID,
    HARDWARE_VERSION_RANGE,
    MANUFACTURER_CODE,
    PPMID_ID,
    TARGET_FIRMWARE_VERSION,
)
from emulator.dcc.sat import SatEvent
from emulator.dcc.smi import DeviceStatus
from emulator.gbcs.codes import GbcsAlertCode

UNKNOWN_ID = 0x00DB1234567890FF


def test_all_devices_valid_are_accepted_and_forwarded_to_the_hub() -> None:
    h = Harness()
    response = h.dsp.submit(h.update_ppmid([PPMID_ID]))
    assert response.response_code == RESPONSE_ACCEPTED
    assert response.accepted == (PPMID_ID,) and response.rejected == {}
    assert h.hub.distributions == []  # nothing reaches the hub before the CSP has run
    h.clock.run()
    assert [d["targets"] for d in h.hub.distributions] == [(PPMID_ID,)]


@pytest.mark.parametrize(
    ("variant", "device"),
    [
        ("11.4", UNKNOWN_ID),  # not in the SMI
        ("11.4", ESME_ID),  # 11.4 is for PPMIDs only
        ("11.1", PPMID_ID),  # 11.1 is not for PPMIDs
        ("11.1", GPF_ID),  # the GPF takes its firmware with the CH
    ],
)
def test_invalid_device_is_rejected_synchronously(variant: str, device: int) -> None:
    h = Harness()
    valid = PPMID_ID if variant == "11.4" else ESME_ID
    sr = h.update_ppmid([valid, device]) if variant == "11.4" else h.update_meters([valid, device])
    response = h.dsp.submit(sr)
    assert response.response_code == ("W110101" if variant == "11.1" else "W110401")
    assert response.rejected == {RejectionReason.INVALID_DEVICE: (device,)}
    assert response.accepted == (valid,)
    h.clock.run()
    assert all(device not in d["targets"] for d in h.hub.distributions)


def test_11_1_accepts_the_comms_hub_and_meters() -> None:
    h = Harness()
    for target, image_type in ((CHF_ID, 0x0010), (ESME_ID, 0x0000), (GSME_ID, 0x0001)):
        response = h.dsp.submit(h.update_meters([target], gbcs_image(image_type=image_type, signed=True)))
        assert response.accepted == (target,), response
    h.clock.run()
    assert all(d["activate_now"] is False for d in h.hub.distributions)


@pytest.mark.parametrize(
    "status", [DeviceStatus.PENDING, DeviceStatus.INSTALLED_NOT_COMMISSIONED, DeviceStatus.SUSPENDED,
               DeviceStatus.DECOMMISSIONED],
)
def test_not_commissioned_device_is_rejected(status: DeviceStatus) -> None:
    h = Harness()
    h.dsp.smi.set_status(PPMID_ID, status)
    response = h.dsp.submit(h.update_ppmid([PPMID_ID]))
    assert response.rejected == {RejectionReason.NOT_COMMISSIONED: (PPMID_ID,)}
    assert response.accepted == ()
    h.clock.run()
    assert h.hub.distributions == [] and h.messages == []


@pytest.mark.parametrize(
    "image",
    [
        gbcs_image(manufacturer_code=MANUFACTURER_CODE + 1),
        gbcs_image(image_type=0x0085),
        gbcs_image(hardware_range=(0x1201, 0x1211)),  # the PPMID is hardware 0x1200
        gbcs_image(hardware_range=(HARDWARE_VERSION_RANGE[0], 0x11FF)),
    ],
    ids=["manufacturer", "image-type", "hardware-too-old", "hardware-too-new"],
)
def test_firmware_not_applicable_is_rejected(image: bytes) -> None:
    h = Harness()
    response = h.dsp.submit(h.update_ppmid([PPMID_ID], image))
    assert response.rejected == {RejectionReason.FIRMWARE_NOT_APPLICABLE: (PPMID_ID,)}


def test_image_without_hardware_range_fits_any_hardware() -> None:
    h = Harness()
    response = h.dsp.submit(h.update_ppmid([PPMID_ID], gbcs_image(hardware_range=None)))
    assert response.accepted == (PPMID_ID,)


def test_rejections_are_grouped_by_reason() -> None:
    h = Harness()
    h.dsp.smi.set_status(GSME_ID, DeviceStatus.SUSPENDED)
    response = h.dsp.submit(h.update_meters([ESME_ID, GSME_ID, PPMID_ID, UNKNOWN_ID]))
    assert response.rejected == {
        RejectionReason.NOT_COMMISSIONED: (GSME_ID,),
        RejectionReason.INVALID_DEVICE: (PPMID_ID, UNKNOWN_ID),
    }
    assert response.accepted == (ESME_ID,)


def test_another_update_in_progress_is_rejected_until_the_device_finishes() -> None:
    h = Harness()
    assert h.dsp.submit(h.update_ppmid([PPMID_ID])).accepted == (PPMID_ID,)
    second = h.dsp.submit(h.update_ppmid([PPMID_ID]))
    assert second.rejected == {RejectionReason.FIRMWARE_UPDATE_IN_PROGRESS: (PPMID_ID,)}
    h.clock.run()
    h.hub.alert(GbcsAlertCode.CCS08_TRANSFER_SUCCESS, PPMID_ID, h.clock.now(), result=0)
    assert h.dsp.submit(h.update_ppmid([PPMID_ID])).rejected == {
        RejectionReason.FIRMWARE_UPDATE_IN_PROGRESS: (PPMID_ID,)}  # transferred, not yet activated
    h.hub.alert(GbcsAlertCode.PPMID_FIRMWARE_ACTIVATION, PPMID_ID, h.clock.now(), success=True,
                firmware_version=TARGET_FIRMWARE_VERSION)
    third = h.dsp.submit(h.update_ppmid([PPMID_ID]))
    assert third.accepted == (PPMID_ID,)


def test_malformed_requests_get_an_error_naming_the_field() -> None:
    h = Harness()
    cases = {
        "DeviceIDList": h.update_ppmid([]),
        "FirmwareVersion 1ACDCACDC": h.update_ppmid([PPMID_ID], version=0x1ACDCACDC),
        # the image parser's message names the source, the offset and the field
        "FirmwareImage: offset": h.update_ppmid([PPMID_ID], image=b"\x00" * 100),
        "FirmwareImage: offset ": h.update_ppmid([PPMID_ID], image=gbcs_image()[:20]),
        "FirmwareImage is empty": h.update_ppmid([PPMID_ID], image=b""),
        "not an EUI-64": h.update_ppmid([-5]),
    }
    for expected, sr in cases.items():
        response = h.dsp.submit(sr)
        assert response.response_code == ERROR_MALFORMED, expected
        assert response.accepted == () and response.error is not None
        assert expected in response.error, (expected, response.error)
    h.clock.run()
    assert h.hub.distributions == [] and h.messages == []
    # Every request is still audited, with the reason it was refused.
    assert len(h.dsp.sat.entries(event=SatEvent.SERVICE_REQUEST)) == len(cases)
    assert len(h.dsp.sat.entries(event=SatEvent.DSP_REJECTED, code=ERROR_MALFORMED)) == len(cases)


def test_firmware_version_differing_from_the_header_is_recorded_not_refused() -> None:
    """DCC's own sample 11.4 carries FirmwareVersion 00000000 with an ACDCACDC image."""
    h = Harness()
    sr = h.update_ppmid([PPMID_ID], version=0)
    response = h.dsp.submit(sr)
    assert response.accepted == (PPMID_ID,)
    (note,) = h.dsp.sat.entries(code="FirmwareVersionMismatch", request_id=sr.header.request_id)
    assert note.details == {"firmware_version": "00000000", "image_file_version": f"{TARGET_FIRMWARE_VERSION:08X}"}
    assert h.dsp.smi.update_in_progress(PPMID_ID).firmware_version == TARGET_FIRMWARE_VERSION


def test_each_device_decision_is_audited() -> None:
    h = Harness()
    sr = h.update_ppmid([PPMID_ID, UNKNOWN_ID])
    h.dsp.submit(sr)
    rid = sr.header.request_id
    assert [e.code for e in h.dsp.sat.entries(event=SatEvent.SERVICE_REQUEST, request_id=rid)] == ["11.4"]
    assert [e.device for e in h.dsp.sat.entries(event=SatEvent.DSP_ACCEPTED, request_id=rid)] == [PPMID_ID]
    rejected = h.dsp.sat.entries(event=SatEvent.DSP_REJECTED, request_id=rid)
    assert [(e.device, e.code) for e in rejected] == [(UNKNOWN_ID, RejectionReason.INVALID_DEVICE.value)]


def test_duplicate_device_in_the_list_is_one_device() -> None:
    h = Harness()
    response = h.dsp.submit(h.update_ppmid([PPMID_ID, PPMID_ID]))
    assert response.accepted == (PPMID_ID,) and response.rejected == {}
