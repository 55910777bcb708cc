"""Vendor pre-certification: the check catalogue and ``ch-emulator certify`` (docs/certify.md)."""

from emulator.certify.catalogue import BY_ID, CATALOGUE, select
from emulator.certify.image_run import ImageOptions
from emulator.gbcs.codes import DeviceType
from emulator.certify.model import Check, CheckResult, Evidence, Group, Need, Verdict
from emulator.certify.runner import CertifyReport, certify_image

__all__ = [
    "BY_ID", "CATALOGUE", "CertifyReport", "Check", "CheckResult", "DeviceType", "Evidence",
    "Group", "ImageOptions", "Need", "Verdict", "certify_image", "select",
]
