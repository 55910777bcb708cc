"""APS frame security: round trip, tamper detection, and tshark decrypting our frames with the key
given in its ZigBee preferences (what a user does in Wireshark with a device's link key)."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from emulator.han.packet import ApsPacket
from emulator.han.pcap import FrameSynthesiser, PcapWriter, fcs16
from emulator.han.security import aps_security as aps
from emulator.han.security.aps_security import ApsSecurityError, KeyIdentifier
from emulator.ota import codec
from emulator.ota.frames import QueryNextImageRequest

TSHARK = shutil.which("tshark")
# The published install-code example's link key (test value).
LINK_KEY = bytes.fromhex("66B6900981E1EE3CA4206B6B861C02BB")
DEVICE, HUB = 0x00DB_1234_5678_90A1, 0x0001_0203_0405_0607
MFR, IMAGE_TYPE, VERSION = 0x1234, 0x0101, 0x01020304
APS_HEADER = struct.pack("<BBHHBB", 0x40, 1, 0x0019, 0x0109, 1, 0x2A)  # data, unicast, ack request


def _zcl() -> bytes:
    return codec.encode(QueryNextImageRequest(0, MFR, IMAGE_TYPE, VERSION), tsn=7)


def test_round_trip_with_extended_nonce() -> None:
    frame = APS_HEADER + _zcl()
    secured = aps.secure(frame, LINK_KEY, source=DEVICE, frame_counter=0x01020304)
    assert secured[0] == APS_HEADER[0] | aps.APS_FC_SECURITY
    aux = secured[8:8 + 13]
    assert aux[0] == 0x20  # level 0 on the air, data key, extended nonce
    assert aux[1:5] == bytes.fromhex("04030201") and aux[5:] == DEVICE.to_bytes(8, "little")
    assert len(secured) == len(frame) + 13 + aps.MIC_LENGTH
    assert _zcl() not in secured
    unsecured, header = aps.unsecure(secured, LINK_KEY)
    assert unsecured == frame
    assert header == aps.AuxiliaryHeader(KeyIdentifier.DATA, 0x01020304, DEVICE)


def test_without_extended_nonce_the_receiver_supplies_the_source() -> None:
    secured = aps.secure(APS_HEADER + _zcl(), LINK_KEY, source=DEVICE, frame_counter=9, extended_nonce=False)
    with pytest.raises(ApsSecurityError, match="no source EUI-64"):
        aps.unsecure(secured, LINK_KEY)
    assert aps.unsecure(secured, LINK_KEY, source=DEVICE)[0] == APS_HEADER + _zcl()
    with pytest.raises(ApsSecurityError, match="MIC check failed"):
        aps.unsecure(secured, LINK_KEY, source=HUB)


@pytest.mark.parametrize("offset", [0, 3, 9, 20, -1])  # header, aux header, payload, MIC
def test_any_changed_octet_fails_the_mic(offset: int) -> None:
    secured = bytearray(aps.secure(APS_HEADER + _zcl(), LINK_KEY, source=DEVICE, frame_counter=1))
    secured[offset] ^= 0x01
    with pytest.raises(ApsSecurityError):
        aps.unsecure(bytes(secured), LINK_KEY)


def test_wrong_key_fails_the_mic() -> None:
    secured = aps.secure(APS_HEADER + _zcl(), LINK_KEY, source=DEVICE, frame_counter=1)
    with pytest.raises(ApsSecurityError, match="MIC check failed for frame counter 1"):
        aps.unsecure(secured, bytes(16))


def test_key_transport_key_is_the_hashed_link_key() -> None:
    command = bytes([0x01, 0x11]) + bytes([0x05]) + bytes(16)  # APS command frame, Transport Key
    secured = aps.secure(command, LINK_KEY, source=HUB, frame_counter=3, key_id=KeyIdentifier.KEY_TRANSPORT)
    assert (secured[2] >> 3) & 0x03 == KeyIdentifier.KEY_TRANSPORT
    assert aps.unsecure(secured, LINK_KEY)[0] == command


# -- tshark ----------------------------------------------------------------------------------------

def _secured_capture(path: Path, key_for_frame: bytes) -> None:
    """One MAC frame whose APS layer we secured, written the way PcapWriter writes (link type 195)."""
    packet = ApsPacket(src=DEVICE, dst=HUB, src_nwk=0x1234, dst_nwk=0x0000, payload=b"", aps_counter=0x2A)
    plain = FrameSynthesiser().mac_frame(packet)[:-2]
    prefix, header = plain[:-8], plain[-8:]
    body = prefix + aps.secure(header + _zcl(), key_for_frame, source=DEVICE, frame_counter=0x1000)
    mac = body + fcs16(body).to_bytes(2, "little")
    stream = io.BytesIO()
    PcapWriter(stream)  # writes the global header
    stream.write(struct.pack("<IIII", 100, 0, len(mac), len(mac)) + mac)
    path.write_bytes(stream.getvalue())


def _tshark(path: Path, key: bytes) -> dict[str, str]:
    assert TSHARK is not None
    fields = ("frame.protocols", "zbee_aps.security", "zbee.sec.counter", "zbee.sec.src64", "zbee.sec.key_id",
              "zbee.sec.decryption_key", "zbee_zcl_general.ota.manufacturer_code",
              "zbee_zcl_general.ota.image.type", "zbee_zcl_general.ota.file.version", "wpan.fcs_ok")
    args = [TSHARK, "-n", "-r", str(path), "-o", f'uat:zigbee_pc_keys:"{key.hex()}","Normal","ch-emulator test"',
            "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for name in fields:
        args += ["-e", name]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    return {k: v for k, v in zip(fields, line.split("\t")) if v}


@pytest.mark.tshark
@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_decrypts_our_aps_frame_with_the_link_key(tmp_path: Path) -> None:
    path = tmp_path / "aps.pcap"
    _secured_capture(path, LINK_KEY)
    row = _tshark(path, LINK_KEY)
    assert row["frame.protocols"].endswith("zbee_aps:zbee_zcl:zbee_zcl_general.ota")
    assert row["wpan.fcs_ok"] in {"1", "True"}
    assert row["zbee_aps.security"] in {"1", "True"}
    assert int(row["zbee.sec.counter"]) == 0x1000
    assert int(row["zbee.sec.src64"].replace(":", ""), 16) == DEVICE
    assert row["zbee.sec.decryption_key"] == "ch-emulator test"
    assert int(row["zbee_zcl_general.ota.manufacturer_code"], 0) == MFR
    assert int(row["zbee_zcl_general.ota.image.type"], 0) == IMAGE_TYPE
    assert int(row["zbee_zcl_general.ota.file.version"], 0) == VERSION


@pytest.mark.tshark
@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_cannot_read_the_payload_without_the_key(tmp_path: Path) -> None:
    path = tmp_path / "aps.pcap"
    _secured_capture(path, LINK_KEY)
    row = _tshark(path, bytes(16))
    assert "zbee_zcl" not in row["frame.protocols"]
    assert "zbee_zcl_general.ota.file.version" not in row
