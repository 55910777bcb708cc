"""The HAN keys of a scenario, derived from its seed. TEST ONLY.

A run with the same seed gives every node the same install code, network key, CBKE certificate
and ephemeral keys, so the link keys CBKE establishes are known before the run: ``ch-emulator keys
export --wireshark`` writes them for Wireshark, and a capture of the run decrypts with them.
Everything is issued by the emulator's default test CA (:meth:`TestCertificateAuthority.default`),
which every copy of the emulator trusts and anyone can reproduce: these keys protect nothing.

Derivation: a label, the seed and the EUI-64s go through AES-MMO (the hash the CBKE suites use)
in counter mode; scalars are reduced into 1..n-1.
"""

from __future__ import annotations

from .aes_mmo import aes_mmo, install_code_crc, link_key_from_install_code
from .cbke import CbkeIdentity, EphemeralKey, derive
from .certificates import (
    KEY_USAGE_DIGITAL_SIGNATURE,
    KEY_USAGE_KEY_AGREEMENT,
    VALID_TO_NEVER,
    CryptoSuite,
    ImplicitCertificate,
    reconstruct_private_key,
)
from .curves import KoblitzCurve
from .ke_engine import EphemeralSource
from .test_ca import TestCertificateAuthority

INSTALL_CODE_LENGTH = 16
"""GB devices carry 16-octet install codes (CCS01 InstallCode), plus the 2-octet CRC."""


class HanKeyMaterial:
    """Deterministic TEST ONLY key material for the HANs of one scenario (one ``seed``)."""

    def __init__(self, seed: int, *, suite: CryptoSuite = CryptoSuite.SUITE_2) -> None:
        self.seed = seed
        self.suite = suite
        self.ca = TestCertificateAuthority.default(suite)
        self._ca_public = self.ca.public_key
        self._identities: dict[int, CbkeIdentity] = {}

    def _material(self, label: str, *parts: int, length: int) -> bytes:
        prefix = f"ch-emulator TEST ONLY {label} seed={self.seed} " + " ".join(f"{p:X}" for p in parts)
        out = b""
        block = 0
        while len(out) < length:
            block += 1
            out += aes_mmo(f"{prefix} #{block}".encode())
        return out[:length]

    def _scalar(self, label: str, *parts: int) -> int:
        n = self.suite.curve.order
        raw = self._material(label, *parts, length=self.suite.curve.scalar_length + 16)
        return int.from_bytes(raw, "big") % (n - 1) + 1

    # -- join ----------------------------------------------------------------------------------
    def network_key(self, trust_centre: int) -> bytes:
        """The NWK key the Trust Centre ``trust_centre`` hands out on its HAN."""
        return self._material("network key", trust_centre, length=16)

    def install_code(self, eui64: int) -> bytes:
        """A 16-octet install code with its CRC (18 octets), as printed on the device."""
        code = self._material("install code", eui64, length=INSTALL_CODE_LENGTH)
        return code + install_code_crc(code).to_bytes(2, "little")

    @staticmethod
    def install_code_key(install_code: bytes) -> bytes:
        """The preconfigured TC link key of an install code (AES-MMO; refuses a bad CRC)."""
        return link_key_from_install_code(install_code)

    # -- CBKE ----------------------------------------------------------------------------------
    def identity(self, eui64: int) -> CbkeIdentity:
        """The node's certificate and private key from the default test CA (cached)."""
        cached = self._identities.get(eui64)
        if cached is not None:
            return cached
        curve = self.suite.curve
        n = curve.order
        request_key = self._scalar("cbke request key", eui64)
        ca_nonce = self._scalar("cbke ca nonce", eui64)
        if (request_key + ca_nonce) % n == 0:
            ca_nonce = ca_nonce % (n - 1) + 1
        # P_U = R_U + kG = (k_U + k)G: one scalar multiplication instead of two.
        reconstruction = curve.public_key((request_key + ca_nonce) % n)
        fields: dict[str, object] = dict(suite=self.suite, public_reconstruction_key=curve.compress(reconstruction),
                                         subject=eui64, issuer=self.ca.issuer)
        if self.suite is CryptoSuite.SUITE_1:
            fields["profile_attribute_data"] = bytes.fromhex("01090000000000000000")
        else:
            fields.update(serial=int.from_bytes(self._material("cbke serial", eui64, length=8), "big"),
                          valid_from=0, valid_to=VALID_TO_NEVER,
                          key_usage=KEY_USAGE_KEY_AGREEMENT | KEY_USAGE_DIGITAL_SIGNATURE)
        cert = ImplicitCertificate(**fields)  # type: ignore[arg-type]
        r = (cert.hash_value() * ca_nonce + self.ca.private_key) % n
        identity = CbkeIdentity(cert, reconstruct_private_key(cert, request_key, r), self._ca_public)
        self._identities[eui64] = identity
        return identity

    def ephemeral_key(self, owner: int, partner: int, exchange: int) -> EphemeralKey:
        """``owner``'s ephemeral key for its ``exchange``-th key establishment with ``partner``."""
        return EphemeralKey.generate(self.suite.curve, self._scalar("cbke ephemeral", owner, partner, exchange))

    def ephemeral_source(self, owner: int) -> EphemeralSource:
        """For a Key Establishment engine of ``owner``: the first exchange with each partner uses
        exchange 0, the next 1, and so on (a retry after a timeout gets a new key)."""
        counts: dict[int, int] = {}

        def source(curve: KoblitzCurve, partner: int) -> EphemeralKey:
            exchange = counts.get(partner, 0)
            counts[partner] = exchange + 1
            return self.ephemeral_key(owner, partner, exchange)

        return source

    def expected_link_key(self, trust_centre: int, device: int, exchange: int = 0) -> bytes:
        """The link key CBKE between ``device`` (initiator) and ``trust_centre`` gives on their
        ``exchange``-th exchange: what a run with this seed establishes, computed offline."""
        hub = self.identity(trust_centre)
        node = self.identity(device)
        hub_ephemeral = self.ephemeral_key(trust_centre, device, exchange)
        node_ephemeral = self.ephemeral_key(device, trust_centre, exchange)
        return derive(hub, hub_ephemeral, node.certificate, node_ephemeral.encoded, am_initiator=False).link_key
