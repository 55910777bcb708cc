"""The image mutation matrix: every image defect class, made from the sample images, and the check
that should catch it.

Each :class:`Mutation` turns a clean sample (``firmware_images/``, TEST ONLY) into a defective file
and names the check expected to FAIL on it. ``benchmarks/certify_matrix.py`` prints which checks
actually fail and the mutation score; tests/certify asserts every mutation is caught by its check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from dataclasses import dataclass, field, replace
from typing import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from emulator.han.security import ecdsa
from emulator.han.security.curves import SECT283K1
from emulator.certify.image_run import ImageOptions
from emulator.gbcs.codes import DeviceType
from emulator.certify.keys import SupplierKey
from emulator.keys.embedded import zaz1_supplier_ds_certificates
from emulator.certify.model import Verdict
from emulator.certify.runner import CertifyReport, certify_image
from emulator.ota.image.build import build_image
from emulator.ota.image.integrity import aes_mmo_hash
from emulator.ota.image.parse import parse_image

# Offsets of mandatory header fields in an OTA file (ZCL 11.4.2).
HEADER_VERSION_AT, HEADER_LENGTH_AT, FIELD_CONTROL_AT = 4, 6, 8
MANUFACTURER_AT, IMAGE_TYPE_AT, FILE_VERSION_AT, TOTAL_SIZE_AT = 10, 12, 14, 52
MIN_HW_AT, MAX_HW_AT = 56, 58  # with field control 0x0004

CLEAN_HARDWARE = 0x1200
CLEAN_CURRENT_VERSION = 0xACDC0001
DEPLOY_DATE = dt.date(2026, 1, 1)


@dataclass(frozen=True)
class Sample:
    """A clean sample image and what a correct run says about it."""

    device_type: DeviceType
    data: bytes = field(repr=False)
    payload: bytes = field(repr=False)  # its Manufacturer Image


@dataclass(frozen=True)
class Samples:
    """The three TEST ONLY samples and the TEST ONLY key pair they are signed with."""

    by_device: dict[DeviceType, Sample]
    signing_key: ec.EllipticCurvePrivateKey
    public_key: ec.EllipticCurvePublicKey

    @classmethod
    def from_files(cls, files: dict[DeviceType, bytes], signing_key: ec.EllipticCurvePrivateKey) -> "Samples":
        by_device = {}
        for device, data in files.items():
            image = parse_image(data, source=device.value)
            assert image.manufacturer_image is not None
            by_device[device] = Sample(device, data, image.manufacturer_image)
        return cls(by_device, signing_key, signing_key.public_key())

    def clean_options(self, device: DeviceType | None) -> ImageOptions:
        """What a vendor would pass for the unmodified sample of ``device``."""
        keys = (SupplierKey("firmware_images TEST-ONLY-public-key.pem", self.public_key, test_only=True),)
        if device is None:
            return ImageOptions(supplier_keys=keys, default_supplier_keys=False,
                                deploy_from=DEPLOY_DATE, deploy_until=DEPLOY_DATE)
        sample = self.by_device[device]
        image = parse_image(sample.data)
        return ImageOptions(
            device_type=device, hardware_version=CLEAN_HARDWARE,
            firmware_version=image.header.file_version,
            manufacturer_code=image.header.manufacturer_code, image_type=image.header.image_type,
            cpl_hash=image.manufacturer_image_sha256, current_version=CLEAN_CURRENT_VERSION,
            supplier_keys=keys, default_supplier_keys=False,
            deploy_from=DEPLOY_DATE, deploy_until=DEPLOY_DATE,
        )


Make = Callable[[Samples], bytes]


@dataclass(frozen=True)
class Mutation:
    name: str
    defect: str
    expected_check: str
    base: DeviceType | None  # the sample it starts from; None: a ZigBee (standard) file
    make: Make
    options: Callable[[ImageOptions], ImageOptions] = field(default=lambda options: options)


@dataclass(frozen=True)
class MatrixRow:
    mutation: Mutation
    failed_checks: tuple[str, ...]
    report: CertifyReport

    @property
    def caught(self) -> bool:
        return self.mutation.expected_check in self.failed_checks


# --- byte surgery ---------------------------------------------------------------------------


def _put(data: bytes, offset: int, fmt_: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt_, out, offset, value)
    return bytes(out)


def _flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0x01
    return bytes(out)


def _esme(s: Samples) -> bytes:
    return s.by_device[DeviceType.ESME].data


def _ppmid(s: Samples) -> bytes:
    return s.by_device[DeviceType.PPMID].data


def gbcs_image(s: Samples, payload: bytes, **header: int) -> bytes:
    """A signed ESME-style GBCS image around ``payload`` (TEST ONLY key)."""
    values = dict(manufacturer_code=0x121D, image_type=0x0000, file_version=0xACDCACDD,
                  min_hardware_version=0x1111, max_hardware_version=0x1211)
    values.update(header)
    return build_image(payload, layout="gbcs", signing_key=s.signing_key, **values)  # type: ignore[arg-type]


def sub_element(tag: int, data: bytes, length: int | None = None) -> bytes:
    return struct.pack("<HI", tag, len(data) if length is None else length) + data


def zigbee_file(s: Samples, body: bytes) -> bytes:
    """A ZigBee file (no hardware range) around ``body``, header written by hand."""
    header = struct.pack("<IHHHHHIH32sI", 0x0BEEF11E, 0x0100, 56, 0, 0x121D, 0x0042, 0x00000105,
                         0x0002, b"certify mutation TEST ONLY".ljust(32, b"\x00"), 56 + len(body))
    return header + body


def upgrade_payload(s: Samples) -> bytes:
    """4 KiB of the PPMID sample's payload, the upgrade image of the ZigBee mutations."""
    return s.by_device[DeviceType.PPMID].payload[:4096]


