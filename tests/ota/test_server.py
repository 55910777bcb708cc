"""The Comms Hub's OTA server engine, driven frame by frame (no I/O, no clock)."""

from __future__ import annotations

import pytest

from emulator.ota.actions import OUTCOME_TYPES, Send, SetTimer, TimerKind
from emulator.ota.catalog import ImageCatalog, ServedImage
from emulator.ota.frames import (
    DefaultResponse,
    ImageBlockRequest,
    ImageBlockResponse,
    ImageNotify,
    ImagePageRequest,
    QueryNextImageRequest,
    QueryNextImageResponse,
    Status,
    UpgradeEndRequest,
    UpgradeEndResponse,
    ZclFrame,
    ZclHeader,
)
from emulator.ota.policy import (BlockPeriodUnit, MissingImageResponse, PolicyBook, ServerPolicy, UpgradeTiming,
                                 VersionRule)
from emulator.ota.server import OtaServer
from emulator.ota.sessions import SessionState, SqliteSessionStore
from emulator.ota.timeline import render

DEV = 0x00DB1234567890A4
NWK = 0x1234
MFR, TYPE, OLD, NEW = 0x121D, 0x0084, 0xACDC0001, 0xACDCACDD
IMAGE = ServedImage(MFR, TYPE, NEW, bytes(range(256)) * 40, 0x1111, 0x1211)


def frame(command, tsn: int = 7) -> ZclFrame:
    return ZclFrame(ZclHeader(1, 0, False, tsn, 0), command)


def sends(actions) -> list:
    return [a.command for a in actions if isinstance(a, Send)]


def events(actions) -> dict[str, dict]:
    """The outcomes among ``actions`` as the timeline shows them (event name -> fields)."""
    return dict(render(a) for a in actions if isinstance(a, OUTCOME_TYPES))


def make_server(**policy) -> OtaServer:
    catalog = ImageCatalog()
    catalog.add(IMAGE)
    return OtaServer(catalog, PolicyBook(ServerPolicy(**policy)))


def query(server: OtaServer, version: int = OLD, hw: int | None = 0x1200, now: float = 0.0, device: int = DEV):
    req = QueryNextImageRequest(1 if hw is not None else 0, MFR, TYPE, version, hw)
    return server.on_frame(now, device, NWK, frame(req))


def block(server: OtaServer, offset: int, size: int = 63, now: float = 1.0, tsn: int = 9):
    req = ImageBlockRequest(0, MFR, TYPE, NEW, offset, size)
    return server.on_frame(now, DEV, NWK, frame(req, tsn))


def download(server: OtaServer, *, now: float = 1.0, size: int = 63) -> float:
    offset = 0
    while offset < IMAGE.size:
        (rsp,) = sends(block(server, offset, size, now))
        offset += len(rsp.image_data)
        now += 0.01
    return now


