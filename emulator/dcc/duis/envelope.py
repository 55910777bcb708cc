"""The ``sr:Response`` envelope shared by synchronous answers and asynchronous messages.

Nothing outside the DUIS namespace goes in: DUIS types are closed, so one foreign attribute or
element makes the whole message schema-invalid. Emulator-only facts travel in HTTP headers and the
JSON journal instead.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from lxml import etree

from .names import DEFAULT_SCHEMA_VERSION, NSMAP, sr

_DECIMAL = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3})?")


def format_datetime(when: datetime) -> str:
    """xs:dateTime in UTC with milliseconds and ``Z``, as DCC's responses write it."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    utc = when.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def schema_version_or_default(version: str | None) -> str:
    """The request's ``schemaVersion`` when it is a plain decimal like ``5.4``; else DCC Boxed's 5.1."""
    if version is not None and _DECIMAL.fullmatch(version.strip()):
        return version.strip()
    return DEFAULT_SCHEMA_VERSION


def response_root(
    *,
    request_id: str | None,
    response_id: str | None,
    response_code: str,
    at: datetime,
    schema_version: str | None = None,
) -> tuple[etree._Element, etree._Element]:
    """Build ``sr:Response`` with its Header; return (root, empty Body)."""
    root = etree.Element(sr("Response"), nsmap=NSMAP)
    root.set("schemaVersion", schema_version_or_default(schema_version))
    header = etree.SubElement(root, sr("Header"))
    if request_id is not None:
        etree.SubElement(header, sr("RequestID")).text = request_id
    if response_id is not None:
        etree.SubElement(header, sr("ResponseID")).text = response_id
    etree.SubElement(header, sr("ResponseCode")).text = str(response_code)
    etree.SubElement(header, sr("ResponseDateTime")).text = format_datetime(at)
    body = etree.SubElement(root, sr("Body"))
    return root, body


def add_text(parent: etree._Element, tag: str, text: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = text
    return element


def serialise(root: etree._Element) -> bytes:
    """Compact UTF-8 with a declaration, as DCC Boxed writes (whitespace is part of what is signed)."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
