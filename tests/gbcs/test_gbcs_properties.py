"""Property-based round trips: whatever values the flow puts in a message, decoding gives them back."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from emulator.gbcs import asn1_payloads as asn1
from emulator.gbcs import dlms, gbz, messages
from emulator.gbcs.codes import ActivationResponseCode, TransferResult
from emulator.gbcs.framing import GeneralCiphering, GeneralSigning, decode_envelope
from emulator.gbcs.messages import decode_message
from emulator.gbcs.payloads import DlmsAlert

euis = st.integers(min_value=0, max_value=(1 << 64) - 1)
counters = st.integers(min_value=0, max_value=(1 << 64) - 1)
times = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2135, 12, 31),
                     timezones=st.just(dt.timezone.utc)).map(lambda t: t.replace(microsecond=0))
versions = st.binary(min_size=1, max_size=40)
hashes = st.binary(min_size=32, max_size=32)


@given(counters, euis, euis, hashes, st.none() | times, st.binary(min_size=64, max_size=64), st.binary(min_size=12, max_size=12))
def test_cs06_command_round_trips(counter: int, supplier: int, device: int, image_hash: bytes,
                                  execution: dt.datetime | None, signature: bytes, mac: bytes) -> None:
    pre = messages.cs06_precommand(counter, supplier, device, image_hash, execution)
    wire = GeneralCiphering(GeneralSigning(pre.header, pre.content, signature), mac).encode()
    decoded = decode_message(wire)
    assert decoded.header == pre.header
    assert decoded.payload == asn1.ActivateFirmwareCommand(image_hash, counter, execution)
    assert isinstance(decoded.envelope, GeneralCiphering) and decoded.envelope.mac == mac
    assert decode_envelope(pre.encode()).encode() == pre.encode()


@given(counters, euis, euis, times, euis, versions, st.sampled_from(TransferResult))
def test_ccs08_alert_round_trips(counter: int, hub: int, dcc: int, when: dt.datetime, entity: int, version: bytes,
                                 result: TransferResult) -> None:
    alert = asn1.FirmwareTransferAlert.for_result(when, entity, version, result)
    built = messages.ccs08_alert(counter, hub, dcc, alert)
    assert decode_message(built.encode()).payload == alert


@given(counters, euis, euis, times, hashes, st.booleans())
def test_fdra_round_trips_both_encodings(counter: int, meter: int, supplier: int, when: dt.datetime,
                                         image_hash: bytes, verified: bool) -> None:
    esme = decode_message(messages.fdra_esme_alert(counter, meter, supplier, when, image_hash, verified=verified).encode())
    assert isinstance(esme.payload, DlmsAlert)
    assert (esme.payload.date_time, esme.payload.manufacturer_image_hash) == (when, image_hash)
    gsme = decode_message(messages.fdra_gsme_alert(counter, meter, supplier, when, image_hash, verified=verified).encode())
    assert gsme.payload.alert_code == (0x8F72 if verified else 0x8F1C)  # type: ignore[union-attr]


@given(counters, euis, euis, counters, times, st.sampled_from(ActivationResponseCode), versions)
def test_future_dated_alert_round_trips(counter: int, device: int, supplier: int, command_counter: int,
                                        when: dt.datetime, result: ActivationResponseCode, version: bytes) -> None:
    built = messages.future_dated_activation_alert(counter, device, supplier, command_counter, when, result, version)
    payload = decode_message(built.encode()).payload
    assert isinstance(payload, asn1.FutureDatedActivationAlert)
    assert (payload.originator_counter, payload.response.activate_image_result) == (command_counter, result)
    assert payload.alert_code == (0x8F66 if result is ActivationResponseCode.SUCCESS else 0x8F67)


@given(counters, euis, euis, st.none() | st.binary(min_size=0, max_size=120))
def test_read_version_responses_round_trip(counter: int, supplier: int, meter: int, version: bytes | None) -> None:
    ecs52 = messages.ecs52_command(counter, supplier, meter)
    answer = decode_message(messages.ecs52_response(ecs52.header, version).encode())
    assert isinstance(answer.payload, dlms.AccessResponse)
    result = answer.payload.results[0]
    assert (result.data.value, result.result) == ((version, 0) if version is not None else (None, 1))
    assert answer.header.originator_counter == counter

    gcs38 = messages.gcs38_command(counter, supplier, meter)
    reply = decode_message(messages.gcs38_response(gcs38.header, version).encode())
    assert isinstance(reply.payload, gbz.GbzPayload)
    record = reply.payload.components[0].zcl.records[0]
    assert (record.value, record.status) == ((version, 0) if version is not None else (None, 0xC0))
