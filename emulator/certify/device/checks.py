"""The B checks: each a small scripted session against the device under test, judged on the air.

Every check opens one or more sessions (:class:`~emulator.certify.device.session.CheckSession`)
with the server-side test policy it needs (``emulator/ota/policy.py``), lets the device act within
a time budget (simulated time on a virtual device, wall time on a bench) and decides from the OTA
frames the hub saw: pass, fail (with the frames that show it), inconclusive (no answer within the
budget, or something a bench cannot show), or not applicable (and why). docs/certify.md lists the
script and verdict rule of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

from emulator.certify.model import Outcome
from emulator.han.packet import SMART_ENERGY_ENDPOINT
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
)
from emulator.ota.catalog import ServedImage
from emulator.ota.image.parse import parse_image
from emulator.ota.policy import BlockPeriodUnit, ServerPolicy, UpgradeTiming

from .dut import DeviceUnderTest
from .images import corrupted, corruption_detectable, with_hardware_range
from .session import AirFrame, CheckSession

_TIMING_SLACK_S = 0.001  # frames are timestamped at the hub: latency makes a device look later, never earlier


@dataclass
class DeviceRun:
    """What every device check gets: the device, the image, and a way to open sessions."""

    dut: DeviceUnderTest
    image: bytes
    signing_key: EllipticCurvePrivateKey  # TEST ONLY: re-signs derived images
    open_session: Callable[[ServerPolicy, int], CheckSession]
    sessions: list[CheckSession] = field(default_factory=list)

    @property
    def bench(self) -> bool:
        return not self.dut.virtual

    def budget(self, virtual_s: float, bench_s: float) -> float:
        return bench_s if self.bench else virtual_s

    def session(self, *, offer: bytes | None = None, begin: bool = True, endpoint: int = SMART_ENERGY_ENDPOINT,
                **policy: Any) -> CheckSession:
        """A fresh session with the test ``policy`` and the OTA server on ``endpoint``; ``offer``
        is served; ``begin`` wakes the device."""
        base: dict[str, Any] = dict(upgrade_timing=UpgradeTiming.NOW,
                                    minimum_block_period_unit=self.dut.minimum_block_period_unit)
        base.update(policy)
        session = self.open_session(ServerPolicy(**base), endpoint)
        self.sessions.append(session)
        if offer is not None:
            session.offer(offer)
        if begin:
            begin_session(session)
        return session

    @property
    def file_version(self) -> int:
        return parse_image(self.image).header.file_version


def begin_session(session: CheckSession) -> None:
    """Wake the device: an emulated one powers on (and queries), a real one gets an Image Notify."""
    start = getattr(session, "start_device", None)
    if start is not None:
        start()
    else:
        session.notify()


def _transfer(run: DeviceRun, session: CheckSession, budget_s: float | None = None) -> AirFrame | None:
    """Wait for the device's Upgrade End Request (any status)."""
    return session.wait_for(UpgradeEndRequest, budget_s or run.budget(4 * 3600.0, 3600.0), since=0)


def _requests(session: CheckSession, since: int = 0) -> list[AirFrame]:
    """Image Block and Image Page Requests, in order."""
    return [f for f in session.frames[since:]
            if not f.sent and isinstance(f.command, (ImageBlockRequest, ImagePageRequest))]


def _first(frames: list[AirFrame]) -> AirFrame | None:
    return frames[0] if frames else None


def _started(session: CheckSession) -> bool:
    return bool(session.received(ImageBlockRequest) or session.received(ImagePageRequest))


def _activated(run: DeviceRun, session: CheckSession, version: int) -> bool | None:
    """Whether the device now runs ``version``: an emulated device says so; a real one is asked
    with an Image Notify (the version in its next query). ``None``: no answer."""
    activations = session.activations()
    if activations is not None:
        return any(v == version for _, v in activations)
    reported = session.probe_version(run.budget(30.0, 60.0))
    return None if reported is None else reported == version


# --- B1 the OTA server's endpoint -----------------------------------------------------------------

OTHER_ENDPOINT = 123  # what a GBCS reference Comms Hub uses to test this (HenryGiraldo/gbcs ch.c)


def b1_server_endpoint(run: DeviceRun) -> Outcome:
    out = Outcome()
    if run.bench:
        return out.inconclusive(f"the bench dongle registers the hub's Smart Energy endpoint only; endpoint "
                                f"{OTHER_ENDPOINT} needs registering it on the dongle (not built)")
    session = run.session(offer=run.image, endpoint=OTHER_ENDPOINT)
    session.wait(None, 2.0)
    mark = len(session.frames)
    session.notify()
    session.wait(lambda: any(f.packet.dst_ep == OTHER_ENDPOINT for f in _requests(session, mark)),
                 run.budget(600.0, 600.0))
    device_frames = [f for f in session.frames[mark:] if not f.sent]
    wrong = [f for f in device_frames if f.packet.dst_ep != OTHER_ENDPOINT]
    right = [f for f in _requests(session, mark) if f.packet.dst_ep == OTHER_ENDPOINT]
    out.mark(*session.sent(ImageNotify, mark))
    if wrong:
        out.mark(wrong[0])
        out.fail(f"sends {wrong[0].name} to endpoint {wrong[0].packet.dst_ep} after the OTA server spoke from "
                 f"endpoint {OTHER_ENDPOINT}", field="destination endpoint", expected=str(OTHER_ENDPOINT),
                 found=str(wrong[0].packet.dst_ep))
    if right:
        out.mark(right[0])
        out.ok(f"downloads from the OTA server on endpoint {OTHER_ENDPOINT}")
    elif not wrong:
        out.inconclusive("no frame from the device within the budget")
    return out


