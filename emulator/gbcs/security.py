"""GBCS message security: ECDSA P-256 signatures and the GMAC of General-Ciphering.

- Signature: ECDSA over SHA-256 of :meth:`GeneralSigning.to_be_signed`, sent as 64 raw bytes r ‖ s.
- MAC: AES-128-GCM with an empty plaintext and a 12-byte tag; IV = originator EUI-64 ‖ 00000000;
  additional data = :meth:`GeneralCiphering.authenticated_data`.
- MAC key: the first 16 bytes of SHA-256(00000001 ‖ Z ‖ OtherInfo), the NIST SP 800-56A
  single-step KDF, with Z = ECDH(one party's key agreement private key, the other's public key)
  and OtherInfo = 60 85 74 06 08 03 00 (algorithm id) ‖ originator EUI-64 ‖ 09 ‖ transaction id
  (CRA flag ‖ counter) ‖ recipient EUI-64, all taken from the grouping header.

Which key pair: a command's MAC is the Access Control Broker's (ACB KA ↔ device KA) whoever
originated it; a response or alert is MAC'd between the device and the header's recipient.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .message_codes import CraFlag
from .framing import MAC_LENGTH, SIGNATURE_LENGTH, GeneralCiphering, GeneralSigning, GroupingHeader

KDF_ALGORITHM_ID = bytes.fromhex("60857406080300")
"""GBCS KDF AlgorithmID (an OID-like identifier for AES-GCM-128 key derivation)."""
_KDF_COUNTER = b"\x00\x00\x00\x01"
_P256_ORDER_BYTES = 32


def sign(private_key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA P-256 / SHA-256 signature of ``data`` as 64 raw bytes (r ‖ s).

    Deterministic (RFC 6979 nonces): the same message signs to the same bytes, so a scenario
    replayed with the same seed gives the same GBCS payloads. Any ECDSA verifier accepts it.
    """
    der = private_key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return r.to_bytes(_P256_ORDER_BYTES, "big") + s.to_bytes(_P256_ORDER_BYTES, "big")


def verify_signature(public_key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    if len(signature) != SIGNATURE_LENGTH:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def sign_general_signing(message: GeneralSigning, private_key: ec.EllipticCurvePrivateKey) -> GeneralSigning:
    """The same message with its signature field filled in by ``private_key``."""
    return GeneralSigning(message.header, message.content, sign(private_key, message.to_be_signed()))


def kdf_other_info(header: GroupingHeader) -> bytes:
    return (
        KDF_ALGORITHM_ID
        + header.originator.to_bytes(8, "big")
        + bytes([len(header.transaction_id)])
        + header.transaction_id
        + header.recipient.to_bytes(8, "big")
    )


def derive_mac_key(
    private_key: ec.EllipticCurvePrivateKey, peer_public_key: ec.EllipticCurvePublicKey, header: GroupingHeader
) -> bytes:
    """The 16-byte AES key for this message's GMAC (either side computes the same one)."""
    shared = shared_secret(private_key, peer_public_key)
    return hashlib.sha256(_KDF_COUNTER + shared + kdf_other_info(header)).digest()[:16]


_SHARED_SECRETS: dict[tuple[int, int], tuple[ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey, bytes]] = {}
_SHARED_SECRETS_MAX = 4096


def shared_secret(private_key: ec.EllipticCurvePrivateKey, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
    """ECDH Z of two key agreement keys, computed once per pair of key objects.

    The ECDH is most of what a MAC costs (about 0.1 ms; the KDF and GMAC are microseconds) and a
    pair's Z never changes, while every message has its own KDF input (the transaction ID). The
    cache holds the key objects themselves, so an ``id`` cannot be reused while its entry lives.
    """
    key = (id(private_key), id(peer_public_key))
    hit = _SHARED_SECRETS.get(key)
    if hit is not None and hit[0] is private_key and hit[1] is peer_public_key:
        return hit[2]
    shared = private_key.exchange(ec.ECDH(), peer_public_key)
    if len(_SHARED_SECRETS) >= _SHARED_SECRETS_MAX:
        _SHARED_SECRETS.clear()
    _SHARED_SECRETS[key] = (private_key, peer_public_key, shared)
    return shared


def compute_mac(key: bytes, header: GroupingHeader, authenticated_data: bytes) -> bytes:
    iv = header.originator.to_bytes(8, "big") + bytes(4)
    return AESGCM(key).encrypt(iv, b"", authenticated_data)[:MAC_LENGTH]


def mac_general_signing(signing: GeneralSigning, key: bytes, *, invocation_counter: int = 0) -> GeneralCiphering:
    """Wrap ``signing`` (signature field b"" or 64 bytes) in a General-Ciphering with its GMAC."""
    unsigned = GeneralCiphering(signing, bytes(MAC_LENGTH), invocation_counter)
    mac = compute_mac(key, signing.header, unsigned.authenticated_data())
    return GeneralCiphering(signing, mac, invocation_counter)


def verify_mac(message: GeneralCiphering, key: bytes) -> bool:
    """True if ``message``'s MAC is the GMAC under ``key`` (constant-time tag check by AES-GCM)."""
    # AES-GCM checks a full 16-byte tag; GBCS sends 12, so recompute and compare in constant time.
    expected = compute_mac(key, message.header, message.authenticated_data())
    return hmac.compare_digest(expected, message.mac)


@dataclass(frozen=True)
class MacParties:
    """The two EUI-64s whose key agreement keys make a message's MAC key."""

    device: int
    remote_party: int


def mac_parties(header: GroupingHeader, access_control_broker: int) -> MacParties:
    """Which pair of KA keys a message's MAC uses (see module docstring)."""
    if header.cra_flag is CraFlag.COMMAND:
        return MacParties(device=header.recipient, remote_party=access_control_broker)
    return MacParties(device=header.originator, remote_party=header.recipient)


__all__ = [
    "MacParties", "compute_mac", "derive_mac_key", "kdf_other_info", "mac_general_signing",
    "mac_parties", "shared_secret", "sign", "sign_general_signing", "verify_mac", "verify_signature",
]