def _drop_hardware_range(data: bytes) -> bytes:
    out = bytearray(data[:MIN_HW_AT] + data[MIN_HW_AT + 4 :])
    struct.pack_into("<H", out, HEADER_LENGTH_AT, 56)
    struct.pack_into("<H", out, FIELD_CONTROL_AT, 0)
    struct.pack_into("<I", out, TOTAL_SIZE_AT, len(out))
    return bytes(out)


def _longer_header(data: bytes) -> bytes:
    out = bytearray(data[:60] + b"\x00\x00" + data[60:])
    struct.pack_into("<H", out, HEADER_LENGTH_AT, 62)
    struct.pack_into("<I", out, TOTAL_SIZE_AT, len(out))
    return bytes(out)


# Certicom's public TESTSECA suite-2 test certificate (subject 00-22-08-00-00-00-00-01) and its
# private key, TEST ONLY (shared/vectors/cbke/certicom-test-certificates.json).
CERTICOM_TEST_CERTIFICATE = bytes.fromhex(
    "000b3ad5a312ab75d60d081112131415161718005b7ed230ffffffff0022080000000001080205bb3d1d1576"
    "197ff9ab6563915019a130437adb0ee7915432dc4a09c97dc595c5856800")
CERTICOM_TEST_PRIVATE_KEY = 0x00997097B87684F62F555173C47BE89935FBF6440AE292492B54C5829A0D541F4D26E254


def zigbee_signed_file(s: Samples, *, signer: bytes | None = None, tamper: bool = False) -> bytes:
    """A ZigBee file signed with suite 2 by the Certicom test certificate (TEST ONLY)."""
    subject = CERTICOM_TEST_CERTIFICATE[28:36]
    head = sub_element(0x0000, upgrade_payload(s)) + sub_element(0x0006, CERTICOM_TEST_CERTIFICATE)
    signature_head = struct.pack("<HI", 0x0005, 80) + (signer or subject)[::-1]
    unsigned = zigbee_file(s, head + signature_head + bytes(ecdsa.signature_length(SECT283K1)))
    signed_part = unsigned[: -ecdsa.signature_length(SECT283K1)]
    digest = aes_mmo_hash(signed_part)
    nonce = int.from_bytes(hashlib.sha256(b"TEST ONLY nonce" + digest).digest(), "big") % SECT283K1.order
    data = signed_part + ecdsa.sign_digest(SECT283K1, digest, CERTICOM_TEST_PRIVATE_KEY, nonce)
    return _flip(data, 56 + 100) if tamper else data


def _zigbee_malformed(s: Samples, *, signature_length: int = 80, signature_last: bool = True) -> bytes:
    ieee = CERTICOM_TEST_CERTIFICATE[28:36]
    signature = ieee[::-1] + bytes(signature_length - 8)
    elements = [sub_element(0x0000, upgrade_payload(s)), sub_element(0x0006, CERTICOM_TEST_CERTIFICATE),
                sub_element(0x0005, signature)]
    if not signature_last:
        elements = [elements[0], elements[2], elements[1]]
    return zigbee_file(s, b"".join(elements))


def _with_expired_certificate(s: Samples) -> bytes:
    certificate = zaz1_supplier_ds_certificates()[0].certificate
    assert certificate is not None
    der = certificate.public_bytes(serialization.Encoding.DER)
    payload = s.by_device[DeviceType.ESME].payload
    return gbcs_image(s, payload[:1000] + der + payload[1000:])