# --- B2 hardware version ------------------------------------------------------------------------


def b2_hardware_version(run: DeviceRun) -> Outcome:
    out = Outcome()
    hw = run.dut.hardware_version
    # The device's hardware one below the image's minimum, then one above its maximum.
    sides = [("min-1", (hw + 1) & 0xFFFF), ("max+1", (hw - 1) & 0xFFFF)] if hw is not None else [("outside", 0xFFFE)]
    query: AirFrame | None = None
    for where, outside in sides:
        excluded = with_hardware_range(run.image, outside, outside, run.signing_key)
        session = run.session(offer=excluded)
        query = session.wait_for(QueryNextImageRequest, run.budget(120.0, 300.0))
        if query is None:
            return out.inconclusive("no Query Next Image Request within the budget")
        out.mark(query)
        if query.command.hardware_version is None:
            out.fail("Query Next Image Request without the hardware version (field control bit 0 clear) while "
                     f"the image offered is bounded to hardware 0x{outside:04X}", field="field_control",
                     expected="bit 0 set", found=f"0x{query.command.field_control:02X}")
        else:
            out.ok(f"image bounded to 0x{outside:04X} (device at {where}): Query Next Image Request carries "
                   f"hardware version 0x{query.command.hardware_version:04X}", field="hardware_version")
        session.wait(None, run.budget(30.0, 30.0))
        downloaded = _requests(session)
        if downloaded:
            out.mark(downloaded[0])
            out.fail(f"downloads an image bounded to hardware 0x{outside:04X}..0x{outside:04X}",
                     expected="no download", found=f"block request at offset {downloaded[0].command.file_offset}")
        if out.failed:
            break
    assert query is not None
    if hw is None and query.command.hardware_version is not None:
        hw = query.command.hardware_version
    if hw is not None and not out.failed:
        inside = with_hardware_range(run.image, hw, hw, run.signing_key)
        second = run.session(offer=inside)
        second.wait(lambda: _started(second), run.budget(120.0, 300.0))
        first = _first(_requests(second))
        if first is None:
            out.fail(f"does not download an image bounded to exactly its hardware 0x{hw:04X}",
                     expected="block requests", found="none within the budget")
        else:
            out.mark(first)
            out.ok(f"downloads the image bounded to 0x{hw:04X}..0x{hw:04X} (min = max = its hardware)")
    return out


# --- B3 Image Notify -------------------------------------------------------------------------


def b3_image_notify(run: DeviceRun) -> Outcome:
    out = Outcome()
    if run.dut.sleepy:
        return out.skip("the device is declared sleepy: it sleeps through Image Notify and queries on its "
                        "own schedule (legal for battery devices)")
    dut = run.dut
    version = run.file_version
    session = run.session(begin=False)  # nothing offered: every query is answered NO_IMAGE_AVAILABLE
    begin_session(session)
    session.wait(None, run.budget(5.0, 0.0))
    wait = run.budget(5.0, 30.0)
    mfr = dut.manufacturer_code if dut.manufacturer_code is not None else 0xFFFF
    itype = dut.image_type if dut.image_type is not None else 0xFFFF
    newer = version if dut.current_file_version is None or version != dut.current_file_version else version + 1
    should = [(0, ()), (1, (mfr,)), (2, (mfr, itype)), (3, (mfr, itype, newer))]
    for payload_type, fields in should:
        mark = len(session.frames)
        _notify(session, payload_type, 100, fields)
        query = session.wait_for(QueryNextImageRequest, wait, since=mark)
        if query is None:
            out.fail(f"no Query Next Image Request after a unicast Image Notify payload type {payload_type}, "
                     "jitter 100", field="payload_type", expected="a query", found="none")
            out.mark(*session.sent(ImageNotify, mark))
        else:
            out.mark(query)
            after = query.time - session.frames[mark].time
            out.ok(f"payload type {payload_type}, jitter 100: queried after {after:.2f} s")
    others = [(1, ((mfr + 1) & 0xFFFF,), "another manufacturer"),
              (2, (mfr, (itype + 1) & 0xFFFF), "another image type")]
    if dut.current_file_version is not None:
        others.append((3, (mfr, itype, dut.current_file_version), "the version it runs"))
    for payload_type, fields, what in others:
        mark = len(session.frames)
        _notify(session, payload_type, 100, fields)
        query = session.wait_for(QueryNextImageRequest, wait, since=mark)
        if query is not None:
            out.mark(query)
            out.fail(f"queries after an Image Notify payload type {payload_type} naming {what}",
                     expected="no query", found="Query Next Image Request")
        else:
            out.ok(f"payload type {payload_type} naming {what}: no query (as it should)")
    tries, queried = 20, 0
    for _ in range(tries):
        mark = len(session.frames)
        _notify(session, 0, 1, ())
        if session.wait_for(QueryNextImageRequest, wait, since=mark) is not None:
            queried += 1
    if queried > 4:
        out.fail(f"query jitter ignored: {queried} of {tries} Image Notify with jitter 1 answered by a query",
                 field="query_jitter", expected="about 1 in 100", found=f"{queried} in {tries}")
    else:
        out.ok(f"query jitter honoured: {queried} of {tries} Image Notify with jitter 1 led to a query")
    return out


