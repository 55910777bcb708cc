"""GBCS envelopes: General-Signing (``DF``, the grouping header) and General-Ciphering (``DD``).

Layout (DLMS Green Book general-signing / general-ciphering APDUs as GBCS profiles them)::

    DF  09 <CRA flag> <originator counter 8>      transaction-id
        08 <originator EUI-64>                    originator-system-title
        08 <recipient EUI-64>                     recipient-system-title
        00 | 0C <DLMS date-time 12>               date-time
        <len> <message code 2> [<supplementary remote party id 8> [<its counter 8>
              [<supplementary originator counter 8>]]]    other-information
        <len> <payload>                           content
        [<len> <signature>]                       signature: 40 ‖ r ‖ s, 00, or absent

    DD  00 00 00 00 00 00                         empty transaction-id, system titles, date-time,
                                                  other-information; key-info absent
        <len>  11 <invocation counter 4>          security header (authenticated only)
               <General-Signing, signature 00 or 40 ‖ KRP signature>
               <MAC 12>

A pre-command (what DCC hands the User to sign) is a General-Signing without the signature
field: ``signature is None``. Inside a General-Ciphering the signature field is present, empty
(``b""``) or the 64-byte Known Remote Party signature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .message_codes import CraFlag, message_code_name
from .wire import GbcsDecodeError, GbcsEncodeError, Reader, encode_length, octet_string, uint_bytes

GENERAL_SIGNING_TAG = 0xDF
GENERAL_CIPHERING_TAG = 0xDD
TRANSACTION_ID_LENGTH = 9
SYSTEM_TITLE_LENGTH = 8
DLMS_DATE_TIME_LENGTH = 12
SIGNATURE_LENGTH = 64
MAC_LENGTH = 12
SECURITY_CONTROL_AUTHENTICATED = 0x11
"""Security suite 1, authentication only: GMAC, no encryption (the only form modelled)."""
SECURITY_CONTROL_ENCRYPTED = 0x31
_GENERAL_CIPHERING_EMPTY_FIELDS = (
    "transaction-id", "originator-system-title", "recipient-system-title", "date-time",
    "other-information", "key-info",
)
_SECURITY_HEADER_LENGTH = 5


@dataclass(frozen=True)
class OtherInformation:
    """The grouping header's other-information: message code and the supplementary fields.

    After the message code come, each only if the one before is there: the supplementary remote
    party id, its counter, then either the supplementary originator counter (26 bytes in all) or
    the supplementary remote party's key agreement certificate (DER, kept as bytes: more than 26).
    """

    message_code: int
    supplementary_remote_party_id: int | None = None
    supplementary_remote_party_counter: int | None = None
    supplementary_originator_counter: int | None = None
    supplementary_remote_party_ka_certificate: bytes | None = None

    def __post_init__(self) -> None:
        self.encode()  # a value that cannot be sent is refused when it is made

    def encode(self) -> bytes:
        out = uint_bytes(self.message_code, 2, "message code")
        optional = (
            ("supplementary remote party id", self.supplementary_remote_party_id),
            ("supplementary remote party counter", self.supplementary_remote_party_counter),
        )
        ended = False
        for name, value in optional:
            if value is None:
                ended = True
                continue
            if ended:
                raise GbcsEncodeError(f"other-information: {name} needs the fields before it")
            out += uint_bytes(value, 8, name)
        tail = [(name, value) for name, value in (
            ("supplementary originator counter", self.supplementary_originator_counter),
            ("supplementary remote party KA certificate", self.supplementary_remote_party_ka_certificate),
        ) if value is not None]
        if tail and ended:
            raise GbcsEncodeError(f"other-information: {tail[0][0]} needs the remote party id and counter")
        if len(tail) > 1:
            raise GbcsEncodeError("other-information carries a supplementary originator counter or a certificate, not both")
        if self.supplementary_originator_counter is not None:
            out += uint_bytes(self.supplementary_originator_counter, 8, "supplementary originator counter")
        if self.supplementary_remote_party_ka_certificate is not None:
            if len(self.supplementary_remote_party_ka_certificate) <= 8:
                raise GbcsEncodeError("a supplementary remote party KA certificate is longer than 8 bytes")
            out += self.supplementary_remote_party_ka_certificate
        return out

    @classmethod
    def decode(cls, reader: Reader) -> "OtherInformation":
        at = reader.offset
        size = reader.remaining
        if size not in (2, 10, 18, 26) and size <= 26:
            raise GbcsDecodeError("other-information", at, f"{size} bytes: must be 2, 10, 18, 26 or more (a certificate)")
        code = reader.uint(2, "message code")
        party = reader.uint(8, "supplementary remote party id") if size >= 10 else None
        counter = reader.uint(8, "supplementary remote party counter") if size >= 18 else None
        originator_counter = reader.uint(8, "supplementary originator counter") if size == 26 else None
        certificate = reader.rest() if size > 26 else None
        return cls(code, party, counter, originator_counter, certificate)


@dataclass(frozen=True)
class GroupingHeader:
    """The GBCS grouping header: who sends what to whom, and which counter it carries."""

    cra_flag: CraFlag
    originator_counter: int
    originator: int
    recipient: int
    other_information: OtherInformation
    date_time: bytes | None = None
    """A 12-byte DLMS date-time (responses carry one), or None."""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "cra_flag", CraFlag(self.cra_flag))
        except ValueError:
            raise GbcsEncodeError(f"CRA flag {self.cra_flag!r} is not 1, 2 or 3") from None
        # Encoded once, when made (a value that cannot be sent is refused then): a header is
        # encoded again for every signature, MAC and KDF input of its message.
        object.__setattr__(self, "_transaction_id",
                           bytes([self.cra_flag]) + uint_bytes(self.originator_counter, 8, "originator counter"))
        object.__setattr__(self, "_encoded", self._encode())

    @property
    def message_code(self) -> int:
        return self.other_information.message_code

    @property
    def transaction_id(self) -> bytes:
        """CRA flag ‖ originator counter: the 9 bytes the GBCS KDF and DLMS call transaction-id."""
        return self._transaction_id  # type: ignore[attr-defined]

    def encode(self) -> bytes:
        """``DF`` up to and including other-information (the content follows)."""
        return self._encoded  # type: ignore[attr-defined]

    def _encode(self) -> bytes:
        if self.date_time is not None and len(self.date_time) != DLMS_DATE_TIME_LENGTH:
            raise GbcsEncodeError(f"date-time must be {DLMS_DATE_TIME_LENGTH} bytes, not {len(self.date_time)}")
        return (
            bytes([GENERAL_SIGNING_TAG])
            + octet_string(self.transaction_id)
            + octet_string(uint_bytes(self.originator, 8, "originator"))
            + octet_string(uint_bytes(self.recipient, 8, "recipient"))
            + octet_string(self.date_time or b"")
            + octet_string(self.other_information.encode())
        )

    @classmethod
    def decode(cls, reader: Reader) -> "GroupingHeader":
        reader.expect(bytes([GENERAL_SIGNING_TAG]), "General-Signing tag")
        tid_len_at = reader.offset
        if reader.length("transaction-id length") != TRANSACTION_ID_LENGTH:
            raise GbcsDecodeError("transaction-id length", tid_len_at, f"must be {TRANSACTION_ID_LENGTH}")
        cra_at = reader.offset
        cra = reader.uint(1, "CRA flag")
        try:
            cra_flag = CraFlag(cra)
        except ValueError:
            raise GbcsDecodeError("CRA flag", cra_at, f"0x{cra:02X} is not 1 (command), 2 (response) or 3 (alert)") from None
        counter = reader.uint(8, "originator counter")
        titles = []
        for name in ("originator system title", "recipient system title"):
            at = reader.offset
            if reader.length(f"{name} length") != SYSTEM_TITLE_LENGTH:
                raise GbcsDecodeError(f"{name} length", at, f"must be {SYSTEM_TITLE_LENGTH}")
            titles.append(reader.uint(8, name))
        dt_at = reader.offset
        date_time = reader.octet_string("date-time")
        if len(date_time) not in (0, DLMS_DATE_TIME_LENGTH):
            raise GbcsDecodeError("date-time", dt_at, f"{len(date_time)} bytes: must be 0 or {DLMS_DATE_TIME_LENGTH}")
        other_len = reader.length("other-information length")
        other = OtherInformation.decode(reader.sub(other_len, "other-information"))
        return cls(cra_flag, counter, titles[0], titles[1], other, date_time or None)


@dataclass(frozen=True)
class GeneralSigning:
    """A grouping header, its content (the payload) and the signature field."""

    header: GroupingHeader
    content: bytes
    signature: bytes | None = b""
    """64 bytes r ‖ s; ``b""`` for an empty signature field; None when the field is absent."""
    content_offset: int = field(default=0, compare=False, repr=False)
    """Where the content starts in the decoded message (0 for a built one): for error offsets."""

    def to_be_signed(self) -> bytes:
        """What the GBCS signature covers: the grouping header after ``DF`` up to the end of content."""
        return self.header.encode()[1:] + octet_string(self.content)

    def encode(self) -> bytes:
        out = self._bytes()
        _seed(out, self._at(len(self.header.encode()) + len(encode_length(len(self.content)))))
        return out

    def _bytes(self) -> bytes:
        """:meth:`encode` without handing the message to the next decode (inside a ``DD``)."""
        known = self.__dict__.get("_encoded")  # a MAC and its check encode the same message again
        if known is not None:
            return known
        out = self.header.encode() + octet_string(self.content)
        if self.signature is not None:
            if len(self.signature) not in (0, SIGNATURE_LENGTH):
                raise GbcsEncodeError(f"signature must be 0 or {SIGNATURE_LENGTH} bytes, not {len(self.signature)}")
            out += octet_string(self.signature)
        object.__setattr__(self, "_encoded", out)
        return out

    def _at(self, content_offset: int) -> "GeneralSigning":
        """This message as decoding it gives it: its content found at ``content_offset``."""
        if content_offset == self.content_offset:
            return self
        return GeneralSigning(self.header, self.content, self.signature, content_offset)

    @classmethod
    def decode(cls, data: bytes, base: int = 0) -> "GeneralSigning":
        return cls.read(Reader(data, base), whole=True)

    @classmethod
    def read(cls, reader: Reader, *, whole: bool) -> "GeneralSigning":
        header = GroupingHeader.decode(reader)
        content_len = reader.length("content length")
        content_offset = reader.offset
        content = reader.take(content_len, f"content ({message_code_name(header.message_code)} payload)")
        signature: bytes | None = None
        if reader.remaining:
            sig_at = reader.offset
            signature = reader.octet_string("signature")
            if len(signature) not in (0, SIGNATURE_LENGTH):
                raise GbcsDecodeError("signature length", sig_at, f"{len(signature)}: must be 0 or {SIGNATURE_LENGTH}")
        if whole:
            reader.done("General-Signing")
        return cls(header, content, signature, content_offset)


@dataclass(frozen=True)
class GeneralCiphering:
    """A General-Signing authenticated with a GMAC (no encryption)."""

    signing: GeneralSigning
    mac: bytes
    invocation_counter: int = 0
    security_control: int = SECURITY_CONTROL_AUTHENTICATED

    @property
    def header(self) -> GroupingHeader:
        return self.signing.header

    def information(self) -> bytes:
        """The authenticated information: the whole General-Signing with its signature field."""
        if self.signing.signature is None:
            raise GbcsEncodeError("a General-Signing inside General-Ciphering needs its signature field (b'' if unsigned)")
        return self.signing._bytes()

    def authenticated_data(self) -> bytes:
        """GMAC additional data: security control ‖ the five empty header octet strings ‖ information.

        The five zero bytes are the empty transaction-id, originator/recipient system titles,
        date-time and other-information of the General-Ciphering header (key-info is not part of it).
        Checked against every MAC in DCC's RTDS 4.5.0 set.
        """
        return bytes([self.security_control]) + bytes(5) + self.information()

    def encode(self) -> bytes:
        if len(self.mac) != MAC_LENGTH:
            raise GbcsEncodeError(f"MAC must be {MAC_LENGTH} bytes, not {len(self.mac)}")
        information = self.information()
        ciphered = (
            bytes([self.security_control])
            + uint_bytes(self.invocation_counter, 4, "invocation counter")
            + information
            + self.mac
        )
        prefix = bytes([GENERAL_CIPHERING_TAG]) + bytes(len(_GENERAL_CIPHERING_EMPTY_FIELDS)) + encode_length(len(ciphered))
        out = prefix + ciphered
        inner_start = len(prefix) + 5  # security control, invocation counter
        head = len(self.signing.header.encode()) + len(encode_length(len(self.signing.content)))
        _seed(out, GeneralCiphering(self.signing._at(inner_start + head), self.mac, self.invocation_counter,
                                    self.security_control))
        return out

    @classmethod
    def decode(cls, data: bytes) -> "GeneralCiphering":
        reader = Reader(data)
        reader.expect(bytes([GENERAL_CIPHERING_TAG]), "General-Ciphering tag")
        for name in _GENERAL_CIPHERING_EMPTY_FIELDS:
            at = reader.offset
            if reader.uint(1, name) != 0:
                raise GbcsDecodeError(name, at, "must be empty (00) in a GBCS General-Ciphering")
        size = reader.length("ciphered-content length")
        body = reader.sub(size, "ciphered-content")
        reader.done("General-Ciphering")
        sc_at = body.offset
        security_control = body.uint(1, "security control")
        if security_control == SECURITY_CONTROL_ENCRYPTED:
            raise GbcsDecodeError("security control", sc_at, "0x31 (encrypted content) is not modelled: MAC-only (0x11) is")
        if security_control != SECURITY_CONTROL_AUTHENTICATED:
            raise GbcsDecodeError("security control", sc_at, f"0x{security_control:02X} is not 0x11 (authenticated)")
        invocation_counter = body.uint(4, "invocation counter")
        if body.remaining < MAC_LENGTH:
            raise GbcsDecodeError("MAC", body.offset, f"needs {MAC_LENGTH} bytes, only {body.remaining} remain (truncated)")
        inner = body.sub(body.remaining - MAC_LENGTH, "General-Signing")
        mac = body.take(MAC_LENGTH, "MAC")
        signing = GeneralSigning.read(inner, whole=False)
        if signing.signature is None:
            raise GbcsDecodeError("signature length", inner.offset, "missing: a General-Ciphering's content ends with its signature field")
        inner.done("General-Signing")
        return cls(signing, mac, invocation_counter, security_control)


Envelope = GeneralSigning | GeneralCiphering


_SEEDS: dict[bytes, "Envelope"] = {}
_SEEDS_MAX = 64
CHECK_SEEDS = os.environ.get("CH_EMULATOR_CHECK_GBCS_SEEDS") == "1"
"""The test suite sets it: every seeded envelope is decoded anyway and must equal its seed."""


def _seed(data: bytes, envelope: "Envelope") -> None:
    """``data`` was just encoded from ``envelope``: decoding it gives ``envelope`` back (the codec
    is canonical and round-trips byte for byte: RTDS's 1,275 envelopes), so the next
    :func:`decode_envelope` of these bytes (the device a command was built for, the hub a
    response came from) takes it from here instead of parsing it again."""
    if len(_SEEDS) >= _SEEDS_MAX:
        _SEEDS.clear()
    _SEEDS[data] = envelope


def decode_envelope(data: bytes) -> Envelope:
    """A ``DF`` or ``DD`` message, strictly: every byte accounted for."""
    seeded = _SEEDS.pop(data, None) if type(data) is bytes else None  # a seed serves one decode
    if seeded is not None:
        if not CHECK_SEEDS:
            return seeded
        decoded = _decode_envelope(data)
        if decoded != seeded or _content_offset(decoded) != _content_offset(seeded):
            raise AssertionError(f"GBCS message {data.hex()} decodes as {decoded!r}, not as the {seeded!r} it was "
                                 "encoded from")
        return seeded
    return _decode_envelope(data)


def _content_offset(envelope: "Envelope") -> int:
    return (envelope.signing if isinstance(envelope, GeneralCiphering) else envelope).content_offset


def _decode_envelope(data: bytes) -> Envelope:
    if not data:
        raise GbcsDecodeError("message", 0, "empty")
    if data[0] == GENERAL_SIGNING_TAG:
        return GeneralSigning.decode(data)
    if data[0] == GENERAL_CIPHERING_TAG:
        return GeneralCiphering.decode(data)
    raise GbcsDecodeError("message tag", 0, f"0x{data[0]:02X} is neither DF (General-Signing) nor DD (General-Ciphering)")
