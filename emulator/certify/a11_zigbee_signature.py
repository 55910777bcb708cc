"""Check A11: ZigBee signature sub-elements (crypto suite 2) verify, and the signer is allowed.

A signed Smart Energy OTA file ends with the ECDSA signature element (0x0005: signer IEEE address,
little-endian, then r ‖ s) after the signer's implicit certificate (0x0006, 74 bytes). The signed
digest is the AES-MMO hash of the whole OTA file up to r ‖ s, the signature element's tag, length
and signer included (as Silicon Labs' OTA client computes it). The signer's public key is
reconstructed from the certificate with the CA's public key (ECQV); the default CA is Certicom's
public TESTSECA suite-2 CA, a TEST ONLY key.
"""

from __future__ import annotations

from emulator.han.security import ecdsa
from emulator.han.security.certificates import CertificateError, CryptoSuite, ImplicitCertificate
from emulator.han.security.curves import SECT283K1, InvalidPoint
from emulator.certify.image_run import ImageRun, eui64_text
from emulator.certify.model import Outcome
from emulator.ota.image import format as fmt
from emulator.ota.image.integrity import aes_mmo_hash
from emulator.ota.image.model import SubElement

# Certicom's public ZigBee Smart Energy test CA (issuer TESTSECA), suite 2: TEST ONLY.
CERTICOM_TEST_CA_SUITE_2 = bytes.fromhex(
    "0207a445022d9f39f49bdc38380026a27a9e0a1799313ab28c5c1a1c6b605154db1dff6752")

SUITE_1: tuple[int, int] = (fmt.ElementTag.ECDSA_SIGNATURE_SUITE_1,
                            fmt.ElementTag.ECDSA_SIGNING_CERTIFICATE_SUITE_1)
SUITE_2: tuple[int, int] = (fmt.ElementTag.ECDSA_SIGNATURE_SUITE_2,
                            fmt.ElementTag.ECDSA_SIGNING_CERTIFICATE_SUITE_2)
SIGNER_LENGTH = 8
# signer IEEE + r and s; the implicit (ECQV) certificate lengths of ZigBee SE
SIGNATURE_LENGTH: dict[int, int] = {SUITE_1[0]: SIGNER_LENGTH + 2 * 21, SUITE_2[0]: SIGNER_LENGTH + ecdsa.signature_length(SECT283K1)}
CERTIFICATE_LENGTH: dict[int, int] = {SUITE_1[1]: 48, SUITE_2[1]: CryptoSuite.SUITE_2.certificate_length}
CERTIFICATE_SUBJECT: dict[int, slice] = {SUITE_1[1]: slice(22, 30), SUITE_2[1]: slice(28, 36)}
_NAMES: dict[tuple[int, int], str] = {SUITE_1: "suite 1 (sect163k1)", SUITE_2: "suite 2 (sect283k1)"}


def a11_zigbee_signature(run: ImageRun) -> Outcome:
    out = Outcome()
    image = run.image
    assert image is not None
    if image.layout != "standard":
        return out.skip("a GBCS image carries the supplier signature after the Manufacturer Image (A9), "
                        "not ZigBee signature sub-elements")
    tags = {e.tag for e in image.elements}
    suites = [suite for suite in (SUITE_1, SUITE_2) if tags & set(suite)]
    if not suites:
        return out.skip("no ZigBee signature sub-elements (0x0001/0x0002, 0x0005/0x0006): an unsigned "
                        "ZigBee file (Smart Energy profile devices require signed images)")
    if len(suites) == 2:
        out.fail("the file carries signature elements of both crypto suites 1 and 2 (double signed); "
                 "a client refuses it")
        return out
    suite = suites[0]
    name = _NAMES[suite]
    elements = _structure(run, suite, out)
    if elements is None:
        return out
    signature, certificate = elements
    base = image.identifier_offset
    signature_data = image.element_data(signature)
    certificate_data = image.element_data(certificate)
    signer = int.from_bytes(signature_data[:SIGNER_LENGTH], "little")
    subject = int.from_bytes(certificate_data[CERTIFICATE_SUBJECT[suite[1]]], "big")
    where = base + signature.data_offset
    if signer != subject:
        out.fail(f"{name}: the signer IEEE address is not the certificate's subject", field="signer",
                 offset=where, expected=eui64_text(subject), found=eui64_text(signer))
        return out
    _check_signer(run, signer, where, out)
    if suite is SUITE_1:
        out.warn(f"{name}: well formed, signer {eui64_text(signer)}; suite 1 verification is not "
                 "available (SE 1.2 and GBCS sign with suite 2)")
        return out
    _verify_suite_2(run, signature_data, certificate_data, where, out)
    return out