def _notify(session: CheckSession, payload_type: int, jitter: int, fields: tuple[int, ...]) -> None:
    """A unicast Image Notify of ``payload_type`` naming ``fields`` (manufacturer, type, version)."""
    mfr, itype, version = (*fields, 0, 0, 0)[:3]
    named = ServedImage(mfr, itype, version, b"") if fields else None
    session.notify(named, payload_type=payload_type, query_jitter=jitter)


# --- B4 back-off -------------------------------------------------------------------------------


def b4_backoff(run: DeviceRun) -> Outcome:
    out = Outcome()
    interval = run.dut.min_query_interval_s
    for status in (Status.NO_IMAGE_AVAILABLE, Status.NOT_AUTHORIZED):
        session = run.session(offer=run.image, test_query_status=int(status))
        first = _answered_query(session, run.budget(600.0, 900.0))
        if first is None:
            return out.inconclusive(f"no Query Next Image Request answered {status.name} (and heard) within "
                                    "the budget")
        session.wait(lambda: bool(session.received(QueryNextImageRequest, session.frames.index(first) + 1)),
                     interval)
        again = [q for q in session.received(QueryNextImageRequest, session.frames.index(first) + 1)
                 if q.time - first.time < interval]
        if again:
            gap = again[0].time - first.time
            out.mark(first, again[0])
            out.fail(f"re-queries {gap:.1f} s after {status.name}, sooner than its declared back-off",
                     expected=f">= {interval:g} s", found=f"{gap:.1f} s")
        else:
            out.ok(f"no query within {interval:g} s of {status.name} (declared back-off)")
        if _started(session):
            out.fail(f"requests blocks after Query Next Image Response {status.name}")
    return out


def _answered_query(session: CheckSession, budget_s: float) -> AirFrame | None:
    """The first query whose answer reached the device: a re-query after an unanswered query, or
    after an answer the radio lost (the hub's delivery report says so), is a retry, not a back-off
    violation."""
    deadline = session.now() + budget_s
    checked = 0
    while session.now() < deadline:
        pending = [q for q in session.received(QueryNextImageRequest) if session.frames.index(q) >= checked]
        if not pending:
            session.wait(lambda: any(session.frames.index(q) >= checked
                                     for q in session.received(QueryNextImageRequest)), deadline - session.now())
            continue
        query = pending[0]
        start = session.frames.index(query)
        checked = start + 1
        session.wait(lambda: bool(session.sent(QueryNextImageResponse, start)), min(10.0, deadline - session.now()))
        responses = session.sent(QueryNextImageResponse, start)
        if not responses:
            continue  # unanswered (a silent server): the device may ask again
        session.wait(None, 1.0)  # the delivery report of the answer
        lost = any(e.event == "delivery_failed" and e.time >= responses[0].time for e in session.events)
        if not lost:
            return query
    return None


# --- B5 blocks ---------------------------------------------------------------------------------


def b5_blocks(run: DeviceRun) -> Outcome:
    out = Outcome()
    session = run.session(offer=run.image, security_mode="aps")  # 40-byte blocks: shorter than asked
    end = _transfer(run, session)
    if not _started(session):
        return out.inconclusive("the device did not start the download within the budget")
    _judge_blocks(session, out)
    _judge_end(end, out, session)
    return out


