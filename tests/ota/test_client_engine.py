"""The OTA client engine on its own, fed frames one by one: how it ends a download the server
cannot continue (three Default Responses NO_IMAGE_AVAILABLE; an ABORT) and the unit it reads
MinimumBlockPeriod in."""

from __future__ import annotations

from emulator.ota.actions import DownloadAborted, Send, SetTimer, TimerKind
from emulator.ota.client import ClientProfile, ImageUpgradeStatus, OtaClient
from emulator.ota.frames import (
    DefaultResponse,
    ImageBlockRequest,
    ImageBlockResponse,
    QueryNextImageRequest,
    QueryNextImageResponse,
    Status,
    UpgradeEndRequest,
    ZclFrame,
    ZclHeader,
)

DEV = 0x00DB1234567890A1
MFR, TYPE, OLD, NEW, SIZE = 0x121D, 0x0000, 0xACDC0001, 0xACDCACDD, 400


def _frame(command, tsn: int) -> ZclFrame:
    return ZclFrame(ZclHeader(1, 1, True, tsn, 0), command)


def _sent(actions) -> list:
    return [a for a in actions if isinstance(a, Send)]


def _downloading(**profile) -> tuple[OtaClient, Send]:
    client = OtaClient(DEV, ClientProfile(MFR, TYPE, OLD, 0x1200, **profile))
    (query,) = _sent(client.on_timer(0.0, TimerKind.QUERY))
    assert isinstance(query.command, QueryNextImageRequest)
    (request,) = _sent(client.on_frame(0.1, _frame(QueryNextImageResponse(Status.SUCCESS, MFR, TYPE, NEW, SIZE),
                                                   query.tsn)))
    assert isinstance(request.command, ImageBlockRequest)
    return client, request


def test_three_default_responses_no_image_available_send_the_client_back_to_querying() -> None:
    client, request = _downloading()
    for attempt in range(3):
        actions = client.on_frame(1.0 + attempt, _frame(DefaultResponse(0x03, Status.NO_IMAGE_AVAILABLE), request.tsn))
        retried = _sent(actions)
        if attempt < 2:
            (request,) = retried  # asked again for the same offset
            assert request.command.file_offset == 0
    assert retried == []
    assert any(isinstance(a, DownloadAborted) for a in actions)
    assert any(isinstance(a, SetTimer) and a.kind is TimerKind.QUERY for a in actions)
    assert client.image_upgrade_status is ImageUpgradeStatus.NORMAL


def test_a_device_that_ignores_the_missing_file_keeps_its_request_open() -> None:
    client, request = _downloading(ignores_missing_file=True)
    actions = client.on_frame(1.0, _frame(DefaultResponse(0x03, Status.NO_IMAGE_AVAILABLE), request.tsn))
    assert _sent(actions) == [] and client.image_upgrade_status is ImageUpgradeStatus.DOWNLOAD_IN_PROGRESS


def test_an_abort_is_confirmed_with_upgrade_end_request_abort() -> None:
    client, request = _downloading()
    (end,) = _sent(client.on_frame(1.0, _frame(ImageBlockResponse(Status.ABORT), request.tsn)))
    assert end.command == UpgradeEndRequest(Status.ABORT, MFR, TYPE, NEW)
    assert client.image_upgrade_status is ImageUpgradeStatus.NORMAL and client.file_offset == 0
    silent, request = _downloading(no_upgrade_end_on_abort=True)
    assert _sent(silent.on_frame(1.0, _frame(ImageBlockResponse(Status.ABORT), request.tsn))) == []


def test_minimum_block_period_is_read_in_the_stacks_unit() -> None:
    for unit, pace in (("ms", 2.0), ("s", 2000.0)):
        client, request = _downloading(minimum_block_period_unit=unit)
        wait = ImageBlockResponse(Status.WAIT_FOR_DATA, current_time=0, request_time=1, minimum_block_period=2000)
        client.on_frame(1.0, _frame(wait, request.tsn))
        assert client.block_period_s() == pace


def test_unicast_image_notify_is_payload_type_0_jitter_100_with_default_response_allowed() -> None:
    from emulator.han.virtual import VirtualHan
    from emulator.ota import codec
    from emulator.ota.frames import ImageNotify
    from emulator.ota.host import EngineHost
    from emulator.ota.server import OtaServer
    from emulator.runtime.clock import VirtualClock
    from emulator.runtime.events import EventBus

    clock = VirtualClock()
    han = VirtualHan(clock)
    seen: list = []
    han.add_trace_hook(lambda direction, packet: seen.append(codec.decode(packet.payload)))
    server = OtaServer()
    host = EngineHost(server, han.attach(0x00DB1234567890A0, 0x0000), clock, EventBus(clock), source="hub")
    han.attach(DEV, 0x1101)
    host.execute(server.image_notify(DEV, 0x1101))
    host.execute(server.image_notify(None, 0xFFFF))
    unicast, broadcast = seen
    assert unicast.command == ImageNotify(0, 100) and not unicast.header.disable_default_response
    assert broadcast.header.disable_default_response  # nobody answers a broadcast