class TestQueryNextImage:
    def test_newer_image_is_offered_with_its_size(self):
        actions = query(make_server())
        assert sends(actions) == [QueryNextImageResponse(Status.SUCCESS, MFR, TYPE, NEW, IMAGE.size)]
        assert actions[0].tsn == 7  # the response echoes the request's sequence number
        assert events(actions)["query_answered"]["status"] == "SUCCESS"

    @pytest.mark.parametrize(
        "version, hw, reason",
        [
            (NEW, 0x1200, "no newer version"),
            (NEW + 1, 0x1200, "no newer version"),
            (OLD, 0x1000, "hardware_version_mismatch"),
            (OLD, 0x1212, "hardware_version_mismatch"),
        ],
    )
    def test_no_image_is_an_answer_never_silence(self, version, hw, reason):
        actions = query(make_server(), version, hw)
        assert sends(actions) == [QueryNextImageResponse(Status.NO_IMAGE_AVAILABLE)]
        assert events(actions)["query_answered"]["reason"] == reason

    def test_other_manufacturer_gets_no_image(self):
        server = make_server()
        req = QueryNextImageRequest(0, 0x1234, TYPE, OLD)
        assert sends(server.on_frame(0, DEV, NWK, frame(req))) == [QueryNextImageResponse(Status.NO_IMAGE_AVAILABLE)]

    def test_query_without_hardware_version_is_served(self):
        assert sends(query(make_server(), hw=None))[0].status == Status.SUCCESS

    @pytest.mark.parametrize(
        "rule, current, offered",
        [
            (VersionRule.NEWER, NEW, False),
            (VersionRule.REINSTALL, NEW, True),
            (VersionRule.REINSTALL, NEW + 1, False),
            (VersionRule.DOWNGRADE, NEW + 1, True),
            (VersionRule.DOWNGRADE, NEW, False),
            (VersionRule.FORCE, NEW, True),
        ],
    )
    def test_version_rules(self, rule, current, offered):
        rsp = sends(query(make_server(version_rule=rule), current))[0]
        assert (rsp.status == Status.SUCCESS) is offered

    def test_targeted_image_only_for_its_devices(self):
        catalog = ImageCatalog()
        catalog.target(IMAGE, [DEV])
        server = OtaServer(catalog)
        assert sends(query(server))[0].status == Status.SUCCESS
        assert sends(query(server, device=DEV + 1))[0].status == Status.NO_IMAGE_AVAILABLE

    def test_server_silent_on_queries_fault(self):
        actions = query(make_server(silent_on_query=True))
        assert sends(actions) == []
        assert "query_ignored" in events(actions)


class TestBlocks:
    @pytest.mark.parametrize(
        "mode, override, requested, expected",
        [("aps", None, 63, 40), ("nwk", None, 63, 49), ("none", None, 100, 63), ("aps", 20, 63, 20),
         ("none", None, 30, 30)],
    )
    def test_block_size_is_min_of_request_security_cap_and_override(self, mode, override, requested, expected):
        server = make_server(security_mode=mode, max_block_size=override)
        query(server)
        (rsp,) = sends(block(server, 0, requested))
        assert rsp.status == Status.SUCCESS
        assert rsp.image_data == IMAGE.data[:expected]

    def test_any_offset_can_be_served_and_is_reported_as_a_resume(self):
        server = make_server()
        actions = block(server, 5000, 40)  # no query first: a client that rebooted or a restarted hub
        (rsp,) = sends(actions)
        assert (rsp.file_offset, rsp.image_data) == (5000, IMAGE.data[5000:5040])
        assert events(actions)["transfer_resumed"]["offset"] == 5000

    def test_last_block_is_short_and_ends_the_download(self):
        server = make_server(security_mode="none")
        query(server)
        actions = block(server, IMAGE.size - 10, 63)
        assert sends(actions)[0].image_data == IMAGE.data[-10:]

    def test_full_download_moves_to_the_silent_phase(self):
        server = make_server()
        query(server)
        download(server)
        assert server.sessions.get(DEV).state is SessionState.AWAITING_UPGRADE_END

    def test_offset_beyond_the_image_is_refused_with_abort(self):
        server = make_server()
        query(server)
        actions = block(server, IMAGE.size + 1)
        assert sends(actions) == [ImageBlockResponse(Status.ABORT)]
        assert "beyond image size" in events(actions)["block_refused"]["reason"]

    def test_unknown_image_is_refused_with_default_response_no_image_available(self):
        # As Silicon Labs answers: the client returns to querying after three of these.
        server = make_server()
        req = ImageBlockRequest(0, MFR, TYPE, NEW + 5, 0, 40)
        actions = server.on_frame(0, DEV, NWK, frame(req))
        assert sends(actions) == [DefaultResponse(0x03, Status.NO_IMAGE_AVAILABLE)]
        assert events(actions)["block_refused"]["reason"] == "image not offered to this device"

    def test_unknown_image_is_refused_with_abort_under_that_policy(self):
        server = make_server(missing_image_response=MissingImageResponse.ABORT)
        req = ImageBlockRequest(0, MFR, TYPE, NEW + 5, 0, 40)
        actions = server.on_frame(0, DEV, NWK, frame(req))
        assert sends(actions) == [ImageBlockResponse(Status.ABORT)]

    def test_progress_is_observable(self):
        server = make_server(progress_step_percent=25)
        query(server)
        download(server)
        progress = server.progress(100.0, DEV)
        assert progress["state"] == "awaiting_upgrade_end"
        assert progress["offset"] == IMAGE.size and progress["percent"] == 100.0
        assert progress["rate_bps"] > 0

    def test_progress_events_carry_offset_rate_and_eta(self):
        server = make_server(progress_step_percent=50)
        query(server)
        block(server, 0, now=1.0)
        actions = []
        offset, now = 40, 1.0
        while offset < IMAGE.size // 2 + 40:
            now += 0.5
            actions += block(server, offset, now=now)
            offset += 40
        progress = [fields for name, fields in map(render, (a for a in actions if isinstance(a, OUTCOME_TYPES)))
                    if name == "transfer_progress"]
        assert progress and progress[-1]["percent"] >= 50
        assert progress[-1]["eta_s"] > 0 and progress[-1]["rate_bps"] == pytest.approx(80, rel=0.05)


