"""Hardened XML parsing for documents that arrive from outside.

DUIS never needs a DTD, entities, processing instructions or network access, so any document
that carries one is refused before its content is looked at. libxml2's own limits (no
``huge_tree``) stay on as a second fence behind the byte-size check.
"""

from __future__ import annotations

import re

from lxml import etree

from .errors import DuisError

DEFAULT_MAX_DOCUMENT = 8 * 1024 * 1024
"""Bytes. A 6 MB firmware image fits in base64 with room for the envelope."""

# A DTD must come before the root element; anything that declares one is hostile or broken here.
_DTD_MARKERS = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)


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
    )


def parse_document(data: bytes, *, max_size: int = DEFAULT_MAX_DOCUMENT) -> etree._Element:
    """Parse ``data`` into its root element or raise :class:`DuisError` saying why not."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("parse_document takes bytes")
    size = len(data)
    if size > max_size:
        raise DuisError(f"document is {size} bytes, larger than the limit of {max_size} bytes")
    if not size or not bytes(data).strip():
        raise DuisError("document is empty")
    match = _DTD_MARKERS.search(data)
    if match:
        raise DuisError(
            f"document declares a DTD or entity ({match.group(0).decode('ascii', 'replace')} "
            f"at byte {match.start()}); DUIS documents must not carry one"
        )
    try:
        root = etree.fromstring(bytes(data), _parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (0, 0)
        raise DuisError(f"malformed XML at line {line}, column {column}: {exc.msg}") from None
    docinfo = root.getroottree().docinfo
    # Encodings other than UTF-8/ASCII can hide the markers from the byte scan above.
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise DuisError("document declares a DTD; DUIS documents must not carry one")
    return root