def _judge_blocks(session: CheckSession, out: Outcome, *, retries_allowed: int = 3) -> None:
    """Contiguous offsets, requests within MaxDataSize, short blocks accepted, no stray Default
    Responses, from the frames."""
    expected: int | None = None
    last_offset: int | None = None
    repeats = 0
    largest_ask = 0
    served = 0
    worst_repeat: AirFrame | None = None
    for frame in session.frames:
        command = frame.command
        if frame.sent:
            if isinstance(command, ImageBlockResponse) and command.status == Status.SUCCESS:
                assert command.file_offset is not None and command.image_data is not None
                expected = command.file_offset + len(command.image_data)
                served += 1
            continue
        if isinstance(command, QueryNextImageRequest):
            expected = None  # a new query may restart or resume
            continue
        if isinstance(command, DefaultResponse) and frame.frame is not None and command.command_id == 0x05:
            out.mark(frame)
            out.fail("Default Response to an Image Block Response (sent with Disable Default Response set)",
                     field="DefaultResponse", expected="none", found=f"status {Status(command.status).name}")
            continue
        if not isinstance(command, (ImageBlockRequest, ImagePageRequest)):
            continue
        largest_ask = max(largest_ask, command.maximum_data_size)
        offset = command.file_offset
        if offset == last_offset:
            repeats += 1
            if repeats > retries_allowed and worst_repeat is None:
                worst_repeat = frame
        else:
            repeats = 0
        if expected is not None and offset not in (expected, last_offset):
            out.mark(frame)
            out.fail("block request not contiguous with the data received", field="file_offset",
                     expected=str(expected), found=str(offset))
        last_offset = offset
    if worst_repeat is not None:
        out.mark(worst_repeat)
        out.fail(f"asks for offset {worst_repeat.command.file_offset} again and again: it does not take the "
                 "block it was given (shorter than it asked, or longer than its stack takes)",
                 field="file_offset", expected="the next offset", found=f"{retries_allowed + 1}+ requests")
    if served:
        out.ok(f"{served} blocks of up to 40 bytes served for requests of up to {largest_ask} bytes")


def _judge_end(end: AirFrame | None, out: Outcome, session: CheckSession, *, expect: Status = Status.SUCCESS) -> None:
    if end is None:
        requests = _requests(session)
        last = requests[-1] if requests else None
        out.mark(last)
        offset = last.command.file_offset if last is not None else 0
        out.fail("the download did not end with an Upgrade End Request within the budget",
                 expected=f"Upgrade End Request {expect.name}", found=f"stalled at offset {offset}")
        return
    out.mark(end)
    status = end.command.status
    if status != expect:
        out.fail(f"Upgrade End Request {_name(status)} for the vendor's unmodified image", field="status",
                 expected=expect.name, found=_name(status))
    else:
        out.ok(f"Upgrade End Request {expect.name} after {end.time - session.frames[0].time:.1f} s")


def _name(status: int) -> str:
    try:
        return Status(status).name
    except ValueError:
        return f"0x{status:02X}"


# --- B6 WAIT_FOR_DATA ----------------------------------------------------------------------------


def b6_wait_for_data(run: DeviceRun) -> Outcome:
    out = Outcome()
    declared = run.dut.minimum_block_period_unit
    period_ms, wait_s = 500 if declared is BlockPeriodUnit.MILLISECONDS else 1000, 10
    for unit in (declared, _other(declared)):
        session = run.session(offer=run.image, minimum_block_period_ms=period_ms, minimum_block_period_unit=unit,
                              test_wait_for_data_at_block=3, test_wait_for_data_s=wait_s)
        budget = run.budget(600.0, 900.0)
        session.wait(lambda: len(_requests(session)) >= 30 or bool(session.received(UpgradeEndRequest)), budget)
        waits = [f for f in session.sent(ImageBlockResponse) if f.command.status == Status.WAIT_FOR_DATA]
        if not waits:
            if unit is declared:
                return out.inconclusive("the device did not reach its fourth block request within the budget"
                                        if not _started(session) else "no WAIT_FOR_DATA was due")
            continue
        test_wait = next((w for w in waits if w.command.request_time == wait_s), waits[0])
        index = session.frames.index(test_wait)
        after = _requests(session, index + 1)
        spacing = _spacing(session)
        if unit is not declared:
            shown = f"{min(spacing) * 1000:.0f} ms" if spacing else "no pace seen"
            out.ok(f"with MinimumBlockPeriod in {unit.value} ({test_wait.command.minimum_block_period}) "
                   f"the device paced at {shown} (discovery only: the device declares {declared.value})")
            continue
        if not after:
            out.fail("no block request after WAIT_FOR_DATA within the budget", expected=f"after {wait_s} s",
                     found="none")
            continue
        gap = after[0].time - test_wait.time
        out.mark(test_wait, after[0])
        if gap + _TIMING_SLACK_S < wait_s:
            out.fail(f"asks again {gap:.2f} s after WAIT_FOR_DATA (request time - current time = {wait_s} s)",
                     field="request_time", expected=f">= {wait_s} s", found=f"{gap:.2f} s")
        else:
            out.ok(f"waited {gap:.2f} s after WAIT_FOR_DATA asking {wait_s} s")
        early = [s for s in spacing if s + _TIMING_SLACK_S < period_ms / 1000.0]
        if early:
            out.fail(f"{len(early)} block requests sooner than MinimumBlockPeriod after the previous response "
                     f"(unit {unit.value})", field="minimum_block_period",
                     expected=f">= {period_ms} ms", found=f"{min(early) * 1000:.0f} ms")
        elif spacing:
            out.ok(f"paced its requests at >= {min(spacing) * 1000:.0f} ms (MinimumBlockPeriod {period_ms} ms, "
                   f"sent in {unit.value})")
    return out


def _other(unit: BlockPeriodUnit) -> BlockPeriodUnit:
    return BlockPeriodUnit.SECONDS if unit is BlockPeriodUnit.MILLISECONDS else BlockPeriodUnit.MILLISECONDS


