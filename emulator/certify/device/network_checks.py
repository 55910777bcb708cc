"""The D checks: network and security prerequisites, judged at the test hub's Trust Centre.

A D check's session makes the test hub the HAN's Trust Centre (``VirtualSession.secure``: the
Device Log, install-code join, CBKE, APS security, as ``[han] security = "cbke"`` does on a
premises, docs/cbke.md) and judges on what the Trust Centre saw: every join attempt, with the key
offered and whether the CCS01 JoinTimePeriod was open (:class:`~.session.JoinAttempt`).

On a bench (a real device, or an emulated one behind the EZSP dongle emulator) the test hub runs
CBKE in host mode (:meth:`~.session.BenchSession.secure`): its Key Establishment server runs on the
host and installs the agreed key in the NCP, so D2-D4 play the same scripts over bellows and the
dongle; each session starts with a Mgmt_Leave_req (Rejoin) that makes the device run CBKE afresh.
"""

from __future__ import annotations

from typing import Any, Callable

from emulator.certify.model import Outcome
from emulator.devices.key_establishment import JOIN_RETRY_S

from emulator.gbcs.tunnel import TUNNELING_CLUSTER
from emulator.han.security import ke_frames
from emulator.ota.frames import ImageNotify, QueryNextImageRequest

from .checks import DeviceRun, _transfer
from .session import CheckSession, KeExchange, VirtualSession

JOIN_WINDOW_S = 600.0
"""The CCS01 JoinTimePeriod D1 opens for the device (10 min)."""


BENCH_TIME_S = 120.0
"""A bench's budget for a wait the virtual path gives 600 s or more (wall time: the device is awake)."""


def _secure(run: DeviceRun, join_time_period_s: float | None) -> Any:
    """A session whose test hub is the device's Trust Centre (a bench: its CBKE partner, host mode)."""
    session = run.session(begin=False)
    session.secure(join_time_period_s)  # type: ignore[attr-defined]
    return session


# --- D1 install-code join inside the JoinTimePeriod --------------------------------------------------


def d1_install_code_join(run: DeviceRun) -> Outcome:
    out = Outcome()
    if run.bench:
        return out.inconclusive("on a bench the dongle's own Trust Centre admits the device with the install-code "
                                "key in its table; certify device does not script CCS01 and the JoinTimePeriod "
                                "on the dongle (the join is not seen by the host)")
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


# --- D4 APS encryption of OTA and GBCS traffic ------------------------------------------------------

REACTION_S = 2.0
"""A query this soon after an Image Notify (jitter 100) answers it; a later one is the device's schedule."""


def d4_aps_encryption(run: DeviceRun) -> Outcome:
    out = Outcome()
    # 1. After CBKE, an unencrypted Image Notify must be refused (no query), an encrypted one answered.
    probe = _secure(run, JOIN_WINDOW_S)
    probe.start_device()
    budget = run.budget(600.0, BENCH_TIME_S)
    probe.wait(lambda: probe.link_key_established and bool(probe.received(QueryNextImageRequest)), budget)
    if not probe.link_key_established:
        return out.inconclusive(f"no CBKE with the test hub within {budget:.0f} s (D1/D3 judge that)")
    probe.wait(None, run.budget(5.0, 1.0))
    if not run.dut.sleepy:
        mark = len(probe.frames)
        probe.send_plaintext(lambda: probe.notify(payload_type=0, query_jitter=100))
        # A query this soon is a reaction to the notify; a later one is the device's own schedule.
        answered = probe.wait_for(QueryNextImageRequest, REACTION_S, since=mark)
        out.mark(*probe.sent(ImageNotify, mark))
        if answered is not None:
            out.mark(answered)
            out.fail(f"answers an Image Notify sent without APS encryption after CBKE ({answered.time - probe.frames[mark].time:.2f} s "
                     "later)", field="APS security", expected="the frame refused (no query)",
                     found="Query Next Image Request")
        else:
            out.ok(f"an unencrypted Image Notify after CBKE is ignored (no query within {REACTION_S:.0f} s)")
        probe.wait(None, run.budget(30.0, 3.0))
        mark = len(probe.frames)
        probe.notify(payload_type=0, query_jitter=100)
        if probe.wait_for(QueryNextImageRequest, REACTION_S, since=mark) is None:
            out.warn("no query after the encrypted Image Notify either: the refusal above proves little")
    # 2. A download with the tunnel open: every OTA and Tunneling unicast from the device encrypted.
    session = _secure(run, JOIN_WINDOW_S)
    session.offer(run.image)
    session.start_device()
    session.wait(lambda: session.link_key_established, budget)
    session.open_tunnel()
    end = _transfer(run, session)
    session.wait(None, run.budget(10.0, 1.0))
    frames = session.air_frames
    plain = [f for f in frames if not f.secured]
    if end is not None:
        out.mark(end)
    if not frames:
        return out.inconclusive("no OTA or Tunneling frame from the device within the budget")
    tunnel = sum(1 for f in frames if f.cluster == TUNNELING_CLUSTER)
    if plain:
        first = plain[0]
        out.fail(f"{len(plain)} of {len(frames)} OTA/Tunneling frames from the device went on the air without APS "
                 f"encryption (first at {first.time:.3f} s, cluster 0x{first.cluster:04X})", field="APS security",
                 expected="APS-encrypted with the CBKE link key", found="plaintext")
    else:
        where = "on the air" if run.dut.virtual else "as the NCP received them"
        out.ok(f"all {len(frames)} OTA/Tunneling frames from the device APS-encrypted {where} ({tunnel} on the tunnel)")
    if end is None:
        out.warn("the download did not end with an Upgrade End Request within the budget")
    return out


