"""What the outbox has committed survives ``kill -9`` of the process writing it, in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from emulator.dcc.outbox import Outbox

WRITER = textwrap.dedent("""
    import asyncio, sys
    from emulator.dcc.messages import MessageKind, UserMessage
    from emulator.dcc.outbox import Outbox

    async def main(path):
        outbox = Outbox(path)  # no endpoint: stores only, as a hub whose User is away
        n = 0
        while True:
            for _ in range(7):  # a burst, as the DSP hands over the messages of one step
                outbox.put(UserMessage(f"N59-{n:016X}", MessageKind.DCC_ALERT, "N59", float(n), device=0x00DB1234567890A4,
                                       recipient="90-B3-D5-1F-30-01-00-00", details={"n": n}))
                n += 1
            await outbox.committed()
            print(n, flush=True)  # everything up to n is on disk

    asyncio.run(main(sys.argv[1]))
""")


def test_committed_messages_survive_kill_9_in_order_without_duplicates(tmp_path):
    database = tmp_path / "outbox.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(database)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        committed = 0
        for line in writer.stdout:
            committed = int(line)
            if committed >= 200:
                break
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    with Outbox(database) as reopened:
        entries = reopened.entries()
        ids = [e.message_id for e in entries]
    assert committed >= 200
    assert ids[:committed] == [f"N59-{n:016X}" for n in range(committed)]  # all there, in order
    assert len(ids) == len(set(ids))
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    assert all(e.xml.startswith(b"<?xml") and e.state == "pending" for e in entries)