def _spacing(session: CheckSession) -> list[float]:
    """Seconds from each SUCCESS block response to the next block request, once a
    MinimumBlockPeriod was sent (the pace the device keeps)."""
    gaps: list[float] = []
    paced = False
    last_response: float | None = None
    for frame in session.frames:
        command = frame.command
        if frame.sent and isinstance(command, ImageBlockResponse):
            if command.status == Status.WAIT_FOR_DATA and command.minimum_block_period:
                paced = True
                last_response = None
            elif command.status == Status.SUCCESS:
                last_response = frame.time
        elif not frame.sent and isinstance(command, ImageBlockRequest) and paced and last_response is not None:
            gaps.append(frame.time - last_response)
            last_response = None
    return gaps


# --- B7 duplicate block responses ---------------------------------------------------------------


def b7_duplicate_block(run: DeviceRun) -> Outcome:
    out = Outcome()
    session = run.session(offer=run.image, test_duplicate_block_every=5)
    end = _transfer(run, session)
    if not _started(session):
        return out.inconclusive("the device did not start the download within the budget")
    duplicates = [e for e in session.events if e.event == "test_policy_applied"
                  and e.fields.get("step") == "duplicate_block"]
    if not duplicates and session.received(ImagePageRequest):
        return out.skip("the device uses Image Page Requests: a lost APS ACK shows there as a missed block (B10)")
    restarts = [f for f in session.received(ImageBlockRequest)[1:] if f.command.file_offset == 0]
    aborts = [f for f in session.received(UpgradeEndRequest) if f.command.status == Status.ABORT]
    for frame in restarts[:1] + aborts[:1]:
        out.mark(frame)
    if restarts or aborts:
        out.fail(f"a duplicate Image Block Response broke the download ({len(duplicates)} duplicates sent): "
                 + ("restarted at offset 0" if restarts else "Upgrade End Request ABORT"))
    out.ok(f"{len(duplicates)} Image Block Responses sent twice (a lost APS ACK)")
    _judge_end(end, out, session)
    return out


# --- B8 file removed mid-transfer --------------------------------------------------------------


def b8_missing_file(run: DeviceRun) -> Outcome:
    out = Outcome()
    session = run.session(offer=run.image, test_image_removed_after_blocks=5)
    budget = run.budget(2 * 3600.0, 1800.0)

    def settled() -> bool:
        first = _first_removed(session)
        return first is not None and bool(session.received(QueryNextImageRequest, first))

    session.wait(settled, budget)
    first = _first_removed(session)
    if first is None:
        return out.inconclusive("the device did not download five blocks within the budget")
    after = session.received(ImageBlockRequest, first) + session.received(ImagePageRequest, first)
    queries = session.received(QueryNextImageRequest, first)
    before_query = [f for f in after if not queries or f.time < queries[0].time]
    out.mark(session.frames[first])
    if len(before_query) > 3:
        out.mark(before_query[3])
        out.fail(f"{len(before_query)} block requests for a file the server no longer has",
                 expected="3 (answered Default Response NO_IMAGE_AVAILABLE), then Query Next Image",
                 found=f"{len(before_query)} block requests")
    else:
        out.ok(f"{len(before_query)} block requests answered Default Response NO_IMAGE_AVAILABLE")
    if queries:
        out.mark(queries[0])
        out.ok(f"back to querying {queries[0].time - session.frames[first].time:.0f} s after the file disappeared")
    elif not out.failed:
        out.inconclusive("no Query Next Image Request within the budget after the file disappeared")
    return out


def _first_removed(session: CheckSession) -> int | None:
    """Index of the first block request answered for a removed file."""
    for index, frame in enumerate(session.frames):
        if frame.sent and isinstance(frame.command, DefaultResponse) and frame.command.command_id == 0x03 \
                and frame.command.status == Status.NO_IMAGE_AVAILABLE:
            return index - 1 if index else index
    return None


# --- B9 ABORT ------------------------------------------------------------------------------------


def b9_abort(run: DeviceRun) -> Outcome:
    out = Outcome()
    session = run.session(offer=run.image, test_abort_after_blocks=5)
    session.wait(lambda: any(f.command.status == Status.ABORT for f in session.sent(ImageBlockResponse)),
                 run.budget(600.0, 900.0))
    aborts = [f for f in session.sent(ImageBlockResponse) if f.command.status == Status.ABORT]
    if not aborts:
        return out.inconclusive("the device did not download five blocks within the budget")
    index = session.frames.index(aborts[0])
    end = session.wait_for(UpgradeEndRequest, run.budget(30.0, 60.0), since=index + 1)
    out.mark(aborts[0], end)
    if end is None:
        out.fail("no Upgrade End Request after Image Block Response ABORT", expected="Upgrade End Request ABORT",
                 found="none within the budget")
    elif end.command.status != Status.ABORT:
        out.fail("Upgrade End Request after ABORT with another status", field="status", expected="ABORT",
                 found=_name(end.command.status))
    else:
        out.ok(f"Upgrade End Request ABORT {end.time - aborts[0].time:.2f} s after the ABORT")
    session.set_policy(test_abort_after_blocks=None)
    mark = len(session.frames)
    session.notify()
    session.wait(lambda: bool(_requests(session, mark)), run.budget(2 * 3600.0, 300.0))
    block = _first(_requests(session, mark))
    if block is None:
        if not out.failed:
            out.inconclusive("no new download after the abort within the budget (clean state not shown)")
        return out
    out.mark(block)
    if block.command.file_offset != 0:
        out.fail("the next download resumes where the aborted one stopped", field="file_offset",
                 expected="0", found=str(block.command.file_offset))
    else:
        out.ok("the next download starts at offset 0 (clean state)")
    return out