NETWORK_CHECKS["D4"] = d4_aps_encryption


# --- D3 CBKE Terminate and back-off -------------------------------------------------------------------

BUSY_WAIT_S = 20
"""The wait time D3's Terminate NO_RESOURCES gives (seconds, as the frame carries it)."""
BENCH_BUSY_WAIT_S = 2
"""The same on a bench, in wall time (a shorter wait judges the back-off alike and keeps a run short)."""


def d3_cbke_terminate(run: DeviceRun) -> Outcome:
    out = Outcome()
    wait_s = int(run.budget(BUSY_WAIT_S, BENCH_BUSY_WAIT_S))
    session = _secure(run, JOIN_WINDOW_S)
    session.busy_initiates, session.busy_wait_s = 2, wait_s
    session.start_device()
    session.wait(lambda: session.link_key_established, 3 * wait_s + run.budget(300.0, 60.0))
    initiates = [k for k in session.ke_frames
                 if not k.sent and isinstance(k.command, ke_frames.InitiateKeyEstablishmentRequest)]
    if not initiates:
        return out.inconclusive("no Initiate Key Establishment Request within the budget")
    out.mark(*initiates[:3])
    if len(initiates) == 1:
        out.fail(f"no new Initiate Key Establishment Request after Terminate NO_RESOURCES (wait {wait_s} s)",
                 expected="a retry after the wait time", found="none")
        return out
    early = [(a, b) for a, b in zip(initiates, initiates[1:3]) if b.time - a.time < wait_s]
    if early:
        first, again = early[0]
        out.fail(f"retries CBKE {again.time - first.time:.1f} s after Terminate NO_RESOURCES with wait time "
                 f"{wait_s} s", field="wait_time", expected=f">= {wait_s} s",
                 found=f"{again.time - first.time:.1f} s")
    else:
        gaps = ", ".join(f"{b.time - a.time:.0f} s" for a, b in zip(initiates, initiates[1:3]))
        out.ok(f"twice Terminate NO_RESOURCES (wait {wait_s} s): retried after {gaps}")
    if session.link_key_established:
        out.ok("then completed CBKE with the test hub")
    elif not out.failed:
        out.fail("does not complete CBKE once the test hub has resources again", expected="a link key",
                 found="none within the budget")
    return out


NETWORK_CHECKS["D3"] = d3_cbke_terminate


# --- D3's negative exchanges: what the device sends when the hub's side is wrong ----------------------

_ISSUER = slice(11, 19)  # of a suite-2 certificate
_RECONSTRUCTION_PREFIX = 37  # first octet of the 37-octet public reconstruction key (02/03)
NEGATIVE_BUDGET_S = 900.0
"""Time for the Terminate, the device's back-off and the CBKE that follows (its retry after 60 s)."""


def _wrong_issuer(frame: ke_frames.KeFrame) -> ke_frames.KeFrame | None:
    command = frame.command
    if not isinstance(command, ke_frames.InitiateKeyEstablishmentResponse):
        return None
    identity = bytearray(command.identity)
    identity[_ISSUER] = b"NOTOURCA"
    return frame._replace(command=command._replace(identity=bytes(identity)))


