"""``no_image_status = "not_authorized"``: until an image is loaded for a device the hub answers
its Query Next Image with NOT_AUTHORIZED, as a reference GBCS hub does; the ZCL default stays
NO_IMAGE_AVAILABLE (tests/ota/test_client.py), and once an image is loaded the device upgrades."""

from __future__ import annotations

import pytest

from emulator.dcc.premises import PPMID_ID
from emulator.ota.frames import QueryNextImageRequest, QueryNextImageResponse, Status
from emulator.ota.policy import ServerPolicy
from emulator.scenario.spec import ScenarioError, parse_scenario

HOUR = 3600.0


def test_not_authorized_until_an_image_is_loaded_then_the_upgrade_runs(make_site, ppmid_image: bytes) -> None:
    site = make_site((PPMID_ID,), policy=ServerPolicy(no_image_status="not_authorized"))
    site.run(60.0)
    assert site.frames(QueryNextImageRequest, src=PPMID_ID)
    (answer, *_) = site.frames(QueryNextImageResponse, dst=PPMID_ID)
    assert answer.command.status == Status.NOT_AUTHORIZED == 0x7E
    assert site.named("query_answered", PPMID_ID)[0].fields["status"] == "NOT_AUTHORIZED"
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("firmware_activated", PPMID_ID, within=HOUR)


def test_a_bad_value_is_one_clear_line() -> None:
    with pytest.raises(ScenarioError, match="no_image_status must be 'no_image_available' or 'not_authorized'"):
        parse_scenario({"ota": {"no_image_status": "refuse"}}, source="ota.toml")
