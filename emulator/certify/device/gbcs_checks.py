"""The C checks: GBCS behaviour around the firmware, judged on what the device sends through the ZSE tunnel.

Like the B checks, each is a scripted session against the device under test: the test hub opens
the ZSE tunnel (its RequestTunnel, docs/gbcs.md), serves the image over OTA and records every GBCS
message the device PUTs to it (:class:`~emulator.certify.device.session.GbcsFrame`). Verdicts come
from those messages and the OTA frames around them; docs/certify.md states each rule.
"""

from __future__ import annotations

from typing import Callable

from emulator.certify.model import Outcome
from emulator.devices.device import DeviceType
from emulator.gbcs.codes import GbcsAlertCode
from emulator.gbcs.message_codes import MessageCode
from emulator.ota.frames import QueryNextImageRequest, Status
from emulator.ota.image.parse import parse_image

from .checks import DeviceRun, _activated, _name, _transfer
from .images import corrupted, corruption_detectable
from .session import CheckSession, GbcsFrame

FDRA_CODES = {
    DeviceType.ESME: MessageCode.FIRMWARE_DISTRIBUTION_RECEIPT_ALERT_ESME,  # 0x00CE, DLMS
    DeviceType.GSME: MessageCode.FIRMWARE_DISTRIBUTION_RECEIPT_ALERT_GSME,  # 0x00CF, GBZ
}
"""The meters that send a Firmware Distribution Receipt Alert, and its message code."""


def _fdra(session: CheckSession, code: int, budget_s: float) -> GbcsFrame | None:
    """The device's first FDRA (message code ``code``) within the budget."""
    def seen() -> bool:
        return any(f.message_code == code for f in session.gbcs_frames)

    session.wait(seen, budget_s)
    return next((f for f in session.gbcs_frames if f.message_code == code), None)


def _hash_of(frame: GbcsFrame) -> bytes | None:
    digest = getattr(frame.message.payload, "manufacturer_image_hash", None) if frame.message else None
    return digest if isinstance(digest, bytes) else None


def _alert_name(code: int | None) -> str:
    if code is None:
        return "none"
    try:
        return f"0x{code:04X} ({GbcsAlertCode(code).name})"
    except ValueError:
        return f"0x{code:04X}"


# --- C3 Firmware Distribution Receipt Alert ------------------------------------------------------


def c3_distribution_receipt(run: DeviceRun) -> Outcome:
    out = Outcome()
    code = FDRA_CODES.get(run.dut.device_type)
    if code is None:
        return out.skip(f"a {run.dut.device_type.value} sends no Firmware Distribution Receipt Alert (ESME and GSME do)")
    image = parse_image(run.image)
    expected = image.manufacturer_image_sha256
    if expected is None or not corruption_detectable(image):
        return out.skip(f"layout {image.layout}: not a signed GBCS meter image, so there is no Manufacturer "
                        "Image hash to report")
    after_end = run.budget(120.0, 300.0)
    # 1. The vendor's image: 0x8F72 with SHA-256(Manufacturer Image).
    session = run.session(offer=run.image)
    session.open_tunnel()
    end = _transfer(run, session)
    if end is None:
        return out.inconclusive("the download did not end with an Upgrade End Request within the budget")
    if end.command.status != Status.SUCCESS:
        out.mark(end)
        return out.inconclusive(f"Upgrade End Request {_name(end.command.status)} for the vendor's image (B5 judges "
                                "the download): no distribution to report")
    alert = _fdra(session, code, after_end)
    if alert is None:
        out.mark(end)
        out.fail(f"no Firmware Distribution Receipt Alert (0x{code:04X}) through the tunnel within {after_end:.0f} s "
                 "of Upgrade End Request SUCCESS", expected="0x8F72 with the hash", found="no alert")
        return out
    out.mark(end, alert)
    found_hash = _hash_of(alert)
    if alert.alert_code != GbcsAlertCode.FIRMWARE_VERIFICATION_SUCCESSFUL:
        out.fail("FDRA for the vendor's verified image does not say verified", field="alert code",
                 expected="0x8F72", found=_alert_name(alert.alert_code))
    elif found_hash != expected:
        out.fail("FDRA 0x8F72 carries another hash than SHA-256 of the Manufacturer Image", field="hash",
                 expected=expected.hex(), found=found_hash.hex() if found_hash is not None else "none")
    else:
        out.ok(f"FDRA 0x{code:04X} alert 0x8F72 {alert.time - end.time:.2f} s after Upgrade End Request, "
               f"hash {expected.hex()} (SHA-256 of the Manufacturer Image)", field="hash")
    # 2. The same image with one byte flipped: 0x8F1C.
    data, flipped = corrupted(run.image)
    bad = run.session(offer=data)
    bad.open_tunnel()
    bad_end = _transfer(run, bad)
    if bad_end is None:
        out.warn("no Upgrade End Request for the corrupted image within the budget: 0x8F1C not observed")
        return out
    failed = _fdra(bad, code, after_end)
    if failed is None:
        out.mark(bad_end)
        out.fail(f"no FDRA after the image with the byte at offset {flipped} flipped failed verification "
                 f"(Upgrade End Request {_name(bad_end.command.status)})", expected="0x8F1C", found="no alert")
    elif failed.alert_code != GbcsAlertCode.FIRMWARE_VERIFICATION_FAILED:
        out.mark(bad_end, failed)
        out.fail(f"FDRA for the image with the byte at offset {flipped} flipped (not re-signed)", field="alert code",
                 expected="0x8F1C", found=_alert_name(failed.alert_code))
    else:
        out.mark(failed)
        out.ok(f"corrupted image (byte {flipped} flipped): FDRA alert 0x8F1C")
    return out


