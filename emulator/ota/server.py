"""The Comms Hub's OTA Upgrade server as a protocol engine without I/O.

Feed it decoded frames (:meth:`OtaServer.on_frame`) and timer expiries (:meth:`OtaServer.on_timer`);
it returns :mod:`~emulator.ota.actions` for its runtime to carry out. It holds no socket, task or
clock, so the same code serves a USB dongle on asyncio, ten thousand premises in virtual time and
plain unit tests.

Outputs are commands (send a frame, set a timer) and typed outcome records (a query answered or
refused, a transfer ended): the hub raises its CCS08 alerts from those records, and the timeline
shows them. One session per device; its states and moves are the table
:data:`emulator.ota.transitions.SERVER` (rendered in docs/ota.md), and :meth:`OtaServer._move`
refuses any other move.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Final

from .actions import (
    Action,
    AllBlocksServed,
    BlockRefusal,
    BlockRefused,
    DefaultResponseReceived,
    ImageNotifySent,
    LinkLost,
    LinkRestored,
    QueryAnswered,
    QueryIgnored,
    Refusal,
    Send,
    SessionRestored,
    SetTimer,
    TestPolicyApplied,
    TestStep,
    TimeoutPhase,
    TimerKind,
    TransferEnded,
    TransferOutcome,
    TransferResumed,
    TransferStarted,
    UpgradeCommandSent,
    UpgradeEndReceived,
    WaitForDataSent,
)
from .catalog import ImageCatalog, ServedImage
from .frames import (
    FILE_VERSION_WILDCARD,
    DefaultResponse,
    ImageBlockRequest,
    ImageBlockResponse,
    ImageNotify,
    ImageNotifyPayloadType,
    ImagePageRequest,
    QueryDeviceSpecificFileRequest,
    QueryDeviceSpecificFileResponse,
    QueryNextImageRequest,
    QueryNextImageResponse,
    Status,
    UPGRADE_TIME_NOW,
    UPGRADE_TIME_WAIT_FOR_COMMAND,
    UpgradeEndRequest,
    UpgradeEndResponse,
    ZclFrame,
)
from .policy import MissingImageResponse, PolicyBook, ServerPolicy, UpgradeTiming, VersionRule
from .sessions import MemorySessionStore, Session, SessionState, SessionStore
from .timeline import render
from .transitions import SERVER

_LOGGER = logging.getLogger(__name__)

_new: Final = tuple.__new__
# Module constants are Final: the compiled build (docs/fleet.md) reads them from C statics (an enum
# member through its class, or a plain global, is a dictionary look-up there).
_SUCCESS: Final = Status.SUCCESS
_DOWNLOADING: Final = SessionState.DOWNLOADING

_UPGRADE_END_CMD: Final = 0x06
_IMAGE_BLOCK_REQUEST_CMD: Final = 0x03
_TIMEOUT: Final = TimerKind.TIMEOUT


class _TestState:
    """What the server's test policies count for one device (certify device; not persisted)."""

    __slots__ = ("block_requests", "removed", "page_blocks")

    def __init__(self) -> None:
        self.block_requests = 0
        self.removed = False  # the image was withdrawn by test_image_removed_after_blocks
        self.page_blocks = 0


