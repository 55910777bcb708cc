"""Key Establishment (CBKE) as protocol engines without I/O, in the style of the OTA engines.

:class:`KeyEstablishmentServer` is the responder (the hub as Trust Centre), one partner at a
time; :class:`KeyEstablishmentClient` is the initiator (a device). Both take ``now`` and decoded
:class:`~emulator.han.security.ke_frames.KeFrame` records and return actions; they never send,
sleep or read a clock. The cryptography runs inline (about 0.1 s per side on suite 2).

Responder transitions (one session; a frame from anyone else gets the answer in the last rows):

==================  ================================  =========================================
state               input                             output / next state
==================  ================================  =========================================
idle                Initiate KE Request, good cert    Initiate KE Response / AWAIT_EPHEMERAL
idle                ... suite not ours                Terminate UNSUPPORTED_SUITE / idle
idle                ... issuer not our CA             Terminate UNKNOWN_ISSUER / idle
idle                ... expired or not yet valid      Terminate INVALID_CERTIFICATE / idle
idle                ... bad length, point, subject    Terminate BAD_MESSAGE / idle
AWAIT_EPHEMERAL     Ephemeral Data Request            Ephemeral Data Response / AWAIT_CONFIRM
AWAIT_CONFIRM       Confirm Key Data Request, MACU ok Confirm Key Data Response, Established
AWAIT_CONFIRM       ... MACU wrong                    Terminate BAD_KEY_CONFIRM / idle
any                 frame out of sequence             Terminate BAD_MESSAGE / idle
any                 Terminate from the partner        Terminated(by_partner) / idle
any                 10 s + partner's advertised time  Terminated(timeout) / idle
busy                Initiate from another device      Terminate NO_RESOURCES, wait time
any                 same TSN and command again        nothing (APS duplicate)
==================  ================================  =========================================

The initiator mirrors it, and on NO_RESOURCES tries again after the wait time it was given.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Union

from .cbke import CbkeIdentity, EphemeralKey, KeyAgreementError, KeyConfirmation, derive
from .certificates import CertificateError, CryptoSuite, ImplicitCertificate
from .curves import InvalidPoint, KoblitzCurve
from .ke_frames import (
    ATTR_KEY_ESTABLISHMENT_SUITE,
    ConfirmKeyDataRequest,
    ConfirmKeyDataResponse,
    EphemeralDataRequest,
    EphemeralDataResponse,
    InitiateKeyEstablishmentRequest,
    InitiateKeyEstablishmentResponse,
    KeCommand,
    KeFrame,
    KeStatus,
    TerminateKeyEstablishment,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_GENERATE_TIME_S = 10
"""Ephemeral Data / Confirm Key generate time a side advertises (seconds, one octet)."""
TIMEOUT_MARGIN_S = 10.0
"""Added to the partner's advertised time to get a step's timeout (Silicon Labs plugin)."""


# -- actions ---------------------------------------------------------------------------------------

class TimerKind(enum.Enum):
    TIMEOUT = "timeout"
    RETRY = "retry"


class Send(NamedTuple):
    """Send ``frame`` to ``partner`` (EUI-64, NWK ``nwk``) on cluster 0x0800."""

    partner: int
    nwk: int
    frame: KeFrame


class SetTimer(NamedTuple):
    """Call ``on_timer(now, partner, kind)`` after ``delay`` seconds."""

    partner: int
    kind: TimerKind
    delay: float


class Established(NamedTuple):
    """Both SMACs matched: ``link_key`` is the partner's new APS link key (None: an NCP computed
    the SMACs and holds the key; store it with clearTemporaryDataMaybeStoreLinkKey before the
    Confirm Key Data Response goes out)."""

    partner: int
    suite: CryptoSuite
    link_key: bytes | None


class ComputeSmacs(NamedTuple):
    """A responder whose CBKE runs on an NCP (``external_smacs``): make an ephemeral key and both
    SMACs for ``partner`` there (EZSP generateCbkeKeys283k1, calculateSmacs283k1 with amInitiator
    false), then call ``on_smacs`` or ``on_smacs_failed``."""

    partner: int
    partner_certificate: bytes
    partner_ephemeral: bytes


class Terminated(NamedTuple):
    """The exchange ended without a key. ``status`` None: it timed out."""

    partner: int
    status: KeStatus | None
    by_partner: bool
    reason: str
    wait_time: int = 0


KeAction = Union[Send, SetTimer, Established, Terminated, ComputeSmacs]

EphemeralSource = Callable[[KoblitzCurve, int], EphemeralKey]
"""Makes the ephemeral key for one exchange with ``partner`` (curve, partner EUI-64): random by
default; a deterministic source makes a run's link keys reproducible from its seed."""


