"""What the hub reports upstream carries the GBCS it came from: the hub's own CCS08, the devices'
alerts and responses, each protected as GBCS requires and checkable with the exported keys."""

from __future__ import annotations

from helpers import Site, one

from emulator.dcc.premises import ESME_ID, PPMID_ID
from emulator.gbcs import asn1_payloads as asn1
from emulator.gbcs.codes import GbcsAlertCode
from emulator.gbcs.flow import remote_party_keys_dir
from emulator.gbcs.messages import decode_message
from emulator.gbcs.protection import MessageProtection
from emulator.keys.devices import export_device_keys
from emulator.keys.store import CombinedKeyStore, DirectoryKeyStore

HOUR = 3600.0


def _verifier(site: Site, tmp_path) -> MessageProtection:
    export_device_keys(tmp_path, [site.hub.eui64, *site.devices], seed=0)
    return MessageProtection(CombinedKeyStore([DirectoryKeyStore(remote_party_keys_dir()), DirectoryKeyStore(tmp_path)]))


def test_11_4_ccs08_and_cs09_are_signed_gbcs_with_the_values_reported(site: Site, ppmid_image: bytes, tmp_path) -> None:
    site.hub.distribute_image(ppmid_image, [PPMID_ID], activate_now=True, request_id="t:11.4:1")
    site.run_until("firmware_activated", PPMID_ID, within=HOUR)
    site.run(1.0)
    verifier = _verifier(site, tmp_path)
    transferred, activated = (m for m in site.upstream if m.device == PPMID_ID)

    ccs08 = decode_message(transferred.gbcs or b"")
    assert verifier.verify(ccs08.envelope).ok
    assert ccs08.header.originator == site.hub.eui64
    assert isinstance(ccs08.payload, asn1.FirmwareTransferAlert)
    assert ccs08.payload.alert_code == GbcsAlertCode.CCS08_TRANSFER_SUCCESS and ccs08.payload.entity_id == PPMID_ID
    assert int.from_bytes(ccs08.payload.firmware_version, "big") == transferred.details["firmware_version"]

    cs09 = decode_message(activated.gbcs or b"")
    assert verifier.verify(cs09.envelope).ok and cs09.header.originator == PPMID_ID
    assert isinstance(cs09.payload, asn1.PpmidFirmwareActivationAlert)
    assert int.from_bytes(cs09.payload.firmware_version, "big") == activated.details["firmware_version"]


def test_a_cs06_with_a_broken_mac_is_discarded_by_the_meter(site: Site, esme_image: bytes) -> None:
    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)
    command = bytearray(site.hub.gbcs.activate(ESME_ID, bytes(32), None, request_id="t:11.3:1"))
    command[-1] ^= 0x01  # the last byte of the ACB's MAC
    site.hub.send_gbcs(ESME_ID, bytes(command), request_id="t:11.3:1", service_reference="11.3")
    site.run(5.0)
    refused = [e for e in site.named("command_refused", ESME_ID)]
    assert refused and "MAC" in refused[0].fields["reason"]
    assert not site.responses("t:11.3:1"), "a meter does not answer a command it cannot authenticate"
    assert site.devices[ESME_ID].firmware.pending_version is not None, "nothing was activated"


def test_a_cs06_signed_by_an_untrusted_supplier_is_discarded(site: Site, esme_image: bytes) -> None:
    from emulator.gbcs import messages

    site.hub.distribute_image(esme_image, [ESME_ID], activate_now=False, request_id="t:11.1:1")
    site.run_until("waiting_for_upgrade_command", ESME_ID, within=HOUR)
    protection = site.hub.gbcs.setup.protection
    other_supplier = 0x90B3D51F30020000  # has published keys, but the meter trusts only 90-B3-D5-1F-30-01-00-00
    pre = messages.cs06_precommand(7, other_supplier, ESME_ID, bytes(32))
    site.hub.send_gbcs(ESME_ID, protection.protect(protection.sign(pre)).encode(), request_id="t:11.3:2",
                       service_reference="11.3")
    site.run(5.0)
    (refused,) = site.named("command_refused", ESME_ID)
    assert "not a supplier this device trusts" in refused.fields["reason"]


def test_gbcs_times_are_whole_seconds_whatever_the_clock_epoch() -> None:
    """`serve` runs on the wall clock from an epoch with microseconds: GBCS carries whole seconds."""
    import datetime as dt

    from emulator.gbcs.flow import GbcsSetup
    from emulator.hub.gbcs_commands import HubGbcs

    setup = GbcsSetup.default(epoch=dt.datetime(2026, 12, 1, 9, 53, 53, 959803, tzinfo=dt.timezone.utc))
    assert setup.date_time(1.5) == dt.datetime(2026, 12, 1, 9, 53, 55, tzinfo=dt.timezone.utc)
    ccs08 = decode_message(HubGbcs(0x00DB1234567890A2, setup, {}).ccs08(
        PPMID_ID, GbcsAlertCode.CCS08_TRANSFER_SUCCESS, 0, 0xACDCACDD, 1.5))
    assert isinstance(ccs08.payload, asn1.FirmwareTransferAlert) and ccs08.payload.date_time.microsecond == 0


def test_a_gsme_pulls_its_gcs38_at_its_next_wake_up(make_site) -> None:
    """The hub queues a sleepy GSME's command; the GSME GETs it when it next queries for an image
    (30 minutes by default) and answers GCS38 with its version, MAC'd."""
    from emulator.dcc.premises import GSME_ID
    from emulator.gbcs import gbz
    from emulator.gbcs.tunnel import GbcsTunnelHeader, TransferData, decode_frame

    site = make_site((GSME_ID,))
    site.run(60.0)  # the GSME has requested its tunnel and found nothing queued
    asked_at = site.clock.now()
    site.hub.read_firmware_version(GSME_ID, request_id="t:11.2:gsme")
    assert site.hub.tunnels.pending(GSME_ID) == 1, "queued, not pushed"
    site.run(HOUR)
    response = one(site.responses("t:11.2:gsme"), "GCS38 response")
    assert response.details["firmware_version"] == 0xACDC0001
    assert response.time - asked_at > 60.0, "answered at a wake-up, not at once"
    answer = decode_message(response.gbcs or b"")
    assert isinstance(answer.payload, gbz.GbzPayload) and answer.header.message_code == 0x0084
    tunnel = [decode_frame(f.packet.payload).payload for f in site.air if f.packet.cluster == 0x0704]
    gets = [p for p in tunnel if isinstance(p, TransferData) and p.header is GbcsTunnelHeader.GET]
    carried = [p for p in tunnel if isinstance(p, TransferData) and p.header is GbcsTunnelHeader.GET_RESPONSE and p.message]
    assert gets and len(carried) == 1 and carried[0].remaining == 0