# --- B10 page requests ---------------------------------------------------------------------------


def b10_page_requests(run: DeviceRun) -> Outcome:
    out = Outcome()
    profile = run.dut.profile
    if profile is not None and not profile.use_page_requests:
        return out.skip("the device uses Image Block Requests only (no Image Page Request to test)")
    session = run.session(offer=run.image, test_page_miss_every=5)
    end = _transfer(run, session)
    pages = session.received(ImagePageRequest)
    if not pages:
        if _started(session):
            return out.skip("the device uses Image Block Requests only (first request: Image Block Request)")
        return out.inconclusive("the device did not start the download within the budget")
    missed = [e for e in session.events if e.event == "test_policy_applied"
              and e.fields.get("step") == "page_block_missed"]
    first = pages[0].command
    out.ok(f"{len(pages)} Image Page Requests (page size {first.page_size}, response spacing "
           f"{first.response_spacing} ms, up to {first.maximum_data_size} bytes a block); "
           f"{len(missed)} blocks never sent")
    sizes = {f.command.page_size for f in pages}
    if len(sizes) > 1:
        out.warn(f"page size changes between requests: {sorted(sizes)}")
    _judge_end(end, out, session)
    return out


# --- B11 corrupted image ---------------------------------------------------------------------------


def b11_invalid_image(run: DeviceRun) -> Outcome:
    out = Outcome()
    image = parse_image(run.image)
    if not corruption_detectable(image):
        return out.skip(f"layout {image.layout} carries no signature or integrity code: a flipped byte cannot "
                        "be found by the device")
    data, flipped = corrupted(run.image)
    session = run.session(offer=data)
    end = _transfer(run, session)
    if not _started(session):
        return out.inconclusive("the device did not start the download within the budget")
    out.ok(f"served the image with the byte at offset {flipped} flipped (not re-signed)", offset=flipped)
    if end is None:
        out.mark(*_requests(session)[-1:])
        return out.inconclusive("no Upgrade End Request within the budget")
    out.mark(end)
    if end.command.status == Status.SUCCESS:
        out.fail("Upgrade End Request SUCCESS for a corrupted image", field="status", expected="INVALID_IMAGE",
                 found="SUCCESS")
    elif end.command.status != Status.INVALID_IMAGE:
        out.fail("Upgrade End Request with another status for a corrupted image", field="status",
                 expected="INVALID_IMAGE", found=_name(end.command.status))
    else:
        out.ok("Upgrade End Request INVALID_IMAGE")
    session.wait(None, run.budget(60.0, 10.0))
    activated = _activated(run, session, image.header.file_version)
    if activated:
        out.fail("the corrupted image was activated", expected=f"version 0x{run.dut.current_file_version or 0:08X}",
                 found=f"0x{image.header.file_version:08X}")
    elif activated is None:
        out.warn("whether the image was activated is unknown (no answer to the Image Notify probe)")
    else:
        out.ok("never activated")
    return out


# --- B12 upgrade time ------------------------------------------------------------------------------


