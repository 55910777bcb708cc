"""Shared fixtures: a premises in virtual time, sample images, and test hygiene.

``site`` is the default premises (Comms Hub + PPMID + ESME) already powered on; ``make_site``
builds any other set (devices, behaviours, hub policy, a session store). ``no_thread_leak``
(autouse, for the whole suite) fails a test that leaves a thread running.
"""

from __future__ import annotations

import os

# Every GBCS message the emulator encodes is handed to its receiver without a second parse
# (emulator.gbcs.framing._seed); in the tests each such message is parsed anyway and must be
# what it was encoded from. Set before any emulator import (and inherited by serve subprocesses).
os.environ.setdefault("CH_EMULATOR_CHECK_GBCS_SEEDS", "1")

import threading
from typing import Any, Callable, Iterator

import pytest
from helpers import Site, build_site, sample

from emulator.dcc.premises import ESME_ID, PPMID_ID

pytest_plugins = ["pytester"]

# How long a thread a test started gets to finish on its own before it counts as leaked.
_THREAD_GRACE_S = 0.5


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    """Fail the test if a thread it started is still alive at teardown (style item 12)."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before]
    for thread in leaked:
        thread.join(_THREAD_GRACE_S)
    alive = [t for t in leaked if t.is_alive()]
    if alive:
        names = ", ".join(f"{t.name} (daemon={t.daemon})" for t in alive)
        pytest.fail(f"test left {len(alive)} thread(s) running: {names}", pytrace=False)


@pytest.fixture(scope="session")
def ppmid_image() -> bytes:
    return sample("PPMID")


@pytest.fixture(scope="session")
def esme_image() -> bytes:
    return sample("ESME")


@pytest.fixture
def make_site() -> Callable[..., Site]:
    """``make_site(devices=(PPMID_ID, ESME_ID), behaviours=..., policy=..., sessions=..., start=True)``."""

    def make(devices: tuple[int, ...] = (PPMID_ID, ESME_ID), *, start: bool = True, **options: Any) -> Site:
        built = build_site(devices, **options)
        if start:
            built.start()
        return built

    return make


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    """Comms Hub + PPMID + ESME of the default premises, powered on at virtual time 0."""
    return make_site()