def _mangled_certificate(frame: ke_frames.KeFrame) -> ke_frames.KeFrame | None:
    command = frame.command
    if not isinstance(command, ke_frames.InitiateKeyEstablishmentResponse):
        return None
    identity = bytearray(command.identity)
    identity[_RECONSTRUCTION_PREFIX] = 0x05  # no compressed point has this prefix
    return frame._replace(command=command._replace(identity=bytes(identity)))


def _bad_key_confirm(frame: ke_frames.KeFrame) -> ke_frames.KeFrame | None:
    command = frame.command
    if not isinstance(command, ke_frames.ConfirmKeyDataResponse):
        return None
    mac = bytes(b ^ 0xFF for b in command.secure_message_authentication_code)
    return frame._replace(command=command._replace(secure_message_authentication_code=mac))


def _out_of_sequence(frame: ke_frames.KeFrame) -> ke_frames.KeFrame | None:
    command = frame.command
    if not isinstance(command, ke_frames.InitiateKeyEstablishmentResponse):
        return None
    curve_point = bytes([0x02]) + bytes(36)  # an Ephemeral Data Response where the Initiate Response belongs
    return frame._replace(command=ke_frames.EphemeralDataResponse(curve_point))


NEGATIVE_EXCHANGES: tuple[tuple[str, Callable[[ke_frames.KeFrame], ke_frames.KeFrame | None], ke_frames.KeStatus], ...] = (
    ("a hub certificate from another CA", _wrong_issuer, ke_frames.KeStatus.UNKNOWN_ISSUER),
    ("a mangled hub certificate (reconstruction point prefix 05)", _mangled_certificate, ke_frames.KeStatus.BAD_MESSAGE),
    ("a wrong MACV in the Confirm Key Data Response", _bad_key_confirm, ke_frames.KeStatus.BAD_KEY_CONFIRM),
    ("an Ephemeral Data Response instead of the Initiate Response", _out_of_sequence, ke_frames.KeStatus.BAD_MESSAGE),
)
"""(what the test hub does wrong, how, the Terminate status the device must answer with): the
initiator's side of the Smart Energy Key Establishment checks."""


def d3_negative_exchanges(run: DeviceRun, out: Outcome | None = None) -> Outcome:
    """Each wrong exchange once, in a session of its own: the device must answer Terminate with the
    right status, then try again and complete CBKE once the hub behaves."""
    out = out if out is not None else Outcome()
    for what, mangle, status in NEGATIVE_EXCHANGES:
        session = _secure(run, JOIN_WINDOW_S)
        played: list[bool] = []

        def once(frame: ke_frames.KeFrame, mangle=mangle, played=played) -> ke_frames.KeFrame | None:
            if played:
                return None
            changed = mangle(frame)
            if changed is not None:
                played.append(True)
            return changed

        session.ke_mangle = once
        session.start_device()

        def ended(session: CheckSession = session, played: list[bool] = played) -> bool:
            """The device terminated the wrong exchange, or it ended otherwise (the hub's Terminate or key)."""
            return _first_terminate(session) is not None or (bool(played) and _hub_side_ended(session))

        def settled(session: CheckSession = session) -> bool:
            """The device terminated the wrong exchange and then completed CBKE."""
            terminate = _first_terminate(session)
            return terminate is not None and _completed_after(session, terminate.time)

        budget = run.budget(NEGATIVE_BUDGET_S, BENCH_TIME_S)
        started = session.now()
        session.wait(ended, budget)
        if _first_terminate(session) is None:  # its Terminate may still be on its way
            session.wait(lambda session=session: _first_terminate(session) is not None, run.budget(60.0, 5.0))
        if _first_terminate(session) is not None:
            session.wait(settled, max(0.0, budget - (session.now() - started)))
        if not played:
            out.inconclusive(f"{what}: the device did not get that far with the test hub")
            continue
        terminates = [k for k in session.ke_frames
                      if not k.sent and isinstance(k.command, ke_frames.TerminateKeyEstablishment)][:1]
        if not terminates:
            out.fail(f"{what}: the device sends no Terminate Key Establishment", expected=f"Terminate {status.name}",
                     found="none")
            continue
        out.mark(terminates[0])
        found = terminates[0].command.status
        if found != status:
            name = ke_frames.KeStatus(found).name if found in set(ke_frames.KeStatus) else f"0x{found:02X}"
            out.fail(f"{what}: Terminate {name}", field="status", expected=status.name, found=name)
            continue
        later = [k for k in session.ke_frames if not k.sent and k.time > terminates[0].time
                 and isinstance(k.command, ke_frames.InitiateKeyEstablishmentRequest)]
        if not later:
            out.fail(f"{what}: Terminate {status.name}, then no new Key Establishment",
                     expected="a retry after a back-off", found="none within the budget")
        elif not _completed_after(session, terminates[0].time):
            out.fail(f"{what}: Terminate {status.name}, retried, but no link key", expected="a link key",
                     found="none within the budget")
        else:
            out.ok(f"{what}: Terminate {status.name}; retried after {later[0].time - terminates[0].time:.0f} s "
                   "and completed CBKE")
    return out


