"""Fixtures for the OTA image tests."""

from __future__ import annotations

import pytest
from ota_image_builders import element, ota_file


@pytest.fixture
def standard_file() -> bytes:
    """A clean standard OTA file: an upgrade image and a manufacturer element."""
    return ota_file(element(0x0000, bytes(range(200))) + element(0xF001, b"vendor"))
