"""Namespaces and the DUIS names this package reads and writes, in one place."""

from __future__ import annotations

SR_NS = "http://www.dccinterface.co.uk/ServiceUserGateway"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"

NSMAP = {"sr": SR_NS}

DEFAULT_SCHEMA_VERSION = "5.1"
"""What a message carries when no request says otherwise (DCC Boxed's responses write 5.1)."""

RESPONSE_SCHEMA_VERSION = DEFAULT_SCHEMA_VERSION  # the name earlier code imports


def sr(local: str) -> str:
    """Clark notation for an element in the DUIS namespace."""
    return f"{{{SR_NS}}}{local}"


def ds(local: str) -> str:
    """Clark notation for an element in the XML-DSig namespace."""
    return f"{{{DS_NS}}}{local}"
