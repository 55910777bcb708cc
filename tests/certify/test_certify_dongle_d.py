"""The D checks of `certify device --bench` on the emulated-dongle path: bellows and the EZSP
dongle emulator (v8, v13) with a secured emulated ESME behind it. The test hub runs CBKE in host
mode (the NCP has no CBKE data), so it times the device and plays the wrong exchanges over the
real transport; each session starts with a Mgmt_Leave_req (Rejoin) that makes the device run CBKE
afresh. The verdicts are the virtual path's (D1 excepted: the dongle's Trust Centre admits the join)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.dcc.premises import default_premises
from emulator.han.ezsp.dongle import DongleState
from emulator.han.ezsp.ncp import EzspNcp
from emulator.han.virtual import VirtualHan
from emulator.runtime.clock import AsyncioClock
from emulator.runtime.events import EventBus
from emulator.scenario.han_security import key_material, secure_device
from emulator.scenario.premises import build_devices
from emulator.scenario.samples import trusted_key

from test_device_matrix import small_image  # noqa: F401  (the 4 KiB TEST ONLY image fixture)

ESME = "00-DB-12-34-56-78-90-A0"
ESME_ID = 0x00DB1234567890A0
DEVICE_SEED = 1  # the test hub's seed: its install codes and certificates (TEST ONLY CA)
RETRY_S = 1.0  # the stand-in's back-off after a failed CBKE (a device's own choice; 60 s by default)
WALL_LIMIT_S = 60.0


async def _dongle(version: int, defect: str | None) -> EzspNcp:
    spec = default_premises()
    clock = AsyncioClock()
    bus = EventBus(clock)

    def populate(han, clock) -> None:  # type: ignore[no-untyped-def]
        """Secured stand-ins, off until the test hub's first Mgmt_Leave_req (Rejoin) wakes them."""
        keys = key_material(DEVICE_SEED)
        made = build_devices(spec, han, clock, bus, trusted_key=trusted_key())
        for eui64, device in made.items():
            secure_device(device, keys, keys.install_code(eui64), ncp.dongle.eui64, 0x0000)
            device.key_establishment.retry_s = RETRY_S
        esme = made[ESME_ID]
        if defect == "trusts_any_issuer":
            esme.key_establishment.trusts_any_issuer = True
        elif defect == "accepts_plaintext_after_cbke":
            esme.transport.security.require = False

    ncp = EzspNcp(ezsp_version=version, han=VirtualHan(clock, latency=0.0), populate=populate,
                  dongle=DongleState(eui64=spec.comms_hub, extended_pan_id=spec.comms_hub))
    await ncp.start("127.0.0.1", 0)
    return ncp


async def _certify(version: int, defect: str | None, only: str, image: bytes, tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict]]:
    ncp = await _dongle(version, defect)
    try:
        bench = tmp_path / "bench.toml"
        bench.write_text(f'[dongle]\npath = "{ncp.url}"\n\n[[devices]]\neui64 = "{ESME}"\ntype = "ESME"\n')
        image_file = tmp_path / "esme-4k.ota"
        image_file.write_bytes(image)
        code = await asyncio.wait_for(asyncio.to_thread(
            main, ["certify", "device", "--bench", str(bench), "--image", str(image_file), "--only", only,
                   "--json"]), WALL_LIMIT_S)
    finally:
        await ncp.stop()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return code, {line["id"]: line for line in lines if line["type"] == "check"}


def _virtual(spec: str, only: str, image: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    image_file = tmp_path / "esme-4k-virtual.ota"
    image_file.write_bytes(image)
    main(["certify", "device", "--virtual", spec, "--image", str(image_file), "--only", only, "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return {line["id"]: line["verdict"] for line in lines if line["type"] == "check"}


async def test_a_good_device_behind_the_dongle_passes_d2_to_d4_as_on_the_virtual_path(
        small_image: bytes, tmp_path: Path, capsys) -> None:  # noqa: F811
    code, checks = await _certify(13, None, "D1,D2,D3,D4", small_image, tmp_path, capsys)
    verdicts = {check_id: check["verdict"] for check_id, check in checks.items()}
    assert verdicts == {"D1": "inconclusive", "D2": "pass", "D3": "pass", "D4": "pass"}, checks
    assert code == 0
    d3 = " ".join(e["message"] for e in checks["D3"]["evidence"])
    for status in ("NO_RESOURCES", "UNKNOWN_ISSUER", "BAD_MESSAGE", "BAD_KEY_CONFIRM"):
        assert f"Terminate {status}" in d3
    assert "as the NCP received them" in " ".join(e["message"] for e in checks["D4"]["evidence"])
    virtual = _virtual("conformant", "D2,D3,D4", small_image, tmp_path, capsys)
    assert virtual == {k: v for k, v in verdicts.items() if k != "D1"}


async def test_ezsp8_host_mode_cbke_times_the_device(small_image: bytes, tmp_path: Path, capsys) -> None:  # noqa: F811
    code, checks = await _certify(8, None, "D2", small_image, tmp_path, capsys)
    assert code == 0 and checks["D2"]["verdict"] == "pass", checks
    assert "CBKE suite 2 completed" in checks["D2"]["evidence"][-1]["message"]


@pytest.mark.parametrize("version, defect, check_id, finding", [
    (8, "trusts_any_issuer", "D3", "a hub certificate from another CA: the device sends no Terminate"),
    (13, "accepts_plaintext_after_cbke", "D4", "answers an Image Notify sent without APS encryption"),
], ids=["ezsp8-trusts_any_issuer", "ezsp13-accepts_plaintext_after_cbke"])
async def test_a_d_defect_behind_the_dongle_fails_its_check_as_on_the_virtual_path(
        version: int, defect: str, check_id: str, finding: str, small_image: bytes,  # noqa: F811
        tmp_path: Path, capsys) -> None:
    code, checks = await _certify(version, defect, check_id, small_image, tmp_path, capsys)
    assert code == 1
    assert checks[check_id]["verdict"] == "fail", checks
    assert any(e["message"].startswith(finding) for e in checks[check_id]["evidence"]), checks[check_id]
    assert _virtual(defect, check_id, small_image, tmp_path, capsys) == {check_id: "fail"}