def b12_upgrade_time(run: DeviceRun) -> Outcome:
    out = Outcome()
    version = run.file_version
    delay = 120
    for timing in (UpgradeTiming.NOW, UpgradeTiming.DELAY, UpgradeTiming.WAIT_FOR_COMMAND):
        session = run.session(offer=run.image, upgrade_timing=timing, upgrade_delay_s=delay)
        end = _transfer(run, session)
        if end is None or end.command.status != Status.SUCCESS:
            return out.inconclusive(f"{timing.value}: the download did not end with Upgrade End Request SUCCESS "
                                    "(B5 says why)")
        response = session.sent(UpgradeEndResponse)
        out.mark(response[0] if response else None)
        at = end.time - session.started
        activations = session.activations()
        if timing is UpgradeTiming.NOW:
            session.wait(lambda: bool(session.activations()), run.budget(30.0, 30.0))
            done = _activated(run, session, version)
            if done:
                out.ok("upgrade time 0 (current time 0): activated at once")
            else:
                out.fail("upgrade time 0 (current time 0): not activated", expected="activation", found="none")
        elif timing is UpgradeTiming.DELAY:
            session.wait(None, delay / 2)
            early = _activated(run, session, version) if activations is not None else None
            session.wait(lambda: bool(session.activations()), delay + 60.0)
            late = session.activations()
            if late is not None:
                when = [t - at for t, v in late if v == version]
                if not when:
                    out.fail(f"relative upgrade time {delay} s (current time 0): never activated",
                             expected=f"activation {delay} s after the Upgrade End Response", found="none")
                elif when[0] + 1.0 < delay:
                    out.fail(f"relative upgrade time {delay} s: activated after {when[0]:.0f} s",
                             expected=f"{delay} s", found=f"{when[0]:.0f} s")
                else:
                    out.ok(f"relative upgrade time {delay} s (current time 0): activated after {when[0]:.0f} s")
            else:
                done = _activated(run, session, version)
                if early:
                    out.fail(f"relative upgrade time {delay} s: activated before half of it")
                elif done:
                    out.ok(f"relative upgrade time {delay} s: activated by {delay + 60} s")
                else:
                    out.fail(f"relative upgrade time {delay} s: not activated {delay + 60} s later")
        else:
            session.wait(None, run.budget(300.0, 120.0))
            held = session.activations()
            if held:
                out.fail("upgrade time 0xFFFFFFFF: activated without the upgrade command",
                         expected="wait for the command", found=f"activation after {held[0][0] - at:.0f} s")
                continue
            mark = len(session.frames)
            session.upgrade_now()
            session.wait(lambda: bool(session.activations()), run.budget(30.0, 30.0))
            out.mark(*session.sent(UpgradeEndResponse, mark))
            if _activated(run, session, version):
                out.ok("upgrade time 0xFFFFFFFF: waited, then activated on the upgrade command")
            else:
                out.fail("upgrade time 0xFFFFFFFF: not activated on the upgrade command", found="none")
    return out


# --- B13 silent phase ------------------------------------------------------------------------------


def b13_silent_phase(run: DeviceRun) -> Outcome:
    out = Outcome()
    bound = run.dut.max_silent_phase_s
    session = run.session(offer=run.image, upgrade_timing=UpgradeTiming.WAIT_FOR_COMMAND)
    end = _transfer(run, session, run.budget(4 * 3600.0 + 600.0, 4 * 3600.0))
    blocks = [f for f in session.sent(ImageBlockResponse) if f.command.status == Status.SUCCESS]
    if not blocks:
        return out.inconclusive("the device did not start the download within the budget")
    last = max(blocks, key=lambda f: (f.command.file_offset or 0) + len(f.command.image_data or b""))
    out.mark(last, end)
    if end is None:
        out.fail("no Upgrade End Request within the hub's silent-phase timeout (4 h) after the last block",
                 expected="Upgrade End Request", found="none")
        return out
    gap = end.time - last.time
    if gap > bound:
        out.warn(f"{gap:.0f} s between the last block and Upgrade End Request, longer than the declared "
                 f"{bound:g} s", expected=f"<= {bound:g} s", found=f"{gap:.0f} s")
    else:
        out.ok(f"{gap:.1f} s between the last block and Upgrade End Request (declared bound {bound:g} s)")
    return out


# --- B14 power loss ---------------------------------------------------------------------------------


