"""Whatever bytes a vendor hands in, certify image gives a verdict per check, never a traceback."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.certify.image_run import ImageOptions
from emulator.gbcs.codes import DeviceType
from emulator.certify.model import Verdict
from emulator.certify.runner import certify_image

_DEVICES = st.sampled_from([None, *DeviceType])


@settings(max_examples=150, deadline=None)
@given(device=_DEVICES, edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
       cut=st.integers(0, 400), sample=st.sampled_from([DeviceType.ESME, DeviceType.PPMID]))
def test_damaged_samples_always_get_a_verdict_per_check(samples, device, edits, cut, sample) -> None:
    data = bytearray(samples.by_device[sample].data)
    for offset, value in edits:  # damage the header and the start of the body
        data[offset] = value
    if cut:
        del data[-cut:]
    options = samples.clean_options(sample)
    options = replace(options, device_type=device)
    report = certify_image("fuzz", bytes(data), options)
    assert len(report.results) == 12
    for result in report.results:
        assert result.verdict is not Verdict.NOT_AVAILABLE
        assert result.evidence and all(item.message for item in result.evidence)
    if cut:  # a truncated file never passes A2, and some check fails on it
        assert all(r.verdict is not Verdict.PASS for r in report.results if r.check_id == "A2")
        assert report.failed


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_fail_a_check_or_parse(data: bytes) -> None:
    report = certify_image("random", b"\x1e\xf1\xee\x0b" + data, ImageOptions())
    assert len(report.results) == 12
