"""Checks A1-A12 (A11 in a11_zigbee_signature.py): the image file, no radio (shared/docs/precert-checks.md, section A).

Each function reads an :class:`ImageRun` and returns an :class:`Outcome` with evidence: byte
offset (in the input file), field, expected and found. Every warning the parser raised is claimed
by exactly one check (``WARNING_OWNER``), so nothing the parser tolerated passes silently.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509

from emulator.certify.image_run import (
    DUIS_MAX_IMAGE_SIZE,
    EMULATOR_IMAGE_TYPES,
    ImageRun,
)
from emulator.certify.model import Outcome
from emulator.ota.image import format as fmt
from emulator.ota.image.errors import ImageWarning
from emulator.ota.image.model import OtaImage
from emulator.ota.image.signing import verify_signature

MAX_HEADER_LENGTH = fmt.FIXED_HEADER_LENGTH + 1 + 8 + 2 + 2  # 69: every optional field present

# Which check reports each parser warning, and whether it fails or warns there.
WARNING_OWNER: dict[str, tuple[str, bool]] = {
    "vendor-prefix": ("A1", False),  # fails for a GBCS device type, see a1
    "header-version": ("A1", True),
    "header-length-mismatch": ("A1", True),
    "field-control-reserved": ("A1", True),
    "header-string-padding": ("A1", False),
    "header-string-encoding": ("A1", False),
    "trailing-data": ("A2", True),
    "hardware-range-inverted": ("A5", True),
    "no-hardware-range": ("A5", True),
    "element-overrun": ("A7", True),
    "reserved-tag": ("A7", False),
    "telink-length-quirk": ("A7", False),
    "no-upgrade-image": ("A7", False),  # Telink-style files carry the image in a vendor tag
    "integrity-code-mismatch": ("A7", True),
    "integrity-code-length": ("A7", False),
    "empty-manufacturer-image": ("A7", True),
    "unsigned": ("A9", True),
}

# Which check a fatal parse error belongs to (ImageError.field -> check ID).
ERROR_OWNER: dict[str, str] = {
    "total_image_size": "A2",
    "signature_length": "A7",
}
ERROR_DEFAULT_OWNER = "A1"  # identifier, header fields, field control


def _claim(run: ImageRun, check_id: str, out: Outcome, *, reported: tuple[str, ...] = ()) -> list[ImageWarning]:
    """Report the parser warnings this check owns (but not the ``reported`` codes it words
    itself); returns them for further use."""
    assert run.image is not None
    claimed = []
    for warning in run.image.warnings:
        owner, fails = WARNING_OWNER.get(warning.code, ("A7", True))
        if owner != check_id or warning.code in reported:
            continue
        claimed.append(warning)
        report = out.fail if fails else out.warn
        report(f"{warning.code}: {warning.message}", offset=warning.offset)
    return claimed


def _hex(value: int | None, width: int) -> str:
    return "absent" if value is None else f"0x{value:0{width}X}"


def _at(run: ImageRun, name: str) -> int:
    assert run.image is not None
    return run.image.identifier_offset + fmt.field_offset(name)


def _optional_at(run: ImageRun, name: str) -> int:
    assert run.image is not None
    position = fmt.FIXED_HEADER_LENGTH
    for field, size, bit in fmt.OPTIONAL_HEADER_FIELDS:
        if field == name:
            break
        if run.image.header.field_control & bit:
            position += size
    return run.image.identifier_offset + position


def _image(run: ImageRun) -> OtaImage:
    assert run.image is not None
    return run.image


# --- A1 header identity ------------------------------------------------------------------------


def a1_header(run: ImageRun) -> Outcome:
    out, image = Outcome(), _image(run)
    header = image.header
    device = run.options.device_type
    if image.identifier_offset:
        report = out.fail if device is not None else out.warn
        container = " (IKEA 'NGIS')" if run.data.startswith(b"NGIS") else ""
        report(f"vendor-prefix: the file identifier 0x0BEEF11E starts at offset "
               f"{image.identifier_offset}, not 0: a vendor container{container} around the OTA file"
               + ("; a GBCS Service Request must carry the OTA file itself" if device else ""),
               field="file_identifier", offset=0, expected="offset 0",
               found=f"offset {image.identifier_offset}")
    else:
        out.ok("file identifier 0x0BEEF11E at offset 0", field="file_identifier", offset=0)
    if header.header_version == fmt.HEADER_VERSION:
        out.ok("header version 0x0100", field="header_version", offset=_at(run, "header_version"))
    expected = fmt.FIXED_HEADER_LENGTH + sum(
        size for _, size, bit in fmt.OPTIONAL_HEADER_FIELDS if header.field_control & bit
    )
    where = _at(run, "header_length")
    if not fmt.FIXED_HEADER_LENGTH <= header.header_length <= MAX_HEADER_LENGTH:
        out.fail(f"header length {header.header_length} is outside 56..69", field="header_length",
                 offset=where, expected="56..69", found=str(header.header_length))
    elif header.header_length == expected:
        out.ok(f"header length {header.header_length} matches field control "
               f"0x{header.field_control:04X}", field="header_length", offset=where)
    _claim(run, "A1", out, reported=("vendor-prefix",))
    return out


# --- A2 total image size -----------------------------------------------------------------------


def a2_size(run: ImageRun) -> Outcome:
    out, image = Outcome(), _image(run)
    total = image.header.total_image_size
    where = _at(run, "total_image_size")
    if total == len(run.data):
        out.ok(f"total image size {total} equals the file length", field="total_image_size",
               offset=where)
    else:
        out.fail(f"total image size {total} but the file is {len(run.data)} bytes",
                 field="total_image_size", offset=where, expected=str(len(run.data)),
                 found=str(total))
    _claim(run, "A2", out)
    return out


# --- A3 identity against the SR and the CPL entry ------------------------------------------------


def a3_identity(run: ImageRun) -> Outcome:
    out, image = Outcome(), _image(run)
    header, options = image.header, run.options
    compared = False
    for name, width, found, wanted, source in (
        ("manufacturer_code", 4, header.manufacturer_code, options.manufacturer_code, "--manufacturer (CPL entry)"),
        ("image_type", 4, header.image_type, options.image_type, "--image-type (CPL entry)"),
        ("file_version", 8, header.file_version, options.firmware_version, "--firmware-version (SR FirmwareVersion)"),
    ):
        if wanted is None:
            continue
        compared = True
        where = _at(run, name)
        if found == wanted:
            out.ok(f"{name} {_hex(found, width)} matches {source}", field=name, offset=where)
        else:
            out.fail(f"{name} does not match {source}", field=name, offset=where,
                     expected=_hex(wanted, width), found=_hex(found, width))
    device = options.device_type
    if device is not None and options.image_type is None and device in EMULATOR_IMAGE_TYPES:
        profile = EMULATOR_IMAGE_TYPES[device]
        compared = True
        where = _at(run, "image_type")
        if header.image_type == profile:
            out.ok(f"image type {_hex(profile, 4)} is the emulator's {device.value} profile's",
                   field="image_type", offset=where)
        else:
            out.warn(f"image type differs from the emulator's {device.value} profile; give "
                     "--image-type with the CPL entry's value", field="image_type", offset=where,
                     expected=_hex(profile, 4), found=_hex(header.image_type, 4))
    if not compared:
        return out.skip(
            f"needs --manufacturer, --image-type or --firmware-version (the CPL entry and the SR); "
            f"the file says manufacturer {_hex(header.manufacturer_code, 4)}, image type "
            f"{_hex(header.image_type, 4)}, file version {_hex(header.file_version, 8)}"
        )
    return out


# --- A4 one coding of the firmware version ------------------------------------------------------


def _digits_as_decimal(value: int) -> int | None:
    """The number a BCD-coded value spells (0x00000123 -> 123); None if a nibble is over 9."""
    text = f"{value:X}"
    return int(text) if text.isdigit() else None


def a4_version_coding(run: ImageRun) -> Outcome:
    out, image = Outcome(), _image(run)
    sr = run.options.firmware_version
    found = image.header.file_version
    where = _at(run, "file_version")
    if sr is None:
        return out.skip("needs --firmware-version (the SR's FirmwareVersion) to compare codings")
    if found == sr:
        out.ok(f"header and SR both code the version as {_hex(found, 8)}", field="file_version",
               offset=where)
    elif _digits_as_decimal(sr) == found:
        out.fail("the SR codes the version in BCD, the header in binary: the SR's digits "
                 f"{sr:08X} read as decimal are {found} = {_hex(found, 8)}", field="file_version",
                 offset=where, expected=_hex(sr, 8), found=_hex(found, 8))
    elif _digits_as_decimal(found) == sr:
        out.fail("the header codes the version in BCD, the SR in binary: the header's digits "
                 f"{found:08X} read as decimal are {sr} = {_hex(sr, 8)}", field="file_version",
                 offset=where, expected=_hex(sr, 8), found=_hex(found, 8))
    else:
        return out.skip(f"the versions differ in value, not in coding (header {_hex(found, 8)}, "
                        f"SR {_hex(sr, 8)}): A3 reports the mismatch")
    out.ok("the CS08/ECS52/GCS38 read-back coding is checked against a device by certify device "
           "(not available yet)")
    return out


# --- A5 hardware range --------------------------------------------------------------------------


def a5_hardware(run: ImageRun) -> Outcome:
    out, image = Outcome(), _image(run)
    header = image.header
    low, high = header.min_hardware_version, header.max_hardware_version
    target = run.options.hardware_version
    gbcs = image.layout != "standard" or run.options.device_type is not None
    claimed = _claim(run, "A5", out)
    if low is None or high is None:
        if gbcs:
            if not claimed:
                out.fail("no hardware version range (field control bit 2 clear); GBCS images carry "
                         "one", field="field_control", offset=_at(run, "field_control"))
            return out
        out.ok("no hardware version range: every hardware version accepts this ZigBee file",
               field="field_control", offset=_at(run, "field_control"))
        return out
    out.ok(f"hardware range {_hex(low, 4)}..{_hex(high, 4)}", field="min_hardware_version",
           offset=_optional_at(run, "min_hardware_version"))
    if target is None:
        out.warn("no --hardware given: coverage of the target device not checked")
        return out
    if header.accepts_hardware_version(target):
        out.ok(f"covers the target hardware version {_hex(target, 4)}", field="max_hardware_version",
               offset=_optional_at(run, "max_hardware_version"))
    else:
        out.fail("the range excludes the target hardware version: the CH reports CCS08 result 2 "
                 "(hardware-version mismatch)", field="min_hardware_version",
                 offset=_optional_at(run, "min_hardware_version"),
                 expected=f"a range including {_hex(target, 4)}", found=f"{_hex(low, 4)}..{_hex(high, 4)}")
    if low <= high:
        table = ", ".join(
            f"{_hex(v, 4)} {'accepted' if header.accepts_hardware_version(v) else 'rejected (CCS08 2)'}"
            for v in (low - 1, low, high, high + 1) if 0 <= v <= 0xFFFF
        )
        out.ok(f"emulated CH at the boundaries: {table}")
    return out


# --- A6 size limits -----------------------------------------------------------------------------


def a6_size_limit(run: ImageRun) -> Outcome:
    out, image = Outcome(), _image(run)
    total = image.header.total_image_size
    where = _at(run, "total_image_size")
    if total <= DUIS_MAX_IMAGE_SIZE:
        out.ok(f"{total} bytes is within the DUIS limit of {DUIS_MAX_IMAGE_SIZE}",
               field="total_image_size", offset=where)
    else:
        out.fail("the image exceeds the DUIS FirmwareImage limit", field="total_image_size",
                 offset=where, expected=f"<= {DUIS_MAX_IMAGE_SIZE}", found=str(total))
    slot = run.options.slot_size
    if slot is None:
        out.ok("no --slot-size given: the device's image slot not checked")
    elif total <= slot:
        out.ok(f"fits the device's {slot}-byte slot", field="total_image_size", offset=where)
    else:
        out.fail("the image does not fit the device's declared slot", field="total_image_size",
                 offset=where, expected=f"<= {slot}", found=str(total))
    return out


# --- A7 layout ----------------------------------------------------------------------------------


def a7_layout(run: ImageRun) -> Outcome:
    out, image = Outcome(), _image(run)
    device = run.options.device_type
    body = run.body_offset
    if device is not None and image.layout != device.image_layout:
        tail = image.data[-fmt.GBCS_TRAILER_LENGTH:][:2].hex(" ")
        if device.signed_images:
            out.fail(f"a {device.value} image is header ‖ Manufacturer Image ‖ 00 40 ‖ 64-byte "
                     f"signature; this file reads as layout {image.layout}",
                     field="signature_length",
                     offset=image.identifier_offset + len(image.data) - fmt.GBCS_TRAILER_LENGTH,
                     expected="gbcs (00 40 before the last 64 bytes)", found=f"{image.layout} ({tail})")
        elif image.layout == "gbcs":
            out.warn("a PPMID image carries no signature trailer (DCC's published PPMID sample), "
                     "but this body ends in 00 40 and 64 bytes", expected="gbcs-ppmid",
                     found="gbcs", offset=body)
        else:
            out.fail(f"a PPMID image is header ‖ Manufacturer Image; this file has ZigBee "
                     "sub-elements", offset=body, expected="gbcs-ppmid", found=image.layout)
    if image.layout == "gbcs":
        assert image.manufacturer_image is not None
        out.ok(f"GBCS layout: Manufacturer Image of {len(image.manufacturer_image)} bytes at offset "
               f"{body}, then 00 40 and a 64-byte signature", field="signature_length",
               offset=body + len(image.manufacturer_image))
    elif image.layout == "gbcs-ppmid":
        assert image.manufacturer_image is not None
        out.ok(f"GBCS PPMID layout: Manufacturer Image of {len(image.manufacturer_image)} bytes at "
               f"offset {body}, no signature")
    else:
        elements = ", ".join(f"0x{e.tag:04X}@{image.identifier_offset + e.offset}+{e.length}"
                             for e in image.elements)
        count = len(image.elements)
        out.ok(f"ZigBee layout: {count} sub-element{'' if count == 1 else 's'} ({elements})", offset=body)
    if not _claim(run, "A7", out) and image.layout == "standard":
        out.ok("the sub-element walk ends exactly at the total image size",
               offset=image.identifier_offset + image.header.total_image_size)
    return out


# --- A8 Manufacturer Image hash ---------------------------------------------------------------


def a8_hash(run: ImageRun) -> Outcome:
    out, image = Outcome(), _image(run)
    device = run.options.device_type
    digest = image.manufacturer_image_sha256
    if digest is None:
        if device is not None:
            out.fail(f"a ZigBee file has no GBCS Manufacturer Image to hash; a {device.value} needs "
                     "one (SR 11.3 FirmwareHash)", offset=run.body_offset)
            return out
        return out.skip("a ZigBee (non-GBCS) file has no Manufacturer Image; the CPL hash is a GBCS "
                        "notion (give --device-type to require a GBCS image)")
    where = run.body_offset
    wanted = run.options.cpl_hash
    if wanted is None:
        return out.skip(f"needs --cpl-hash; SHA-256 of the Manufacturer Image is {digest.hex()}")
    if digest == wanted:
        out.ok("SHA-256 of the Manufacturer Image equals the CPL hash (what SR 11.3 FirmwareHash "
               "must carry)", field="manufacturer_image", offset=where, found=digest.hex())
    else:
        out.fail("SHA-256 of the Manufacturer Image differs from the CPL hash: an 11.3 with the "
                 "CPL hash ends in hashMismatch", field="manufacturer_image", offset=where,
                 expected=wanted.hex(), found=digest.hex())
    return out


# --- A9 supplier signature ----------------------------------------------------------------------


def a9_signature(run: ImageRun) -> Outcome:
    out, image = Outcome(), _image(run)
    device = run.options.device_type
    if image.signature is None or image.manufacturer_image is None:
        if device is not None and device.signed_images:
            out.fail(f"a {device.value} image carries a supplier signature; this {image.layout} "
                     "file has none", field="signature", expected="00 40 ‖ 64-byte r‖s",
                     found="no signature")
            return out
        reason = ("a GBCS PPMID image carries no supplier signature" if image.layout == "gbcs-ppmid"
                  else "a ZigBee file carries no GBCS supplier signature (its signature "
                  "sub-elements are A11)")
        return out.skip(reason)
    where = image.identifier_offset + len(image.data) - fmt.GBCS_SIGNATURE_LENGTH
    if _claim(run, "A9", out):
        return out
    keys = run.options.supplier_keys
    source = "default ZAZ1 supplier keys (TEST ONLY)" if run.options.default_supplier_keys else "--supplier-key"
    for key in keys:
        if verify_signature(image.manufacturer_image, image.signature, key.public_key):
            out.ok(f"ECDSA P-256 signature over the Manufacturer Image verifies under "
                   f"{key.describe()}", field="signature", offset=where)
            if key.test_only:
                out.ok("the key is a published TEST ONLY key: this proves the bench chain, not a "
                       "production signature")
            return out
    names = "; ".join(key.describe() for key in keys)
    out.fail(f"the signature does not verify under the {source}: {names}", field="signature",
             offset=where, expected="r‖s valid under a supplier key", found=image.signature.hex())
    return out


def verifying_key_index(run: ImageRun) -> int | None:
    image = run.image
    if image is None or image.signature is None or image.manufacturer_image is None:
        return None
    for index, key in enumerate(run.options.supplier_keys):
        if verify_signature(image.manufacturer_image, image.signature, key.public_key):
            return index
    return None


# --- A10 certificates valid across the deployment window ------------------------------------------


def embedded_certificates(data: bytes) -> list[tuple[int, x509.Certificate]]:
    """DER X.509 certificates found anywhere in ``data``, with their offsets."""
    found: list[tuple[int, x509.Certificate]] = []
    position = data.find(b"\x30\x82")
    while position >= 0:
        if data[position + 4 : position + 5] == b"\x30":
            length = int.from_bytes(data[position + 2 : position + 4], "big") + 4
            if position + length <= len(data):
                try:
                    found.append((position, x509.load_der_x509_certificate(data[position : position + length])))
                except ValueError:
                    pass
                else:
                    position = data.find(b"\x30\x82", position + length)
                    continue
        position = data.find(b"\x30\x82", position + 1)
    return found


def _window(run: ImageRun) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(run.options.deploy_from, dt.time.min, dt.timezone.utc)
    end = dt.datetime.combine(run.options.deploy_until, dt.time.max, dt.timezone.utc)
    return start, end


def _describe(certificate: x509.Certificate) -> str:
    return (f"{certificate.subject.rfc4514_string() or '(empty subject)'}, serial "
            f"{certificate.serial_number:X}, valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%d}")


def a10_certificates(run: ImageRun) -> Outcome:
    out, image = Outcome(), _image(run)
    start, end = _window(run)
    window = f"{start:%Y-%m-%d}..{end:%Y-%m-%d}"
    body = image.data[image.header.header_length :]
    base = run.body_offset
    certificates = embedded_certificates(body)
    for offset, certificate in certificates:
        valid = certificate.not_valid_before_utc <= start and certificate.not_valid_after_utc >= end
        report = out.ok if valid else out.fail
        report(f"embedded certificate {_describe(certificate)}: "
               + ("valid across" if valid else "not valid across") + f" the deployment window {window}",
               field="certificate", offset=base + offset, expected=f"valid {window}",
               found=f"{certificate.not_valid_before_utc:%Y-%m-%d}..{certificate.not_valid_after_utc:%Y-%m-%d}")
    index = verifying_key_index(run)
    supplier = None if index is None else run.options.supplier_keys[index]
    if supplier is not None and supplier.certificate is not None:
        certificate = supplier.certificate
        if certificate.not_valid_before_utc <= start and certificate.not_valid_after_utc >= end:
            out.ok(f"the supplier certificate that verified the signature is valid across {window}")
        else:
            out.warn(f"the supplier certificate that verified the signature ({_describe(certificate)}) "
                     f"is not valid across the deployment window {window}; ZAZ1's was re-issued",
                     field="supplier certificate", expected=f"valid {window}",
                     found=f"{certificate.not_valid_before_utc:%Y-%m-%d}..{certificate.not_valid_after_utc:%Y-%m-%d}")
    if not out.evidence:
        return out.skip(f"no X.509 certificate inside the image (DER scan of {len(body)} body bytes) "
                        "and no supplier certificate verified its signature")
    if not certificates:
        out.ok(f"no X.509 certificate inside the image (DER scan of {len(body)} body bytes)")
    return out


# --- A12 downgrade and reinstall ---------------------------------------------------------------


def a12_downgrade(run: ImageRun) -> Outcome:
    out, image = Outcome(), _image(run)
    current = run.options.current_version
    found = image.header.file_version
    where = _at(run, "file_version")
    if current is None:
        return out.skip("needs --current-version (the target device's running firmware)")
    if found > current:
        out.ok(f"file version {_hex(found, 8)} is newer than the device's {_hex(current, 8)}",
               field="file_version", offset=where)
    elif found == current:
        out.fail("reinstall: the image's file version is the device's running version; the CH "
                 "answers NO_IMAGE_AVAILABLE", field="file_version", offset=where,
                 expected=f"> {_hex(current, 8)}", found=_hex(found, 8))
    else:
        out.fail("downgrade: the image is older than the device's running firmware",
                 field="file_version", offset=where, expected=f"> {_hex(current, 8)}",
                 found=_hex(found, 8))
    out.ok("whether the device itself refuses a downgrade is checked by certify device (not "
           "available yet)")
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
