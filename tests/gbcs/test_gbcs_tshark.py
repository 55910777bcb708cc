"""Wireshark's GBCS dissector (``gbcs_tunnel``, ``gbcs_message``, ``gbcs_gbz``) reads what we encode.

Every message the flow sends, built and protected by the emulator, is put in a ZSE Tunneling
TransferData frame (hub → device: GET-RESPONSE; device → hub: PUT) in a pcap; tshark must find
the grouping header fields we wrote, the MAC or KRP signature, and raise no expert error.
tshark 4.0 dissects framing only (it checks no signature or MAC) and names some codes "Unknown".
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from gbcs_vectors import KEYSTORE

from emulator.gbcs import asn1_payloads as asn1
from emulator.gbcs import messages
from emulator.gbcs.codes import ActivationResponseCode, TransferResult
from emulator.gbcs.framing import Envelope, GeneralCiphering
from emulator.gbcs.protection import MessageProtection
from emulator.gbcs.tunnel import TUNNELING_CLUSTER
from emulator.han.packet import ApsPacket
from emulator.han.pcap import PcapWriter
from emulator.keys.devices import DeviceKeyStore
from emulator.keys.store import CombinedKeyStore, DirectoryKeyStore

TSHARK = shutil.which("tshark")
pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(TSHARK is None, reason="Wireshark's tshark is not on PATH (apt-get install tshark)"),
]

SUPPLIER = 0x90B3D51F30010000
ACB = messages.ACCESS_CONTROL_BROKER_ID
CHF, ESME, GSME, PPMID = 0x00DB1234567890A2, 0x00DB1234567890A0, 0x00DB1234567890A1, 0x00DB1234567890A4
HUB_NWK, DEVICE_NWK = 0x0000, 0x4A2F
TUNNEL_ID = 0x0007
NOW = dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.timezone.utc)
IMAGE_HASH = bytes(range(32))
VERSION = bytes.fromhex("00000104")
ZCL_CLUSTER_SPECIFIC, ZCL_SERVER_TO_CLIENT = 0x01, 0x08
TRANSFER_DATA_FROM_CLIENT, TRANSFER_DATA_FROM_SERVER = 0x02, 0x01
GBCS_TUNNEL_GET_RESPONSE, GBCS_TUNNEL_PUT = 0x02, 0x03
TSHARK_UNKNOWN_CODES = {0x0128, 0x0129, 0x012B}
"""Message codes tshark 4.0 shows as "Unknown": CCS08, CS08, CS09 (docs/gbcs.md)."""


def _flow() -> list[tuple[bool, Envelope]]:
    """(from hub, message) for every message kind of the flow, protected as the emulator sends it."""
    keys = CombinedKeyStore([DeviceKeyStore.for_devices([CHF, ESME, GSME, PPMID], seed=1), DirectoryKeyStore(KEYSTORE)])
    protect = MessageProtection(keys).protect
    ecs52 = messages.ecs52_command(0x3E8, SUPPLIER, ESME)
    gcs38 = messages.gcs38_command(0x3E9, SUPPLIER, GSME)
    cs08 = messages.cs08_command(0x514, PPMID, SUPPLIER, 0x3EA)
    cs06 = messages.cs06_precommand(0x3EB, SUPPLIER, ESME, IMAGE_HASH, dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc))
    return [
        (True, protect(ecs52)),
        (False, protect(messages.ecs52_response(ecs52.header, VERSION))),
        (True, protect(gcs38)),
        (False, protect(messages.gcs38_response(gcs38.header, VERSION))),
        (True, protect(cs08)),
        (False, protect(messages.cs08_response(cs08.header, VERSION))),
        (True, protect(cs06)),
        (False, protect(messages.cs06_response(cs06.header, NOW, None))),
        (False, protect(messages.future_dated_activation_alert(0x7D0, ESME, SUPPLIER, 0x3EB, NOW,
                                                               ActivationResponseCode.SUCCESS, VERSION))),
        (False, protect(messages.ccs08_alert(0xFA0, CHF, ACB, asn1.FirmwareTransferAlert.for_result(
            NOW, PPMID, VERSION, TransferResult.TRANSFERRED)))),
        (False, protect(messages.cs09_alert(0x1388, PPMID, ACB, asn1.PpmidFirmwareActivationAlert(NOW, VERSION, 0)))),
        (False, protect(messages.fdra_esme_alert(0x7D1, ESME, SUPPLIER, NOW, IMAGE_HASH, verified=True))),
        (False, protect(messages.fdra_gsme_alert(0xBB8, GSME, SUPPLIER, NOW, IMAGE_HASH, verified=False))),
        (False, protect(messages.generic_alert(0x7D2, ESME, SUPPLIER, 0x8F43, NOW, dlms_device=True, critical=True))),
        (False, protect(messages.generic_alert(0xBB9, GSME, SUPPLIER, 0x8F1B, NOW, dlms_device=False, critical=True))),
    ]


def _frame(from_hub: bool, message: bytes, tsn: int) -> ApsPacket:
    tunnel = TUNNEL_ID.to_bytes(2, "little")
    if from_hub:
        zcl = bytes([ZCL_CLUSTER_SPECIFIC | ZCL_SERVER_TO_CLIENT, tsn, TRANSFER_DATA_FROM_SERVER]) + tunnel
        data = bytes([GBCS_TUNNEL_GET_RESPONSE, 0]) + message
        return ApsPacket(src=CHF, dst=0, src_nwk=HUB_NWK, dst_nwk=DEVICE_NWK, payload=zcl + data,
                         cluster=TUNNELING_CLUSTER, aps_counter=tsn)
    zcl = bytes([ZCL_CLUSTER_SPECIFIC, tsn, TRANSFER_DATA_FROM_CLIENT]) + tunnel
    return ApsPacket(src=0, dst=CHF, src_nwk=DEVICE_NWK, dst_nwk=HUB_NWK, payload=zcl + bytes([GBCS_TUNNEL_PUT]) + message,
                     cluster=TUNNELING_CLUSTER, aps_counter=tsn)


FIELDS = [
    "gbcs_tunnel.command", "gbcs_message.grouping_header.cra_flag", "gbcs_message.grouping_header.originator_counter",
    "gbcs_message.grouping_header.business_originator_id", "gbcs_message.grouping_header.business_target_id",
    "gbcs_message.grouping_header.message_code", "gbcs_message.mac", "gbcs_message.krp",
    "gbcs_message.mac_header.security_control_byte", "_ws.expert.severity", "_ws.malformed", "frame.protocols",
]


def _eui(value: int) -> str:
    return ":".join(f"{value:016x}"[i : i + 2] for i in range(0, 16, 2))


@pytest.fixture(scope="module")
def dissected(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bool, Envelope, dict[str, str]]]:
    flow = _flow()
    pcap = Path(tmp_path_factory.mktemp("gbcs")) / "gbcs.pcap"
    with PcapWriter(pcap, clock=lambda: 1_764_577_800.0) as writer:
        for tsn, (from_hub, envelope) in enumerate(flow):
            writer.write(_frame(from_hub, envelope.encode(), tsn))
    assert TSHARK is not None
    # Messages above one frame are written as APS blocks; tshark reassembles them and dissects
    # the whole message in the frame of the last block (-Y keeps those).
    command = [TSHARK, "-r", str(pcap), "-Y", "gbcs_tunnel", "-T", "fields", "-E", "separator=|",
               "-E", "occurrence=f"]
    for name in FIELDS:
        command += ["-e", name]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120).stdout
    rows = [dict(zip(FIELDS, line.split("|"))) for line in out.splitlines()]
    assert len(rows) == len(flow)
    return [(from_hub, envelope, row) for (from_hub, envelope), row in zip(flow, rows)]


def test_tshark_reads_every_grouping_header_we_wrote(dissected: list[tuple[bool, Envelope, dict[str, str]]]) -> None:
    for from_hub, envelope, row in dissected:
        header = (envelope.signing if isinstance(envelope, GeneralCiphering) else envelope).header
        where = f"{header.message_code:#06x} {header.cra_flag.name}"
        assert row["frame.protocols"].endswith(("gbcs_message:ber", "gbcs_message:data", "gbcs_message:gbcs_gbz:zbee_zcl",
                                                "gbcs_message:gbcs_gbz")), (where, row["frame.protocols"])
        assert int(row["gbcs_tunnel.command"], 0) == (GBCS_TUNNEL_GET_RESPONSE if from_hub else GBCS_TUNNEL_PUT)
        assert int(row["gbcs_message.grouping_header.cra_flag"], 0) == header.cra_flag, where
        assert int(row["gbcs_message.grouping_header.originator_counter"]) == header.originator_counter, where
        assert row["gbcs_message.grouping_header.business_originator_id"] == _eui(header.originator), where
        assert row["gbcs_message.grouping_header.business_target_id"] == _eui(header.recipient), where
        assert int(row["gbcs_message.grouping_header.message_code"], 0) == header.message_code, where


def test_tshark_finds_our_mac_and_krp_signature(dissected: list[tuple[bool, Envelope, dict[str, str]]]) -> None:
    for _, envelope, row in dissected:
        signing = envelope.signing if isinstance(envelope, GeneralCiphering) else envelope
        if isinstance(envelope, GeneralCiphering):
            assert row["gbcs_message.mac"] == envelope.mac.hex()
            assert int(row["gbcs_message.mac_header.security_control_byte"], 0) == 0x11
        else:
            assert row["gbcs_message.mac"] == ""
        assert row["gbcs_message.krp"].replace(":", "") == (signing.signature or b"").hex()


def test_tshark_raises_no_expert_error(dissected: list[tuple[bool, Envelope, dict[str, str]]]) -> None:
    problems = [(row["gbcs_message.grouping_header.message_code"], row["_ws.expert.severity"], row["_ws.malformed"])
                for _, _, row in dissected if row["_ws.expert.severity"] or row["_ws.malformed"]]
    assert problems == []


def test_tshark_dissects_gbz_payloads(tmp_path: Path) -> None:
    """The GSME's FDRA: tshark's gbcs_gbz finds the alert code and the calculated image hash we sent."""
    keys = CombinedKeyStore([DeviceKeyStore.for_devices([GSME], seed=1), DirectoryKeyStore(KEYSTORE)])
    alert = MessageProtection(keys).protect(messages.fdra_gsme_alert(0xBB8, GSME, SUPPLIER, NOW, IMAGE_HASH, verified=True))
    pcap = tmp_path / "fdra.pcap"
    with PcapWriter(pcap, clock=lambda: 1_764_577_800.0) as writer:
        writer.write(_frame(False, alert.encode(), 1))
    assert TSHARK is not None
    out = subprocess.run([TSHARK, "-r", str(pcap), "-Y", "gbcs_gbz", "-T", "fields", "-E", "separator=|",
                          "-e", "gbcs_gbz.alert_code",
                          "-e", "gbcs_gbz.firmware_hash", "-e", "gbcs_gbz.profile_id"],
                         check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    code, image_hash, profile = out.split("|")
    assert (int(code, 0), image_hash.replace(":", ""), int(profile, 0)) == (0x8F72, IMAGE_HASH.hex(), 0x0109)


def test_codes_tshark_does_not_name(dissected: list[tuple[bool, Envelope, dict[str, str]]], tmp_path: Path) -> None:
    """Documented in docs/gbcs.md: tshark 4.0 shows CCS08, CS08 and CS09 as Unknown."""
    pcap = tmp_path / "all.pcap"
    with PcapWriter(pcap, clock=lambda: 1_764_577_800.0) as writer:
        for tsn, (from_hub, envelope, _) in enumerate(dissected):
            writer.write(_frame(from_hub, envelope.encode(), tsn))
    assert TSHARK is not None
    verbose = subprocess.run([TSHARK, "-r", str(pcap), "-V"], check=True, capture_output=True, text=True, timeout=120).stdout
    unknown = {int(line.split("(")[-1].rstrip(")"), 16) for line in verbose.splitlines() if "Message Code: Unknown" in line}
    assert unknown == TSHARK_UNKNOWN_CODES


def test_tshark_flags_a_truncated_message_so_the_expert_check_can_fail(tmp_path: Path) -> None:
    from_hub, envelope = _flow()[0]
    pcap = tmp_path / "truncated.pcap"
    with PcapWriter(pcap, clock=lambda: 1_764_577_800.0) as writer:
        writer.write(_frame(from_hub, envelope.encode()[:-20], 0))
    assert TSHARK is not None
    out = subprocess.run([TSHARK, "-r", str(pcap), "-T", "fields", "-e", "_ws.malformed"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    assert "Malformed Packet: GBCS Message" in out
