"""Sign, MAC and verify GBCS messages with the keys of a key store, as each use case requires.

Which protection a message gets (GBCS and the RTDS 4.5.0 vectors agree):

| message | protection |
|---|---|
| CCS08, CS09, FDRA 0x00CE/0x00CF, 0x00CA alert, critical generic alert 0x1000, CS06 response | ``DF``, signed by the originator's DS key |
| CS06 command | ``DD``: the supplier's KRP signature inside, the ACB's MAC outside |
| ECS52, GCS38, CS08, CCS01, CCS02 command and response, CS14 alert 0x0018, non-critical generic alert 0x1001 | ``DD``, MAC only |
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from ..keys.store import KeyNotFound, KeyStore, KeyUsage, private_key, private_keys, public_keys
from . import security
from .framing import SIGNATURE_LENGTH, Envelope, GeneralCiphering, GeneralSigning, GroupingHeader
from .message_codes import CraFlag, MessageCode
from .messages import ACCESS_CONTROL_BROKER_ID


class Protection(enum.Enum):
    SIGNED = "signed (DF)"
    MAC = "MAC (DD)"
    SIGNED_AND_MAC = "KRP signature and MAC (DD)"


_MAC_ONLY = {
    MessageCode.ECS52_READ_ESME_CHF_FIRMWARE_VERSION, MessageCode.GCS38_READ_GSME_FIRMWARE_VERSION,
    MessageCode.CS08_READ_PPMID_HCALCS_FIRMWARE_VERSION, MessageCode.GENERIC_NON_CRITICAL_ALERT,
    MessageCode.CCS01_ADD_DEVICE_TO_CHF_DEVICE_LOG, MessageCode.CCS02_REMOVE_DEVICE_FROM_CHF_DEVICE_LOG,
    MessageCode.CS14_DEVICE_LOG_CHANGED_ALERT,
}


def protection_for(header: GroupingHeader) -> Protection | None:
    """What the use case requires, or None for a message code the table does not know."""
    code = header.message_code
    if code == MessageCode.CS06_ACTIVATE_FIRMWARE:
        return Protection.SIGNED_AND_MAC if header.cra_flag is CraFlag.COMMAND else Protection.SIGNED
    if code in _MAC_ONLY:
        return Protection.MAC
    if code in set(MessageCode):
        return Protection.SIGNED
    return None


class Check(enum.Enum):
    VALID = "valid"
    INVALID = "INVALID"
    ABSENT = "absent"
    NO_KEY = "no key to check it"


@dataclass(frozen=True)
class SecurityVerdict:
    signature: Check
    mac: Check
    expected: Protection | None
    found: Protection | None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Every protection present verifies and the message has the protection its use case needs."""
        checks = (self.signature, self.mac)
        return (Check.INVALID not in checks and Check.NO_KEY not in checks
                and (self.expected is None or self.expected is self.found))