class TestRateControl:
    def test_client_faster_than_minimum_block_period_gets_wait_for_data(self):
        server = make_server(minimum_block_period_ms=2500)
        query(server)
        block(server, 0, now=1.0)
        (rsp,) = sends(block(server, 40, now=1.1))
        assert rsp.status == Status.WAIT_FOR_DATA
        assert rsp.minimum_block_period == 2500
        assert rsp.request_time - rsp.current_time == 3  # 2.4 s left, rounded up to whole seconds
        assert sends(block(server, 40, now=3.6))[0].status == Status.SUCCESS

    def test_server_side_pacing_delays_each_response(self):
        server = make_server(response_delay_s=0.25)
        query(server)
        send = [a for a in block(server, 0) if isinstance(a, Send)][0]
        assert send.delay == 0.25


class TestPages:
    def test_page_request_is_answered_with_spaced_blocks(self):
        server = make_server()
        query(server)
        req = ImagePageRequest(0, MFR, TYPE, NEW, 0, 40, 100, 30)
        actions = server.on_frame(1.0, DEV, NWK, frame(req))
        blocks = sends(actions)
        timers = [a for a in actions if isinstance(a, SetTimer)]
        while timers and timers[-1].kind is TimerKind.PAGE:
            actions = server.on_timer(1.0 + timers[-1].delay, DEV, TimerKind.PAGE)
            blocks += sends(actions)
            timers = [a for a in actions if isinstance(a, SetTimer)]
        assert [b.file_offset for b in blocks] == [0, 40, 80]
        assert b"".join(b.image_data for b in blocks) == IMAGE.data[:100]


class TestUpgradeEnd:
    @pytest.mark.parametrize(
        "timing, delay, upgrade_time, state",
        [
            (UpgradeTiming.NOW, 0, 0, SessionState.SCHEDULED),
            (UpgradeTiming.DELAY, 90, 90, SessionState.SCHEDULED),
            (UpgradeTiming.WAIT_FOR_COMMAND, 0, 0xFFFFFFFF, SessionState.WAITING_FOR_COMMAND),
        ],
    )
    def test_success_is_answered_by_policy_in_relative_time(self, timing, delay, upgrade_time, state):
        server = make_server(upgrade_timing=timing, upgrade_delay_s=delay)
        query(server)
        now = download(server)
        actions = server.on_frame(now, DEV, NWK, frame(UpgradeEndRequest(Status.SUCCESS, MFR, TYPE, NEW)))
        assert sends(actions) == [UpgradeEndResponse(MFR, TYPE, NEW, 0, upgrade_time)]
        assert server.sessions.get(DEV).state is state
        assert "transfer_completed" in events(actions)

    def test_upgrade_command_later_for_a_waiting_device(self):
        server = make_server(upgrade_timing=UpgradeTiming.WAIT_FOR_COMMAND)
        query(server)
        server.on_frame(download(server), DEV, NWK, frame(UpgradeEndRequest(Status.SUCCESS, MFR, TYPE, NEW)))
        actions = server.upgrade_now(500.0, DEV)
        assert sends(actions) == [UpgradeEndResponse(MFR, TYPE, NEW, 0, 0)]
        with pytest.raises(ValueError, match="not waiting for an upgrade command"):
            server.upgrade_now(501.0, DEV)

    @pytest.mark.parametrize("status", [Status.INVALID_IMAGE, Status.ABORT, Status.REQUIRE_MORE_IMAGE])
    def test_other_status_gets_default_response_and_ends_the_session(self, status):
        server = make_server()
        query(server)
        actions = server.on_frame(5.0, DEV, NWK, frame(UpgradeEndRequest(status, MFR, TYPE, NEW), tsn=42))
        assert sends(actions) == [DefaultResponse(0x06, Status.SUCCESS)]
        assert [a.tsn for a in actions if isinstance(a, Send)] == [42]
        assert server.sessions.get(DEV).state is SessionState.FAILED
        assert events(actions)["transfer_failed"]["status"] == status.name