def b14_power_loss(run: DeviceRun) -> Outcome:
    out = Outcome()
    session = run.session(offer=run.image, begin=False)
    if not session.can_power_cycle:
        return out.inconclusive("the bench cannot cut the device's power: cut it by hand mid-transfer and run "
                                "B5 (resumption shows as a contiguous block request after a query)")
    begin_session(session)
    size = len(run.image)
    session.wait(lambda: any((f.command.file_offset or 0) >= size // 2 for f in _requests(session)),
                 run.budget(3600.0, 1800.0))
    requests = session.received(ImageBlockRequest) + session.received(ImagePageRequest)
    if not requests:
        return out.inconclusive("the device did not start the download within the budget")
    reached = max(f.command.file_offset for f in requests)
    mark = len(session.frames)
    session.power_cycle(10.0, run.dut.reannounce_delay_s)
    out.ok(f"power cut for 10 s at offset {reached} of {size}")
    session.wait(lambda: bool(_requests(session, mark)), run.budget(900.0, 900.0))
    resumed = _first(_requests(session, mark))
    if resumed is None:
        out.fail("no block request after the power came back", expected="resume at the offset reached",
                 found="none within the budget")
        return out
    out.mark(requests[-1], resumed)
    if resumed.command.file_offset + 64 < reached:
        out.fail("restarts the download instead of resuming", field="file_offset",
                 expected=f">= {reached - 64}", found=str(resumed.command.file_offset))
    else:
        out.ok(f"resumed at offset {resumed.command.file_offset}")
    end = _transfer(run, session)
    _judge_end(end, out, session)
    return out


# --- B15 attributes ------------------------------------------------------------------------------------


def b15_attributes(run: DeviceRun) -> Outcome:
    out = Outcome()
    session = run.session(offer=run.image, begin=False, upgrade_timing=UpgradeTiming.WAIT_FOR_COMMAND)
    before = session.attributes()
    if before is None:
        return out.inconclusive("reading the device's OTA client attributes needs ZCL Read Attributes from the "
                                "bench, which the HIL path does not send yet")
    version = run.file_version
    expected_identity = {"MANUFACTURER_ID": run.dut.manufacturer_code, "IMAGE_TYPE_ID": run.dut.image_type}
    _expect(out, before, "before", IMAGE_UPGRADE_STATUS=0, **expected_identity)
    begin_session(session)
    query = session.wait_for(QueryNextImageRequest, run.budget(120.0, 300.0))
    if query is None:
        return out.inconclusive("no Query Next Image Request within the budget")
    out.mark(query)
    current = before.get("CURRENT_FILE_VERSION")
    if query.command.current_file_version != current:
        out.fail("Query Next Image Request reports another version than the CurrentFileVersion attribute",
                 field="current_file_version", expected=f"0x{current or 0:08X}",
                 found=f"0x{query.command.current_file_version:08X}")
    else:
        out.ok(f"Query Next Image Request reports CurrentFileVersion 0x{current or 0:08X}")
    session.wait(lambda: len(session.received(ImageBlockRequest)) >= 10, run.budget(300.0, 300.0))
    during = session.attributes() or {}
    if session.received(ImageBlockRequest):
        _expect(out, during, "during the download", IMAGE_UPGRADE_STATUS=1)
        offset = during.get("FILE_OFFSET") or 0
        served = max((f.command.file_offset or 0) + len(f.command.image_data or b"")
                     for f in session.sent(ImageBlockResponse) if f.command.status == Status.SUCCESS)
        if not 0 < offset <= served:
            out.fail("FileOffset is not within the data served", field="FileOffset",
                     expected=f"1..{served}", found=str(offset))
        else:
            out.ok(f"FileOffset {offset} (served up to {served})")
    end = _transfer(run, session)
    if end is None or end.command.status != Status.SUCCESS:
        if not out.failed:
            out.inconclusive("the download did not end with Upgrade End Request SUCCESS")
        return out
    session.wait(None, 5.0)
    _expect(out, session.attributes() or {}, "waiting for the upgrade command", IMAGE_UPGRADE_STATUS=3,
            DOWNLOADED_FILE_VERSION=version)
    session.upgrade_now()
    session.wait(lambda: bool(session.activations()), 30.0)
    _expect(out, session.attributes() or {}, "after activation", IMAGE_UPGRADE_STATUS=0,
            CURRENT_FILE_VERSION=version)
    return out


def _expect(out: Outcome, attributes: dict[str, int | None], when: str, **wanted: int | None) -> None:
    for name, value in wanted.items():
        if value is None:
            continue
        found = attributes.get(name)
        if found != value:
            out.fail(f"{name} {when}", field=name, expected=_show(name, value), found=_show(name, found))
        else:
            out.ok(f"{name} {when}: {_show(name, found)}", field=name)


def _show(name: str, value: int | None) -> str:
    if value is None:
        return "absent"
    return f"0x{value:08X}" if "VERSION" in name else f"0x{value:04X}" if name.endswith("_ID") else str(value)


# --- B16 throttling ----------------------------------------------------------------------------------


def b16_throttling(run: DeviceRun) -> Outcome:
    out = Outcome()
    wait = 60
    session = run.session(offer=run.image, test_throttle_requests=3, test_throttle_wait_s=wait)
    end = _transfer(run, session)
    throttles = [f for f in session.sent(ImageBlockResponse) if f.command.status == Status.WAIT_FOR_DATA]
    if not throttles:
        return out.inconclusive("the device did not ask for a block within the budget")
    early = []
    for frame in throttles:
        index = session.frames.index(frame)
        nxt = _requests(session, index + 1)
        following = next((f for f in session.frames[index + 1:] if not f.sent), None)
        if following is not None and not isinstance(following.command, (ImageBlockRequest, ImagePageRequest)):
            out.mark(frame, following)
            out.fail(f"abandons the download after WAIT_FOR_DATA {wait} s: its next frame is {following.name}",
                     expected="the same block request after the wait", found=following.name)
            break
        if nxt and nxt[0].time - frame.time + _TIMING_SLACK_S < wait:
            early.append((frame, nxt[0]))
    if early:
        throttle, again = early[0]
        out.mark(throttle, again)
        out.fail(f"asks again {again.time - throttle.time:.1f} s after WAIT_FOR_DATA {wait} s (slots full)",
                 expected=f">= {wait} s", found=f"{again.time - throttle.time:.1f} s")
    elif not out.failed:
        out.ok(f"waited {wait} s after each of {len(throttles)} WAIT_FOR_DATA (slots full)")
    _judge_end(end, out, session)
    return out


DEVICE_CHECKS: dict[str, Callable[[DeviceRun], Outcome]] = {
    "B1": b1_server_endpoint, "B2": b2_hardware_version, "B3": b3_image_notify, "B4": b4_backoff, "B5": b5_blocks,
    "B6": b6_wait_for_data, "B7": b7_duplicate_block, "B8": b8_missing_file, "B9": b9_abort,
    "B10": b10_page_requests, "B11": b11_invalid_image, "B12": b12_upgrade_time, "B13": b13_silent_phase,
    "B14": b14_power_loss, "B15": b15_attributes, "B16": b16_throttling,
}
