"""The one error the DUIS layer raises for a bad request: it names what is wrong and where."""

from __future__ import annotations

from ..messages import ResponseCode


class DuisError(ValueError):
    """A DUIS document the emulator cannot accept.

    ``element`` is the path of the offending element (``Header/RequestID``) when there is one;
    ``str(error)`` is a single line fit for an HTTP header, a log or a CLI message. ``code`` is the
    DUIS ResponseCode the front door answers with; ``request_id``, ``variant`` and
    ``schema_version`` are what could be read of the request before the fault (None if nothing),
    so the answer can still be a DUIS response.
    """

    def __init__(self, reason: str, *, element: str | None = None,
                 code: ResponseCode = ResponseCode.INVALID_REQUEST) -> None:
        self.reason = reason
        self.element = element
        self.code = code
        self.request_id: str | None = None
        self.variant: str | None = None
        self.schema_version: str | None = None
        super().__init__(f"{element}: {reason}" if element else reason)