class TestTimeouts:
    def _fire(self, server, actions, now_limit):
        """Fire the timeout timers the engine asks for until none is left or time runs out."""
        fired = []
        timers = [a for a in actions if isinstance(a, SetTimer) and a.kind is TimerKind.TIMEOUT]
        now = 0.0
        while timers:
            now = now + timers[-1].delay
            if now > now_limit:
                break
            out = server.on_timer(now, DEV, TimerKind.TIMEOUT)
            fired += out
            timers = [a for a in out if isinstance(a, SetTimer)]
        return fired

    def test_gap_between_block_requests_times_out(self):
        server = make_server(block_gap_timeout_s=60)
        actions = query(server) + block(server, 0, now=1.0)
        fired = self._fire(server, actions, 10_000)
        assert events(fired)["timed_out"]["phase"] == "download"
        assert server.sessions.get(DEV).state is SessionState.TIMED_OUT

    def test_silent_phase_of_an_hour_is_tolerated_by_default(self):
        server = make_server()
        query(server)
        now = download(server)
        later = now + 3600
        actions = server.on_frame(later, DEV, NWK, frame(UpgradeEndRequest(Status.SUCCESS, MFR, TYPE, NEW)))
        assert sends(actions)[0] == UpgradeEndResponse(MFR, TYPE, NEW, 0, 0)

    def test_silent_phase_longer_than_configured_times_out(self):
        server = make_server(upgrade_end_timeout_s=600)
        query(server)
        timers: list = []
        offset, now = 0, 1.0
        while offset < IMAGE.size:
            out = block(server, offset, 40, now)
            timers += [a for a in out if isinstance(a, SetTimer)]
            offset += 40
        fired = server.on_timer(now + 601, DEV, TimerKind.TIMEOUT)
        fired += server.on_timer(now + 1000, DEV, TimerKind.TIMEOUT)
        assert events(fired)["timed_out"]["phase"] == "silent_phase"


class TestRestart:
    def test_restarted_server_serves_the_next_request_as_if_nothing_happened(self, tmp_path):
        db = str(tmp_path / "sessions.db")
        catalog = ImageCatalog()
        catalog.add(IMAGE)
        first = OtaServer(catalog, sessions=SqliteSessionStore(db))
        first.on_frame(0, DEV, NWK, frame(QueryNextImageRequest(0, MFR, TYPE, OLD)))
        for offset in range(0, 4000, 40):
            first.on_frame(1, DEV, NWK, frame(ImageBlockRequest(0, MFR, TYPE, NEW, offset, 40)))
        del first  # the process dies

        second = OtaServer(catalog, sessions=SqliteSessionStore(db))
        restored = second.restore(100.0)
        assert events(restored)["session_restored"]["state"] == "downloading"
        assert any(isinstance(a, SetTimer) and a.kind is TimerKind.TIMEOUT for a in restored)
        actions = second.on_frame(100.0, DEV, NWK, frame(ImageBlockRequest(0, MFR, TYPE, NEW, 4000, 40)))
        assert sends(actions)[0].image_data == IMAGE.data[4000:4040]
        assert "transfer_started" not in events(actions) and "transfer_resumed" not in events(actions)
        assert second.sessions.get(DEV).state is SessionState.DOWNLOADING


