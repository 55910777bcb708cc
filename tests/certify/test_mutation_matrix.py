"""Every image defect class made from the samples is caught by the check one would expect."""

from __future__ import annotations

from dataclasses import replace

import pytest

from emulator.certify.catalogue import CATALOGUE
from emulator.gbcs.codes import DeviceType
from emulator.certify.model import Group, Verdict
from emulator.certify.mutations import (
    MUTATIONS,
    Mutation,
    run_mutation,
    sub_element,
    upgrade_payload,
    zigbee_file,
)
from emulator.certify.runner import certify_image


@pytest.mark.parametrize("device", [DeviceType.ESME, DeviceType.GSME, DeviceType.PPMID], ids=lambda d: d.value)
def test_unmutated_samples_fail_no_check(samples, device: DeviceType) -> None:
    report = certify_image(device.value, samples.by_device[device].data, samples.clean_options(device))
    assert not report.failed, [r.summary for r in report.results if r.verdict is Verdict.FAIL]


def test_a_clean_zigbee_file_fails_no_check(samples) -> None:
    data = zigbee_file(samples, sub_element(0x0000, upgrade_payload(samples)))
    assert not certify_image("zigbee", data, samples.clean_options(None)).failed


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_mutation_is_caught_by_its_check(samples, mutation: Mutation) -> None:
    row = run_mutation(mutation, samples)
    assert row.caught, f"{mutation.name}: expected {mutation.expected_check} to fail, failed: {row.failed_checks}"
    result = next(r for r in row.report.results if r.check_id == mutation.expected_check)
    assert all(item.message for item in result.evidence)


def test_every_image_check_has_a_mutation_and_the_matrix_has_no_duplicates() -> None:
    image_checks = {c.check_id for c in CATALOGUE if c.group is Group.IMAGE}
    assert {m.expected_check for m in MUTATIONS} == image_checks
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS)


def test_a_suite_2_signed_zigbee_file_passes_a11_and_names_the_test_ca(samples) -> None:
    from emulator.certify.mutations import zigbee_signed_file

    options = replace(samples.clean_options(None), zigbee_signers=(0x0022080000000001,))
    report = certify_image("signed", zigbee_signed_file(samples), options)
    a11 = next(r for r in report.results if r.check_id == "A11")
    assert a11.verdict is Verdict.PASS, a11.summary
    assert "Certicom TESTSECA suite-2 CA (TEST ONLY)" in a11.summary
    assert "00-22-08-00-00-00-00-01 is an allowed signer" in a11.summary
    assert not report.failed
