"""Captures checked by an independent decoder: Wireshark's tshark must read back every field.

The ZCL payloads are built with zigpy's OTA cluster definitions, not with the project's codec, so
the capture is checked against two implementations that are not ours.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest
import zigpy.types as t
import zigpy.zcl.foundation as foundation
from zigpy.zcl.clusters.general import Ota

from emulator.han.packet import ApsPacket
from emulator.han.pcap import LinkType, PcapWriter
from emulator.runtime.clock import VirtualClock

TSHARK = shutil.which("tshark")
pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(TSHARK is None, reason="Wireshark's tshark is not on PATH (apt-get install tshark)"),
]

HUB_EUI = 0x00DB_1234_5678_9000
PPMID_EUI = 0x00DB_1234_5678_90A4
HUB_NWK = 0x0000
PPMID_NWK = 0x4A2F
PAN_ID = 0x5E11
MFR = 0x1039
IMAGE_TYPE = 0x0084
OLD_VERSION = 0x0000_0102
NEW_VERSION = 0x0000_0103
IMAGE_SIZE = 198_765
HW_VERSION = 0x0002
BLOCK_OFFSET = 6_300
BLOCK_DATA = bytes((i * 37 + 11) & 0xFF for i in range(63))
QUERY_JITTER = 100
UPGRADE_TIME_WAIT = 0xFFFF_FFFF


def _zcl(tsn: int, command: foundation.ZCLCommandDef, **fields: object) -> bytes:
    server_sends = command.id in {c.id for c in Ota.ClientCommandDefs}
    direction = foundation.Direction.Server_to_Client if server_sends else foundation.Direction.Client_to_Server
    header = foundation.ZCLHeader.cluster(tsn, command.id, direction=direction)
    return header.serialize() + command.schema(**fields).serialize()


class Sent(NamedTuple):
    at: float
    packet: ApsPacket
    command_id: int


def _to_ppmid(tsn: int, counter: int, payload: bytes) -> ApsPacket:
    return ApsPacket(src=HUB_EUI, dst=PPMID_EUI, src_nwk=HUB_NWK, dst_nwk=PPMID_NWK, payload=payload,
                     aps_counter=counter)


def _to_hub(tsn: int, counter: int, payload: bytes) -> ApsPacket:
    return ApsPacket(src=PPMID_EUI, dst=HUB_EUI, src_nwk=PPMID_NWK, dst_nwk=HUB_NWK, payload=payload,
                     aps_counter=counter)


def _ota_exchange() -> list[Sent]:
    """An OTA transfer at irregular virtual times, one frame of each kind a Comms Hub exchanges."""
    s, c = Ota.ServerCommandDefs, Ota.ClientCommandDefs
    notify = ApsPacket(
        src=HUB_EUI, dst=0, src_nwk=HUB_NWK, dst_nwk=0xFFFF, dst_ep=0xFF, aps_counter=40,
        payload=_zcl(1, c.image_notify, payload_type=Ota.ImageNotifyCommand.PayloadType.QueryJitter_ManufacturerCode_ImageType_NewFileVersion,
                     query_jitter=QUERY_JITTER, manufacturer_code=MFR, image_type=IMAGE_TYPE,
                     new_file_version=NEW_VERSION),
    )
    qnir = _to_hub(0, 10, _zcl(
        7, s.query_next_image, field_control=Ota.QueryNextImageCommand.FieldControl.HardwareVersion,
        manufacturer_code=MFR, image_type=IMAGE_TYPE, current_file_version=OLD_VERSION,
        hardware_version=HW_VERSION))
    qnirsp = _to_ppmid(0, 41, _zcl(
        7, c.query_next_image_response, status=foundation.Status.SUCCESS, manufacturer_code=MFR,
        image_type=IMAGE_TYPE, file_version=NEW_VERSION, image_size=IMAGE_SIZE))
    ibr = _to_hub(0, 11, _zcl(
        8, s.image_block, field_control=Ota.ImageBlockCommand.FieldControl.RequestNodeAddr,
        manufacturer_code=MFR, image_type=IMAGE_TYPE, file_version=NEW_VERSION,
        file_offset=BLOCK_OFFSET, maximum_data_size=len(BLOCK_DATA), request_node_addr=t.EUI64(
            PPMID_EUI.to_bytes(8, "little"))))
    ibrsp = _to_ppmid(0, 42, _zcl(
        8, c.image_block_response, status=foundation.Status.SUCCESS, manufacturer_code=MFR,
        image_type=IMAGE_TYPE, file_version=NEW_VERSION, file_offset=BLOCK_OFFSET,
        image_data=BLOCK_DATA))
    uer = _to_hub(0, 12, _zcl(
        9, s.upgrade_end, status=foundation.Status.SUCCESS, manufacturer_code=MFR,
        image_type=IMAGE_TYPE, file_version=NEW_VERSION))
    uersp = _to_ppmid(0, 43, _zcl(
        9, c.upgrade_end_response, manufacturer_code=MFR, image_type=IMAGE_TYPE,
        file_version=NEW_VERSION, current_time=0, upgrade_time=UPGRADE_TIME_WAIT))
    return [
        Sent(0.0, notify, 0x00),
        Sent(2.125, qnir, 0x01),
        Sent(2.131, qnirsp, 0x02),
        Sent(2.5, ibr, 0x03),
        Sent(2.515625, ibrsp, 0x05),
        Sent(1_802.000_001, uer, 0x06),
        Sent(1_802.75, uersp, 0x07),
    ]


def _capture(path: Path, sent: list[Sent], **options: object) -> None:
    """Drive the writer as a trace hook from a virtual clock, as the virtual medium will."""
    clock = VirtualClock()
    with PcapWriter(path, clock=clock.now, pan_id=PAN_ID, **options) as writer:
        for item in sent:
            clock.call_later(item.at, writer.hook, "tx", item.packet)
        clock.run()


FIELDS = (
    "frame.time_epoch", "frame.protocols", "_ws.expert.severity",
    "wpan.frame_type", "wpan.ack_request", "wpan.pan_id_compression", "wpan.seq_no", "wpan.dst_pan",
    "wpan.dst16", "wpan.src16", "wpan.fcs_ok", "wpan.security",
    "zbee_nwk.proto_version", "zbee_nwk.security", "zbee_nwk.dst", "zbee_nwk.src", "zbee_nwk.seqno",
    "zbee_nwk.radius", "zbee_nwk.src64", "zbee_nwk.dst64",
    "zbee_aps.type", "zbee_aps.delivery", "zbee_aps.security", "zbee_aps.dst", "zbee_aps.src",
    "zbee_aps.cluster", "zbee_aps.profile", "zbee_aps.counter",
    "zbee_zcl.cmd.tsn",
    "zbee_zcl_general.ota.cmd.srv_tx.id", "zbee_zcl_general.ota.cmd.srv_rx.id",
    "zbee_zcl_general.ota.payload.type", "zbee_zcl_general.ota.query_jitter",
    "zbee_zcl_general.ota.manufacturer_code", "zbee_zcl_general.ota.image.type",
    "zbee_zcl_general.ota.file.version", "zbee_zcl_general.ota.hw_ver",
    "zbee_zcl_general.ota.status", "zbee_zcl_general.ota.image.size",
    "zbee_zcl_general.ota.file.offset", "zbee_zcl_general.ota.max_data_size",
    "zbee_zcl_general.ota.ieee_addr", "zbee_zcl_general.ota.data_size",
    "zbee_zcl_general.ota.image.data", "zbee_zcl_general.ota.current_time",
    "zbee_zcl_general.ota.upgrade_time",
    "wpan-tap.ch_num", "wpan-tap.rss", "wpan-tap.lqi",
)


def _tshark(path: Path) -> list[dict[str, str]]:
    """Decode ``path`` with tshark; one dict per frame of the fields it showed."""
    args = [TSHARK, "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for name in FIELDS:
        args += ["-e", name]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    frames = []
    for line in result.stdout.splitlines():
        values = line.split("\t")
        frames.append({name: value for name, value in zip(FIELDS, values) if value != ""})
    return frames


def _int(value: str) -> int:
    return int(value, 0)


def _true(value: str | None) -> bool:
    return value in {"1", "True", "true"}


def _eui(text: str) -> int:
    return int(text.replace(":", ""), 16)


@pytest.fixture(scope="module")
def exchange() -> list[Sent]:
    return _ota_exchange()


@pytest.fixture(scope="module")
def decoded(tmp_path_factory: pytest.TempPathFactory, exchange: list[Sent]) -> list[dict[str, str]]:
    path = tmp_path_factory.mktemp("pcap") / "ota.pcap"
    _capture(path, exchange)
    return _tshark(path)


def test_every_frame_is_decoded_down_to_the_ota_cluster(decoded, exchange):
    assert len(decoded) == len(exchange)
    for frame in decoded:
        assert frame["frame.protocols"].endswith("wpan:zbee_nwk:zbee_aps:zbee_zcl:zbee_zcl_general.ota")
        assert "_ws.expert.severity" not in frame, f"tshark raised expert info on frame {frame}"


def test_timestamps_are_the_virtual_times(decoded, exchange):
    for frame, sent in zip(decoded, exchange):
        assert float(frame["frame.time_epoch"]) == pytest.approx(sent.at, abs=1e-6)


def test_mac_header_is_an_unsecured_short_addressed_data_frame_with_good_fcs(decoded, exchange):
    for frame, sent in zip(decoded, exchange):
        packet = sent.packet
        assert _int(frame["wpan.frame_type"]) == 1
        assert _true(frame["wpan.fcs_ok"])
        assert not _true(frame.get("wpan.security"))
        assert _true(frame["wpan.pan_id_compression"])
        assert _int(frame["wpan.dst_pan"]) == PAN_ID
        assert _int(frame["wpan.src16"]) == packet.src_nwk
        if packet.is_broadcast:
            assert _int(frame["wpan.dst16"]) == 0xFFFF
            assert not _true(frame["wpan.ack_request"])
        else:
            assert _int(frame["wpan.dst16"]) == packet.dst_nwk
            assert _true(frame["wpan.ack_request"])


def test_mac_and_nwk_sequence_numbers_count_per_sender(decoded, exchange):
    seen: dict[int, list[tuple[int, int]]] = {}
    for frame, sent in zip(decoded, exchange):
        seen.setdefault(sent.packet.src, []).append(
            (_int(frame["wpan.seq_no"]), _int(frame["zbee_nwk.seqno"])))
    assert seen[HUB_EUI] == [(n, n) for n in range(4)]
    assert seen[PPMID_EUI] == [(n, n) for n in range(3)]


def test_nwk_header_is_zigbee_pro_without_security_and_names_the_eui64s(decoded, exchange):
    for frame, sent in zip(decoded, exchange):
        packet = sent.packet
        assert _int(frame["zbee_nwk.proto_version"]) == 2
        assert not _true(frame["zbee_nwk.security"])
        assert _int(frame["zbee_nwk.dst"]) == packet.dst_nwk
        assert _int(frame["zbee_nwk.src"]) == packet.src_nwk
        assert _int(frame["zbee_nwk.radius"]) > 0
        assert _eui(frame["zbee_nwk.src64"]) == packet.src
        if packet.is_broadcast:
            assert "zbee_nwk.dst64" not in frame
        else:
            assert _eui(frame["zbee_nwk.dst64"]) == packet.dst


def test_aps_header_carries_smart_energy_ota_endpoints_and_counter(decoded, exchange):
    for frame, sent in zip(decoded, exchange):
        packet = sent.packet
        assert _int(frame["zbee_aps.type"]) == 0
        assert _int(frame["zbee_aps.delivery"]) == (2 if packet.is_broadcast else 0)
        assert not _true(frame["zbee_aps.security"])
        assert _int(frame["zbee_aps.profile"]) == 0x0109
        assert _int(frame["zbee_aps.cluster"]) == 0x0019
        assert _int(frame["zbee_aps.dst"]) == packet.dst_ep
        assert _int(frame["zbee_aps.src"]) == packet.src_ep
        assert _int(frame["zbee_aps.counter"]) == packet.aps_counter


def test_ota_command_ids(decoded, exchange):
    for frame, sent in zip(decoded, exchange):
        from_server = sent.packet.src == HUB_EUI
        field = "zbee_zcl_general.ota.cmd.srv_tx.id" if from_server else "zbee_zcl_general.ota.cmd.srv_rx.id"
        assert _int(frame[field]) == sent.command_id


def test_ota_fields_common_to_every_command(decoded):
    for frame in decoded:
        assert _int(frame["zbee_zcl_general.ota.manufacturer_code"]) == MFR
        assert _int(frame["zbee_zcl_general.ota.image.type"]) == IMAGE_TYPE


def test_image_notify_broadcast_fields(decoded):
    notify = decoded[0]
    assert _int(notify["zbee_zcl_general.ota.payload.type"]) == 3
    assert _int(notify["zbee_zcl_general.ota.query_jitter"]) == QUERY_JITTER
    assert _int(notify["zbee_zcl_general.ota.file.version"]) == NEW_VERSION


def test_query_next_image_request_and_response_fields(decoded):
    request, response = decoded[1], decoded[2]
    assert _int(request["zbee_zcl_general.ota.file.version"]) == OLD_VERSION
    assert _int(request["zbee_zcl_general.ota.hw_ver"]) == HW_VERSION
    assert _int(response["zbee_zcl_general.ota.status"]) == 0
    assert _int(response["zbee_zcl_general.ota.file.version"]) == NEW_VERSION
    assert _int(response["zbee_zcl_general.ota.image.size"]) == IMAGE_SIZE


def test_image_block_request_and_response_fields(decoded):
    request, response = decoded[3], decoded[4]
    assert _int(request["zbee_zcl_general.ota.file.offset"]) == BLOCK_OFFSET
    assert _int(request["zbee_zcl_general.ota.max_data_size"]) == len(BLOCK_DATA)
    assert _int(request["zbee_zcl_general.ota.ieee_addr"]) == PPMID_EUI
    assert _int(response["zbee_zcl_general.ota.status"]) == 0
    assert _int(response["zbee_zcl_general.ota.file.offset"]) == BLOCK_OFFSET
    assert _int(response["zbee_zcl_general.ota.data_size"]) == len(BLOCK_DATA)
    assert bytes.fromhex(response["zbee_zcl_general.ota.image.data"].replace(":", "")) == BLOCK_DATA


def test_upgrade_end_request_and_response_fields(decoded):
    request, response = decoded[5], decoded[6]
    assert _int(request["zbee_zcl_general.ota.status"]) == 0
    assert _int(request["zbee_zcl_general.ota.file.version"]) == NEW_VERSION
    assert _int(response["zbee_zcl_general.ota.file.version"]) == NEW_VERSION
    assert _int(response["zbee_zcl_general.ota.upgrade_time"]) == UPGRADE_TIME_WAIT


def test_tap_link_type_records_channel_rssi_and_lqi(tmp_path, exchange):
    path = tmp_path / "tap.pcap"
    sent = [item._replace(packet=item.packet._replace(lqi=180 + i, rssi=-60 + i))
            for i, item in enumerate(exchange)]
    _capture(path, sent, link_type=LinkType.IEEE802_15_4_TAP, channel=19)
    decoded = _tshark(path)
    assert len(decoded) == len(sent)
    for frame, item in zip(decoded, sent):
        assert frame["frame.protocols"].endswith("wpan-tap:zbee_nwk:zbee_aps:zbee_zcl:zbee_zcl_general.ota")
        assert _true(frame["wpan.fcs_ok"])
        assert _int(frame["wpan-tap.ch_num"]) == 19
        assert float(frame["wpan-tap.rss"]) == pytest.approx(item.packet.rssi)
        assert _int(frame["wpan-tap.lqi"]) == item.packet.lqi
        assert _int(frame["zbee_zcl_general.ota.manufacturer_code"]) == MFR


def test_epoch_shifts_timestamps_to_calendar_time(tmp_path, exchange):
    path = tmp_path / "epoch.pcap"
    epoch = 1_735_689_600.0  # 2025-01-01T00:00:00Z
    _capture(path, exchange[:3], epoch=epoch)
    decoded = _tshark(path)
    for frame, sent in zip(decoded, exchange[:3]):
        assert float(frame["frame.time_epoch"]) == pytest.approx(epoch + sent.at, abs=1e-6)


def test_a_corrupted_frame_is_flagged_by_tshark(tmp_path, exchange):
    """The FCS is what tshark checks: flip one payload bit and it must say so."""
    path = tmp_path / "corrupt.pcap"
    _capture(path, exchange[4:5])
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0x01  # inside the image data, before the FCS
    path.write_bytes(bytes(raw))
    (frame,) = _tshark(path)
    assert not _true(frame["wpan.fcs_ok"])
    assert "_ws.expert.severity" in frame
