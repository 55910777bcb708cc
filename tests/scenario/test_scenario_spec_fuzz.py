"""Fuzz the scenario loader: any TOML-shaped document is a Scenario or a ScenarioError, never a crash.

Documents are built from the loader's own key names at every level with values of every TOML type
(NULs in strings, huge and negative numbers, empty tables and arrays), so the generator reaches the
nested readers (premises, devices, requests, csp, ota, radio) rather than stopping at the top.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.scenario.spec import ScenarioError, load_scenario, parse_scenario

KEYS = [
    "name", "description", "seed", "duration_s", "settle_s", "radio", "han", "ota", "csp", "premises",
    "requests", "expect", "signatures", "latency_s", "loss", "devices", "hubs", "check_delay",
    "default_wan_delay", "command_delay", "fail", "delay", "comms_hub", "id", "eui64", "type", "suppliers",
    "firmware_version", "manufacturer_code", "image_type", "hardware_version", "status", "faults", "sr",
    "image", "device", "at_s", "after", "execute_at", "hash", "policy", "sleepy", "poll_interval_s",
]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["00-DB-12-34-56-78-90-A0", "ESME", "PPMID", "11.1", "11.4", "a\x00b", "", "N19", "0"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12,
)
DOCUMENTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_any_document_is_a_scenario_or_a_scenario_error(document: dict) -> None:
    try:
        parse_scenario(document, source="fuzz.toml", base=Path("/nonexistent"))
    except ScenarioError as exc:
        assert str(exc).startswith("fuzz.toml")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_any_file_is_a_scenario_or_a_scenario_error(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.toml"
    path.write_bytes(data)
    try:
        load_scenario(path)
    except ScenarioError:
        pass


def test_the_shapes_once_reported_as_crashes_are_scenario_errors() -> None:
    for text in ("csp = 0", "[csp]\nhubs = 0", "[[premises]]\nsuppliers = [{}]",
                 '[[requests]]\nsr = "11.1"\nat_s = 0\nimage = "a\\u0000b"\ndevices = ["00-DB-12-34-56-78-90-A0"]'):
        try:
            parse_scenario(tomllib.loads(text), source="shape.toml", base=Path("/nonexistent"))
        except ScenarioError as exc:
            assert str(exc).startswith("shape.toml")
        else:
            raise AssertionError(f"{text!r} was accepted")