def _other_key() -> SupplierKey:
    return SupplierKey("another P-256 key", ec.generate_private_key(ec.SECP256R1()).public_key())


def _sr(version: int) -> Callable[[ImageOptions], ImageOptions]:
    return lambda options: replace(options, firmware_version=version)


MUTATIONS: tuple[Mutation, ...] = (
    Mutation("bad-identifier", "file identifier damaged", "A1", DeviceType.ESME,
             lambda s: b"\x1f" + _esme(s)[1:]),
    Mutation("header-version", "header version 0x0200", "A1", DeviceType.ESME,
             lambda s: _put(_esme(s), HEADER_VERSION_AT, "<H", 0x0200)),
    Mutation("header-length-inconsistent", "header length 62 with field control 0x0004", "A1",
             DeviceType.ESME, lambda s: _longer_header(_esme(s))),
    Mutation("field-control-reserved", "field control sets reserved bit 3", "A1", DeviceType.ESME,
             lambda s: _put(_esme(s), FIELD_CONTROL_AT, "<H", 0x000C)),
    Mutation("vendor-prefix", "a 64-byte vendor container before the identifier", "A1",
             DeviceType.ESME, lambda s: b"NGIS" + bytes(60) + _esme(s)),
    Mutation("trailing-bytes", "16 bytes after the total image size", "A2", DeviceType.ESME,
             lambda s: _esme(s) + bytes(16)),
    Mutation("truncated", "file cut 100 bytes short of the total image size", "A2", DeviceType.ESME,
             lambda s: _esme(s)[:-100]),
    Mutation("total-size-short", "total image size 10 below the file length", "A2", DeviceType.ESME,
             lambda s: _put(_esme(s), TOTAL_SIZE_AT, "<I", len(_esme(s)) - 10)),
    Mutation("wrong-manufacturer", "manufacturer code 0x1234, CPL says 0x121D", "A3", DeviceType.ESME,
             lambda s: _put(_esme(s), MANUFACTURER_AT, "<H", 0x1234)),
    Mutation("wrong-image-type", "image type 0x0084 (PPMID) for an ESME", "A3", DeviceType.ESME,
             lambda s: _put(_esme(s), IMAGE_TYPE_AT, "<H", 0x0084)),
    Mutation("sr-version-mismatch", "file version 0xACDCACDE, SR says ACDCACDD", "A3",
             DeviceType.ESME, lambda s: _put(_esme(s), FILE_VERSION_AT, "<I", 0xACDCACDE)),
    Mutation("bcd-version", "header codes version 1.2.3 as BCD 0x00000123, SR in binary 0000007B",
             "A4", DeviceType.ESME, lambda s: _put(_esme(s), FILE_VERSION_AT, "<I", 0x00000123),
             _sr(0x0000007B)),
    Mutation("hardware-excludes-target", "hardware range 0x1300..0x1400, device 0x1200", "A5",
             DeviceType.ESME,
             lambda s: _put(_put(_esme(s), MIN_HW_AT, "<H", 0x1300), MAX_HW_AT, "<H", 0x1400)),
    Mutation("hardware-range-inverted", "minimum hardware version above the maximum", "A5",
             DeviceType.ESME,
             lambda s: _put(_put(_esme(s), MIN_HW_AT, "<H", 0x1211), MAX_HW_AT, "<H", 0x1111)),
    Mutation("no-hardware-range", "GBCS image without the hardware range", "A5", DeviceType.ESME,
             lambda s: _drop_hardware_range(_esme(s))),
    Mutation("oversize", "7,680,001-byte image, above the DUIS limit", "A6", DeviceType.ESME,
             lambda s: gbcs_image(s, bytes(7_680_001 - 60 - 66))),
    Mutation("slot-exceeded", "49,278-byte image for a 40,000-byte slot", "A6", DeviceType.ESME,
             _esme, lambda options: replace(options, slot_size=40_000)),
    Mutation("signature-stripped", "ESME image without 00 40 and its signature", "A7", DeviceType.ESME,
             lambda s: _put(_esme(s)[:-66], TOTAL_SIZE_AT, "<I", len(_esme(s)) - 66)),
    Mutation("ppmid-image-for-esme", "an unsigned PPMID-layout image sent to an ESME", "A7",
             DeviceType.ESME, _ppmid,
             lambda options: replace(options, image_type=0x0084,
                                     cpl_hash=None, firmware_version=0xACDCACDD)),
    Mutation("empty-manufacturer-image", "GBCS image with an empty Manufacturer Image", "A7",
             DeviceType.ESME, lambda s: gbcs_image(s, b"")),
    Mutation("first-element-overrun", "ZigBee file whose only element claims 5,000 bytes more", "A7",
             None, lambda s: zigbee_file(s, sub_element(0x0000, upgrade_payload(s), len(upgrade_payload(s)) + 5000))),
    Mutation("element-overrun", "second element overruns the total image size", "A7", None,
             lambda s: zigbee_file(s, sub_element(0x0000, upgrade_payload(s)) + sub_element(0xF001, b"x" * 40, 400))),
    Mutation("leftover-bytes", "3 bytes after the last element, too few for another", "A7", None,
             lambda s: zigbee_file(s, sub_element(0x0000, upgrade_payload(s)) + b"\x01\x02\x03")),
    Mutation("integrity-code-mismatch", "Image Integrity Code that is not the AES-MMO hash", "A7",
             None, lambda s: zigbee_file(s, sub_element(0x0000, upgrade_payload(s)) + sub_element(0x0003, bytes(16)))),
    Mutation("manufacturer-image-tampered", "one bit of the Manufacturer Image flipped", "A8",
             DeviceType.ESME, lambda s: _flip(_esme(s), 1000)),
    Mutation("cpl-hash-mismatch", "the CPL entry's hash is another image's", "A8", DeviceType.ESME,
             _esme, lambda options: replace(options, cpl_hash=bytes(32))),
    Mutation("bad-signature", "one bit of the signature flipped", "A9", DeviceType.ESME,
             lambda s: _flip(_esme(s), len(_esme(s)) - 10)),
    Mutation("unsigned", "all-zero signature", "A9", DeviceType.ESME,
             lambda s: _esme(s)[:-64] + bytes(64)),
    Mutation("other-signer", "signed with a key that is not the supplier's", "A9", DeviceType.ESME,
             _esme, lambda options: replace(options, supplier_keys=(_other_key(),))),
    Mutation("expired-embedded-certificate", "firmware embeds the ZAZ1 supplier certificate that "
             "expired 2025-10-29", "A10", DeviceType.ESME, _with_expired_certificate,
             lambda options: replace(options, cpl_hash=None)),
    Mutation("zigbee-signature-length", "suite-2 signature sub-element of 70 bytes, not 80", "A11",
             None, lambda s: _zigbee_malformed(s, signature_length=70)),
    Mutation("zigbee-signature-not-last", "suite-2 signature sub-element before the certificate",
             "A11", None, lambda s: _zigbee_malformed(s, signature_last=False)),
    Mutation("zigbee-signed-image-tampered", "one bit of a suite-2 signed upgrade image flipped",
             "A11", None, lambda s: zigbee_signed_file(s, tamper=True)),
    Mutation("zigbee-signer-not-subject", "signer 00-DB-12-34-56-78-90-A0 in the signature, the "
             "certificate's subject is 00-22-08-00-00-00-00-01", "A11", None,
             lambda s: zigbee_signed_file(s, signer=bytes.fromhex("00DB1234567890A0"))),
    Mutation("zigbee-signer-not-allowed", "suite-2 image signed by 00-22-08-00-00-00-00-01, only "
             "00-DB-12-34-56-78-90-A1 may sign", "A11", None, zigbee_signed_file,
             lambda options: replace(options, zigbee_signers=(0x00DB1234567890A1,))),
    Mutation("zigbee-unknown-ca", "suite-2 signature checked with another CA's key", "A11", None,
             zigbee_signed_file,
             lambda options: replace(options, zigbee_ca=SECT283K1.compress(SECT283K1.mul(7, SECT283K1.generator)))),
    Mutation("downgrade", "file version 0xACDC0000 below the device's 0xACDC0001", "A12",
             DeviceType.ESME, lambda s: _put(_esme(s), FILE_VERSION_AT, "<I", 0xACDC0000),
             _sr(0xACDC0000)),
    Mutation("reinstall", "the device already runs 0xACDCACDD", "A12", DeviceType.ESME, _esme,
             lambda options: replace(options, current_version=0xACDCACDD)),
)


def failed_checks(report: CertifyReport) -> tuple[str, ...]:
    return tuple(r.check_id for r in report.results if r.verdict is Verdict.FAIL)


def run_mutation(mutation: Mutation, samples: Samples) -> MatrixRow:
    data = mutation.make(samples)
    options = mutation.options(samples.clean_options(mutation.base))
    report = certify_image(mutation.name, data, options)
    return MatrixRow(mutation, failed_checks(report), report)


def run_matrix(samples: Samples) -> list[MatrixRow]:
    return [run_mutation(mutation, samples) for mutation in MUTATIONS]
