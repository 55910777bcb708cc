"""SR 11.3's CS06 pre-command on the User's side: sign it (the KRP signature), and check what a
User hands back before the ACB MACs it.

DCC returns the pre-command (``DF`` grouping header and ActivateFirmware content, no signature
field) in ``PreCommand{GBCSPayload}``; the User appends the signature field (``40`` and 64 octets,
ECDSA P-256 over the bytes after ``DF``) with its Digital Signing key and sends it back in
``SignedPreCommand{GBCSPayload}``. A signed pre-command is acceptable only if it is the issued
pre-command byte for byte with a 64-octet signature after it.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from . import security
from .framing import SIGNATURE_LENGTH, GeneralSigning
from .message_codes import CraFlag, MessageCode
from .messages import decode_message
from .wire import GbcsDecodeError


class PreCommandError(ValueError):
    """A pre-command or signed pre-command that cannot be used; the message says what and where."""


def read_precommand(data: bytes, *, signed: bool) -> GeneralSigning:
    """The CS06 command in ``data``: without a signature field (``signed`` False) or with a
    64-octet one (``signed`` True); anything else is a PreCommandError."""
    try:
        message = decode_message(data)
    except GbcsDecodeError as exc:
        raise PreCommandError(f"not a GBCS message: {exc}") from None
    if not isinstance(message.envelope, GeneralSigning):
        raise PreCommandError("a pre-command is a General Signing (DF) message, not General Ciphering (DD)")
    header = message.header
    if header.message_code != MessageCode.CS06_ACTIVATE_FIRMWARE or header.cra_flag is not CraFlag.COMMAND:
        raise PreCommandError(f"message code 0x{header.message_code:04X} ({header.cra_flag.name.lower()}) "
                              "is not a CS06 Activate Firmware command")
    signature = message.envelope.signature
    if signed and (signature is None or len(signature) != SIGNATURE_LENGTH):
        raise PreCommandError(f"offset {len(data)}: no {SIGNATURE_LENGTH}-octet KRP signature after the pre-command")
    if not signed and signature is not None:
        raise PreCommandError("the pre-command already has a signature field")
    return message.envelope


def sign_precommand(precommand: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The signed pre-command: ``precommand`` ‖ ``40`` ‖ the KRP signature made with ``key``."""
    unsigned = read_precommand(precommand, signed=False)
    return security.sign_general_signing(unsigned, key).encode()


def check_signed_precommand(signed: bytes, issued: bytes) -> GeneralSigning:
    """The signed CS06 if it is ``issued`` with a signature appended (whether the signature is the
    trusted supplier's is for the device to decide, as a meter does)."""
    command = read_precommand(signed, signed=True)
    unsigned = GeneralSigning(command.header, command.content, None).encode()
    if unsigned != issued:
        at = next((i for i, (a, b) in enumerate(zip(unsigned, issued)) if a != b), min(len(unsigned), len(issued)))
        raise PreCommandError(f"offset {at}: the signed pre-command differs from the pre-command issued")
    return command