class TestOther:
    def test_image_notify_unicast_and_broadcast(self):
        server = make_server()
        # A unicast is payload type 0, jitter 100 (what real clients expect), unless the policy
        # or the caller says otherwise; a broadcast names the image.
        (unicast,) = sends(server.image_notify(DEV, NWK, IMAGE))
        assert unicast == ImageNotify(0, 100)
        (unicast,) = sends(server.image_notify(DEV, NWK, IMAGE, query_jitter=50, payload_type=3))
        assert unicast == ImageNotify(3, 50, MFR, TYPE, NEW)
        typed = make_server(image_notify_payload_type=2, image_notify_jitter=7)
        assert sends(typed.image_notify(DEV, NWK, IMAGE)) == [ImageNotify(2, 7, MFR, TYPE)]
        assert sends(server.image_notify(None, 0xFFFF, IMAGE)) == [ImageNotify(3, 100, MFR, TYPE, NEW)]
        actions = server.image_notify(None, 0xFFFF)
        assert sends(actions) == [ImageNotify(0, 100)]
        assert events(actions)["image_notify_sent"]["broadcast"] is True
        with pytest.raises(ValueError, match="query_jitter"):
            server.image_notify(None, 0xFFFF, query_jitter=0)

    def test_server_to_client_command_is_refused(self):
        actions = make_server().on_frame(0, DEV, NWK, frame(QueryNextImageResponse(Status.NO_IMAGE_AVAILABLE), 3))
        assert sends(actions) == [DefaultResponse(0, Status.UNSUP_CLUSTER_COMMAND)]

    def test_stray_default_response_mid_transfer_changes_nothing(self):
        server = make_server()
        query(server)
        block(server, 0)
        actions = server.on_frame(2, DEV, NWK, frame(DefaultResponse(0x05, Status.SUCCESS)))
        assert sends(actions) == [] and "default_response_received" in events(actions)
        assert sends(block(server, 40))[0].image_data == IMAGE.data[40:80]

    def test_abort_makes_the_next_block_request_fail(self):
        server = make_server()
        query(server)
        block(server, 0)
        assert "aborted" in events(server.abort(2.0, DEV))
        assert sends(block(server, 40)) == [ImageBlockResponse(Status.ABORT)]

    def test_policy_rejects_bad_values(self):
        with pytest.raises(ValueError, match="security_mode"):
            ServerPolicy(security_mode="tls")
        with pytest.raises(ValueError, match="max_block_size"):
            ServerPolicy(max_block_size=0)


