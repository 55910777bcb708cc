"""The fleet spec loader never crashes on a TOML shape: a spec, or a FleetSpecError naming the key.

TOML parses into str, int, float (inf, nan too), bool, dates, arrays and tables; hypothesis builds
such documents around the spec's real keys (and some that are not), with values of any type."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.cli import main
from emulator.fleet.spec import FleetSpecError, load_spec, spec_from_mapping
from emulator.scenario.samples import sample_path

KEYS = ["premises", "seed", "workers", "duration_s", "progress_interval_s", "image", "device", "faults", "radio",
        "file", "device_type", "type", "count", "firmware_version", "hardware_version", "sleepy",
        "poll_interval_s", "model", "loss", "max_frame_retries", "burst", "mean_good_s", "mean_bad_s", "loss_bad",
        "aps_ack", "first_request_lost", "reboot_mid_transfer", "typo"]
SAMPLE = str(sample_path("PPMID", 0x0084))

scalars = st.one_of(
    st.integers(min_value=-2**63, max_value=2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(max_size=12), st.sampled_from(["ppmid", "esme", "PPMID", "ESME", "802.15.4", "fixed",
                                                          SAMPLE, "ACDC0001", "a\x00b", "0x1200"]),
    st.just(dt.date(2026, 12, 1)), st.just(dt.datetime(2026, 12, 1, 10, 35)),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=12)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_toml_shape_is_a_spec_or_a_named_error(data: dict[str, Any]) -> None:
    try:
        spec_from_mapping(data, where="fleet.toml").validate()
    except FleetSpecError as exc:
        assert str(exc).startswith(("fleet.toml", "image ")), exc


@pytest.mark.parametrize("text, message", [
    ("premises = 1\nimage = 0\n", "fleet.toml: image: expected list, got 0"),
    ("premises = 1\n[image]\nfile = 'x'\n", "fleet.toml: image: expected list"),
    ('premises = 1\n[[image]]\nfile = "a\\u0000b"\n', "cannot contain a NUL character"),
    ("premises = 1\n[[image]]\nfile = 7\n", "image[0].file: expected str, got 7"),
    ("premises = '3'\n", "fleet.toml: premises: expected int, got '3'"),
    ("duration_s = nan\n", "duration_s must be a positive number of seconds"),
    ("[[device]]\ntype = 'PPMID'\ncount = 100000\n", "1..200 devices"),
    ("[[device]]\ntype = 'TOASTER'\n", "device[0].type: 'TOASTER' is not one of"),
    ("[radio]\nloss = 2.0\n", "radio.loss: must be a probability"),
    ("[radio.burst]\nmean_bad_s = -1\n", "radio.burst.mean_bad_s: must be positive"),
    ("[faults]\nfirst_request_lost = 'lots'\n", "faults.first_request_lost: expected float"),
])
def test_shapes_that_used_to_crash_are_clear_errors(text: str, message: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "fleet.toml"
    spec.write_text(text)
    with pytest.raises(FleetSpecError):  # the API, without the CLI's default image
        load_spec(spec).validate()
    assert main(["fleet", str(spec)]) == 2  # the CLI adds the sample PPMID image when none is given
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
