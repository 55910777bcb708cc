"""DCC User endpoints on a virtual clock, for the outbox's timing tests (no wall time passes)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Mapping

from emulator.dcc.messages import MessageKind, UserMessage
from emulator.dcc.outbox import MESSAGE_ID_HEADER, Attempt, Outbox, clock_sleep
from emulator.runtime.clock import VirtualClock

PPMID = 0x00DB1234567890A4
ALICE = "90-B3-D5-1F-30-01-00-00"  # a DCC User whose endpoint misbehaves in the tests
BOB = "90-B3-D5-1F-30-02-00-00"  # a healthy one
ALICE_URL = "http://alice.test/duis"
BOB_URL = "http://bob.test/duis"


def message(n: int, recipient: str | None = ALICE) -> UserMessage:
    return UserMessage(f"N59-{n:016X}", MessageKind.DCC_ALERT, "N59", float(n), device=PPMID,
                       recipient=recipient, details={"n": n})


@dataclass
class Behaviour:
    status: int = 204
    delay: float = 0.0  # clock seconds before the answer
    refuse: bool = False  # connection refused
    crash: bool = False  # the transport itself raises (a bug), once


@dataclass(frozen=True)
class Post:
    url: str
    message_id: str
    body: bytes
    at: float


class FakeUsers:
    """The outbox's transport: each URL behaves as told; every POST is recorded with its clock time."""

    def __init__(self, clock: VirtualClock, behaviours: Mapping[str, Behaviour] | None = None) -> None:
        self.clock = clock
        self.behaviour: dict[str, Behaviour] = dict(behaviours or {})
        self.posts: list[Post] = []
        self.answered: list[Post] = []
        self.in_flight: Counter[str] = Counter()
        self.most_in_flight: Counter[str] = Counter()  # per message ID

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        message_id = headers[MESSAGE_ID_HEADER]
        post = Post(url, message_id, body, self.clock.now())
        self.posts.append(post)
        behaviour = self.behaviour.get(url, Behaviour())
        if behaviour.crash:
            behaviour.crash = False
            raise RuntimeError("injected crash in delivery")
        if behaviour.refuse:
            raise ConnectionRefusedError(111, "Connection refused")
        self.in_flight[message_id] += 1
        self.most_in_flight[message_id] = max(self.most_in_flight[message_id], self.in_flight[message_id])
        try:
            if behaviour.delay:
                await clock_sleep(self.clock)(behaviour.delay)
        finally:
            self.in_flight[message_id] -= 1
        self.answered.append(post)
        return behaviour.status

    async def aclose(self) -> None:
        pass

    def to(self, url: str) -> list[Post]:
        return [p for p in self.posts if p.url == url]


class Attempts:
    """Records the outbox's attempt outcomes; ``wait(n)`` until n have been decided."""

    def __init__(self, outbox: Outbox) -> None:
        self.seen: list[Attempt] = []
        self._event = asyncio.Event()
        outbox.add_observer(self._on_attempt)

    def _on_attempt(self, attempt: Attempt) -> None:
        self.seen.append(attempt)
        self._event.set()

    async def wait(self, count: int) -> None:
        async def enough() -> None:
            while len(self.seen) < count:
                self._event.clear()
                await self._event.wait()

        await asyncio.wait_for(enough(), timeout=30)  # a guard in wall time, not a delay


async def settle() -> None:
    """Let every task that can run, run (no time passes: the clock is virtual)."""
    for _ in range(30):
        await asyncio.sleep(0)


async def drive(clock: VirtualClock, seconds: float, step: float = 0.25) -> None:
    """Advance the clock by ``seconds`` in steps, letting the outbox react after each."""
    end = clock.now() + seconds
    await settle()
    while clock.now() < end:
        clock.advance(min(step, end - clock.now()))
        await settle()


class Running:
    """``async with Running(outbox):`` runs its delivery task and stops it at the end."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Outbox:
        self.task = asyncio.create_task(self.outbox.run())
        await settle()
        return self.outbox

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
