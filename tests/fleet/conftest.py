"""Fleet fixtures: the sample PPMID image as a fleet image source."""

from __future__ import annotations

import pytest

from emulator.gbcs.codes import DeviceType
from emulator.fleet.spec import FleetSpec, ImageSource, read_image
from emulator.scenario.samples import sample_path


@pytest.fixture(scope="session")
def ppmid_source() -> ImageSource:
    return read_image(str(sample_path("PPMID", 0x0084)), DeviceType.PPMID)


@pytest.fixture
def small_fleet(ppmid_source: ImageSource) -> FleetSpec:
    return FleetSpec(premises=4, images=(ppmid_source,), seed=7, duration_s=20_000.0)