# --- C2 read firmware version (SR 11.2) -----------------------------------------------------------------

READ_COMMANDS = {DeviceType.ESME: "ECS52", DeviceType.GSME: "GCS38", DeviceType.PPMID: "CS08",
                 DeviceType.HCALCS: "CS08"}


def _read_version(run: DeviceRun, session: CheckSession, out: Outcome, expected: int, when: str) -> bool:
    """Send the device's 11.2 read through the tunnel; judge the version in its response."""
    from emulator.gbcs.message_codes import CraFlag
    from emulator.hub.gbcs_commands import HubGbcs

    name = READ_COMMANDS[run.dut.device_type]
    gbcs = HubGbcs(session.transport.eui64, None, {run.dut.eui64: run.dut.device_type.value})
    mark = len(session.gbcs_frames)
    if not session.put_gbcs(gbcs.read_version(run.dut.eui64, request_id=f"certify C2 {when}")):
        out.undecided = "the device did not answer the hub's RequestTunnel: no tunnel to send the read"
        return False

    def responded() -> bool:
        return any(f.message is not None and f.message.header.cra_flag is CraFlag.RESPONSE
                   for f in session.gbcs_frames[mark:])

    session.wait(responded, run.budget(60.0, 120.0))
    response = next((f for f in session.gbcs_frames[mark:]
                     if f.message is not None and f.message.header.cra_flag is CraFlag.RESPONSE), None)
    if response is None:
        out.undecided = f"no response to {name} within the budget ({when})"
        return False
    out.mark(response)
    read = gbcs.read(run.dut.eui64, response.data)
    if read is None:
        out.fail(f"{name} response ({when}) does not read: {gbcs.last_error}", expected="a GBCS response",
                 found="undecodable")
        return True
    version = read[0].details.get("firmware_version")
    if version is None:
        out.fail(f"{name} answered readFailure ({when}) for a device that runs 0x{expected:08X}",
                 field="firmware version", expected=f"0x{expected:08X}", found="readFailure")
    elif version != expected:
        out.fail(f"{name} reads 0x{version:08X} ({when})", field="firmware version", expected=f"0x{expected:08X}",
                 found=f"0x{version:08X}")
    else:
        out.ok(f"{name} reads 0x{version:08X} ({when})", field="firmware version")
    return True


def c2_read_version(run: DeviceRun) -> Outcome:
    out = Outcome()
    if run.dut.device_type not in READ_COMMANDS:
        return out.skip(f"no firmware version read for a {run.dut.device_type.value}")
    session = run.session(offer=run.image)
    session.open_tunnel()
    query = session.wait_for(QueryNextImageRequest, run.budget(120.0, 300.0), since=0)
    running = query.command.current_file_version if query is not None else run.dut.current_file_version
    if running is None:
        return out.inconclusive("no Query Next Image Request, and no declared current version to compare with")
    session.wait(lambda: session.tunnel_id is not None, 10.0)
    if not _read_version(run, session, out, running, "before the download"):
        return out
    end = _transfer(run, session)
    if end is None or end.command.status != Status.SUCCESS:
        if end is not None:
            out.mark(end)
        return out if out.failed else out.inconclusive("the download did not end in Upgrade End Request SUCCESS "
                                                        "(B5 judges that): no new version to read")
    session.wait(None, run.budget(60.0, 10.0))  # upgrade time 0: it activates right after Upgrade End Response
    activated = _activated(run, session, run.file_version)
    if not activated:
        return out if out.failed else out.inconclusive("the new image was not activated (B12 judges that)")
    _read_version(run, session, out, run.file_version, "after activation")
    return out


GBCS_CHECKS: dict[str, Callable[[DeviceRun], Outcome]] = {"C2": c2_read_version, "C3": c3_distribution_receipt}