def _first_terminate(session: CheckSession) -> KeExchange | None:
    return next((k for k in session.ke_frames
                 if not k.sent and isinstance(k.command, ke_frames.TerminateKeyEstablishment)), None)


def _hub_side_ended(session: CheckSession) -> bool:
    """The test hub terminated the exchange or holds a key for the device."""
    return session.link_key_established or any(
        k.sent and isinstance(k.command, ke_frames.TerminateKeyEstablishment) for k in session.ke_frames)


def _completed_after(session: CheckSession, time: float) -> bool:
    """Whether CBKE completed after session time ``time``: the emulated device holds a link key
    (virtual HAN), or the test hub's Trust Centre established one (what a bench shows)."""
    if isinstance(session, VirtualSession):
        device_ke = session.emulated.key_establishment
        return getattr(device_ke, "link_key", None) is not None
    return session.established_after(time)


def d3_cbke(run: DeviceRun) -> Outcome:
    """D3: Terminate NO_RESOURCES and the back-off, then the negative exchanges."""
    out = d3_cbke_terminate(run)
    if out.undecided is not None:
        return out
    return d3_negative_exchanges(run, out)


NETWORK_CHECKS["D3"] = d3_cbke


# --- D2 CBKE suite 2 within the advertised times ------------------------------------------------------

CRYPTO_SUITE_2 = 2  # sect283k1, what GB devices use


def d2_cbke_times(run: DeviceRun) -> Outcome:
    out = Outcome()
    session = _secure(run, JOIN_WINDOW_S)
    session.start_device()
    session.wait(lambda: session.link_key_established, run.budget(600.0, BENCH_TIME_S))
    exchange = session.ke_frames

    def first(kind: type, sent: bool, after: float = -1.0) -> KeExchange | None:
        return next((k for k in exchange if k.sent is sent and isinstance(k.command, kind) and k.time >= after), None)

    initiate = first(ke_frames.InitiateKeyEstablishmentRequest, False)
    if initiate is None:
        return out.inconclusive("no Initiate Key Establishment Request within the budget")
    out.mark(initiate)
    command = initiate.command
    if command.suite != CRYPTO_SUITE_2:
        out.fail(f"Initiate Key Establishment Request offers suite {command.suite}", field="suite",
                 expected="2 (sect283k1)", found=str(command.suite))
        return out
    steps = [(ke_frames.InitiateKeyEstablishmentResponse, ke_frames.EphemeralDataRequest,
              command.ephemeral_data_generate_time, "ephemeral data"),
             (ke_frames.EphemeralDataResponse, ke_frames.ConfirmKeyDataRequest,
              command.confirm_key_generate_time, "confirm key")]
    for answer, reply, advertised, what in steps:
        hub = first(answer, True, initiate.time)
        device = first(reply, False, hub.time) if hub is not None else None
        if hub is None or device is None:
            out.mark(*[k for k in exchange if k.time >= initiate.time][-2:])
            out.fail(f"the exchange stops before the device's {reply.__name__}", expected=reply.__name__,
                     found="none within the budget")
            return out
        took = device.time - hub.time
        out.mark(hub, device)
        if took > advertised + 0.1:  # 0.1 s: the air's latency at the hub
            out.fail(f"{what}: {took:.1f} s from the hub's {answer.__name__} to its {reply.__name__}, above the "
                     f"{advertised} s it advertised", field=f"{what} generate time", expected=f"<= {advertised} s",
                     found=f"{took:.1f} s")
        else:
            out.ok(f"{what}: {took:.2f} s (advertised {advertised} s)")
    if not out.failed:
        if session.link_key_established:
            out.ok("CBKE suite 2 completed: the test hub holds a link key for the device")
        else:
            out.fail("CBKE did not complete", expected="a link key", found="none")
    return out


NETWORK_CHECKS["D2"] = d2_cbke_times
