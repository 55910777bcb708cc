"""Namespaces and the DUIS names this package reads and writes, in one place."""

from __future__ import annotations

SR_NS = "http://www.dccinterface.co.uk/ServiceUserGateway"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EMU_NS = "urn:ch-emulator:duis"
"""Everything the emulator adds that DUIS does not define lives in this namespace (prefix ``emu``)."""

NSMAP = {"sr": SR_NS}
NSMAP_EMU = {"sr": SR_NS, "emu": EMU_NS}

RESPONSE_SCHEMA_VERSION = "5.1"
"""As written by DCC Boxed's responses in the duis-parser test resources."""


def sr(local: str) -> str:
    """Clark notation for an element in the DUIS namespace."""
    return f"{{{SR_NS}}}{local}"


def emu(local: str) -> str:
    return f"{{{EMU_NS}}}{local}"
