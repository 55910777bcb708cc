"""``hil check``: does the dongle hold CBKE data (a Silicon Labs image with the CBKE library and
preinstalled certificates), and for which crypto suite?

Asked with ``getCertificate283k1`` (suite 2, what GB uses) and ``getCertificate`` (suite 1). A
dongle without the library answers LIBRARY_NOT_PRESENT (or does not know the command); then the
host has to do the Key Establishment cryptography itself and install the link key (docs/hil.md).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from emulator.eui64 import format_eui64
from emulator.han.security.certificates import CertificateError, CryptoSuite, ImplicitCertificate

_LOGGER = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0
_COMMANDS = ((CryptoSuite.SUITE_2, "getCertificate283k1"), (CryptoSuite.SUITE_1, "getCertificate"))


async def cbke_data(transport: Any) -> dict[str, Any]:
    """Per suite: the certificate's issuer and subject, or why there is none."""
    ezsp = getattr(getattr(transport, "app", None), "_ezsp", None)
    found: dict[str, Any] = {}
    for suite, name in _COMMANDS:
        key = f"suite{suite.number}"
        if ezsp is None:
            found[key] = "not an EZSP dongle"
            continue
        try:
            status, certificate = await asyncio.wait_for(getattr(ezsp, name)(), PROBE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - an old or foreign image: report, do not fail the check
            found[key] = f"{name} not answered: {exc or type(exc).__name__}"
            continue
        if int(status) != 0:
            found[key] = f"{name}: {getattr(status, 'name', status)}"
            continue
        try:
            cert = ImplicitCertificate.decode(bytes(certificate), suite)
        except CertificateError as exc:
            found[key] = f"{name}: unreadable certificate ({exc})"
            continue
        found[key] = {"issuer": cert.issuer.hex().upper(), "subject": format_eui64(cert.subject)}
    return found


def describe(found: dict[str, Any]) -> tuple[bool, str]:
    """(holds suite-2 data, one line for the report)."""
    suites = [k for k, v in found.items() if isinstance(v, dict)]
    if not suites:
        return False, ("no CBKE data on the dongle (" + "; ".join(str(v) for v in found.values()) +
                       "): the host must compute CBKE and install the link key (docs/hil.md)")
    parts = [f"{k} issuer {found[k]['issuer']} subject {found[k]['subject']}" for k in suites]
    return "suite2" in suites, "CBKE data: " + ", ".join(parts)
