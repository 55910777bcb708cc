"""DspResponse -> the synchronous DUIS ``sr:Response`` a DCC User gets back from the DSP.

11.1/11.4 answers that reject devices carry a warning body (``DSPUpdateFirmwareWarning`` /
``DSPUpdatePPMIDFirmwareWarning``) with one list per rejection reason. DUIS publishes the names
``InvalidDeviceIDList`` and ``NotCommissionedDeviceIDList``; the other two are the emulator's, in
the same style. Lists are xs:list text (EUI-64s separated by spaces), like the request's
``DeviceIDList``.
"""

from __future__ import annotations

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
    RejectionReason.FIRMWARE_NOT_APPLICABLE: "FirmwareNotApplicableDeviceIDList",
    RejectionReason.FIRMWARE_UPDATE_IN_PROGRESS: "FirmwareUpdateInProgressDeviceIDList",
}
"""Element order in the warning body follows this table."""


def service_reference_of(variant: str) -> str:
    """``4.1.1`` -> ``4.1``; SR 11.x variants are their own reference."""
    parts = variant.split(".")
    return ".".join(parts[:2])


def render_dsp_response(response: DspResponse, *, at: datetime) -> bytes:
    """Render ``response`` as DUIS XML stamped ``at`` (its ResponseDateTime)."""
    root, body = response_root(
        request_id=response.request_id or None,
        response_id=None,
        response_code=response.response_code,
        at=at,
    )
    if response.error:
        # DUIS carries only the code; the reason helps a test engineer and costs a parser nothing.
        root.find(sr("Header")).append(etree.Comment(f" {_comment_safe(response.error)} "))
    message = etree.SubElement(body, sr("ResponseMessage"))
    add_text(message, sr("ServiceReference"), service_reference_of(response.service_reference_variant))
    add_text(message, sr("ServiceReferenceVariant"), response.service_reference_variant)
    warning_name = WARNING_BODIES.get(response.service_reference_variant)
    rejected = {reason: ids for reason, ids in response.rejected.items() if ids}
    if warning_name and rejected:
        warning = etree.SubElement(message, sr(warning_name))
        for reason, list_name in REJECTION_LISTS.items():
            devices = rejected.get(reason)
            if devices:
                add_text(warning, sr(list_name), " ".join(format_eui64(d) for d in devices))
    return serialise(root)


def _comment_safe(text: str) -> str:
    # "--" may not appear inside an XML comment.
    return " ".join(text.replace("--", "- -").split())
