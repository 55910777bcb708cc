"""What a pre-certification check is and what running it yields, as typed data.

A check is a catalogue entry (:class:`Check`): its ID from shared/docs/precert-checks.md, where it
comes from, what it needs, and either a function that runs it or the reason it is not available.
A run gives one :class:`CheckResult` per check: a :class:`Verdict` and the :class:`Evidence` behind
it, so a vendor can map every finding to its source and to a byte in the file.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar


class Verdict(str, enum.Enum):
    """How a check ended. Only ``FAIL`` makes the run fail; ``NOT_AVAILABLE`` is never a pass."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    NOT_APPLICABLE = "not-applicable"
    NOT_AVAILABLE = "not-available"
    INCONCLUSIVE = "inconclusive"  # a device check whose session could not decide (budget, bench limits)


class Group(str, enum.Enum):
    IMAGE = "A"
    OTA_CLIENT = "B"
    GBCS = "C"
    NETWORK = "D"

    @property
    def heading(self) -> str:
        return _GROUP_TITLES[self]


_GROUP_TITLES = {
    Group.IMAGE: "The image file (no radio)",
    Group.OTA_CLIENT: "The OTA client (device under test)",
    Group.GBCS: "GBCS behaviour around the firmware",
    Group.NETWORK: "Network and security prerequisites",
}


class Need(str, enum.Enum):
    """What a check needs to run."""

    FILE = "file"  # the image file alone
    VIRTUAL = "virtual"  # the emulated hub and an emulated device, in virtual time
    BENCH = "bench"  # a real device on a bench (real dongle / radio)
    GBCS = "GBCS"  # GBCS messages (commands, responses, alerts) between hub and device
    CBKE = "CBKE"  # ZigBee Certificate-Based Key Establishment (suite 2 certificates)


@dataclass(frozen=True)
class Evidence:
    """One observation behind a verdict: where in the file, which field, expected and found."""

    message: str
    field: str | None = None
    offset: int | None = None
    expected: str | None = None
    found: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        if self.field:
            parts.append(self.field)
        where = f"[{', '.join(parts)}] " if parts else ""
        detail = ""
        if self.expected is not None or self.found is not None:
            detail = f" (expected {self.expected or '-'}, found {self.found or '-'})"
        return f"{where}{self.message}{detail}"


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    title: str
    verdict: Verdict
    evidence: tuple[Evidence, ...] = ()
    # Device checks: the session behind the verdict (timeline excerpt, frames involved, pcap).
    timeline: tuple[str, ...] = ()
    frames: tuple[str, ...] = ()
    pcap: str | None = None
    budget: str | None = None

    @property
    def summary(self) -> str:
        """The finding in one line (JUnit failure text, console)."""
        return "; ".join(str(item) for item in self.evidence) or self.verdict.value


Context = TypeVar("Context")


@dataclass(frozen=True)
class Check(Generic[Context]):
    """One catalogue entry. ``run`` is ``None`` until the layer the check needs has landed; then
    ``unavailable`` says why, and the check reports ``NOT_AVAILABLE`` with that reason. ``limits``
    names the part of an implemented check that still needs a later layer."""

    check_id: str
    group: Group
    title: str
    source: str
    needs: tuple[Need, ...]
    applies_to: str  # which files / devices the check is about
    verdict_rule: str  # how pass / fail / warn / not-applicable are decided
    run: Callable[[Context], "Outcome"] | None = None
    unavailable: str | None = None
    limits: str | None = None  # what an implemented check does not cover yet

    @property
    def implemented(self) -> bool:
        return self.run is not None

    def not_available(self) -> CheckResult:
        return CheckResult(self.check_id, self.title, Verdict.NOT_AVAILABLE,
                           (Evidence(self.unavailable or "not implemented"),))


@dataclass
class Outcome:
    """What a check function builds up: the worst verdict wins (fail > warn > pass)."""

    evidence: list[Evidence] = field(default_factory=list)
    failed: bool = False
    warned: bool = False
    not_applicable: str | None = None
    undecided: str | None = None
    marked: list[object] = field(default_factory=list)  # device checks: the frames involved

    def ok(self, message: str, **where: object) -> None:
        self.evidence.append(_evidence(message, where))

    def fail(self, message: str, **where: object) -> None:
        self.failed = True
        self.evidence.append(_evidence(message, where))

    def warn(self, message: str, **where: object) -> None:
        self.warned = True
        self.evidence.append(_evidence(message, where))

    def inconclusive(self, reason: str) -> "Outcome":
        """A device check that could not decide, and why (no answer within the budget, ...)."""
        self.undecided = reason
        return self

    def mark(self, *frames: object) -> None:
        """Frames that show the finding (device checks)."""
        self.marked.extend(f for f in frames if f is not None)

    def skip(self, reason: str) -> "Outcome":
        """Not applicable to this file or these options, and why."""
        self.not_applicable = reason
        return self

    def result(self, check: Check[Context]) -> CheckResult:
        if self.failed:
            verdict = Verdict.FAIL
        elif self.undecided is not None:
            verdict = Verdict.INCONCLUSIVE
            self.evidence.append(Evidence(self.undecided))
        elif self.warned:
            verdict = Verdict.WARN
        elif self.not_applicable is not None:
            verdict = Verdict.NOT_APPLICABLE
            self.evidence.insert(0, Evidence(self.not_applicable))
        elif self.evidence:
            verdict = Verdict.PASS
        else:  # a check that looked at nothing has not passed
            raise AssertionError(f"{check.check_id} gave no evidence")
        return CheckResult(check.check_id, check.title, verdict, tuple(self.evidence))


def _evidence(message: str, where: dict[str, object]) -> Evidence:
    def text(key: str) -> str | None:
        value = where.get(key)
        return None if value is None else str(value)

    offset = where.get("offset")
    return Evidence(message, field=text("field"), offset=offset if isinstance(offset, int) else None,
                    expected=text("expected"), found=text("found"))
