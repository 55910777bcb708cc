"""``--timing instant|realistic`` for ``run``, ``demo``, ``submit`` and ``serve`` (emulator/dcc/timing.py)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from emulator.dcc.timing import TimingPreset

if TYPE_CHECKING:
    from .spec import Scenario


def add_timing_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timing", choices=[p.value for p in TimingPreset], default=None,
                        help="instant: fixed short delays, for CI (the default); realistic: DCC-like WAN, CSP "
                             "retry, HAN and answer times drawn from the ranges of the scenario's [timing] "
                             "table (docs/dcc.md, \"Timing\")")


def apply_timing_option(scenario: "Scenario", args: Any) -> None:
    """``--timing`` wins over the scenario's ``[timing] preset``; the ranges stay the scenario's."""
    scenario.timing = scenario.timing.with_preset(getattr(args, "timing", None))
