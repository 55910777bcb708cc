"""The Key Establishment cluster codec: golden bytes, strictness, zigpy's ZCL header parser, and
tshark's Key Establishment dissector on a pcap written with the project's PcapWriter.

zigpy 2.4.0 defines the Key Establishment cluster (0x0800) without commands, so zigpy checks the
ZCL header only; Wireshark's ``zbee_zcl_se.ke`` dissector checks every payload field.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from emulator.han.packet import ApsPacket
from emulator.han.pcap import PcapWriter
from emulator.han.security import ke_frames
from emulator.han.security.ke_frames import (
    KEY_ESTABLISHMENT_CLUSTER,
    ConfirmKeyDataRequest,
    ConfirmKeyDataResponse,
    EphemeralDataRequest,
    EphemeralDataResponse,
    InitiateKeyEstablishmentRequest,
    InitiateKeyEstablishmentResponse,
    KeFrame,
    KeFrameError,
    KeStatus,
    TerminateKeyEstablishment,
)
from emulator.runtime.clock import VirtualClock

TSHARK = shutil.which("tshark")
_BESIDE = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "cbke"
VECTORS = _BESIDE if _BESIDE.is_dir() else Path("/work/shared/vectors/cbke")
CERTICOM = json.loads((VECTORS / "certicom-test-certificates.json").read_text())
CERT1 = bytes.fromhex(CERTICOM["suite1_sect163k1"]["certificate"])
CERT2 = bytes.fromhex(CERTICOM["suite2_sect283k1"]["certificate"])
EPH1 = bytes.fromhex(CERTICOM["suite1_sect163k1"]["public_key"])
EPH2 = bytes.fromhex(CERTICOM["suite2_sect283k1"]["public_key"])
MACU = bytes(range(16))
MACV = bytes(range(16, 32))

DEVICE, HUB = 0x00DB_1234_5678_90A1, 0x0001_0203_0405_0607


def test_initiate_request_golden_bytes() -> None:
    frame = KeFrame(0x21, True, InitiateKeyEstablishmentRequest(0x0002, 10, 15, CERT2))
    raw = ke_frames.encode(frame)
    assert raw == bytes.fromhex("01 21 00 0200 0A 0F") + CERT2
    assert len(raw) == 81
    assert ke_frames.decode(raw) == frame


def test_terminate_from_the_server_golden_bytes() -> None:
    frame = KeFrame(5, False, TerminateKeyEstablishment(KeStatus.NO_RESOURCES, 10, 0x0002))
    assert ke_frames.encode(frame) == bytes.fromhex("09 05 03 04 0A 0200")


@given(tsn=st.integers(0, 255), to_server=st.booleans(), status=st.sampled_from(list(KeStatus)),
       wait=st.integers(0, 255), suite=st.sampled_from([1, 2]))
def test_terminate_round_trip_both_directions(tsn: int, to_server: bool, status: KeStatus, wait: int,
                                              suite: int) -> None:
    frame = KeFrame(tsn, to_server, TerminateKeyEstablishment(status, wait, suite))
    assert ke_frames.decode(ke_frames.encode(frame)) == frame


@pytest.mark.parametrize("frame", [
    KeFrame(1, True, InitiateKeyEstablishmentRequest(1, 5, 6, CERT1)),
    KeFrame(1, False, InitiateKeyEstablishmentResponse(2, 5, 6, CERT2)),
    KeFrame(2, True, EphemeralDataRequest(EPH2)),
    KeFrame(2, False, EphemeralDataResponse(EPH1)),
    KeFrame(3, True, ConfirmKeyDataRequest(MACU), disable_default_response=True),
    KeFrame(3, False, ConfirmKeyDataResponse(MACV)),
], ids=lambda f: type(f.command).__name__)
def test_zigpy_reads_our_zcl_header(frame: KeFrame) -> None:
    raw = ke_frames.encode(frame)
    header, payload = foundation.ZCLHeader.deserialize(raw)
    assert header.frame_control.is_cluster
    assert header.tsn == frame.tsn
    assert header.direction == (foundation.Direction.Client_to_Server if frame.to_server
                                else foundation.Direction.Server_to_Client)
    assert header.frame_control.disable_default_response == frame.disable_default_response
    assert payload == ke_frames.encode_payload(frame.command)
    assert ke_frames.decode(raw) == frame


@pytest.mark.parametrize(("raw", "message"), [
    (bytes.fromhex("0101"), "3 octets"),
    (bytes.fromhex("01 01 00 0200 0A 0F") + CERT2[:-1], "identity at offset 7 must be 48 or 74 octets, got 73"),
    (bytes.fromhex("01 01 01") + EPH2[:-1], "ephemeral data at offset 3 must be 22 or 37"),
    (bytes.fromhex("09 01 02") + MACV + b"\x00", "MACV at offset 3 must be 16"),
    (bytes.fromhex("01 01 04"), "unknown Key Establishment command 0x04"),
    (bytes.fromhex("05 34 12 01 00"), "manufacturer-specific"),
    (bytes.fromhex("00 01 03 01 00 02 00"), "not cluster-specific"),
])
def test_malformed_frames_are_refused_with_field_and_offset(raw: bytes, message: str) -> None:
    with pytest.raises(KeFrameError, match=message):
        ke_frames.decode(raw)


def test_a_response_cannot_be_sent_to_the_server() -> None:
    with pytest.raises(KeFrameError, match="otherwise"):
        ke_frames.encode(KeFrame(1, True, EphemeralDataResponse(EPH2)))


# -- tshark ----------------------------------------------------------------------------------------

EXCHANGE = [
    KeFrame(1, True, InitiateKeyEstablishmentRequest(2, 10, 15, CERT2)),
    KeFrame(1, False, InitiateKeyEstablishmentResponse(2, 12, 20, CERT2)),
    KeFrame(2, True, EphemeralDataRequest(EPH2)),
    KeFrame(2, False, EphemeralDataResponse(EPH2)),
    KeFrame(3, True, ConfirmKeyDataRequest(MACU)),
    KeFrame(3, False, ConfirmKeyDataResponse(MACV)),
    KeFrame(4, False, TerminateKeyEstablishment(KeStatus.NO_RESOURCES, 30, 2)),
    KeFrame(5, True, TerminateKeyEstablishment(KeStatus.BAD_KEY_CONFIRM, 0, 2)),
    KeFrame(6, True, InitiateKeyEstablishmentRequest(1, 10, 15, CERT1)),
]

FIELDS = (
    "frame.protocols", "_ws.expert.severity", "zbee_aps.cluster",
    "zbee_zcl_se.ke.cmd.srv_rx.id", "zbee_zcl_se.ke.cmd.srv_tx.id", "zbee_zcl_se.ke.attr.suite",
    "zbee_zcl_se.ke.init.ephemeral.time", "zbee_zcl_se.ke.init.confirm.time",
    "zbee_zcl_se.ke.cert.type", "zbee_zcl_se.ke.cert.serialno", "zbee_zcl_se.ke.cert.curve",
    "zbee_zcl_se.ke.cert.hash", "zbee_zcl_se.ke.cert.issuer", "zbee_zcl_se.ke.cert.subject",
    "zbee_zcl_se.ke.cert.reconst", "zbee_zcl_se.ke.cert.profile", "zbee_zcl_se.ke.cert.key.usage.agreement",
    "zbee_zcl_se.ke.qeu", "zbee_zcl_se.ke.qev", "zbee_zcl_se.ke.macu", "zbee_zcl_se.ke.macv",
    "zbee_zcl_se.ke.terminate.status", "zbee_zcl_se.ke.terminate.wait.time",
)


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


@pytest.fixture(scope="module")
def decoded(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    if TSHARK is None:
        pytest.skip("tshark is not installed")
    path = tmp_path_factory.mktemp("ke") / "ke.pcap"
    clock = VirtualClock()
    with PcapWriter(path, clock=clock.now) as writer:
        for i, frame in enumerate(EXCHANGE):
            src, dst = (DEVICE, HUB) if frame.to_server else (HUB, DEVICE)
            packet = ApsPacket(src=src, dst=dst, src_nwk=0x1234 if src == DEVICE else 0, dst_nwk=0 if src == DEVICE
                               else 0x1234, payload=ke_frames.encode(frame), cluster=KEY_ESTABLISHMENT_CLUSTER,
                               aps_counter=i)
            writer.write(packet, timestamp=float(i))
    args = [TSHARK, "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for name in FIELDS:
        args += ["-e", name]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return [{k: v for k, v in zip(FIELDS, line.split("\t")) if v} for line in result.stdout.splitlines()]


@pytest.mark.tshark
def test_tshark_dissects_every_frame_as_key_establishment(decoded: list[dict[str, str]]) -> None:
    assert len(decoded) == len(EXCHANGE)
    for row, frame in zip(decoded, EXCHANGE):
        assert row["frame.protocols"].endswith("zbee_zcl:zbee_zcl_se.ke")
        assert "_ws.expert.severity" not in row, row
        field = "zbee_zcl_se.ke.cmd.srv_rx.id" if frame.to_server else "zbee_zcl_se.ke.cmd.srv_tx.id"
        assert int(row[field], 0) == ke_frames.encode(frame)[2]


@pytest.mark.tshark
def test_tshark_reads_the_initiate_fields_and_suite2_certificate(decoded: list[dict[str, str]]) -> None:
    for row, frame in zip(decoded[:2], EXCHANGE[:2]):
        command = frame.command
        assert isinstance(command, (InitiateKeyEstablishmentRequest, InitiateKeyEstablishmentResponse))
        assert int(row["zbee_zcl_se.ke.attr.suite"], 0) == 2
        assert int(row["zbee_zcl_se.ke.init.ephemeral.time"]) == command.ephemeral_data_generate_time
        assert int(row["zbee_zcl_se.ke.init.confirm.time"]) == command.confirm_key_generate_time
        assert int(row["zbee_zcl_se.ke.cert.serialno"], 0) == 0x0B3AD5A312AB75D6
        assert int(row["zbee_zcl_se.ke.cert.curve"], 0) == 0x0D
        assert int(row["zbee_zcl_se.ke.cert.hash"], 0) == 0x08
        assert _bytes(row["zbee_zcl_se.ke.cert.issuer"]) == bytes.fromhex("1112131415161718")
        assert _bytes(row["zbee_zcl_se.ke.cert.subject"]) == bytes.fromhex("0022080000000001")
        assert _bytes(row["zbee_zcl_se.ke.cert.reconst"]) == CERT2[37:]
        assert row["zbee_zcl_se.ke.cert.key.usage.agreement"] in {"1", "True"}


@pytest.mark.tshark
def test_tshark_reads_a_suite1_certificate(decoded: list[dict[str, str]]) -> None:
    row = decoded[8]
    assert int(row["zbee_zcl_se.ke.attr.suite"], 0) == 1
    assert _bytes(row["zbee_zcl_se.ke.cert.reconst"]) == CERT1[:22]
    assert _bytes(row["zbee_zcl_se.ke.cert.subject"]) == CERT1[22:30]
    assert _bytes(row["zbee_zcl_se.ke.cert.issuer"]) == b"TESTSECA"
    assert _bytes(row["zbee_zcl_se.ke.cert.profile"]) == CERT1[38:]


@pytest.mark.tshark
def test_tshark_reads_ephemeral_data_smacs_and_terminate(decoded: list[dict[str, str]]) -> None:
    assert _bytes(decoded[2]["zbee_zcl_se.ke.qeu"]) == EPH2
    assert _bytes(decoded[3]["zbee_zcl_se.ke.qev"]) == EPH2
    assert _bytes(decoded[4]["zbee_zcl_se.ke.macu"]) == MACU
    assert _bytes(decoded[5]["zbee_zcl_se.ke.macv"]) == MACV
    for row, status, wait in ((decoded[6], KeStatus.NO_RESOURCES, 30), (decoded[7], KeStatus.BAD_KEY_CONFIRM, 0)):
        assert int(row["zbee_zcl_se.ke.terminate.status"], 0) == status
        assert int(row["zbee_zcl_se.ke.terminate.wait.time"]) == wait
        assert int(row["zbee_zcl_se.ke.attr.suite"], 0) == 2
