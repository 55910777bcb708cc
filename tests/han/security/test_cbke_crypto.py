"""CBKE cryptography against published vectors: Certicom's TESTSECA certificates (shared/vectors/cbke)
and the Smart Energy spec's Annex C key establishment vectors (se_annex_c_vectors.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.han.security.cbke import CbkeIdentity, EphemeralKey, derive, kdf
from emulator.han.security.certificates import CertificateError, CryptoSuite, ImplicitCertificate
from emulator.han.security.curves import SECT163K1, SECT283K1, InvalidPoint, KoblitzCurve

# shared/ lies beside the repository (a CI clone gets a copy there); /work/shared otherwise.
_BESIDE = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "cbke"
VECTORS = _BESIDE if _BESIDE.is_dir() else Path("/work/shared/vectors/cbke")
CERTICOM = json.loads((VECTORS / "certicom-test-certificates.json").read_text())
ANNEX_C = json.loads((Path(__file__).parent / "se_annex_c_vectors.json").read_text())

CURVES = {"suite1_sect163k1": SECT163K1, "suite2_sect283k1": SECT283K1}
SUITES = {"suite1": CryptoSuite.SUITE_1, "suite2": CryptoSuite.SUITE_2}


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- curves ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("curve", [SECT163K1, SECT283K1], ids=lambda c: c.name)
def test_generator_is_on_the_curve_and_has_the_sec2_order(curve: KoblitzCurve) -> None:
    assert curve.is_on_curve(curve.generator)
    assert curve.mul(curve.order, curve.generator) is None
    assert curve.mul(curve.order - 1, curve.generator) == curve.neg(curve.generator)


@pytest.mark.parametrize("curve", [SECT163K1, SECT283K1], ids=lambda c: c.name)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_ladder_agrees_with_the_group_law_and_points_survive_compression(curve: KoblitzCurve, data: Any) -> None:
    a = data.draw(st.integers(1, curve.order - 1))
    b = data.draw(st.integers(1, curve.order - 1))
    pa, pb = curve.mul(a, curve.generator), curve.mul(b, curve.generator)
    assert curve.add(pa, pb) == curve.mul((a + b) % curve.order or curve.order, curve.generator)
    assert curve.mul(b, pa) == curve.mul(a, pb)  # Diffie-Hellman commutes
    assert pa is not None and curve.is_on_curve(pa)
    encoded = curve.compress(pa)
    assert len(encoded) == curve.point_length
    assert curve.decompress(encoded) == pa


@pytest.mark.parametrize("curve", [SECT163K1, SECT283K1], ids=lambda c: c.name)
def test_decompression_rejects_what_is_not_a_point(curve: KoblitzCurve) -> None:
    g = curve.compress(curve.generator)
    with pytest.raises(InvalidPoint, match="prefix"):
        curve.decompress(b"\x04" + g[1:])
    with pytest.raises(InvalidPoint, match="octets"):
        curve.decompress(g[:-1])
    # About half of all x have no point; find one near G's x.
    for delta in range(1, 64):
        candidate = bytes([2]) + curve.field.to_bytes(curve.gx ^ delta)
        try:
            curve.decompress(candidate)
        except InvalidPoint as exc:
            assert "not the x" in str(exc)
            return
    pytest.fail("no x without a point found")


# -- Certicom TESTSECA certificates ----------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CURVES))
def test_certicom_certificate_reconstructs_its_published_public_key(name: str) -> None:
    vector = CERTICOM[name]
    raw = _h(vector["certificate"])
    cert = ImplicitCertificate.decode(raw)
    assert cert.curve is CURVES[name]
    assert cert.encode() == raw
    ca = cert.curve.decompress(_h(vector["ca_public_key"]))
    public = cert.public_key(ca)
    assert cert.curve.compress(public).hex() == vector["public_key"]
    assert cert.curve.public_key(int(vector["private_key"], 16)) == public
    assert cert.subject == 0x0022080000000001


def test_certicom_suite2_certificate_fields() -> None:
    cert = ImplicitCertificate.decode(_h(CERTICOM["suite2_sect283k1"]["certificate"]))
    assert (cert.cert_type, cert.curve_id, cert.hash_id) == (0x00, 0x0D, 0x08)
    assert cert.serial == 0x0B3AD5A312AB75D6
    assert cert.issuer == _h("1112131415161718")
    assert cert.valid_from == 0x005B7ED230
    assert cert.expires_at() is None


def test_suite1_certificate_issuer_is_testseca() -> None:
    cert = ImplicitCertificate.decode(_h(CERTICOM["suite1_sect163k1"]["certificate"]))
    assert cert.issuer == b"TESTSECA"
    assert cert.profile_attribute_data == _h("0109108301234567890A")


def test_a_certificate_of_the_wrong_length_or_curve_is_refused() -> None:
    raw = _h(CERTICOM["suite2_sect283k1"]["certificate"])
    with pytest.raises(CertificateError, match="48 .* or 74"):
        ImplicitCertificate.decode(raw[:-1])
    with pytest.raises(CertificateError) as info:
        ImplicitCertificate.decode(raw[:9] + b"\x0E" + raw[10:])
    assert info.value.field == "curve"


# -- SE Annex C key establishment vectors ----------------------------------------------------------

def _party(suite: CryptoSuite, vector: dict[str, Any], role: str) -> tuple[CbkeIdentity, EphemeralKey]:
    curve = suite.curve
    data = vector[role]
    ca = curve.decompress(_h(vector["ca_public_key"]))
    identity = CbkeIdentity(ImplicitCertificate.decode(_h(data["certificate"]), suite),
                            int(data["private_key"], 16), ca)
    return identity, EphemeralKey.generate(curve, int(data["ephemeral_private_key"], 16))


@pytest.mark.parametrize("name", sorted(SUITES))
def test_annex_c_certificates_reconstruct_the_static_public_keys(name: str) -> None:
    suite, vector = SUITES[name], ANNEX_C[name]
    for role in ("responder", "initiator"):
        identity, ephemeral = _party(suite, vector, role)
        assert suite.curve.compress(identity.public_key()).hex().upper() == vector[role]["public_key"]
        identity.check()
        assert ephemeral.encoded.hex().upper() == vector[role]["ephemeral_public_key"]


@pytest.mark.parametrize("name", sorted(SUITES))
def test_annex_c_both_sides_derive_the_published_shared_secret(name: str) -> None:
    suite, vector = SUITES[name], ANNEX_C[name]
    responder, r_eph = _party(suite, vector, "responder")
    initiator, i_eph = _party(suite, vector, "initiator")
    at_responder = derive(responder, r_eph, initiator.certificate, i_eph.encoded, am_initiator=False)
    at_initiator = derive(initiator, i_eph, responder.certificate, r_eph.encoded, am_initiator=True)
    assert at_responder.shared_secret.hex().upper() == vector["shared_secret"]
    assert at_initiator == at_responder  # same MacKey, link key, MACU and MACV on both sides


def test_annex_c_suite1_mac_key_and_macv() -> None:
    vector = ANNEX_C["suite1"]
    mac_key, _ = kdf(_h(vector["shared_secret"]))
    assert mac_key.hex().upper() == vector["mac_key"]
    responder, r_eph = _party(CryptoSuite.SUITE_1, vector, "responder")
    initiator, i_eph = _party(CryptoSuite.SUITE_1, vector, "initiator")
    result = derive(responder, r_eph, initiator.certificate, i_eph.encoded, am_initiator=False)
    assert result.mac_key.hex().upper() == vector["mac_key"]
    assert result.macv.hex().upper() == vector["macv"]
    assert result.macu != result.macv


def test_a_wrong_static_key_gives_other_smacs() -> None:
    vector = ANNEX_C["suite1"]
    responder, r_eph = _party(CryptoSuite.SUITE_1, vector, "responder")
    initiator, i_eph = _party(CryptoSuite.SUITE_1, vector, "initiator")
    impostor = CbkeIdentity(initiator.certificate, initiator.private_key + 1, initiator.ca_public_key)
    honest = derive(responder, r_eph, initiator.certificate, i_eph.encoded, am_initiator=False)
    forged = derive(impostor, i_eph, responder.certificate, r_eph.encoded, am_initiator=True)
    assert forged.macu != honest.macu and forged.link_key != honest.link_key
