"""The ``sr:Response`` envelope shared by synchronous answers and asynchronous messages."""

from __future__ import annotations

from datetime import datetime, timezone

from lxml import etree

from .names import NSMAP, NSMAP_EMU, RESPONSE_SCHEMA_VERSION, sr


def format_datetime(when: datetime) -> str:
    """xs:dateTime in UTC with milliseconds and ``Z``, as DCC's responses write it."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    utc = when.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def response_root(
    *,
    request_id: str | None,
    response_id: str | None,
    response_code: str,
    at: datetime,
    with_emu: bool = False,
) -> tuple[etree._Element, etree._Element]:
    """Build ``sr:Response`` with its Header; return (root, empty Body)."""
    root = etree.Element(sr("Response"), nsmap=NSMAP_EMU if with_emu else NSMAP)
    root.set("schemaVersion", RESPONSE_SCHEMA_VERSION)
    header = etree.SubElement(root, sr("Header"))
    if request_id is not None:
        etree.SubElement(header, sr("RequestID")).text = request_id
    if response_id is not None:
        etree.SubElement(header, sr("ResponseID")).text = response_id
    etree.SubElement(header, sr("ResponseCode")).text = response_code
    etree.SubElement(header, sr("ResponseDateTime")).text = format_datetime(at)
    body = etree.SubElement(root, sr("Body"))
    return root, body


def add_text(parent: etree._Element, tag: str, text: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = text
    return element


def serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
