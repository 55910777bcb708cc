"""The one error the DUIS layer raises for a bad request: it names what is wrong and where."""

from __future__ import annotations


class DuisError(ValueError):
    """A DUIS document the emulator cannot accept.

    ``element`` is the path of the offending element (``Header/RequestID``) when there is one;
    ``str(error)`` is a single line fit for an HTTP 4xx body or a CLI message.
    """

    def __init__(self, reason: str, *, element: str | None = None) -> None:
        self.reason = reason
        self.element = element
        super().__init__(f"{element}: {reason}" if element else reason)
