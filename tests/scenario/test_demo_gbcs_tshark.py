"""The demo's capture, read by Wireshark: the GBCS tunnel is the ZSE Tunneling cluster with real
GBCS inside, long messages travel as APS blocks that tshark reassembles, and nothing is malformed."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from emulator.cli import main

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="Wireshark's tshark is not installed"),
]
FIELDS = ["frame.len", "zbee_aps.block", "zbee_zcl_se.tun.cmd.srv_rx.id", "zbee_zcl_se.tun.cmd.srv_tx.id",
          "zbee_zcl_se.tun.protocol_id", "gbcs_tunnel.command", "gbcs_message.grouping_header.message_code",
          "gbcs_message.grouping_header.cra_flag", "zbee_aps.fragment.count", "_ws.expert.severity", "_ws.malformed"]


def test_demo_tunnel_frames_are_zse_tunneling_with_gbcs_inside(capsys, tmp_path) -> None:
    pcap = tmp_path / "demo.pcap"
    assert main(["demo", "--json", "--pcap", str(pcap)]) == 0
    capsys.readouterr()
    command = ["tshark", "-r", str(pcap), "-Y", "zbee_aps.cluster == 0x0704", "-T", "fields", "-E", "separator=|"]
    for name in FIELDS:
        command += ["-e", name]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout
    rows = [dict(zip(FIELDS, line.split("|"))) for line in out.splitlines()]
    assert rows
    assert all(int(r["frame.len"]) <= 127 for r in rows), "every frame fits one 802.15.4 frame"
    assert not any(r["_ws.expert.severity"] or r["_ws.malformed"] for r in rows), [r for r in rows if r["_ws.expert.severity"]]
    # the hub requests the tunnels of ESME and PPMIDs, GSMEs request theirs; protocol 6 (GB-HRGP)
    requests = [r for r in rows if r["zbee_zcl_se.tun.cmd.srv_rx.id"] == "0x00"]
    assert requests and {r["zbee_zcl_se.tun.protocol_id"] for r in requests} == {"0x06"}
    assert [r for r in rows if r["zbee_zcl_se.tun.cmd.srv_tx.id"] == "0x00"], "RequestTunnelResponse"
    messages = [r for r in rows if r["gbcs_message.grouping_header.message_code"]]
    codes = {(int(r["gbcs_message.grouping_header.message_code"], 16), int(r["gbcs_message.grouping_header.cra_flag"], 16))
             for r in messages}
    # CS09 alert, FDRA (ESME), the 8F43 generic alert, CS06 command and response, ECS52 both ways
    assert {(0x012B, 3), (0x00CE, 3), (0x1001, 3), (0x0012, 1), (0x0012, 2), (0x0059, 1), (0x0059, 2)} <= codes, codes
    assert {r["gbcs_tunnel.command"] for r in messages} == {"0x03"}, "messages travel in PUTs"
    assert any(r["gbcs_tunnel.command"] == "0x01" for r in rows), "a GSME asks for queued messages (GET)"
    reassembled = [r for r in messages if r["zbee_aps.fragment.count"]]
    assert reassembled, "long messages went as APS blocks and tshark reassembled them"
    assert any(r["zbee_aps.block"] and not r["gbcs_message.grouping_header.message_code"] for r in rows)
