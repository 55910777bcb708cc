"""HAN backends by name: one registry, each imported on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emulator.scenario.backends import HAN_BACKENDS, han_backend


def test_every_registered_backend_resolves_to_a_player() -> None:
    assert set(HAN_BACKENDS) == {"virtual", "ezsp-sim"}
    for name in HAN_BACKENDS:
        assert callable(han_backend(name))


def test_an_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown HAN backend 'zwave' \\(known: virtual, ezsp-sim\\)"):
        han_backend("zwave")


def test_the_virtual_backend_plays_without_importing_bellows() -> None:
    code = ("import sys; from emulator.scenario.backends import han_backend; han_backend('virtual'); "
            "import emulator.scenario.cli; print('bellows' in sys.modules, 'zigpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
