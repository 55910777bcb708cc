"""Hardened XML parsing for documents that arrive from outside.

DUIS never needs a DTD, entities, processing instructions or network access, so any document
that carries one is refused before its content is looked at. The check runs on the decoded text:
the encoding is found first (BOM, the UTF-16/UTF-32 shape of ``<?``, or the declaration), the
document is decoded to text, scanned, and only then handed to libxml2 as UTF-8, configured to load
no DTD, resolve no entity and touch no file or network. XInclude is never run. libxml2's own limits
(no ``huge_tree``) stay on as a second fence behind the byte-size check. Error texts name only the
position and the reason, never anything of the host.
"""

from __future__ import annotations

import codecs
import re

from lxml import etree

from .errors import DuisError

DEFAULT_MAX_DOCUMENT = 8 * 1024 * 1024
"""Bytes. A 6 MB firmware image fits in base64 with room for the envelope."""

# A DTD must come before the root element; anything that declares one is hostile or broken here.
_DTD_MARKERS = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_DECLARATION = re.compile(r"\A\s*<\?xml(?:\s[^>]*?)?\?>", re.DOTALL)
_DECLARED_ENCODING = re.compile(rb"\A<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']", re.DOTALL)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SHAPES: tuple[tuple[bytes, str], ...] = (  # '<?' (or '<') without a BOM, XML 1.0 appendix F
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_SINGLE_BYTE_OK = {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"}


def _parser() -> etree.XMLParser:
    # A fresh parser per document: lxml parsers keep state and are not safe to share across threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
        encoding="utf-8",
    )


def _encoding_of(data: bytes) -> tuple[str, int]:
    """(codec, bytes of BOM to skip)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    for shape, codec in _SHAPES:
        if data.startswith(shape):
            return codec, 0
    declared = _DECLARED_ENCODING.match(data.lstrip())
    if declared:
        name = declared.group(1).decode("ascii").lower()
        if name in _SINGLE_BYTE_OK:
            return ("utf-8" if name.startswith("utf") else "ascii" if "ascii" in name else "latin-1"), 0
        if name.replace("_", "-") in {"utf-16", "utf-16le", "utf-16be", "utf-32", "utf-32le", "utf-32be"}:
            raise DuisError(f"document declares encoding {name!r} but is not written in it")
        raise DuisError(f"encoding {name!r} is not accepted; send UTF-8 (or UTF-16/UTF-32)")
    return "utf-8", 0


def decode_document(data: bytes) -> str:
    """The document as text, whatever its encoding; refuses what cannot be decoded."""
    codec, skip = _encoding_of(data)
    try:
        return data[skip:].decode(codec)
    except UnicodeDecodeError as exc:
        raise DuisError(f"document is not valid {codec.upper()} (byte {exc.start + skip})") from None


def parse_document(data: bytes, *, max_size: int = DEFAULT_MAX_DOCUMENT) -> etree._Element:
    """Parse ``data`` into its root element or raise :class:`DuisError` saying why not."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("parse_document takes bytes")
    raw = bytes(data)
    size = len(raw)
    if size > max_size:
        raise DuisError(f"document is {size} bytes, larger than the limit of {max_size} bytes")
    text = decode_document(raw)
    if not text.strip():
        raise DuisError("document is empty")
    match = _DTD_MARKERS.search(text)
    if match:
        raise DuisError(
            f"document declares a DTD or entity ({match.group(0)} at character {match.start()}); "
            "DUIS documents must not carry one"
        )
    body = _DECLARATION.sub("", text, count=1)
    parser = _parser()
    try:
        root = etree.fromstring(body.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (0, 0)
        raise DuisError(f"malformed XML at line {line}, column {column}: {_safe_reason(exc.msg)}") from None
    if root is None:
        raise DuisError("document has no root element")
    for entry in parser.error_log:
        # libxml2 only warns about an undeclared prefix and leaves "sr:Request" as a plain name.
        if entry.domain_name == "NAMESPACE" and entry.level_name in ("ERROR", "FATAL"):
            raise DuisError(f"namespace error at line {entry.line}, column {entry.column}: "
                            f"{_safe_reason(entry.message)}")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise DuisError("document declares a DTD; DUIS documents must not carry one")
    return root


def _safe_reason(message: str | None) -> str:
    """libxml2's reason without anything that could name a file or URL."""
    reason = (message or "not well-formed").splitlines()[0]
    reason = re.sub(r"(?:file|https?|ftp)://\S*", "<uri>", reason)
    return reason[:200]
