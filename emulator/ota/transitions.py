"""The OTA server's and client's state machines as data.

Each engine changes state only through its ``_move``, which asks the table here and raises
:class:`IllegalTransition` for a move the table does not list: an engine bug, never a device's
fault (what a device may do wrong is handled before any move). docs/ota.md shows both tables as
:func:`markdown` renders them; a test keeps the two equal.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, TypeVar

from .sessions import SessionState

S = TypeVar("S", bound=enum.Enum)


class ImageUpgradeStatus(enum.IntEnum):
    """The OTA client's ImageUpgradeStatus attribute (ZCL 11.10.7): the client's state."""

    NORMAL = 0
    DOWNLOAD_IN_PROGRESS = 1
    DOWNLOAD_COMPLETE = 2
    WAITING_TO_UPGRADE = 3
    COUNT_DOWN = 4
    WAIT_FOR_MORE = 5


class IllegalTransition(RuntimeError):
    """An engine tried a state change its transition table does not allow (an internal error)."""


@dataclass(frozen=True, slots=True)
class Transition(Generic[S]):
    """From any of ``sources`` (``None``: no session yet), ``trigger`` leads to ``target``."""

    sources: tuple[S | None, ...]
    trigger: str
    target: S
    output: str = ""


class TransitionTable(Generic[S]):
    def __init__(self, name: str, rows: tuple[Transition[S], ...]) -> None:
        self.name = name
        self.rows = rows
        self._allowed = frozenset((source, row.target) for row in rows for source in row.sources)

    def check(self, source: S, target: S, subject: str) -> None:
        if (source, target) not in self._allowed:
            raise IllegalTransition(
                f"{self.name}: {source.name} -> {target.name} is not in the transition table ({subject})"
            )

    def markdown(self) -> str:
        """The table as docs/ota.md shows it."""
        lines = ["| from | input | to | output |", "|---|---|---|---|"]
        states = {s for row in self.rows for s in row.sources if s is not None} | {row.target for row in self.rows}
        for row in self.rows:
            given = set(row.sources)
            if given >= states:
                sources = "any, or no session" if None in given else "any"
            else:
                sources = ", ".join("(none)" if s is None else s.name for s in row.sources)
            lines.append(f"| {sources} | {row.trigger} | {row.target.name} | {row.output} |")
        return "\n".join(lines)


_ACTIVE = (SessionState.OFFERED, SessionState.DOWNLOADING, SessionState.AWAITING_UPGRADE_END)
_ANY_SESSION = (None, *SessionState)

SERVER = TransitionTable[SessionState]("OTA server session", (
    Transition((None, SessionState.WAITING_FOR_COMMAND, SessionState.SCHEDULED, SessionState.COMPLETED,
                SessionState.FAILED, SessionState.TIMED_OUT, SessionState.ABORTED, *_ACTIVE),
               "Query Next Image Request, an image fits (a new session unless the same image is in transfer)",
               SessionState.OFFERED, "Query Next Image Response SUCCESS"),
    Transition((None,), "Image Block / Page Request for an image the device may have, no running session for it",
               SessionState.OFFERED, "(a session is made, then as below; `transfer_resumed` at an offset)"),
    Transition((SessionState.OFFERED,), "Image Block / Page Request", SessionState.DOWNLOADING,
               "Image Block Response(s)"),
    Transition((SessionState.DOWNLOADING,), "last byte served", SessionState.AWAITING_UPGRADE_END, ""),
    Transition(_ANY_SESSION, "Upgrade End Request SUCCESS, policy `now` or `delay`", SessionState.SCHEDULED,
               "Upgrade End Response (upgrade time 0 or the delay)"),
    Transition(_ANY_SESSION, "Upgrade End Request SUCCESS, policy `wait_for_command`",
               SessionState.WAITING_FOR_COMMAND, "Upgrade End Response 0xFFFFFFFF"),
    Transition(_ANY_SESSION, "Upgrade End Request, other status", SessionState.FAILED, "Default Response"),
    Transition((SessionState.WAITING_FOR_COMMAND,), "`upgrade_now()`", SessionState.COMPLETED,
               "Upgrade End Response, upgrade time 0"),
    Transition(_ACTIVE, "block gap or silent-phase timeout", SessionState.TIMED_OUT, ""),
    Transition(_ACTIVE, "`abort()`", SessionState.ABORTED, "next block request: Image Block Response ABORT"),
))

_S = ImageUpgradeStatus
_HOLDING = (_S.DOWNLOAD_COMPLETE, _S.COUNT_DOWN, _S.WAITING_TO_UPGRADE)

CLIENT = TransitionTable[ImageUpgradeStatus]("OTA client ImageUpgradeStatus", (
    Transition((_S.NORMAL, _S.DOWNLOAD_IN_PROGRESS, _S.WAITING_TO_UPGRADE),
               "Query Next Image Response SUCCESS (a new image, or the same one: resume at FileOffset)",
               _S.DOWNLOAD_IN_PROGRESS, "Image Block / Page Request"),
    Transition((_S.NORMAL, _S.DOWNLOAD_IN_PROGRESS), "Image Block Response WAIT_FOR_DATA",
               _S.DOWNLOAD_IN_PROGRESS, "the next request after the wait"),
    Transition((_S.NORMAL, _S.DOWNLOAD_IN_PROGRESS), "last byte received", _S.DOWNLOAD_COMPLETE,
               "silent phase, then Upgrade End Request"),
    Transition(_HOLDING, "Upgrade End Response 0xFFFFFFFF", _S.WAITING_TO_UPGRADE, ""),
    Transition(_HOLDING, "Upgrade End Response with a delay", _S.COUNT_DOWN, "activation when it ends"),
    Transition(tuple(_S), "activated, Image Block Response ABORT, or Default Response to a failed "
               "Upgrade End Request", _S.NORMAL, "Query Next Image Request after the query interval"),
    Transition((_S.NORMAL, *_HOLDING), "no answer to a query after every retry", _S.NORMAL, ""),
))
