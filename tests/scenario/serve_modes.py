"""``serve`` in both of its shapes, for tests that must hold for each: one process
(:func:`build_service`) and ``--workers 2``'s core and edge joined by the link
(:func:`build_split_service`, in one process)."""

from __future__ import annotations

from typing import Any

from emulator.scenario.serve import Service, build_service, build_split_service

SERVE_MODES = ["one-process", "core+edge"]


async def make_service(mode: str, scenario: Any, **options: Any) -> Service:
    if mode == "core+edge":
        return await build_split_service(scenario, **options)
    return build_service(scenario, **options)
