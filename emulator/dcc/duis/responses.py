"""DspResponse -> the synchronous DUIS ``sr:Response`` a DCC User gets back from the DSP.

11.1/11.4 answers that reject devices carry the warning body the schema defines
(``DSPUpdateFirmwareWarning`` / ``DSPUpdatePPMIDFirmwareWarning``, l.3879-3906) with one list per
rejection reason, each a comma-separated DeviceIDList (pattern ``(EUI,)*EUI``, l.3907).
"""

from __future__ import annotations

import base64
from datetime import datetime

from lxml import etree

from ..messages import DspResponse, RejectionReason
from ..service_requests import ServiceReferenceVariant
from .envelope import add_text, response_root, serialise
from .eui import format_eui64
from .names import sr

WARNING_BODIES: dict[str, str] = {
    ServiceReferenceVariant.UPDATE_FIRMWARE.value: "DSPUpdateFirmwareWarning",
    ServiceReferenceVariant.UPDATE_PPMID_FIRMWARE.value: "DSPUpdatePPMIDFirmwareWarning",
}

REJECTION_LISTS: dict[RejectionReason, str] = {
    RejectionReason.INVALID_DEVICE: "InvalidDeviceIDList",
    RejectionReason.NOT_COMMISSIONED: "NotCommissionedDeviceIDList",
    RejectionReason.FIRMWARE_NOT_APPLICABLE: "NotApplicableFirmwareDeviceIDList",
    RejectionReason.FIRMWARE_UPDATE_IN_PROGRESS: "OtherRequestInProgressList",
    RejectionReason.INVALID_GBCS_VERSION: "InvalidGBCSVersionList",
}
"""Schema names; element order in the warning body follows this table (the schema's sequence)."""


GBCS_VERSION = "4.2"
"""GBCSVersion written in a PreCommand (the emulated devices' GBCS)."""


def service_reference_of(variant: str) -> str:
    """``4.1.1`` -> ``4.1``; SR 11.x variants are their own reference."""
    parts = variant.split(".")
    return ".".join(parts[:2])


def device_id_list(devices: tuple[int, ...] | list[int]) -> str:
    """A DUIS DeviceIDList: EUI-64s joined by commas, no spaces."""
    return ",".join(format_eui64(d) for d in devices)


def render_dsp_response(
    response: DspResponse,
    *,
    at: datetime,
    schema_version: str | None = None,
    service_reference_variant: str | None = None,
) -> bytes:
    """Render ``response`` as DUIS XML stamped ``at`` (its ResponseDateTime), unsigned.

    ``schema_version`` is the request's (answered in kind); ``service_reference_variant``, when
    given, is written instead of the response's (an SRV the emulator does not serve, echoed).
    """
    return serialise(dsp_response_element(response, at=at, schema_version=schema_version,
                                          service_reference_variant=service_reference_variant))


def dsp_response_element(
    response: DspResponse,
    *,
    at: datetime,
    schema_version: str | None = None,
    service_reference_variant: str | None = None,
) -> etree._Element:
    """:func:`render_dsp_response` as its ``sr:Response`` element (to sign without a re-parse)."""
    root, body = response_root(
        request_id=response.request_id or None,
        response_id=None,
        response_code=str(response.response_code),
        at=at,
        schema_version=schema_version,
    )
    variant = service_reference_variant or response.service_reference_variant
    message = etree.SubElement(body, sr("ResponseMessage"))
    add_text(message, sr("ServiceReference"), service_reference_of(variant))
    add_text(message, sr("ServiceReferenceVariant"), variant)
    warning_name = WARNING_BODIES.get(variant)
    rejected = {reason: ids for reason, ids in response.rejected.items() if ids}
    if warning_name and rejected:
        warning = etree.SubElement(message, sr(warning_name))
        for reason, list_name in REJECTION_LISTS.items():
            devices = rejected.get(reason)
            if devices:
                add_text(warning, sr(list_name), device_id_list(devices))
    if response.precommand is not None:
        pre = etree.SubElement(message, sr("PreCommand"))
        add_text(pre, sr("GBCSVersion"), response.gbcs_version or GBCS_VERSION)
        add_text(pre, sr("GBCSPayload"), base64.b64encode(response.precommand).decode("ascii"))
    elif response.local_command is not None:
        local = etree.SubElement(message, sr("LocalCommand"))
        add_text(local, sr("GBCSPayload"), base64.b64encode(response.local_command).decode("ascii"))
    return root
