"""HTTP front door of the emulated DSP: DUIS XML in, synchronous DUIS response out.

``POST /api/v1/serviceD`` is the path DCC Boxed exposes for DUIS requests. The request is parsed
completely before ``submit`` sees it, so a bad document changes nothing in the DSP.
"""

from __future__ import annotations

import inspect
import logging
from datetime import datetime, timezone
from typing import Awaitable, Callable

from aiohttp import web

from .duis import DEFAULT_MAX_DOCUMENT, DuisError, parse_request, render_dsp_response
from .messages import DspResponse
from .service_requests import ServiceRequest

_LOGGER = logging.getLogger(__name__)

SERVICE_PATH = "/api/v1/serviceD"
XML_CONTENT_TYPE = "application/xml"
_XML_TYPES = {"application/xml", "text/xml", "application/octet-stream", ""}

Submit = Callable[[ServiceRequest], DspResponse | Awaitable[DspResponse]]


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


def create_app(
    submit: Submit,
    *,
    max_body: int = DEFAULT_MAX_DOCUMENT,
    now: Callable[[], datetime] = _utcnow,
) -> web.Application:
    """An aiohttp application serving the DUIS endpoint.

    ``submit`` receives each fully parsed Service Request and returns the DSP's synchronous
    answer (it may be a coroutine function). ``now`` stamps ResponseDateTime. Answers: 200 with
    the DUIS response; 400 with one line naming the element at fault; 413 over ``max_body``
    bytes; 415 for a body that is declared as something other than XML.
    """

    async def service(request: web.Request) -> web.Response:
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
        try:
            service_request = parse_request(body, max_size=max_body)
        except DuisError as exc:
            raise _reject(web.HTTPBadRequest, f"invalid DUIS request: {exc}") from None
        result = submit(service_request)
        response = await result if inspect.isawaitable(result) else result
        if not isinstance(response, DspResponse):
            raise TypeError(f"submit returned {type(response).__name__}, not DspResponse")
        _LOGGER.info(
            "DUIS %s %s -> %s",
            service_request.header.service_reference_variant,
            service_request.header.request_id,
            response.response_code,
        )
        return web.Response(
            body=render_dsp_response(response, at=now()),
            content_type=XML_CONTENT_TYPE,
            charset="utf-8",
        )

    app = web.Application(client_max_size=max_body)
    app.router.add_post(SERVICE_PATH, service)
    return app