class TestTestPolicies:
    """Server-side test policies (certify device): each changes only the answers it names."""

    def test_wait_for_data_at_one_block_carries_the_period_in_the_clients_unit(self):
        for unit, period in ((BlockPeriodUnit.MILLISECONDS, 1500), (BlockPeriodUnit.SECONDS, 2)):
            server = make_server(test_wait_for_data_at_block=1, test_wait_for_data_s=10,
                                 minimum_block_period_ms=1500, minimum_block_period_unit=unit)
            query(server)
            assert sends(block(server, 0))[0].status == Status.SUCCESS
            (wait,) = sends(block(server, 63, now=5.0))
            assert (wait.status, wait.request_time, wait.minimum_block_period) == (Status.WAIT_FOR_DATA, 10, period)
            assert sends(block(server, 63, now=20.0))[0].status == Status.SUCCESS

    def test_throttling_answers_the_first_requests_wait_60_s(self):
        server = make_server(test_throttle_requests=2)
        query(server)
        statuses = [sends(block(server, 0, now=t))[0] for t in (1.0, 61.0, 121.0)]
        assert [s.status for s in statuses] == [Status.WAIT_FOR_DATA, Status.WAIT_FOR_DATA, Status.SUCCESS]
        assert statuses[0].request_time == 60

    def test_abort_after_blocks_ends_the_session_and_a_confirming_abort_changes_nothing(self):
        server = make_server(test_abort_after_blocks=2)
        query(server)
        block(server, 0)
        block(server, 63)
        actions = block(server, 126)
        assert sends(actions) == [ImageBlockResponse(Status.ABORT)]
        assert events(actions)["aborted"]["reason"].startswith("test policy")
        confirm = server.on_frame(2.0, DEV, NWK, frame(UpgradeEndRequest(Status.ABORT, MFR, TYPE, NEW)))
        assert sends(confirm) == [DefaultResponse(0x06, Status.SUCCESS)]
        assert "transfer_failed" not in events(confirm)  # the hub already reported the abort

    @pytest.mark.parametrize("answer, expected", [
        (MissingImageResponse.DEFAULT_RESPONSE, DefaultResponse(0x03, Status.NO_IMAGE_AVAILABLE)),
        (MissingImageResponse.ABORT, ImageBlockResponse(Status.ABORT)),
    ])
    def test_a_removed_file_is_refused_and_no_longer_offered(self, answer, expected):
        server = make_server(test_image_removed_after_blocks=1, missing_image_response=answer)
        query(server)
        block(server, 0)
        assert sends(block(server, 63)) == [expected]
        assert sends(query(server)) == [QueryNextImageResponse(Status.NO_IMAGE_AVAILABLE)]

    def test_every_nth_block_response_is_sent_twice(self):
        server = make_server(test_duplicate_block_every=2)
        query(server)
        assert len(sends(block(server, 0))) == 1
        first, again = [a for a in block(server, 63) if isinstance(a, Send)]
        assert first.command == again.command and first.tsn == again.tsn and again.delay > first.delay

    def test_page_miss_leaves_out_every_nth_block_of_a_page(self):
        server = make_server(test_page_miss_every=3)
        query(server)
        actions = server.on_frame(1.0, DEV, NWK, frame(ImagePageRequest(0, MFR, TYPE, NEW, 0, 40, 200, 0)))
        offsets = [c.file_offset for c in sends(actions)]
        now = 1.0
        while any(isinstance(a, SetTimer) and a.kind is TimerKind.PAGE for a in actions):
            now += 0.01
            actions = server.on_timer(now, DEV, TimerKind.PAGE)
            offsets += [c.file_offset for c in sends(actions)]
        assert offsets == [0, 40, 120, 160]  # the third block (offset 80) is never sent

    def test_query_status_refuses_every_query(self):
        server = make_server(test_query_status=int(Status.NOT_AUTHORIZED))
        assert sends(query(server)) == [QueryNextImageResponse(Status.NOT_AUTHORIZED)]


