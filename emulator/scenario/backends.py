"""HAN backends of ``run``/``demo --han NAME``, chosen by name from one registry.

Like python-can's interface registry: each name maps to a ``"module:function"`` string that is
imported on first use, so ``--han virtual`` never imports bellows and a new backend is one line
here. A backend plays a scenario and returns its :class:`~emulator.scenario.runner.RunResult`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from .runner import RunResult
    from .spec import Scenario

HAN_BACKENDS: dict[str, str] = {
    "virtual": "emulator.scenario.runner:play_virtual",
    "ezsp-sim": "emulator.scenario.ezsp_sim:play_on_ezsp_sim",
}
"""Backend name -> ``"module:function"`` playing a scenario on it."""


@dataclass(frozen=True, slots=True)
class HanOptions:
    """What the command line gives every backend (each uses what applies to it)."""

    observers: list[Callable[[Any], None]] = field(default_factory=list)
    pcap: str | None = None
    ezsp_version: int = 8


class PlayScenario(Protocol):
    def __call__(self, scenario: "Scenario", options: HanOptions) -> "RunResult": ...


def han_backend(name: str) -> PlayScenario:
    """The backend called ``name``, imported now; a KeyError names the known ones."""
    try:
        target = HAN_BACKENDS[name]
    except KeyError:
        raise KeyError(f"unknown HAN backend {name!r} (known: {', '.join(HAN_BACKENDS)})") from None
    module_name, _, attribute = target.partition(":")
    play: PlayScenario = getattr(importlib.import_module(module_name), attribute)
    return play