def _structure(run: ImageRun, suite: tuple[int, int], out: Outcome) -> tuple[SubElement, SubElement] | None:
    """Both halves present, the right lengths, the signature last; ``None`` after a failure."""
    image = run.image
    assert image is not None
    name = _NAMES[suite]
    signature_tag, certificate_tag = suite
    signature = next((e for e in image.elements if e.tag == signature_tag), None)
    certificate = next((e for e in image.elements if e.tag == certificate_tag), None)
    if signature is None or certificate is None:
        missing = "signature" if signature is None else "signing certificate"
        out.fail(f"{name}: the {missing} sub-element is missing",
                 expected=f"0x{signature_tag:04X} and 0x{certificate_tag:04X}")
        return None
    ok = True
    for element, wanted in ((signature, SIGNATURE_LENGTH[signature_tag]),
                            (certificate, CERTIFICATE_LENGTH[certificate_tag])):
        if element.length != wanted:
            ok = False
            out.fail(f"{name}: sub-element 0x{element.tag:04X} has the wrong length",
                     field=f"0x{element.tag:04X} length",
                     offset=image.identifier_offset + element.offset + 2,
                     expected=str(wanted), found=str(element.length))
    if image.elements[-1] is not signature:
        ok = False
        out.fail(f"{name}: the signature sub-element must be the last in the file",
                 offset=image.identifier_offset + signature.offset)
    return (signature, certificate) if ok else None


def _check_signer(run: ImageRun, signer: int, offset: int, out: Outcome) -> None:
    allowed = run.options.zigbee_signers
    if not allowed:
        out.ok(f"signer {eui64_text(signer)} not checked against an allowed list (give --zigbee-signer)",
               field="signer", offset=offset)
    elif signer in allowed:
        out.ok(f"signer {eui64_text(signer)} is an allowed signer", field="signer", offset=offset)
    else:
        out.fail("the signer is not an allowed signer", field="signer", offset=offset,
                 expected=", ".join(eui64_text(e) for e in allowed), found=eui64_text(signer))


def _verify_suite_2(run: ImageRun, signature_data: bytes, certificate_data: bytes, where: int,
                    out: Outcome) -> None:
    image = run.image
    assert image is not None
    ca = run.options.zigbee_ca or CERTICOM_TEST_CA_SUITE_2
    ca_name = ("Certicom TESTSECA suite-2 CA (TEST ONLY)" if ca == CERTICOM_TEST_CA_SUITE_2
               else f"CA {ca.hex()}")
    try:
        certificate = ImplicitCertificate.decode(certificate_data, CryptoSuite.SUITE_2)
        public_key = certificate.public_key(SECT283K1.decompress(ca))
    except (CertificateError, InvalidPoint) as exc:
        out.fail(f"suite 2: the signer's public key cannot be reconstructed with the {ca_name}: {exc}",
                 field="certificate")
        return
    signed = image.data[: len(image.data) - ecdsa.signature_length(SECT283K1)]
    digest = aes_mmo_hash(signed)
    if ecdsa.verify_digest(SECT283K1, digest, signature_data[SIGNER_LENGTH:], public_key):
        out.ok(f"suite 2: the ECDSA signature over the AES-MMO digest {digest.hex()} of the first "
               f"{len(signed)} bytes verifies under the key reconstructed from the certificate (issuer "
               f"{certificate.issuer.hex()}) with the {ca_name}", field="signature", offset=where)
    else:
        out.fail(f"suite 2: the ECDSA signature does not verify over the AES-MMO digest of the first "
                 f"{len(signed)} bytes under the key reconstructed with the {ca_name} (certificate "
                 f"issuer {certificate.issuer.hex()})", field="signature", offset=where + SIGNER_LENGTH,
                 found=signature_data[SIGNER_LENGTH:].hex())