class TestLinkWatch:
    """Mid-download silence past ``link_lost_after_s`` is reported once; the next frame heard
    reports the link back; the transfer is ended only by the block gap timeout."""

    def _timer(self, actions) -> float:
        (timer,) = [a for a in actions if isinstance(a, SetTimer) and a.kind is TimerKind.TIMEOUT]
        return timer.delay

    def test_silence_is_reported_lost_then_restored_and_the_transfer_goes_on(self):
        server = make_server(link_lost_after_s=15.0)
        query(server)
        first = block(server, 0, now=1.0)
        assert self._timer(first) == pytest.approx(15.0)  # the link watch, before the 600 s gap timeout
        assert "han_link_lost" not in events(server.on_timer(10.0, DEV, TimerKind.TIMEOUT))
        lost = server.on_timer(16.0, DEV, TimerKind.TIMEOUT)
        assert events(lost)["han_link_lost"] == {"offset": 40, "silent_s": 15.0, "timeout_in_s": 585.0}
        assert self._timer(lost) == pytest.approx(585.0)  # now only the gap timeout is armed
        back = block(server, 40, now=100.0)
        assert events(back)["han_link_restored"] == {"offset": 40, "outage_s": 99.0}
        assert sends(back)[0].image_data == IMAGE.data[40:80]
        assert "han_link_restored" not in events(block(server, 80, now=100.1))

    def test_a_wait_the_server_asked_for_is_not_silence(self):
        server = make_server(link_lost_after_s=15.0, test_wait_for_data_at_block=1, test_wait_for_data_s=60)
        query(server)
        block(server, 0, now=1.0)
        waited = block(server, 40, now=2.0)
        assert sends(waited)[0].status == Status.WAIT_FOR_DATA
        assert "han_link_lost" not in events(server.on_timer(30.0, DEV, TimerKind.TIMEOUT))
        assert "han_link_lost" not in events(server.on_timer(70.0, DEV, TimerKind.TIMEOUT))
        assert "han_link_lost" in events(server.on_timer(77.5, DEV, TimerKind.TIMEOUT))  # 60 s + 15 s after

    def test_past_the_block_gap_timeout_the_transfer_times_out(self):
        server = make_server(link_lost_after_s=15.0, block_gap_timeout_s=100.0)
        query(server)
        block(server, 0, now=1.0)
        server.on_timer(16.0, DEV, TimerKind.TIMEOUT)
        ended = events(server.on_timer(101.0, DEV, TimerKind.TIMEOUT))
        assert ended["timed_out"]["phase"] == "download" and "han_link_lost" not in ended

    def test_switched_off_nothing_is_reported(self):
        server = make_server(link_lost_after_s=None)
        query(server)
        assert not [a for a in block(server, 0, now=1.0) if isinstance(a, SetTimer)]  # the query's 600 s timer stands
        quiet = server.on_timer(300.0, DEV, TimerKind.TIMEOUT)
        assert "han_link_lost" not in events(quiet) and self._timer(quiet) == pytest.approx(301.0)

    def test_a_restarted_server_still_knows_the_link_is_lost(self, tmp_path):
        db = str(tmp_path / "sessions.db")
        catalog = ImageCatalog()
        catalog.add(IMAGE)
        first = OtaServer(catalog, sessions=SqliteSessionStore(db))
        first.on_frame(0, DEV, NWK, frame(QueryNextImageRequest(0, MFR, TYPE, OLD)))
        first.on_frame(1, DEV, NWK, frame(ImageBlockRequest(0, MFR, TYPE, NEW, 0, 40)))
        assert "han_link_lost" in events(first.on_timer(16.0, DEV, TimerKind.TIMEOUT))
        del first  # the process dies
        second = OtaServer(catalog, sessions=SqliteSessionStore(db))
        second.restore(0.0)  # a new clock
        back = second.on_frame(5.0, DEV, NWK, frame(ImageBlockRequest(0, MFR, TYPE, NEW, 40, 40)))
        assert "han_link_restored" in events(back)


def test_a_server_restarted_on_a_new_clock_gives_the_device_a_whole_timeout(tmp_path) -> None:
    """serve's clock starts again at 0 after a kill: the stored session's times (the old clock,
    here 500 s) are shifted, so the block gap timeout counts from the restart."""
    db = str(tmp_path / "sessions.db")
    catalog = ImageCatalog()
    catalog.add(IMAGE)
    first = OtaServer(catalog, PolicyBook(ServerPolicy(link_lost_after_s=None)), SqliteSessionStore(db))
    first.on_frame(490.0, DEV, NWK, frame(QueryNextImageRequest(0, MFR, TYPE, OLD)))
    first.on_frame(500.0, DEV, NWK, frame(ImageBlockRequest(0, MFR, TYPE, NEW, 0, 40)))
    del first  # the process dies
    second = OtaServer(catalog, PolicyBook(ServerPolicy(link_lost_after_s=None)), SqliteSessionStore(db))
    restored = second.restore(0.5)
    (timer,) = [a for a in restored if isinstance(a, SetTimer)]
    assert timer.delay == pytest.approx(600.0)  # not 1,099.5 s (500 + 600 - 0.5)
    assert "timed_out" not in events(second.on_timer(599.0, DEV, TimerKind.TIMEOUT))
    assert events(second.on_timer(600.6, DEV, TimerKind.TIMEOUT))["timed_out"]["idle_s"] == pytest.approx(600.1)