class MessageProtection:
    """Signs and MACs outgoing messages and verifies incoming ones with ``keys``."""

    def __init__(self, keys: KeyStore, *, access_control_broker: int = ACCESS_CONTROL_BROKER_ID) -> None:
        self.keys = keys
        self.access_control_broker = access_control_broker

    # -- outgoing ---------------------------------------------------------------------------------

    def sign(self, message: GeneralSigning, *, signer: int | None = None) -> GeneralSigning:
        """Sign with the DS key of ``signer`` (default: the header's originator)."""
        key = private_key(self.keys, message.header.originator if signer is None else signer,
                          KeyUsage.DIGITAL_SIGNATURE)
        return security.sign_general_signing(message, key)

    def mac_key(self, header: GroupingHeader) -> bytes:
        """The GMAC key of ``header``'s message: the sender's KA private key with the peer's KA public key.

        The sender is the ACB for a command, the device for a response or alert. Without the
        sender's private key, the receiver's private key and the sender's public key make the same
        key (how a receiver recomputes a MAC). When the store holds two public keys for one EUI-64
        (an emulated device and the RTDS device of the same id), the first store of a
        :class:`CombinedKeyStore` wins: list the emulated devices first.
        """
        parties = security.mac_parties(header, self.access_control_broker)
        sender, peer = ((parties.remote_party, parties.device) if header.cra_flag is CraFlag.COMMAND
                        else (parties.device, parties.remote_party))
        for mine, theirs in ((sender, peer), (peer, sender)):
            secrets = private_keys(self.keys, mine, KeyUsage.KEY_AGREEMENT)
            publics = public_keys(self.keys, theirs, KeyUsage.KEY_AGREEMENT)
            if secrets and publics:
                return security.derive_mac_key(private_key(self.keys, mine, KeyUsage.KEY_AGREEMENT), publics[0], header)
        raise KeyNotFound(sender, KeyUsage.KEY_AGREEMENT, private=True)

    def mac(self, message: GeneralSigning, *, invocation_counter: int = 0) -> GeneralCiphering:
        signing = message if message.signature is not None else GeneralSigning(message.header, message.content, b"")
        return security.mac_general_signing(signing, self.mac_key(message.header),
                                            invocation_counter=invocation_counter)

    def protect(self, message: GeneralSigning) -> Envelope:
        """Apply the protection the use case requires (see the module table).

        A CS06 command keeps a KRP signature it already has (the User's signed pre-command);
        without one it is signed here with the originator's DS key.
        """
        needed = protection_for(message.header) or Protection.SIGNED
        if needed is Protection.SIGNED:
            return self.sign(message)
        if needed is Protection.MAC:
            return self.mac(GeneralSigning(message.header, message.content, b""))
        if message.signature is None or len(message.signature) != SIGNATURE_LENGTH:
            message = self.sign(message)
        return self.mac(message)

    # -- incoming ---------------------------------------------------------------------------------

    def _mac_keys(self, header: GroupingHeader, parties: security.MacParties, *,
                  include_prepayment: bool) -> list[bytes]:
        """Every MAC key the store can make for this pair (verification also tries prepayment KA keys)."""
        found: list[bytes] = []
        for mine, theirs in ((parties.remote_party, parties.device), (parties.device, parties.remote_party)):
            secrets = (private_keys(self.keys, mine, KeyUsage.KEY_AGREEMENT) if not include_prepayment else
                       [e.private_key for e in self.keys.entries(mine, KeyUsage.KEY_AGREEMENT) if e.private_key])
            for secret in secrets:
                for public in public_keys(self.keys, theirs, KeyUsage.KEY_AGREEMENT):
                    found.append(security.derive_mac_key(secret, public, header))
        return found

    def verify_signature(self, message: GeneralSigning) -> Check:
        if not message.signature:
            return Check.ABSENT
        candidates: list[ec.EllipticCurvePublicKey] = public_keys(
            self.keys, message.header.originator, KeyUsage.DIGITAL_SIGNATURE)
        if not candidates:
            return Check.NO_KEY
        data = message.to_be_signed()
        ok = any(security.verify_signature(key, data, message.signature) for key in candidates)
        return Check.VALID if ok else Check.INVALID

    def verify_mac(self, message: GeneralCiphering) -> Check:
        """VALID if a key pair of the store makes this MAC; NO_KEY if a plausible pair cannot be tried.

        A command is tried with the ACB pair (the rule) and with its header's own pair (device-to-device
        commands such as a PPMID's to a GSME carry the two devices' MAC, which no public key store can
        check).
        """
        header = message.header
        pairs = [security.mac_parties(header, self.access_control_broker)]
        if header.cra_flag is CraFlag.COMMAND and header.originator != self.access_control_broker:
            pairs.append(security.MacParties(device=header.recipient, remote_party=header.originator))
        unchecked = False
        for parties in pairs:
            keys = self._mac_keys(header, parties, include_prepayment=True)
            if any(security.verify_mac(message, key) for key in keys):
                return Check.VALID
            unchecked = unchecked or not keys
        return Check.NO_KEY if unchecked else Check.INVALID

    def verify(self, envelope: Envelope) -> SecurityVerdict:
        signing = envelope.signing if isinstance(envelope, GeneralCiphering) else envelope
        signature = self.verify_signature(signing)
        mac = self.verify_mac(envelope) if isinstance(envelope, GeneralCiphering) else Check.ABSENT
        has_signature = signature is not Check.ABSENT
        found = (None if not has_signature and mac is Check.ABSENT
                 else Protection.SIGNED_AND_MAC if has_signature and isinstance(envelope, GeneralCiphering)
                 else Protection.MAC if isinstance(envelope, GeneralCiphering)
                 else Protection.SIGNED)
        expected = protection_for(signing.header)
        if signing.signature is None:
            expected = None  # a pre-command: nobody has signed it yet
        detail = ""
        if expected is not None and found is not expected:
            detail = f"the use case needs {expected.value}, the message has {found.value if found else 'none'}"
        return SecurityVerdict(signature, mac, expected, found, detail)
