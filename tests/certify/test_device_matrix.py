"""The device mutation matrix: the conformant virtual device passes every applicable B check, and
every device defect of the fault catalogue is caught by the B check one would expect."""

from __future__ import annotations

import pytest

from emulator.certify.catalogue import CATALOGUE
from emulator.certify.device.dut import CONFORMANT
from emulator.certify.image_run import DeviceType
from emulator.certify.device.matrix import CLASSIFICATION, FaultClass, playable, run_row
from emulator.certify.model import Group, Verdict
from emulator.certify.mutations import gbcs_image
from emulator.faults import FAULTS

DEFECTS = sorted(name for name, c in CLASSIFICATION.items() if c.kind is FaultClass.DEVICE_DEFECT)
HARMLESS = sorted(name for name, c in CLASSIFICATION.items() if c.kind is not FaultClass.DEVICE_DEFECT
                  and playable(name))


@pytest.fixture(scope="module")
def small_image(samples) -> bytes:
    """A 4 KiB ESME image signed with the TEST ONLY key: the same checks, shorter transfers."""
    return gbcs_image(samples, bytes(range(256)) * 16)


def test_every_fault_of_the_catalogue_is_classified() -> None:
    assert set(CLASSIFICATION) == set(FAULTS)


def test_every_implemented_device_check_has_a_device_defect_that_it_must_catch() -> None:
    implemented = {c.check_id for c in CATALOGUE if c.group is not Group.IMAGE and c.implemented}
    caught_by = {c.expected_check for c in CLASSIFICATION.values() if c.kind is FaultClass.DEVICE_DEFECT}
    assert {f"B{n}" for n in range(1, 17)} <= implemented
    assert implemented <= caught_by


def test_the_conformant_device_passes_every_applicable_check(samples) -> None:
    image = samples.by_device[DeviceType.ESME].data  # the ESME sample itself
    row = run_row(CONFORMANT, image, samples.signing_key, samples.public_key)
    verdicts = {r.check_id: r.verdict for r in row.report.results}
    assert not row.failed and not row.warned
    assert [c for c, v in verdicts.items() if v is Verdict.INCONCLUSIVE] == []
    # B10 is for page-request clients; the C and D checks without a script say what they wait for.
    assert verdicts["B10"] is Verdict.NOT_APPLICABLE
    scripted = {c.check_id for c in CATALOGUE if c.group in (Group.GBCS, Group.NETWORK) and c.implemented}
    assert "C3" in scripted
    assert {c for c, v in verdicts.items() if v is Verdict.PASS} == (
        {f"B{n}" for n in range(1, 17)} - {"B10"}) | scripted
    assert {c for c, v in verdicts.items() if v is Verdict.NOT_AVAILABLE} == {
        c.check_id for c in CATALOGUE if c.group in (Group.GBCS, Group.NETWORK) and not c.implemented}


@pytest.mark.parametrize("fault", DEFECTS)
def test_device_defect_is_caught_by_its_check(samples, small_image: bytes, fault: str) -> None:
    expected = CLASSIFICATION[fault].expected_check
    assert expected is not None
    row = run_row(fault, small_image, samples.signing_key, samples.public_key, only=expected)
    (result,) = row.report.results
    assert result.verdict is Verdict.FAIL, f"{fault}: {expected} gave {result.verdict.value}: {result.summary}"
    assert result.frames, "a failed device check shows the frames involved"


@pytest.mark.parametrize("fault", HARMLESS)
def test_radio_conditions_and_legal_behaviour_fail_no_check(samples, small_image: bytes, fault: str) -> None:
    row = run_row(fault, small_image, samples.signing_key, samples.public_key)
    assert not row.failed, [r.summary for r in row.report.results if r.verdict is Verdict.FAIL]


def test_a_long_declared_silent_phase_only_warns(samples, small_image: bytes) -> None:
    row = run_row("long_silent_phase", small_image, samples.signing_key, samples.public_key, only="B13")
    (result,) = row.report.results
    assert result.verdict is Verdict.WARN
    assert "3000 s" in result.summary


def test_a_page_request_device_is_tested_by_b10(samples, small_image: bytes) -> None:
    row = run_row("page_requests_only", small_image, samples.signing_key, samples.public_key, only="B10")
    (result,) = row.report.results
    assert result.verdict is Verdict.PASS
    assert "blocks never sent" in result.summary


def test_docs_show_every_fault_with_its_class_and_expected_check() -> None:
    import re

    from certify_paths import REPO

    doc = (REPO / "docs" / "certify.md").read_text(encoding="utf-8")
    for name, classified in CLASSIFICATION.items():
        expected = classified.expected_check or "none"
        assert re.search(rf"^\| `{name}` \| {classified.kind.value} \| .+ \| {expected} \|", doc, re.M), name
    assert f"device mutation score: {len(DEFECTS)}/{len(DEFECTS)}" in doc
