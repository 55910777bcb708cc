"""Counts the RTDS vectors matched, so every run prints "N of N" (per use case) at the end."""

from __future__ import annotations

import pytest
from gbcs_vectors import ENVELOPES, MATCHED, TRIED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ENVELOPES:
        terminalreporter.section("RTDS 4.5.0 GBCS envelopes (all use cases)")
        terminalreporter.write_line(
            f"{ENVELOPES['re-encoded']} of {ENVELOPES['files']} decoded and re-encoded byte-exact; "
            f"{ENVELOPES['verified']} signed or MAC'd ones verified, {ENVELOPES['unprotected']} pre-commands "
            f"(nothing to verify), {ENVELOPES['no key']} device-to-device MACs not checkable (no key)")
    if not TRIED:
        return
    total_tried, total_matched = sum(TRIED.values()), sum(MATCHED.values())
    terminalreporter.section("RTDS 4.5.0 GBCS vectors")
    for case in sorted(TRIED):
        terminalreporter.write_line(f"{case}: {MATCHED[case]} of {TRIED[case]} matched")
    terminalreporter.write_line(f"{total_matched} of {total_tried} vectors matched "
                                "(decode, rebuild from values byte-exact, signature/MAC verified)")

