"""The pre-certification check catalogue: all 41 checks of shared/docs/precert-checks.md as data.

Group A runs on an image file (``certify image``), group B on a device under test (``certify
device``). C and D wait for layers other work is building: their entries carry no function and
report NOT_AVAILABLE with what they wait for, never a pass. Giving one a function is the only change
a C/D check needs.
"""

from __future__ import annotations

from typing import Any

from emulator.certify import image_checks as a
from emulator.certify.device import checks as d
from emulator.certify.device import gbcs_checks as c
from emulator.certify.device import network_checks as n
from emulator.certify.a11_zigbee_signature import a11_zigbee_signature
from emulator.certify.model import Check, Group, Need

_GBCS = ("waits for its device script: the GBCS codec now runs over the emulated ZSE tunnel "
         "(docs/gbcs.md); 11.3's critical-command path (CV 4/5) is not modelled yet")
_RADIO = ("waits for its device script: join, CBKE and APS encryption now run on the virtual HAN and "
          "the EZSP dongle emulator (docs/cbke.md)")

F, V, B, G, K = Need.FILE, Need.VIRTUAL, Need.BENCH, Need.GBCS, Need.CBKE

CATALOGUE: tuple[Check[Any], ...] = (
    # --- A. The image file -------------------------------------------------------------------
    Check("A1", Group.IMAGE, "Identifier 0x0BEEF11E, header version 0x0100, header length 56-69 and "
          "consistent with field control", "Exegin zcl.ota.h", (F,), "every OTA file",
          "fail on a wrong header version, a header length outside 56..69 or not what field control "
          "announces, reserved field-control bits, or (with --device-type) a vendor prefix; warn on "
          "a vendor prefix or header-string oddities", run=a.a1_header),
    Check("A2", Group.IMAGE, "Total Image Size equals the file length; no trailing bytes",
          "Z2M \"size mismatch\"; zigpy-cli", (F,), "every OTA file",
          "fail when total_image_size differs from the file length (trailing bytes, prefix, "
          "truncation)", run=a.a2_size),
    Check("A3", Group.IMAGE, "Manufacturer code, image type, file version match the SR's "
          "FirmwareVersion and the CPL entry", "DUIS V5.4 (NotApplicableFirmwareDeviceIDList)",
          (F,), "with --manufacturer, --image-type, --firmware-version or --device-type",
          "fail on any mismatch with the options; warn when only the emulator's device profile "
          "disagrees on the image type; not applicable without options", run=a.a3_identity),
    Check("A4", Group.IMAGE, "Firmware version coded one way (BCD or hex) in header, CPL and the "
          "CS08/ECS52/GCS38 read-back", "SECAS CPL quality guidance", (F,),
          "with --firmware-version (the read-back part needs certify device)",
          "fail when header and SR differ exactly by a BCD/binary reading; not applicable when "
          "they differ otherwise (A3)", run=a.a4_version_coding,
          limits="the CS08/ECS52/GCS38 read-back coding waits for GBCS over the HAN (C2)"),
    Check("A5", Group.IMAGE, "Hardware range present and covering the target; tested at min-1, min, "
          "max, max+1 (CH reports CCS08 code 2)", "ZBOSS RTP_OTA_CLI_05; XSD FirmwareTransferAlert",
          (F,), "every OTA file; coverage with --hardware",
          "fail when a GBCS image has no range, the range is inverted or excludes --hardware; warn "
          "without --hardware", run=a.a5_hardware),
    Check("A6", Group.IMAGE, "Image <= 7,680,000 bytes (DUIS limit) and <= the device's declared slot",
          "DUIS V5.4", (F,), "every OTA file; the slot with --slot-size",
          "fail above the DUIS limit or the slot", run=a.a6_size_limit),
    Check("A7", Group.IMAGE, "GBCS layout: header ‖ Manufacturer Image (‖ 00 40 ‖ 64-byte supplier "
          "ECDSA P-256 signature for CH/ESME/GSME); ZigBee layout: sub-element walk ends exactly at "
          "EOF", "domain.md §3.3", (F,), "every OTA file; the expected layout with --device-type",
          "fail when the layout is not the device type's, a sub-element overruns, "
          "an integrity code mismatches or the Manufacturer Image is empty; warn on tolerated "
          "quirks (Telink length, reserved tags, no upgrade image element)", run=a.a7_layout),
    Check("A8", Group.IMAGE, "SHA-256(Manufacturer Image) equals the CPL hash and the CS06 "
          "FirmwareHash", "domain.md §3.4", (F,), "GBCS images, with --cpl-hash",
          "fail when the hash differs from --cpl-hash, or a GBCS device type gets a ZigBee file; "
          "not applicable without --cpl-hash (the computed hash is shown) or for ZigBee files",
          run=a.a8_hash),
    Check("A9", Group.IMAGE, "Supplier signature verifies with the supplier DS certificate (ZAZ1 on "
          "a bench)", "dccboxed-keystore", (F,), "GBCS meter/CH images (layout gbcs)",
          "fail when the signature is all zeros or verifies under none of the supplier keys, or a "
          "signed device type gets an unsigned file", run=a.a9_signature),
    Check("A10", Group.IMAGE, "Certificates inside signed firmware valid across the deployment "
          "window (ZAZ1 supplier cert expired 2025-10-29 and was re-issued)", "SECAS CPL guidance",
          (F,), "images holding DER X.509 certificates; the verifying supplier certificate",
          "fail when an embedded certificate is not valid over --deploy-from..--deploy-until; warn "
          "when the supplier certificate that verified the signature is not", run=a.a10_certificates),
    Check("A11", Group.IMAGE, "ZigBee signature sub-elements (0x0005/0x0006, suite 2) verify; signer "
          "allowed", "Silicon Labs ota-client signature verify", (F,),
          "ZigBee files with signature sub-elements",
          "fail on a missing half, a wrong length, a signature not last, both suites, a signer that "
          "is not the certificate's subject or not a --zigbee-signer, or a suite-2 signature that "
          "does not verify under the key ECQV-reconstructed with --zigbee-ca (default Certicom's "
          "TEST ONLY CA); warn for suite 1 (not verified)",
          run=a11_zigbee_signature,
          limits="suite-1 (sect163k1) signatures are checked for structure only"),
    Check("A12", Group.IMAGE, "Downgrade / reinstall policy declared and enforced",
          "Silicon Labs disable-downgrades", (F,), "with --current-version (enforcement needs "
          "certify device)", "fail when the file version is not newer than --current-version",
          run=a.a12_downgrade, limits="whether the device enforces the policy (refuses an offered downgrade) is not a B check yet"),
    # --- B. The OTA client (certify device: emulator/certify/device/checks.py) -------------------
    Check("B1", Group.OTA_CLIENT, "Finds the OTA server by Match Descriptor; uses the endpoint found "
          "(a GBCS reference CH uses endpoint 123 to test this)", "Nordic FOTA docs; HenryGiraldo/gbcs ch.c",
          (V, B), "every OTA client", "the OTA server sits on endpoint 123 and sends an Image Notify from "
          "there: fail when the device then sends an OTA frame to another endpoint; pass when it downloads "
          "from endpoint 123", run=d.b1_server_endpoint,
          limits="no ZDO Match Descriptor on the emulated HAN (the server's source endpoint stands in for "
          "its answer); on a bench the dongle registers endpoint 1 only (inconclusive)"),
    Check("B2", Group.OTA_CLIENT, "Query Next Image carries the hardware version when the image is "
          "hardware-bounded", "ZBOSS RTP_OTA_CLI_05", (V, B), "every OTA client",
          "the vendor's image re-bounded to hardware+1, then hardware-1 (the device at min-1 and max+1; "
          "re-signed, TEST ONLY key): fail when the query lacks the hardware version or the device "
          "downloads it; then bounded to exactly its hardware (min and max): fail when it does not "
          "download", run=d.b2_hardware_version),
    Check("B3", Group.OTA_CLIENT, "Image Notify payload types 0-3 and query jitter honoured",
          "ZBOSS RTP_OTA_CLI_01; PICS INPT01–03", (V, B), "OTA clients that are not sleepy",
          "fail without a query after a unicast Image Notify of payload type 0, 1, 2 or 3 that matches it, "
          "with a query after one naming another manufacturer, image type or its own version, or with "
          "more than 4 queries after 20 notifies with jitter 1; not applicable to a declared sleepy device",
          run=d.b3_image_notify),
    Check("B4", Group.OTA_CLIENT, "Back-off on NO_IMAGE_AVAILABLE and NOT_AUTHORIZED (a reference CH's "
          "default)", "Silicon Labs query delay / error threshold", (V, B), "every OTA client",
          "fail when the device re-queries sooner than its declared back-off (--min-query-interval) after "
          "an answer it heard (a lost or missing answer makes a retry legal), or requests blocks",
          run=d.b4_backoff),
    Check("B5", Group.OTA_CLIENT, "Contiguous offsets; request <= MaxDataSize; accepts shorter blocks "
          "(40/49/61 under APS security)", "Exegin safe sizes; gbcs.h", (V, B), "every OTA client",
          "40-byte blocks for its larger requests: fail on a gap or overlap, on one offset asked more than "
          "4 times (a rejected block), on a Default Response to an Image Block Response, or when the "
          "download does not end in Upgrade End Request SUCCESS", run=d.b5_blocks),
    Check("B6", Group.OTA_CLIENT, "WAIT_FOR_DATA honoured, including the MinimumBlockPeriod unit "
          "ambiguity (ms vs s)", "ZBOSS RTP_OTA_CLI_03; Silicon Labs", (V, B), "every OTA client",
          "the fourth block request gets WAIT_FOR_DATA 10 s with MinimumBlockPeriod 500 ms in the unit the "
          "device declares: fail when it asks again sooner, or paces its requests faster than the period; "
          "the other unit is played too and reported (discovery, no verdict)", run=d.b6_wait_for_data),
    Check("B7", Group.OTA_CLIENT, "A duplicate Image Block Response (lost APS ACK) does not abort",
          "ZBOSS RTP_OTA_CLI_01", (V, B), "every OTA client", "every fifth Image Block Response is sent "
          "twice: fail when the device restarts at offset 0, sends Upgrade End Request ABORT or does not "
          "finish with SUCCESS", run=d.b7_duplicate_block),
    Check("B8", Group.OTA_CLIENT, "Missing file: after three Default Response NO_IMAGE_AVAILABLE, back "
          "to querying", "ZBOSS RTP_OTA_SRV_02; Silicon Labs test case 9.5.6", (V, B),
          "every OTA client", "the file disappears after five blocks (block requests answered Default "
          "Response NO_IMAGE_AVAILABLE): fail on a fourth block request; pass when the device then queries",
          run=d.b8_missing_file),
    Check("B9", Group.OTA_CLIENT, "Image Block Response ABORT -> Upgrade End Request ABORT, clean state",
          "ZBOSS RTP_OTA_SRV_04", (V, B), "every OTA client", "ABORT after five blocks: fail without "
          "Upgrade End Request ABORT within 30 s, or when the next download does not start at offset 0",
          run=d.b9_abort),
    Check("B10", Group.OTA_CLIENT, "Page requests: page size and response spacing respected; tolerant "
          "of missing blocks (no APS retry)", "Silicon Labs page-req-miss", (V, B),
          "clients that use Image Page Request", "every fifth block of a page is never sent: fail when "
          "the download does not end in Upgrade End Request SUCCESS; warn when the page size changes; "
          "not applicable to a block-request client", run=d.b10_page_requests),
    Check("B11", Group.OTA_CLIENT, "Integrity failure -> Upgrade End INVALID_IMAGE, image discarded, "
          "never activated (mandated by CSA test cases)", "Nordic devzone on CSA tests", (V, B),
          "images whose layout carries a signature or integrity code",
          "one payload byte flipped, not re-signed: fail on Upgrade End Request SUCCESS or another status "
          "than INVALID_IMAGE, or when the image is activated", run=d.b11_invalid_image),
    Check("B12", Group.OTA_CLIENT, "Upgrade End Response time: relative (CurrentTime 0), absolute with "
          "the Time cluster, 0xFFFFFFFF wait", "ZBOSS RTP_OTA_CLI_06/07", (V, B), "every OTA client",
          "three downloads: upgrade time 0 (activation at once), 120 s relative (not before, within 60 s "
          "after), 0xFFFFFFFF (no activation in 300 s, then at the upgrade command): fail on any other "
          "activation", run=d.b12_upgrade_time,
          limits="absolute upgrade times with the Time cluster wait for D6 (the hub's Time cluster)"),
    Check("B13", Group.OTA_CLIENT, "Bounded, declared delay between the last block and Upgrade End "
          "Request", "anchors F6", (V, B), "every OTA client", "fail without Upgrade End Request within "
          "the hub's 4 h silent-phase timeout; warn above the declared delay (--max-silent-phase)",
          run=d.b13_silent_phase),
    Check("B14", Group.OTA_CLIENT, "Resumes after power loss or rejoin mid-transfer (FileOffset)",
          "Exegin; Silicon Labs pause-at", (V, B), "every OTA client", "power cut for 10 s at half the "
          "image: fail when the device restarts more than one block before the offset it had reached, "
          "does not come back, or does not finish with SUCCESS", run=d.b14_power_loss,
          limits="a bench cannot cut a device's power (inconclusive there)"),
    Check("B15", Group.OTA_CLIENT, "Client attributes readable and coherent (CurrentFileVersion, "
          "DownloadedFileVersion, ImageUpgradeStatus, MinimumBlockPeriod, UpgradeActivationPolicy)",
          "Exegin PICS OTA.C.A0000–A000c", (V, B), "every OTA client",
          "fail when the query's version differs from CurrentFileVersion, or ImageUpgradeStatus, FileOffset, "
          "DownloadedFileVersion, ManufacturerID, ImageTypeID contradict the download (before, during, "
          "waiting, after activation)", run=d.b15_attributes,
          limits="read from the emulated client; a bench needs ZCL Read Attributes (inconclusive there); "
          "UpgradeActivationPolicy is not modelled"),
    Check("B16", Group.OTA_CLIENT, "Tolerates server throttling and refusal under load (WAIT 60 s when "
          "slots are full)", "Silicon Labs dynamic block period", (V, B), "every OTA client",
          "the first three block requests get WAIT_FOR_DATA 60 s: fail when the device asks sooner, "
          "abandons the download (its next frame is not the block request) or does not finish with "
          "SUCCESS", run=d.b16_throttling),
    # --- C. GBCS behaviour around the firmware ---------------------------------------------------
    Check("C1", Group.GBCS, "PPMID sends CS09 (0x8F8B) after activation, version = header file version, "
          "activateImage success/failure", "RTDS NA_CS09", (V, G), "PPMIDs",
          "fail without CS09 or with another version", unavailable=_GBCS),
    Check("C2", Group.GBCS, "CS08 read returns {version, readSuccess}; readFailure handled",
          "RTDS 11.2_CS08", (V, G), "every GBCS device", "the 11.2 read for the device type (ECS52, GCS38, "
          "CS08) through the hub's ZSE tunnel, before a download and after its activation: fail on an "
          "undecodable response, readFailure, or a version other than the one it runs (its Query Next "
          "Image's, then the image's); inconclusive without a response", run=c.c2_read_version,
          limits="the hub side of readFailure is 11.2's flow (tests/gbcs), not a device check"),
    Check("C3", Group.GBCS, "Meters send FDRA 0x8F72 with the SHA-256 hash after distribution, 0x8F1C "
          "on failure", "RTDS NA_FDRA-*", (V, G), "ESME, GSME", "the vendor's image, then the same "
          "image with one byte flipped, the hub's ZSE tunnel open: fail without FDRA 0x8F72 within 120 s "
          "of Upgrade End Request SUCCESS, with another hash than SHA-256 of the Manufacturer Image, or "
          "without 0x8F1C for the corrupted image; not applicable to a PPMID or an unsigned image",
          run=c.c3_distribution_receipt),
    Check("C4", Group.GBCS, "CS06: immediate, future-dated (0x00CA 0x8F66/0x8F67), cancellation "
          "(99991231235959Z); noImageHeld, hashMismatch, activationFailure", "RTDS 11.3_CS06",
          (V, G), "ESME, GSME, HCALCS", "fail on a wrong response code or alert", unavailable=_GBCS),
    Check("C5", Group.GBCS, "Firmware verified at every power-on; 0x8F1B on failure",
          "meter manuals (domain.md)", (V, B, G), "meters", "fail when a corrupted image boots "
          "without 0x8F1B", unavailable=_GBCS),
    Check("C6", Group.GBCS, "One active + one pending image; a new download overwrites the pending one",
          "meter manuals; XSD OtherRequestInProgressList", (V, G), "every GBCS device",
          "fail when a second download leaves two pending images", unavailable=_GBCS),
    Check("C7", Group.GBCS, "Metering and prepayment continue during a download",
          "meter manuals (inference)", (B, G), "ESME, GSME", "fail when a reading or "
          "prepayment event is lost", unavailable=_GBCS),
    # --- D. Network and security prerequisites ----------------------------------------------------
    Check("D1", Group.NETWORK, "Joins only with the install-code link key inside the CCS01 "
          "JoinTimePeriod window", "DCC GBCS mapping table (CCS01)", (V, B, G), "every HAN device",
          "the test hub as Trust Centre, the device in its Device Log: fail when the device joins with "
          "another key than its install code's; then the JoinTimePeriod closed before power-on: the "
          "join is refused, and fail when the device does not join within 600 s once CCS01 re-opens "
          "it; inconclusive on a bench (the dongle's Trust Centre admits the join)", run=n.d1_install_code_join),
    Check("D2", Group.NETWORK, "Completes CBKE suite 2 (sect283k1) within its advertised times",
          "HenryGiraldo/gbcs; Silicon Labs key-establishment", (V, B, K), "every HAN device",
          "join and CBKE with the test hub as Trust Centre: fail when the device offers another suite "
          "than 2, when its Ephemeral Data Request or Confirm Key Data Request comes later after the "
          "hub's answer than the generate time its Initiate advertised, or when the exchange stops "
          "or gives no link key; on a bench the hub computes CBKE on the host", run=n.d2_cbke_times),
    Check("D3", Group.NETWORK, "Negative CBKE (mangled certificate, wrong issuer, bad key confirm, out "
          "of sequence, delays) ends in the right Terminate status and a back-off",
          "Silicon Labs test-harness", (V, B, K), "every HAN device",
          "the test hub answers the device's first two Initiate Key Establishment Requests with "
          "Terminate NO_RESOURCES, wait time 20 s: fail when the device retries sooner, does not retry, "
          "or does not then complete CBKE; then the hub is wrong once per session (certificate from "
          "another CA, mangled certificate, wrong MACV, out of sequence): fail when the device does not "
          "answer Terminate UNKNOWN_ISSUER, BAD_MESSAGE, BAD_KEY_CONFIRM, BAD_MESSAGE, does not retry "
          "or does not then complete CBKE; on a bench the hub computes CBKE on the host (wait time 2 s)", run=n.d3_cbke),
    Check("D4", Group.NETWORK, "All OTA and GBCS traffic APS-encrypted; Tunneling and 61-byte APS "
          "fragmentation work", "HenryGiraldo/gbcs", (V, B), "every HAN device",
          "after CBKE with the test hub: fail when the device answers an Image Notify sent without APS "
          "encryption (a query within 2 s), or when any OTA or Tunneling unicast it sends during a download with the tunnel "
          "open goes on the air unencrypted (on a bench: reaches the NCP unencrypted)", run=n.d4_aps_encryption,
          limits="61-byte APS fragmentation of tunnelled GBCS messages is not played yet"),
    Check("D5", Group.NETWORK, "A test-certificate build cannot join a production network and vice "
          "versa", "Digi CBKE docs", (B, K), "every HAN device", "fail on a cross join",
          unavailable=_RADIO),
    Check("D6", Group.NETWORK, "Reads the hub's Time (Master + Superseding) and uses it for absolute "
          "upgrade times", "HenryGiraldo/gbcs ch.c", (V, B), "every HAN device",
          "fail when the device's absolute time ignores the hub's",
          unavailable="waits for its device script: the hub now serves the Time cluster "
          "(Master + Superseding)"),
)

BY_ID: dict[str, Check[Any]] = {check.check_id: check for check in CATALOGUE}


def select(only: str | None, *, group: Group | None = None) -> list[Check[Any]]:
    """The checks ``--only A1,A4`` names (all of ``group`` without it); ``ValueError`` names an
    unknown ID or one outside the group."""
    if only is None:
        return [c for c in CATALOGUE if group is None or c.group is group]
    chosen: list[Check[Any]] = []
    for raw in only.split(","):
        check_id = raw.strip().upper()
        if not check_id:
            continue
        check = BY_ID.get(check_id)
        if check is None:
            raise ValueError(f"--only: unknown check {raw.strip()!r} (known: A1-A12, B1-B16, C1-C7, D1-D6)")
        if group is not None and check.group is not group:
            raise ValueError(f"--only: {check_id} is a group {check.group.value} check "
                             f"({check.group.heading}), not group {group.value}; it runs under "
                             "certify device")
        if check not in chosen:
            chosen.append(check)
    if not chosen:
        raise ValueError("--only: no check named")
    return chosen