class OtaServer:
    """OTA server for all devices of one Comms Hub."""

    # Devices whose HAN link the hub reported lost: a shared empty set until the first one (an
    # empty set per hub would cost a fleet 216 bytes a premises).
    _lost: "set[int] | frozenset[int]" = frozenset()

    def __init__(
        self,
        catalog: ImageCatalog | None = None,
        policies: PolicyBook | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        self.catalog = catalog if catalog is not None else ImageCatalog()
        self.policies = policies if policies is not None else PolicyBook()
        self.sessions: SessionStore = sessions if sessions is not None else MemorySessionStore()
        self._tsn = 0
        self._tests: dict[int, _TestState] = {}

    # -- inputs --------------------------------------------------------------------------------
    def on_frame(self, now: float, device: int, nwk: int, frame: ZclFrame) -> list[Action]:
        """Handle one decoded frame from ``device``."""
        if self._lost and device in self._lost:
            return [*self._link_restored(now, device), *self.on_frame(now, device, nwk, frame)]
        handler = _HANDLERS.get(type(frame.command))
        if handler is None:
            # A server->client command sent to us: not ours to act on.
            return [
                Send(device, nwk, DefaultResponse(frame.header.command_id, Status.UNSUP_CLUSTER_COMMAND),
                     frame.header.tsn)
            ]
        return handler(self, now, device, nwk, frame.header.tsn, frame.command)

    def on_timer(self, now: float, device: int, kind: TimerKind) -> list[Action]:
        session = self.sessions.get(device)
        if session is None:
            return []
        match kind:
            case TimerKind.TIMEOUT:
                return self._check_timeout(now, session)
            case TimerKind.PAGE:
                return self._next_page_block(now, session)
        raise ValueError(f"the OTA server has no {kind!r} timer")

    def restore(self, now: float) -> list[Action]:
        """After a restart: re-arm timeouts of stored sessions (timers do not survive)."""
        actions: list[Action] = []
        for session in self.sessions:
            session.timer_due = None
            if session.state.active:
                # The stored times are the old process's clock (which may have started again at
                # zero): shift them all so the device's last request is now, and the device has
                # a whole timeout from the restart.
                shift = now - session.last_request_at
                session.last_request_at = now
                session.last_response_at += shift
                session.quiet_until += shift
                if session.started_at is not None:
                    session.started_at += shift
                if session.link_lost_at is not None:
                    session.link_lost_at += shift
                if session.link_lost_at is not None:
                    self._mark_lost(session.device)
                actions.extend(self._arm_timeout(now, session))
                actions.append(SessionRestored(session.device, session.state.value, session.offset))
        return actions

    # -- commands from the Comms Hub ------------------------------------------------------------
    def image_notify(
        self, device: int | None, nwk: int, image: ServedImage | None = None, *, query_jitter: int | None = None,
        payload_type: int | None = None,
    ) -> list[Action]:
        """Image Notify to one device (unicast) or to all (``device`` None, ``nwk`` 0xFFFF).

        A unicast carries the device's policy payload type and jitter (default payload type 0,
        jitter 100, as the OTA spec asks of a unicast and real clients expect); a broadcast names
        ``image`` (payload type 3) so that only the devices it is for ask."""
        if device is not None:
            policy = self.policies.for_device(device)
            jitter = policy.image_notify_jitter if query_jitter is None else query_jitter
            kind = policy.image_notify_payload_type if payload_type is None else payload_type
        else:
            jitter = 100 if query_jitter is None else query_jitter
            kind = ImageNotifyPayloadType.JITTER_MFR_TYPE_VERSION if payload_type is None else payload_type
        if not 1 <= jitter <= 100:
            raise ValueError(f"query_jitter must be 1..100, got {jitter}")
        if image is None:
            kind = ImageNotifyPayloadType.JITTER
        fields = (image.manufacturer_code, image.image_type, image.file_version)[:kind] if image else ()
        command = ImageNotify(ImageNotifyPayloadType(kind), jitter, *fields)
        target = device if device is not None else 0
        return [Send(target, nwk, command, self._next_tsn()),
                ImageNotifySent(target, jitter, device is None, image.file_version if image else None)]

    def upgrade_now(self, now: float, device: int) -> list[Action]:
        """Unsolicited Upgrade End Response "now" to a device waiting for the upgrade command."""
        session = self.sessions.get(device)
        if session is None or session.state is not SessionState.WAITING_FOR_COMMAND:
            state = session.state.value if session else "none"
            raise ValueError(f"device {device:016X} is not waiting for an upgrade command (state {state})")
        self._move(session, SessionState.COMPLETED)
        self.sessions.put(session)
        command = UpgradeEndResponse(
            session.manufacturer_code, session.image_type, session.file_version, 0, UPGRADE_TIME_NOW
        )
        return [Send(device, session.nwk, command, self._next_tsn()), UpgradeCommandSent(device, session.file_version)]

    def abort(self, now: float, device: int, reason: str = "aborted by hub") -> list[Action]:
        """End the device's transfer; its next block request is answered with ABORT."""
        session = self.sessions.get(device)
        if session is None or not session.state.active:
            return []
        self._move(session, SessionState.ABORTED)
        session.status = Status.ABORT
        self.sessions.put(session)
        return [TransferEnded(device, TransferOutcome.ABORTED, session.file_version, session.offset, reason=reason)]

    def progress(self, now: float, device: int) -> dict[str, Any] | None:
        session = self.sessions.get(device)
        if session is None:
            return None
        _, fields = render(session.progress(now))
        return {"state": session.state.value, **fields}

    # -- handlers --------------------------------------------------------------------------------
    @staticmethod
    def _move(session: Session, target: SessionState) -> None:
        """The one place a session changes state: only moves in the transition table."""
        SERVER.check(session.state, target, f"device {session.device:016X}")
        session.state = target

    def _next_tsn(self) -> int:
        self._tsn = (self._tsn + 1) & 0xFF
        return self._tsn

    def _on_query_next_image(
        self, now: float, device: int, nwk: int, tsn: int, req: QueryNextImageRequest
    ) -> list[Action]:
        policy = self.policies.for_device(device)
        if policy.silent_on_query:
            return [QueryIgnored(device)]
        candidates = self.catalog.candidates(device, req.manufacturer_code, req.image_type)
        test = self._tests.get(device)
        if test is not None and test.removed:
            candidates = []  # a test policy withdrew the file
        chosen: ServedImage | None = None
        refusal = Refusal.NO_MATCHING_IMAGE
        for image in sorted(candidates, key=lambda i: i.file_version, reverse=True):
            if not image.fits_hardware(req.hardware_version):
                refusal = Refusal.HARDWARE_VERSION_MISMATCH
                continue
            if not _version_allowed(policy.version_rule, req.current_file_version, image.file_version):
                refusal = Refusal.NO_NEWER_VERSION
                continue
            chosen = image
            break
        if policy.test_query_status is not None and policy.test_query_status != Status.SUCCESS:
            chosen = None  # a test policy refuses every query (NO_IMAGE_AVAILABLE, NOT_AUTHORIZED)
        if chosen is None:
            status = Status.NO_IMAGE_AVAILABLE if policy.test_query_status is None else Status(policy.test_query_status)
            if policy.test_query_status is None and not candidates and policy.no_image_status == "not_authorized":
                status, refusal = Status.NOT_AUTHORIZED, Refusal.NOT_AUTHORIZED
            return [
                Send(device, nwk, QueryNextImageResponse(status), tsn),
                QueryAnswered(device, refusal, req.current_file_version, req.hardware_version),
            ]
        existing = self.sessions.get(device)
        if existing is not None and existing.state.active and existing.image_key == chosen.key:
            session = existing  # a re-query during a transfer keeps the session
            session.nwk = nwk
        else:
            session = Session(device, nwk, *chosen.key, chosen.size, last_request_at=now)
        session.last_request_at = now
        self.sessions.put(session)
        response = QueryNextImageResponse(Status.SUCCESS, *chosen.key, chosen.size)
        answered = QueryAnswered(device, None, req.current_file_version, req.hardware_version,
                                 chosen.file_version, chosen.size)
        return [Send(device, nwk, response, tsn), answered, *self._arm_timeout(now, session)]

    def _session_for_block(
        self, now: float, device: int, nwk: int, req: ImageBlockRequest | ImagePageRequest
    ) -> tuple[Session | None, ServedImage | None, list[Action]]:
        key = (req.manufacturer_code, req.image_type, req.file_version)
        session = self.sessions.get(device)
        actions: list[Action] = []
        if session is not None and session.state in (SessionState.ABORTED,) and session.image_key == key:
            return session, None, actions
        image = self.catalog.lookup(device, key)
        if image is None:
            return None, None, actions
        if session is None or session.image_key != key or not session.state.active:
            # A client resuming (reboot, or a server that lost its session) is served anyway.
            session = Session(device, nwk, *key, image.size, last_request_at=now)
            if req.file_offset:
                actions.append(TransferResumed(device, req.file_offset))
            self.sessions.put(session)
        session.nwk = nwk
        return session, image, actions

    def _on_image_block(
        self, now: float, device: int, nwk: int, tsn: int, req: ImageBlockRequest
    ) -> list[Action]:
        session = self.sessions.get(device)
        if (session is not None and session.image is not None and session.state is _DOWNLOADING
                and session.file_version == req.file_version and session.image_type == req.image_type
                and session.manufacturer_code == req.manufacturer_code and session.nwk == nwk):
            image: ServedImage | None = session.image  # the common case: the next block of a transfer
            actions: list[Action] = []
        else:
            session, image, actions = self._session_for_block(now, device, nwk, req)
        policy = self.policies.for_device(device)
        if image is None or session is None:
            if session is None and policy.missing_image_response is MissingImageResponse.DEFAULT_RESPONSE:
                # The file is not (or no longer) here: Default Response NO_IMAGE_AVAILABLE, as
                # Silicon Labs answers; the client goes back to querying after three.
                actions.append(Send(device, nwk, DefaultResponse(_IMAGE_BLOCK_REQUEST_CMD, Status.NO_IMAGE_AVAILABLE),
                                    tsn))
            else:
                # ZCL allows only SUCCESS, WAIT_FOR_DATA and ABORT in an Image Block Response.
                actions.append(Send(device, nwk, ImageBlockResponse(Status.ABORT), tsn))
            actions.append(BlockRefused(device, BlockRefusal.NOT_OFFERED, req.file_version))
            return actions
        if policy.testing:
            tested = self._test_step(now, session, nwk, tsn, req, policy)
            if tested is not None:
                return actions + tested
        session.last_request_at = now
        if req.file_offset >= image.size:
            actions.append(Send(device, nwk, ImageBlockResponse(Status.ABORT), tsn))
            actions.append(BlockRefused(device, BlockRefusal.BEYOND_IMAGE, req.file_version, req.file_offset,
                                        image.size))
            return actions
        period_s = policy.minimum_block_period_ms / 1000.0
        if period_s and now - session.last_response_at < period_s:
            wait = period_s - (now - session.last_response_at)
            wait_s = max(1, int(wait + 0.999))
            actions.append(
                Send(device, nwk,
                     ImageBlockResponse(Status.WAIT_FOR_DATA, current_time=0, request_time=wait_s,
                                        minimum_block_period=policy.block_period_value()), tsn)
            )
            actions.append(WaitForDataSent(device, wait_s, policy.minimum_block_period_ms))
            session.quiet_until = now + wait_s
            return actions
        size = min(req.maximum_data_size, policy.block_cap, image.size - req.file_offset)
        actions.extend(self._serve(now, session, image, req.file_offset, size, tsn, policy.response_delay_s,
                                   policy.progress_step_percent))
        every = policy.test_duplicate_block_every if policy.testing else None
        if every and session.blocks_served % every == 0:
            first = next(a for a in actions if isinstance(a, Send) and isinstance(a.command, ImageBlockResponse))
            actions.append(first._replace(delay=first.delay + 0.02))  # the same frame again: a lost APS ACK
            actions.append(TestPolicyApplied(device, TestStep.DUPLICATE_BLOCK, req.file_offset))
        return actions

    def _test_step(self, now: float, session: Session, nwk: int, tsn: int,
                   req: ImageBlockRequest | ImagePageRequest, policy: ServerPolicy) -> list[Action] | None:
        """A test policy's answer to this block request, or ``None`` to serve it as usual."""
        device = session.device
        test = self._tests.setdefault(device, _TestState())
        index = test.block_requests
        test.block_requests += 1
        step: TestStep | None = None
        wait = 0
        if index < policy.test_throttle_requests:
            step, wait = TestStep.THROTTLED, policy.test_throttle_wait_s
        elif index == policy.test_wait_for_data_at_block:
            step, wait = TestStep.WAIT_FOR_DATA, policy.test_wait_for_data_s
        if step is not None:
            session.quiet_until = now + wait
            period = policy.block_period_value()
            return [Send(device, nwk, ImageBlockResponse(Status.WAIT_FOR_DATA, current_time=0, request_time=wait,
                                                         minimum_block_period=period), tsn),
                    WaitForDataSent(device, wait, policy.minimum_block_period_ms),
                    TestPolicyApplied(device, step, req.file_offset)]
        removed = policy.test_image_removed_after_blocks
        if removed is not None and (test.removed or session.blocks_served >= removed):
            test.removed = True
            if policy.missing_image_response is MissingImageResponse.DEFAULT_RESPONSE:
                answer: Any = DefaultResponse(_IMAGE_BLOCK_REQUEST_CMD, Status.NO_IMAGE_AVAILABLE)
            else:
                answer = ImageBlockResponse(Status.ABORT)
            return [Send(device, nwk, answer, tsn), TestPolicyApplied(device, TestStep.IMAGE_REMOVED, req.file_offset)]
        aborted = policy.test_abort_after_blocks
        if aborted is not None and session.blocks_served >= aborted and session.state.active:
            actions = self.abort(now, device, reason="test policy: abort after the first blocks")
            return [*actions, Send(device, nwk, ImageBlockResponse(Status.ABORT), tsn),
                    TestPolicyApplied(device, TestStep.ABORTED, req.file_offset)]
        return None

    def _serve(self, now: float, session: Session, image: ServedImage, offset: int, size: int,
               tsn: int, delay: float, step: int | None = None) -> list[Action]:
        actions: list[Action] = []
        session.image = image
        if session.started_at is None or session.state is SessionState.OFFERED:
            session.started_at = now
            if session.state is not SessionState.DOWNLOADING:
                self._move(session, SessionState.DOWNLOADING)
            self.sessions.put(session)
            actions.append(TransferStarted(session.device, session.file_version, session.image_size, size, offset))
            actions.extend(self._arm_timeout(now, session))
        data = image.data[offset:offset + size]
        # Every field in order (no NamedTuple __new__ call): the one frame of every block exchange.
        actions.append(_new(Send, (session.device, session.nwk, _new(ImageBlockResponse, (
            _SUCCESS, session.manufacturer_code, session.image_type, session.file_version, offset, data,
            None, None, None)), tsn, delay)))
        session.last_response_at = now + delay
        session.bytes_served += size
        session.blocks_served += 1
        end = offset + size
        if end > session.offset:
            session.offset = end
        if step is None:
            step = self.policies.for_device(session.device).progress_step_percent
        percent = 100 * session.offset // session.image_size
        if percent >= session.next_progress and step > 0:
            session.next_progress = (percent // step + 1) * step
            self.sessions.put(session)
            actions.append(session.progress(now))
        if session.offset >= session.image_size and session.state is SessionState.DOWNLOADING:
            self._move(session, SessionState.AWAITING_UPGRADE_END)
            self.sessions.put(session)
            actions.append(AllBlocksServed(session.device, session.bytes_served, session.blocks_served,
                                           round(now - (session.started_at or now), 3)))
            actions.extend(self._arm_timeout(now, session))
        return actions

    # -- the batch transition (the fast path, docs/fleet.md) --------------------------------------
    def plain_blocks(self, device: int, nwk: int, req: ImageBlockRequest) -> tuple[int, int]:
        """How many Image Block Requests like ``req``, one after another from its offset, this
        server answers with a SUCCESS block of one size and nothing else (no outcome, no timer,
        no state change): ``(count, block size)``; ``(0, 0)`` when the next one is not such a
        request. The block that reaches a progress step or the end of the image is not plain."""
        if self._lost and device in self._lost:
            return 0, 0  # the frame reports the link back
        session = self.sessions.get(device)
        if (session is None or session.image is None or session.state is not SessionState.DOWNLOADING
                or session.started_at is None or session.nwk != nwk or session.offset != req.file_offset
                or session.file_version != req.file_version or session.image_type != req.image_type
                or session.manufacturer_code != req.manufacturer_code):
            return 0, 0
        policy = self.policies.for_device(device)
        if policy.response_delay_s or policy.minimum_block_period_ms:
            return 0, 0
        image = session.image
        size = min(req.maximum_data_size, policy.block_cap, image.size - req.file_offset)
        if size <= 0:
            return 0, 0
        last = image.size - 1  # the block that ends the image is not plain
        if policy.progress_step_percent > 0:
            # 100 * end // image_size < next_progress  <=>  end <= (next_progress * image_size - 1) // 100
            last = min(last, (session.next_progress * session.image_size - 1) // 100)
        count = (last - req.file_offset) // size
        return (count, size) if count > 0 else (0, 0)

    def serve_blocks(self, device: int, count: int, size: int, tsn: int, last_request_at: float) -> Send:
        """Serve ``count`` plain blocks (see :meth:`plain_blocks`) as :meth:`on_frame` would one
        by one, the last request arriving at ``last_request_at``; returns the last block's Send
        (whose request had ``tsn``)."""
        session = self.sessions.get(device)
        assert session is not None and session.image is not None and count > 0
        offset = session.offset + (count - 1) * size
        session.last_request_at = last_request_at
        session.last_response_at = last_request_at + 0.0
        session.bytes_served += count * size
        session.blocks_served += count
        session.offset = offset + size
        return Send(session.device, session.nwk,
                    ImageBlockResponse(Status.SUCCESS, session.manufacturer_code, session.image_type,
                                       session.file_version, offset, session.image.data[offset:offset + size]), tsn)

    def _on_image_page(
        self, now: float, device: int, nwk: int, tsn: int, req: ImagePageRequest
    ) -> list[Action]:
        session, image, actions = self._session_for_block(now, device, nwk, req)
        if image is None or session is None or req.file_offset >= image.size:
            actions.append(Send(device, nwk, ImageBlockResponse(Status.ABORT), tsn))
            return actions
        policy = self.policies.for_device(device)
        if policy.testing:
            tested = self._test_step(now, session, nwk, tsn, req, policy)
            if tested is not None:
                return actions + tested
        session.last_request_at = now
        session.page_offset = req.file_offset
        session.page_end = min(req.file_offset + req.page_size, image.size)
        session.page_block = max(1, min(req.maximum_data_size, policy.block_cap))
        session.page_spacing_ms = req.response_spacing
        session.page_tsn = tsn
        actions.extend(self._next_page_block(now, session, image))
        return actions

    def _next_page_block(self, now: float, session: Session, image: ServedImage | None = None) -> list[Action]:
        if session.page_offset >= session.page_end or not session.state.active:
            return []
        if image is None:
            image = self.catalog.lookup(session.device, session.image_key)
            if image is None:
                return []
        size = min(session.page_block, session.page_end - session.page_offset)
        offset = session.page_offset
        session.page_offset += size
        session.last_request_at = now
        miss = self.policies.for_device(session.device).test_page_miss_every
        if miss:
            test = self._tests.setdefault(session.device, _TestState())
            test.page_blocks += 1
            if test.page_blocks % miss == 0:
                actions: list[Action] = [TestPolicyApplied(session.device, TestStep.PAGE_BLOCK_MISSED, offset)]
                if session.page_offset < session.page_end:
                    actions.append(SetTimer(session.device, TimerKind.PAGE, session.page_spacing_ms / 1000.0))
                return actions
        actions = self._serve(now, session, image, offset, size, session.page_tsn, 0.0)
        if session.page_offset < session.page_end:
            actions.append(SetTimer(session.device, TimerKind.PAGE, session.page_spacing_ms / 1000.0))
        return actions

    def _on_upgrade_end(
        self, now: float, device: int, nwk: int, tsn: int, req: UpgradeEndRequest
    ) -> list[Action]:
        session = self.sessions.get(device)
        key = (req.manufacturer_code, req.image_type, req.file_version)
        actions: list[Action] = [UpgradeEndReceived(device, req.status, req.file_version)]
        if req.status == Status.ABORT and (session is None or not session.state.active):
            # The client confirms an ABORT the server sent (or a transfer already over): nothing
            # more to end.
            actions.append(Send(device, nwk, DefaultResponse(_UPGRADE_END_CMD, Status.SUCCESS), tsn))
            return actions
        if session is None or session.image_key != key:
            image = self.catalog.lookup(device, key)
            if image is None:
                actions.append(Send(device, nwk, DefaultResponse(_UPGRADE_END_CMD, Status.NO_IMAGE_AVAILABLE), tsn))
                return actions
            session = Session(device, nwk, *key, image.size, offset=image.size, last_request_at=now)
        session.nwk = nwk
        session.last_request_at = now
        if req.status != Status.SUCCESS:
            self._move(session, SessionState.FAILED)
            session.status = req.status
            self.sessions.put(session)
            actions.append(Send(device, nwk, DefaultResponse(_UPGRADE_END_CMD, Status.SUCCESS), tsn))
            actions.append(TransferEnded(device, TransferOutcome.FAILED, req.file_version, session.offset,
                                         status=req.status))
            return actions
        policy = self.policies.for_device(device)
        if policy.upgrade_timing is UpgradeTiming.WAIT_FOR_COMMAND:
            upgrade_time = UPGRADE_TIME_WAIT_FOR_COMMAND
            self._move(session, SessionState.WAITING_FOR_COMMAND)
        elif policy.upgrade_timing is UpgradeTiming.DELAY:
            upgrade_time = policy.upgrade_delay_s
            self._move(session, SessionState.SCHEDULED)
        else:
            upgrade_time = UPGRADE_TIME_NOW
            self._move(session, SessionState.SCHEDULED)
        session.status = Status.SUCCESS
        self.sessions.put(session)
        actions.append(Send(device, nwk, UpgradeEndResponse(*key, 0, upgrade_time), tsn))
        actions.append(TransferEnded(
            device, TransferOutcome.COMPLETED, req.file_version, session.offset, bytes_served=session.bytes_served,
            duration_s=round(now - session.started_at, 3) if session.started_at is not None else None,
            upgrade_time=upgrade_time, upgrade_timing=policy.upgrade_timing))
        return actions

    def _on_query_specific_file(
        self, now: float, device: int, nwk: int, tsn: int, req: QueryDeviceSpecificFileRequest
    ) -> list[Action]:
        # Device-specific files (e.g. security credentials) are not distributed by GB hubs.
        return [Send(device, nwk, QueryDeviceSpecificFileResponse(Status.NO_IMAGE_AVAILABLE), tsn),
                QueryAnswered(device, Refusal.DEVICE_SPECIFIC_FILE)]

    def _on_default_response(
        self, now: float, device: int, nwk: int, tsn: int, rsp: DefaultResponse
    ) -> list[Action]:
        # Stray Default Responses mid-transfer are logged and otherwise ignored.
        return [DefaultResponseReceived(device, rsp.command_id, rsp.status)]

    # -- timeouts and the HAN link --------------------------------------------------------------
    def _deadline(self, session: Session) -> float:
        policy = self.policies.for_device(session.device)
        if session.state is SessionState.AWAITING_UPGRADE_END:
            return session.last_request_at + policy.upgrade_end_timeout_s
        return session.last_request_at + policy.block_gap_timeout_s

    def _link_due(self, session: Session) -> float | None:
        """When silence mid-download makes the link count as lost (None: not watched now)."""
        if session.state is not SessionState.DOWNLOADING or session.link_lost_at is not None:
            return None
        after = self.policies.for_device(session.device).link_lost_after_s
        if after is None:
            return None
        return max(session.last_request_at, session.quiet_until) + after

    def _arm_timeout(self, now: float, session: Session) -> list[Action]:
        due = self._deadline(session)
        link = self._link_due(session)
        if link is not None and link < due:
            due = link
        if session.timer_due is not None and session.timer_due <= due:
            return []  # an earlier timer will fire and re-check
        session.timer_due = due
        return [SetTimer(session.device, _TIMEOUT, max(due - now, 0.0))]

    def _check_timeout(self, now: float, session: Session) -> list[Action]:
        session.timer_due = None
        if not session.state.active:
            return []
        actions: list[Action] = []
        link = self._link_due(session)
        due = self._deadline(session)
        if link is not None and now + 1e-9 >= link and now + 1e-9 < due:
            session.link_lost_at = session.last_request_at
            self._mark_lost(session.device)
            self.sessions.put(session)
            actions.append(LinkLost(session.device, session.offset, round(now - session.last_request_at, 3),
                                    round(due - now, 3)))
        if now + 1e-9 < due:
            return [*actions, *self._arm_timeout(now, session)]
        silent = session.state is SessionState.AWAITING_UPGRADE_END
        self._move(session, SessionState.TIMED_OUT)
        self._unmark_lost(session.device)
        self.sessions.put(session)
        return [*actions, TransferEnded(session.device, TransferOutcome.TIMED_OUT, session.file_version, session.offset,
                                        phase=TimeoutPhase.SILENT_PHASE if silent else TimeoutPhase.DOWNLOAD,
                                        idle_s=round(now - session.last_request_at, 3))]

    def _mark_lost(self, device: int) -> None:
        if not self._lost:
            self._lost = set()
        self._lost.add(device)  # type: ignore[union-attr]

    def _unmark_lost(self, device: int) -> None:
        if device in self._lost:
            self._lost.discard(device)  # type: ignore[union-attr]

    def _link_restored(self, now: float, device: int) -> list[Action]:
        self._unmark_lost(device)
        session = self.sessions.get(device)
        if session is None or session.link_lost_at is None:
            return []
        lost_at, session.link_lost_at = session.link_lost_at, None
        self.sessions.put(session)
        return [LinkRestored(device, session.offset, round(now - lost_at, 3))]


def _version_allowed(rule: VersionRule, current: int, offered: int) -> bool:
    if rule is VersionRule.FORCE or current == FILE_VERSION_WILDCARD:
        return True
    if rule is VersionRule.NEWER:
        return offered > current
    if rule is VersionRule.REINSTALL:
        return offered >= current
    return offered != current



# The server's handler of each client-to-server command: one table for every server (a fleet
# has one server a premises; bound methods in a dict each would cost 700 bytes a hub).
_HANDLERS: dict[type, Callable[[OtaServer, float, int, int, int, Any], list[Action]]] = {
    QueryNextImageRequest: OtaServer._on_query_next_image,
    ImageBlockRequest: OtaServer._on_image_block,
    ImagePageRequest: OtaServer._on_image_page,
    UpgradeEndRequest: OtaServer._on_upgrade_end,
    QueryDeviceSpecificFileRequest: OtaServer._on_query_specific_file,
    DefaultResponse: OtaServer._on_default_response,
}
