"""The whole RTDS 4.5.0 set (all 240-odd use cases) at envelope level: grouping header, signature, MAC.

Payloads outside the firmware flow stay bytes, but every message's envelope decodes, encodes back
to the same bytes, and its signature and MAC verify with the RTDS keystore, except the MACs
between two devices (PPMID → GSME prepayment commands), which no published key can check.
"""

from __future__ import annotations

import pytest
from gbcs_vectors import ENVELOPES, KEYSTORE, RTDS, all_use_cases, read_vector

from emulator.gbcs.messages import decode_message
from emulator.gbcs.protection import Check, MessageProtection
from emulator.keys.store import DirectoryKeyStore

USE_CASES = all_use_cases()
DEVICE_TO_DEVICE = {"PCS01_NA_SUCCESS_COMMAND", "PCS01_NA_SUCCESS_RESPONSE", "PCS02_NA_SUCCESS_COMMAND",
                    "PCS02_NA_SUCCESS_RESPONSE"}
pytestmark = pytest.mark.skipif(len(USE_CASES) < 200, reason="RTDS vectors not present in shared/")


@pytest.fixture(scope="module")
def protection() -> MessageProtection:
    return MessageProtection(DirectoryKeyStore(KEYSTORE))


@pytest.mark.parametrize("use_case", USE_CASES)
def test_every_rtds_envelope_round_trips_and_verifies(use_case: str, protection: MessageProtection) -> None:
    problems = []
    for path in sorted((RTDS / use_case).glob("*.HEX")):
        name = path.stem.removesuffix("_GBCS")
        ENVELOPES["files"] += 1
        raw = read_vector(path)
        message = decode_message(raw, allow_unmodelled=True)
        if message.envelope.encode() != raw:
            problems.append(f"{name}: re-encoding differs")
            continue
        ENVELOPES["re-encoded"] += 1
        verdict = protection.verify(message.envelope)
        if verdict.ok and verdict.found is None:
            ENVELOPES["unprotected"] += 1  # a pre-command: nobody has signed it yet
        elif verdict.ok:
            ENVELOPES["verified"] += 1
        elif name in DEVICE_TO_DEVICE and verdict.mac is Check.NO_KEY:
            ENVELOPES["no key"] += 1
        else:
            problems.append(f"{name}: {verdict}")
    assert problems == []
