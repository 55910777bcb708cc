"""HTTP front door of the emulated DSP: DUIS XML in, synchronous DUIS response out.

DCC Boxed's three endpoints: ``POST /api/v1/serviceS`` (Send Command: 11.2, signed pre-commands
of 11.3), ``/api/v1/serviceD`` (Non-Device: 11.1, 11.4, and the local-delivery variants 11.2 CV 2,
11.3 CV 6, 8.11 CV 2) and ``/api/v1/serviceT`` (Transform: 11.3 CommandVariant 4). ``/api/v1/serviceD`` also takes every other SR, as the emulator's single path
did before (a warning says where DCC Boxed would want it). Every well-formed request gets a DUIS
answer, errors included (E1, E12, E13, E100, ...); only what is not XML (or is hostile) gets HTTP 4xx
text. The request is parsed and its signature checked completely before ``submit`` sees it, so a
refused request changes nothing in the DSP. Emulator-only facts (why a request was refused,
warnings) go in ``X-CH-Emulator-*`` headers, never inside the DUIS document.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import inspect
import logging
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, TypeVar

from aiohttp import web

from .duis import DEFAULT_MAX_DOCUMENT, DuisError, parse_request_root
from .duis.envelope import serialise
from .duis.responses import dsp_response_element
from .duis.signing import DuisSigner, RequestVerifier
from .duis.xmlsafe import parse_document
from .messages import DspResponse, ResponseCode
from .service_requests import ActivateFirmware, ServiceRequest

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


class Endpoint(str, enum.Enum):
    SEND_COMMAND = "/api/v1/serviceS"
    NON_DEVICE = "/api/v1/serviceD"
    TRANSFORM = "/api/v1/serviceT"


SERVICE_PATH = Endpoint.NON_DEVICE.value
"""The path the emulator always served (it still takes every SR)."""
XML_CONTENT_TYPE = "application/xml"
REASON_HEADER = "X-CH-Emulator-Reason"
WARNING_HEADER = "X-CH-Emulator-Warning"
_XML_TYPES = {"application/xml", "text/xml", "application/octet-stream", ""}

ROUTES: dict[tuple[str, int], Endpoint] = {
    ("11.1", 8): Endpoint.NON_DEVICE,
    ("11.4", 8): Endpoint.NON_DEVICE,
    ("11.2", 1): Endpoint.SEND_COMMAND,
    ("11.2", 2): Endpoint.NON_DEVICE,  # local delivery: DCC's "Non-Device Service" (duis-parser's CV table)
    ("11.2", 3): Endpoint.SEND_COMMAND,
    ("11.3", 4): Endpoint.TRANSFORM,
    ("11.3", 5): Endpoint.SEND_COMMAND,
    ("11.3", 6): Endpoint.NON_DEVICE,
    ("11.3", 7): Endpoint.SEND_COMMAND,
    ("8.11", 1): Endpoint.SEND_COMMAND,
    ("8.11", 2): Endpoint.NON_DEVICE,  # local delivery, as 11.2 CV 2
    ("8.11", 3): Endpoint.SEND_COMMAND,
}
"""(SRV, CommandVariant) -> the endpoint DCC Boxed takes it on."""

Submit = Callable[[ServiceRequest], DspResponse | Awaitable[DspResponse]]
Durable = Callable[[], Awaitable[None]]
"""``durable()``: resolves once everything ``submit`` committed so far is on disk (group commit)."""
OnEvent = Callable[..., None]
"""``on_event(name, **fields)``: the front door's own events for the timeline (``front_door_refused``
for a request answered with an error before the DSP saw it, ``unsigned_request`` for a warning)."""
Hold = Callable[[DspResponse], Awaitable[None]]
"""``hold(response)``: awaited after ``submit`` and before the answer is sent (the realistic timing
preset's synchronous answer time, emulator/dcc/timing.py)."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _reject(status: type[web.HTTPException], reason: str) -> web.HTTPException:
    _LOGGER.info("rejected DUIS request: %s", reason)
    return status(text=reason + "\n", content_type="text/plain")


def _too_large(size: int | None, limit: int) -> web.HTTPRequestEntityTooLarge:
    shown = f"{size} bytes" if size is not None else "more bytes than that"
    reason = f"request body is {shown}, larger than the limit of {limit} bytes"
    _LOGGER.info("rejected DUIS request: %s", reason)
    return web.HTTPRequestEntityTooLarge(
        max_size=limit, actual_size=size if size is not None else limit + 1, text=reason + "\n"
    )


INLINE_LIMIT = 64 * 1024
"""Bodies up to this many bytes are parsed and checked on the event loop (tens of microseconds:
less than the hand-over to a worker thread, which also contends for the GIL); larger ones (an
11.1 carries its image) in a worker thread, so they never hold up the loop."""


async def _off_loop_if(large: bool, function: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(function, *args) if large else function(*args)


def _header_safe(text: str) -> str:
    return " ".join(text.split())[:500]


UNSIGNED_WARNING_INTERVAL_S = 60.0
"""After its first, an originator's unsigned requests are logged as one WARNING line this often."""


class UnsignedWarnings:
    """The log lines for unsigned requests accepted without ``--require-signatures``: a WARNING
    for an originator's first one, then one WARNING a minute with how many more came (each is
    still a DEBUG line, an ``unsigned_request`` timeline event and a warning header on its
    answer). A User sending hundreds a second would otherwise fill the log with one line each."""

    def __init__(self, monotonic: Callable[[], float], interval: float = UNSIGNED_WARNING_INTERVAL_S) -> None:
        self._monotonic = monotonic
        self._interval = interval
        self._since: dict[int | None, tuple[float, int]] = {}  # originator -> (last warning, unsigned since)

    def accepted(self, originator: int | None, variant: str, request_id: str, verdict: str) -> None:
        now = self._monotonic()
        last = self._since.get(originator)
        if last is not None and now - last[0] < self._interval:
            self._since[originator] = (last[0], last[1] + 1)
            _LOGGER.debug("DUIS %s %s is not signed (%s); accepted", variant, request_id, verdict)
            return
        more = f" ({last[1]} more unsigned requests from this originator since the last warning)" if last else ""
        _LOGGER.warning("DUIS %s %s is not signed (%s); accepted (start with --require-signatures to refuse)%s",
                        variant, request_id, verdict, more)
        self._since[originator] = (now, 0)


class _ArrivalOrder:
    """Requests reach ``submit`` in the order their bodies arrived, though they are parsed and
    checked in parallel worker threads: one User's increasing RequestID counters are not
    overtaken (which the anti-replay check would refuse with E1)."""

    def __init__(self) -> None:
        self._next = 0
        self._turn = 0
        self._done: set[int] = set()
        self._waiters: dict[int, asyncio.Future[None]] = {}

    def ticket(self) -> int:
        self._next += 1
        return self._next - 1

    async def wait_turn(self, ticket: int) -> None:
        if ticket == self._turn:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[ticket] = waiter
        try:
            await waiter
        finally:
            self._waiters.pop(ticket, None)

    def release(self, ticket: int) -> None:
        """``ticket`` has been submitted, refused or abandoned (idempotent)."""
        if ticket < self._turn or ticket in self._done:
            return
        self._done.add(ticket)
        while self._turn in self._done:
            self._done.remove(self._turn)
            self._turn += 1
        waiter = self._waiters.get(self._turn)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def create_app(
    submit: Submit,
    *,
    max_body: int = DEFAULT_MAX_DOCUMENT,
    now: Callable[[], datetime] = _utcnow,
    signer: DuisSigner | None = None,
    verifier: RequestVerifier | None = None,
    require_signatures: bool = False,
    on_event: OnEvent | None = None,
    max_in_flight: int | None = None,
    request_deadline: float | None = None,
    retry_after: int = 1,
    monotonic: Callable[[], float] = time.monotonic,
    hold: Hold | None = None,
    durable: Durable | None = None,
    inline_limit: int = INLINE_LIMIT,
) -> web.Application:
    """An aiohttp application serving DCC Boxed's DUIS endpoints.

    ``submit`` receives each fully parsed, signature-checked Service Request and returns the
    DSP's synchronous answer (it may be a coroutine function, run to its end before the next
    request goes in; or return an :class:`asyncio.Future`, which means the request was handed on
    in order already, so the next request goes in while this one's answer is awaited: the link of
    ``serve --workers 2``). ``now`` stamps ResponseDateTime.
    ``signer`` signs every answer; ``verifier`` checks request signatures (a bad one is E1 and
    nothing runs; an unsigned request is E1 with ``require_signatures``, else accepted with a
    warning). Answers: 200 with a DUIS response; 400 with one line for what is not XML or is
    hostile; 413 over ``max_body`` bytes; 415 for a body declared as something other than XML.

    Backpressure: with ``max_in_flight``, a request arriving while that many are being read,
    parsed or checked gets 503 with ``Retry-After: retry_after`` at once (never a silent queue);
    with ``request_deadline``, one not ready for ``submit`` within that many seconds (``monotonic``
    time since it arrived) gets 503 and is never executed. A request over ``inline_limit`` bytes
    (default :data:`INLINE_LIMIT`) is parsed and checked in a worker thread, so a large request
    never blocks the event loop; ``submit`` runs on the loop, and once it has run the request is
    answered whatever the deadline. ``hold`` delays each executed request's answer (other requests
    go on meanwhile).

    Group commit: with ``durable``, each answer waits for ``durable()`` after ``submit`` (what the
    request committed is then on disk); the next request goes into ``submit`` meanwhile, so the
    requests of one moment share one fsync.
    """
    in_flight = 0
    order = _ArrivalOrder()
    unsigned_warnings = UnsignedWarnings(monotonic)

    def unavailable(why: str) -> web.HTTPServiceUnavailable:
        _LOGGER.info("DUIS request refused with 503: %s", why)
        return web.HTTPServiceUnavailable(text=why + "\n", headers={"Retry-After": str(retry_after)})

    def note(name: str, **fields: object) -> None:
        if on_event is not None:
            on_event(name, **fields)

    def refuse(response: DspResponse, *, schema_version: str | None, headers: dict[str, str]) -> web.Response:
        note("front_door_refused", request_id=response.request_id, service_reference_variant=response.service_reference_variant,
             response_code=str(response.response_code), error=response.error)
        return answer(response, schema_version=schema_version, headers=headers)

    def answer(response: DspResponse, *, schema_version: str | None, headers: dict[str, str],
               variant: str | None = None) -> web.Response:
        root = dsp_response_element(response, at=now(), schema_version=schema_version,
                                    service_reference_variant=variant)
        body = signer.sign_element(root) if signer is not None else serialise(root)
        if response.error:
            headers[REASON_HEADER] = _header_safe(response.error)
        return web.Response(body=body, content_type=XML_CONTENT_TYPE, charset="utf-8", headers=headers)

    async def service(request: web.Request) -> web.Response:
        nonlocal in_flight
        if max_in_flight is not None and in_flight >= max_in_flight:
            raise unavailable(f"{in_flight} requests in progress (the limit is {max_in_flight}); retry later")
        in_flight += 1
        ticket: list[int] = []  # taken once the body has arrived
        try:
            return await checked_service(request, monotonic(), ticket)
        finally:
            in_flight -= 1
            for taken in ticket:
                order.release(taken)

    async def checked_service(request: web.Request, arrived: float, ticket: list[int]) -> web.Response:
        endpoint = Endpoint(request.path)
        if request.content_length is not None and request.content_length > max_body:
            raise _too_large(request.content_length, max_body)
        if request.content_type not in _XML_TYPES:
            raise _reject(
                web.HTTPUnsupportedMediaType,
                f"Content-Type {request.content_type!r} is not XML; send application/xml",
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # chunked body without Content-Length
            raise _too_large(None, max_body) from None
        ticket.append(order.ticket())
        large = len(body) > inline_limit
        try:
            root = await _off_loop_if(large, functools.partial(parse_document, max_size=max_body), body)
        except DuisError as exc:
            raise _reject(web.HTTPBadRequest, f"invalid DUIS request: {exc}") from None
        headers: dict[str, str] = {}
        try:
            service_request = await _off_loop_if(large, parse_request_root, root)
        except DuisError as exc:
            if exc.variant is None:
                raise _reject(web.HTTPBadRequest, f"invalid DUIS request: {exc}") from None
            _LOGGER.info("DUIS request refused with %s: %s", exc.code, exc)
            refused = DspResponse(exc.request_id or "", exc.variant, exc.code, error=str(exc))
            return refuse(refused, schema_version=exc.schema_version, headers=headers)
        header = service_request.header
        variant = header.service_reference_variant
        wanted = ROUTES.get((variant, header.command_variant))
        if wanted is not endpoint and endpoint is not Endpoint.NON_DEVICE:
            error = (f"{variant} with CommandVariant {header.command_variant} goes to {wanted.value if wanted else '?'}, "
                     f"not {endpoint.value}")
            refused = DspResponse(header.request_id, variant, ResponseCode.WRONG_ENDPOINT, error=error)
            return refuse(refused, schema_version=header.schema_version, headers=headers)
        if wanted is not endpoint:
            headers[WARNING_HEADER] = f"DCC Boxed takes {variant} CV {header.command_variant} on {wanted.value if wanted else '?'}"
        if verifier is not None:
            check = await _off_loop_if(large, verifier.check, root, header.originator)
            if check.unsigned and not require_signatures:
                unsigned_warnings.accepted(header.originator, variant, header.request_id, check.verdict.value)
                headers[WARNING_HEADER] = f"request not signed: {check.verdict.value}"
                note("unsigned_request", request_id=header.request_id, service_reference_variant=variant,
                     signature=check.verdict.value)
            elif not check.valid:
                error = f"signature: {check.verdict.value}" + (f" ({check.detail})" if check.detail else "")
                _LOGGER.info("DUIS %s %s refused: %s", variant, header.request_id, error)
                refused = DspResponse(header.request_id, variant, ResponseCode.BAD_SIGNATURE, error=error)
                return refuse(refused, schema_version=header.schema_version, headers=headers)
        if endpoint is Endpoint.TRANSFORM and isinstance(service_request, ActivateFirmware):
            service_request = dataclasses.replace(service_request, transform=True)  # CV 4: answer the pre-command
        await order.wait_turn(ticket[0])
        if request_deadline is not None and monotonic() - arrived > request_deadline:
            raise unavailable(f"request not ready within {request_deadline:g} s; it was not executed")
        try:
            result = submit(service_request)
            if isinstance(result, asyncio.Future):  # handed over in order (serve's edge): the next may go
                order.release(ticket[0])
            response = await result if inspect.isawaitable(result) else result
        finally:
            order.release(ticket[0])
        if not isinstance(response, DspResponse):
            raise TypeError(f"submit returned {type(response).__name__}, not DspResponse")
        _LOGGER.info("DUIS %s %s -> %s", variant, header.request_id, response.response_code)
        if hold is not None:
            await hold(response)
        # Executed: from here the answer goes out, once its commit is on disk, whatever the deadline.
        return await asyncio.shield(answer_when_durable(response, header.schema_version, headers))

    async def answer_when_durable(response: DspResponse, schema_version: str | None,
                                  headers: dict[str, str]) -> web.Response:
        signed = answer(response, schema_version=schema_version, headers=headers)  # small: on the loop
        if durable is not None:
            try:
                await durable()
            except OSError as exc:  # logged where it happened; the request ran and is committed
                _LOGGER.error("DUIS %s: answered although its commit may not be on disk: %s",
                              response.request_id, exc)
        return signed

    app = web.Application(client_max_size=max_body)
    for endpoint in Endpoint:
        app.router.add_post(endpoint.value, service)
    return app
