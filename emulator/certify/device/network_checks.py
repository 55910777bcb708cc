"""The D checks: network and security prerequisites, judged at the test hub's Trust Centre.

A D check's session makes the test hub the HAN's Trust Centre (``VirtualSession.secure``: the
Device Log, install-code join, CBKE, APS security, as ``[han] security = "cbke"`` does on a
premises, docs/cbke.md) and judges on what the Trust Centre saw: every join attempt, with the key
offered and whether the CCS01 JoinTimePeriod was open (:class:`~.session.JoinAttempt`).
"""

from __future__ import annotations

from typing import Callable

from emulator.certify.model import Outcome
from emulator.devices.key_establishment import JOIN_RETRY_S

from .checks import DeviceRun
from .session import VirtualSession

JOIN_WINDOW_S = 600.0
"""The CCS01 JoinTimePeriod D1 opens for the device (10 min)."""


def _secure(run: DeviceRun, join_time_period_s: float | None) -> VirtualSession:
    session = run.session(begin=False)
    assert isinstance(session, VirtualSession)
    session.secure(join_time_period_s)
    return session


# --- D1 install-code join inside the JoinTimePeriod --------------------------------------------------


def d1_install_code_join(run: DeviceRun) -> Outcome:
    out = Outcome()
    if run.bench:
        return out.inconclusive("on a bench the dongle's Trust Centre admits the device; certify device does not "
                                "script CCS01 and the join window on the dongle yet")
    # 1. In the Device Log with its install code, window open: it joins with that key.
    session = _secure(run, JOIN_WINDOW_S)
    session.start_device()
    session.wait(lambda: any(j.admitted for j in session.joins) or len(session.joins) > 3, 2 * JOIN_RETRY_S)
    if not session.joins:
        return out.inconclusive(f"no join attempt within {2 * JOIN_RETRY_S:.0f} s of power-on")
    first = session.joins[0]
    out.mark(first)
    if not first.install_code_key:
        out.fail("joins with another key than the TC link key of its install code (the Trust Centre refuses it)",
                 field="link key", expected="AES-MMO hash of the install code", found="another key")
        return out
    out.ok(f"joins with its install-code key inside the JoinTimePeriod ({JOIN_WINDOW_S:.0f} s): "
           f"{'admitted' if first.admitted else 'refused'}")
    # 2. The window closed before it powers on: refused, and it joins once CCS01 opens a new one.
    late = _secure(run, 1.0)
    late.wait(None, 5.0)
    late.start_device()
    late.wait(lambda: bool(late.joins), 60.0)
    if not late.joins:
        return out.inconclusive("no join attempt within 60 s of power-on (JoinTimePeriod closed)")
    refused = late.joins[0]
    out.mark(refused)
    if refused.admitted:
        return out.inconclusive("the test hub admitted a join outside the JoinTimePeriod (a test-hub fault)")
    out.ok("outside the JoinTimePeriod: refused by the Trust Centre")
    late.update_device_log(JOIN_WINDOW_S)
    budget = 2 * JOIN_RETRY_S
    late.wait(lambda: any(j.admitted for j in late.joins), budget)
    joined = next((j for j in late.joins if j.admitted), None)
    if joined is None:
        out.mark(*late.joins[-1:])
        out.fail(f"does not join again within {budget:.0f} s once CCS01 opened a new JoinTimePeriod "
                 f"({len(late.joins)} attempt(s))", expected="a join retry", found="none admitted")
    elif not joined.install_code_key:
        out.mark(joined)
        out.fail("rejoins with another key than its install-code key", field="link key")
    else:
        out.mark(joined)
        out.ok(f"joins {joined.time - refused.time:.0f} s after the refusal once CCS01 re-opened the window")
    return out


NETWORK_CHECKS: dict[str, Callable[[DeviceRun], Outcome]] = {"D1": d1_install_code_join}