def _random_ephemeral(curve: KoblitzCurve, partner: int) -> EphemeralKey:
    return EphemeralKey.generate(curve)


class _State(enum.Enum):
    AWAIT_INITIATE_RESPONSE = "await_initiate_response"
    AWAIT_EPHEMERAL = "await_ephemeral"
    CALCULATING = "calculating"  # the NCP is making the SMACs (external_smacs)
    AWAIT_CONFIRM = "await_confirm"


@dataclass
class _Session:
    partner: int
    nwk: int
    state: _State
    deadline: float
    last_tsn: int = -1
    last_command: type | None = None
    partner_certificate: ImplicitCertificate | None = None
    partner_ephemeral_time: int = DEFAULT_GENERATE_TIME_S
    partner_confirm_time: int = DEFAULT_GENERATE_TIME_S
    ephemeral: EphemeralKey | None = None
    confirmation: KeyConfirmation | None = None
    smacs: tuple[bytes, bytes] | None = None  # (MACU, MACV) from the NCP (external_smacs)
    pending_tsn: int = 0


class _BadMessage(Exception):
    def __init__(self, status: KeStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _check_partner_certificate(identity: CbkeIdentity, suite: int, data: bytes, partner: int,
                               unix_time: float | None = None) -> ImplicitCertificate:
    """The checks both sides make on the certificate in an Initiate KE message; its validity
    dates only when the side knows the time (``unix_time``)."""
    if suite != identity.suite:
        raise _BadMessage(KeStatus.UNSUPPORTED_SUITE,
                          f"suite 0x{suite:04X} offered, this side supports 0x{identity.suite:04X}")
    try:
        cert = ImplicitCertificate.decode(data, identity.suite)
        cert.reconstruction_point()
    except CertificateError as exc:
        raise _BadMessage(KeStatus.BAD_MESSAGE, f"certificate {exc.field}: {exc}") from None
    if cert.issuer != identity.issuer:
        raise _BadMessage(KeStatus.UNKNOWN_ISSUER,
                          f"certificate issuer {cert.issuer.hex().upper()} is not {identity.issuer.hex().upper()}")
    if cert.subject != partner:
        raise _BadMessage(KeStatus.BAD_MESSAGE,
                          f"certificate subject {cert.subject:016X} is not the sender {partner:016X}")
    if unix_time is not None:
        problem = cert.validity_problem(unix_time)
        if problem is not None:
            raise _BadMessage(KeStatus.INVALID_CERTIFICATE, problem)
    return cert


def _unix_time(clock_epoch: float | None, now: float) -> float | None:
    return None if clock_epoch is None else clock_epoch + now


def _derive(identity: CbkeIdentity, session: _Session, partner_ephemeral: bytes, *, am_initiator: bool) -> KeyConfirmation:
    assert session.ephemeral is not None and session.partner_certificate is not None
    try:
        return derive(identity, session.ephemeral, session.partner_certificate, partner_ephemeral,
                      am_initiator=am_initiator)
    except InvalidPoint as exc:
        raise _BadMessage(KeStatus.BAD_MESSAGE, f"ephemeral data: {exc}") from None
    except (CertificateError, KeyAgreementError) as exc:
        raise _BadMessage(KeStatus.BAD_MESSAGE, str(exc)) from None


def _wait_octet(seconds: float) -> int:
    return max(1, min(0xFF, math.ceil(seconds)))


# -- responder -------------------------------------------------------------------------------------

class KeyEstablishmentServer:
    """The responder: the Comms Hub as Trust Centre, one partner at a time.

    ``external_smacs``: the ephemeral key and the SMACs come from an NCP's CBKE library (a
    :class:`ComputeSmacs` action, answered with :meth:`on_smacs`); ``identity`` then needs only
    the NCP's certificate (its private key stays on the NCP)."""

    def __init__(self, identity: CbkeIdentity, *, ephemeral_data_generate_time: int = DEFAULT_GENERATE_TIME_S,
                 confirm_key_generate_time: int = DEFAULT_GENERATE_TIME_S,
                 timeout_margin_s: float = TIMEOUT_MARGIN_S,
                 ephemeral_source: EphemeralSource = _random_ephemeral,
                 external_smacs: bool = False, clock_epoch: float | None = None) -> None:
        """``clock_epoch``: the UNIX time of ``now`` = 0, to check certificates' validity dates
        (None: dates are not checked)."""
        self.identity = identity
        self.external_smacs = external_smacs
        self.clock_epoch = clock_epoch
        self.ephemeral_data_generate_time = ephemeral_data_generate_time
        self.confirm_key_generate_time = confirm_key_generate_time
        self.timeout_margin_s = timeout_margin_s
        self.ephemeral_source = ephemeral_source
        self._session: _Session | None = None

    @property
    def partner(self) -> int | None:
        """The device in key establishment now, if any."""
        return self._session.partner if self._session else None

    def attributes(self) -> dict[int, int]:
        """Server attributes of cluster 0x0800: KeyEstablishmentSuite (0x0000), a bitmap."""
        return {ATTR_KEY_ESTABLISHMENT_SUITE: int(self.identity.suite)}

    def on_malformed(self, now: float, partner: int, nwk: int, raw: bytes, error: str) -> list[KeAction]:
        """A cluster 0x0800 frame that :func:`ke_frames.decode` refused: Terminate BAD_MESSAGE
        (a certificate of the wrong length ends here)."""
        session = self._session
        if session is not None and session.partner != partner and now < session.deadline:
            return []  # not our partner: nothing to terminate
        tsn = raw[1] if len(raw) > 1 else 0
        return self._terminate(partner, nwk, tsn, KeStatus.BAD_MESSAGE, f"malformed frame: {error}")

    def on_timer(self, now: float, partner: int, kind: TimerKind) -> list[KeAction]:
        session = self._session
        if session is None or session.partner != partner or now < session.deadline:
            return []  # stale timer: the session moved on
        self._session = None
        return [Terminated(partner, None, False, f"timed out in {session.state.value}")]

    def on_frame(self, now: float, partner: int, nwk: int, frame: KeFrame) -> list[KeAction]:
        if not frame.to_server:
            _LOGGER.debug("ignoring server-to-client Key Establishment frame from %016X", partner)
            return []
        actions: list[KeAction] = []
        session = self._session
        if session is not None and now >= session.deadline:
            actions += self.on_timer(now, session.partner, TimerKind.TIMEOUT)
            session = None
        command = frame.command
        if session is not None and session.partner != partner:
            if isinstance(command, TerminateKeyEstablishment):
                return actions
            status = KeStatus.NO_RESOURCES if isinstance(command, InitiateKeyEstablishmentRequest) else KeStatus.BAD_MESSAGE
            wait = _wait_octet(session.deadline - now)
            return actions + self._terminate_stranger(partner, nwk, frame.tsn, status, wait,
                                                      f"busy with {session.partner:016X}")
        if session is not None and frame.tsn == session.last_tsn and type(command) is session.last_command:
            return actions  # an APS duplicate of what we already answered
        try:
            actions += self._handle(now, partner, nwk, frame.tsn, command, session)
        except _BadMessage as exc:
            actions += self._terminate(partner, nwk, frame.tsn, exc.status, exc.reason)
        return actions

    def _handle(self, now: float, partner: int, nwk: int, tsn: int, command: KeCommand,
                session: _Session | None) -> list[KeAction]:
        if isinstance(command, TerminateKeyEstablishment):
            if session is None:
                return []
            self._session = None
            return [Terminated(partner, _status(command.status), True,
                               f"terminated by the partner (status 0x{command.status:02X})", command.wait_time)]
        if isinstance(command, InitiateKeyEstablishmentRequest):
            cert = _check_partner_certificate(self.identity, command.suite, command.identity, partner,
                                              _unix_time(self.clock_epoch, now))
            session = _Session(partner, nwk, _State.AWAIT_EPHEMERAL,
                               now + self.timeout_margin_s + command.ephemeral_data_generate_time,
                               partner_certificate=cert,
                               partner_ephemeral_time=command.ephemeral_data_generate_time,
                               partner_confirm_time=command.confirm_key_generate_time)
            self._session = session
            return self._reply(now, session, tsn, command, InitiateKeyEstablishmentResponse(
                self.identity.suite, self.ephemeral_data_generate_time, self.confirm_key_generate_time,
                self.identity.certificate.encode()))
        if session is None:
            raise _BadMessage(KeStatus.BAD_MESSAGE, f"{type(command).__name__} without Initiate Key Establishment")
        if isinstance(command, EphemeralDataRequest) and session.state is _State.AWAIT_EPHEMERAL \
                and self.external_smacs:
            assert session.partner_certificate is not None
            session.state = _State.CALCULATING
            session.last_tsn, session.last_command, session.pending_tsn = tsn, type(command), tsn
            return [ComputeSmacs(partner, session.partner_certificate.encode(), command.ephemeral_data)]
        if isinstance(command, EphemeralDataRequest) and session.state is _State.AWAIT_EPHEMERAL:
            session.ephemeral = self.ephemeral_source(self.identity.suite.curve, partner)
            session.confirmation = _derive(self.identity, session, command.ephemeral_data, am_initiator=False)
            session.state = _State.AWAIT_CONFIRM
            session.deadline = now + self.timeout_margin_s + session.partner_confirm_time
            return self._reply(now, session, tsn, command, EphemeralDataResponse(session.ephemeral.encoded))
        if isinstance(command, ConfirmKeyDataRequest) and session.state is _State.AWAIT_CONFIRM \
                and session.smacs is not None:
            macu, macv = session.smacs
            if command.secure_message_authentication_code != macu:
                raise _BadMessage(KeStatus.BAD_KEY_CONFIRM, "the initiator's MACU does not match the NCP's")
            self._session = None
            return [Established(partner, self.identity.suite, None),
                    Send(partner, nwk, KeFrame(tsn, False, ConfirmKeyDataResponse(macv)))]
        if isinstance(command, ConfirmKeyDataRequest) and session.state is _State.AWAIT_CONFIRM:
            assert session.confirmation is not None
            if command.secure_message_authentication_code != session.confirmation.macu:
                raise _BadMessage(KeStatus.BAD_KEY_CONFIRM, "the initiator's MACU does not match ours")
            self._session = None
            reply = ConfirmKeyDataResponse(session.confirmation.macv)
            return [Send(partner, nwk, KeFrame(tsn, False, reply)),
                    Established(partner, self.identity.suite, session.confirmation.link_key)]
        raise _BadMessage(KeStatus.BAD_MESSAGE, f"{type(command).__name__} out of sequence in {session.state.value}")

    def on_smacs(self, now: float, partner: int, ephemeral: bytes, macu: bytes, macv: bytes) -> list[KeAction]:
        """The NCP's answer to :class:`ComputeSmacs`: its ephemeral key goes to the partner."""
        session = self._session
        if session is None or session.partner != partner or session.state is not _State.CALCULATING:
            return []  # the exchange ended (timeout, Terminate) while the NCP worked
        session.smacs = (macu, macv)
        session.state = _State.AWAIT_CONFIRM
        session.deadline = now + self.timeout_margin_s + session.partner_confirm_time
        return [Send(partner, session.nwk, KeFrame(session.pending_tsn, False, EphemeralDataResponse(ephemeral))),
                SetTimer(partner, TimerKind.TIMEOUT, session.deadline - now)]

    def on_smacs_failed(self, now: float, partner: int, reason: str) -> list[KeAction]:
        """The NCP could not compute (a bad ephemeral key, no CBKE library): Terminate BAD_MESSAGE."""
        session = self._session
        if session is None or session.partner != partner or session.state is not _State.CALCULATING:
            return []
        return self._terminate(partner, session.nwk, session.pending_tsn, KeStatus.BAD_MESSAGE, f"NCP: {reason}")

    def _reply(self, now: float, session: _Session, tsn: int, request: KeCommand,
               reply: KeCommand) -> list[KeAction]:
        session.last_tsn, session.last_command = tsn, type(request)
        return [Send(session.partner, session.nwk, KeFrame(tsn, False, reply)),
                SetTimer(session.partner, TimerKind.TIMEOUT, session.deadline - now)]

    def _terminate(self, partner: int, nwk: int, tsn: int, status: KeStatus, reason: str,
                   wait_time: int = 0) -> list[KeAction]:
        if self._session is not None and self._session.partner == partner:
            self._session = None
        return self._terminate_stranger(partner, nwk, tsn, status, wait_time, reason)

    def _terminate_stranger(self, partner: int, nwk: int, tsn: int, status: KeStatus, wait_time: int,
                            reason: str) -> list[KeAction]:
        command = TerminateKeyEstablishment(status, wait_time, self.identity.suite)
        return [Send(partner, nwk, KeFrame(tsn, False, command)),
                Terminated(partner, status, False, reason, wait_time)]


# -- initiator -------------------------------------------------------------------------------------

class KeyEstablishmentClient:
    """The initiator: an emulated device establishing its link key with the Trust Centre."""

    def __init__(self, identity: CbkeIdentity, *, trust_centre: int, trust_centre_nwk: int = 0x0000,
                 ephemeral_data_generate_time: int = DEFAULT_GENERATE_TIME_S,
                 confirm_key_generate_time: int = DEFAULT_GENERATE_TIME_S,
                 timeout_margin_s: float = TIMEOUT_MARGIN_S, max_attempts: int = 3,
                 ephemeral_source: EphemeralSource = _random_ephemeral, clock_epoch: float | None = None) -> None:
        """``clock_epoch`` as for :class:`KeyEstablishmentServer`."""
        self.identity = identity
        self.clock_epoch = clock_epoch
        self.ephemeral_source = ephemeral_source
        self.trust_centre = trust_centre
        self.trust_centre_nwk = trust_centre_nwk
        self.ephemeral_data_generate_time = ephemeral_data_generate_time
        self.confirm_key_generate_time = confirm_key_generate_time
        self.timeout_margin_s = timeout_margin_s
        self.max_attempts = max_attempts
        self.attempts = 0
        self.link_key: bytes | None = None
        self._session: _Session | None = None
        self._tsn = identity.eui64 & 0xFF

    @property
    def in_progress(self) -> bool:
        return self._session is not None

    def on_malformed(self, now: float, partner: int, nwk: int, raw: bytes, error: str) -> list[KeAction]:
        """A frame from the Trust Centre that :func:`ke_frames.decode` refused: Terminate BAD_MESSAGE."""
        session = self._session
        if session is None or partner != self.trust_centre:
            return []
        self._session = None
        terminate = TerminateKeyEstablishment(KeStatus.BAD_MESSAGE, 0, self.identity.suite)
        return [Send(session.partner, session.nwk, KeFrame(self._next_tsn(), True, terminate)),
                Terminated(session.partner, KeStatus.BAD_MESSAGE, False, f"malformed frame: {error}")]

    def start(self, now: float) -> list[KeAction]:
        """Send Initiate Key Establishment Request to the Trust Centre."""
        self.attempts += 1
        self.link_key = None
        session = _Session(self.trust_centre, self.trust_centre_nwk, _State.AWAIT_INITIATE_RESPONSE,
                           now + self.timeout_margin_s)
        self._session = session
        request = InitiateKeyEstablishmentRequest(self.identity.suite, self.ephemeral_data_generate_time,
                                                  self.confirm_key_generate_time, self.identity.certificate.encode())
        return self._send(session, request, self.timeout_margin_s)

    def on_timer(self, now: float, partner: int, kind: TimerKind) -> list[KeAction]:
        if kind is TimerKind.RETRY:
            return self.start(now) if self._session is None and self.link_key is None else []
        session = self._session
        if session is None or now < session.deadline:
            return []
        self._session = None
        return [Terminated(partner, None, False, f"timed out in {session.state.value}")]

    def on_frame(self, now: float, partner: int, nwk: int, frame: KeFrame) -> list[KeAction]:
        session = self._session
        if frame.to_server or partner != self.trust_centre:
            return []
        if session is None:
            return []
        if now >= session.deadline:
            return self.on_timer(now, partner, TimerKind.TIMEOUT)
        command = frame.command
        if frame.tsn == session.last_tsn and type(command) is session.last_command:
            return []
        try:
            return self._handle(now, session, frame.tsn, command)
        except _BadMessage as exc:
            self._session = None
            terminate = TerminateKeyEstablishment(exc.status, 0, self.identity.suite)
            return [Send(session.partner, session.nwk, KeFrame(self._next_tsn(), True, terminate)),
                    Terminated(session.partner, exc.status, False, exc.reason)]

    def _handle(self, now: float, session: _Session, tsn: int, command: KeCommand) -> list[KeAction]:
        session.last_tsn, session.last_command = tsn, type(command)
        if isinstance(command, TerminateKeyEstablishment):
            self._session = None
            status = _status(command.status)
            actions: list[KeAction] = [Terminated(
                session.partner, status, True, f"terminated by the Trust Centre (status 0x{command.status:02X})",
                command.wait_time)]
            if status is KeStatus.NO_RESOURCES and self.attempts < self.max_attempts:
                actions.append(SetTimer(session.partner, TimerKind.RETRY, float(max(1, command.wait_time))))
            return actions
        if isinstance(command, InitiateKeyEstablishmentResponse) and session.state is _State.AWAIT_INITIATE_RESPONSE:
            session.partner_certificate = _check_partner_certificate(
                self.identity, command.suite, command.identity, session.partner, _unix_time(self.clock_epoch, now))
            session.partner_ephemeral_time = command.ephemeral_data_generate_time
            session.partner_confirm_time = command.confirm_key_generate_time
            session.ephemeral = self.ephemeral_source(self.identity.suite.curve, session.partner)
            session.state = _State.AWAIT_EPHEMERAL
            wait = self.timeout_margin_s + command.ephemeral_data_generate_time
            session.deadline = now + wait
            return self._send(session, EphemeralDataRequest(session.ephemeral.encoded), wait)
        if isinstance(command, EphemeralDataResponse) and session.state is _State.AWAIT_EPHEMERAL:
            session.confirmation = _derive(self.identity, session, command.ephemeral_data, am_initiator=True)
            session.state = _State.AWAIT_CONFIRM
            wait = self.timeout_margin_s + session.partner_confirm_time
            session.deadline = now + wait
            return self._send(session, ConfirmKeyDataRequest(session.confirmation.macu), wait)
        if isinstance(command, ConfirmKeyDataResponse) and session.state is _State.AWAIT_CONFIRM:
            assert session.confirmation is not None
            if command.secure_message_authentication_code != session.confirmation.macv:
                raise _BadMessage(KeStatus.BAD_KEY_CONFIRM, "the Trust Centre's MACV does not match ours")
            self._session = None
            self.link_key = session.confirmation.link_key
            return [Established(session.partner, self.identity.suite, self.link_key)]
        raise _BadMessage(KeStatus.BAD_MESSAGE, f"{type(command).__name__} out of sequence in {session.state.value}")

    def _send(self, session: _Session, command: KeCommand, timeout: float) -> list[KeAction]:
        return [Send(session.partner, session.nwk, KeFrame(self._next_tsn(), True, command)),
                SetTimer(session.partner, TimerKind.TIMEOUT, timeout)]

    def _next_tsn(self) -> int:
        self._tsn = (self._tsn + 1) & 0xFF
        return self._tsn


def _status(value: int) -> KeStatus | None:
    try:
        return KeStatus(value)
    except ValueError:
        return None
