"""An emulated Silicon Labs EZSP dongle (NCP) on a TCP socket, with a virtual HAN behind it.

bellows connects to ``socket://HOST:PORT`` and cannot tell it from hardware: ASH framing,
RSTACK on connection, EZSP version negotiation, the commands it needs to start on an
already-formed network, and the radio path (``sendUnicast`` -> ``messageSentHandler``, frames
from devices -> ``incomingMessageHandler``).

The NCP is one node of a :class:`~emulator.han.virtual.VirtualHan`: the coordinator (NWK
0x0000). Emulated devices are put on the same medium by the ``populate(han, clock)`` callback;
nodes attached there count as joined children, so the NCP knows their EUI-64s.

State is split like on a real dongle: :class:`DongleState` (identity, network, neighbours)
survives resets and reconnections; a :class:`NcpSession` (one per host connection and per
reset) holds the negotiated protocol version, registered endpoints and configuration.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import bellows.types as t

from emulator.han.aps_fragmentation import MAX_UNFRAGMENTED_PAYLOAD, ApsFragment, Fragment, Reassembler, split
from emulator.han.link_security import ApsLinkSecurity, SecuredApsPacket
from emulator.han.packet import ApsPacket, DeliveryStatus
from emulator.runtime.clock import AsyncioClock, Clock

from . import zdo
from .ash import AshFaults, NcpAsh, ResetCode
from .dongle import DongleState
from .frames import EzspFrameError, FrameFormat, VERSION_FRAME_ID, decode_header, encode_header
from .handlers import CommandHandlers
from .session import ZDO_PROFILE, Endpoint
from .v8 import Handlers as HandlersV8
from .v13 import Handlers as HandlersV13

_LOGGER = logging.getLogger(__name__)

SUPPORTED_VERSIONS: dict[int, type[CommandHandlers]] = {8: HandlersV8, 13: HandlersV13}
INVALID_COMMAND = "invalidCommand"
_LEGACY_INVALID_COMMAND_ID = 0x58


class HanMedium(Protocol):
    """What the NCP needs of a virtual HAN (``emulator.han.virtual.VirtualHan`` has it)."""

    def attach(self, eui64: int, nwk: int) -> Any: ...


Populate = Callable[[Any, Clock], None]
"""``populate(han, clock)``: put emulated devices on the NCP's HAN before hosts connect."""


@dataclass
class NcpFaults(AshFaults):
    """Switchable faults. Counters are consumed one event at a time; change them any time."""

    drop_message_sent: int = 0
    """Never report the next N unicasts with ``messageSentHandler`` (the host times out)."""
    message_sent_delay: float = 0.0
    """Seconds to hold every ``messageSentHandler`` back."""
    disconnect_after: str | None = None
    """Drop the host's connection (a USB dongle unplugged) just after answering the next command,
    or sending the next callback, of this name (e.g. ``"incomingMessageHandler"``); once. The
    host may connect again at once."""


class _JoinRecorder:
    """Hands ``populate`` the HAN, noting every node attached as a child of the coordinator."""

    def __init__(self, han: HanMedium, dongle: DongleState) -> None:
        self._han = han
        self._dongle = dongle

    def attach(self, eui64: int, nwk: int) -> Any:
        port = self._han.attach(eui64, nwk)
        self._dongle.learn(nwk, eui64)
        return port

    def __getattr__(self, name: str) -> Any:
        return getattr(self._han, name)


class NcpSession:
    """One host connection's view of the NCP, from (re)boot to the next reset."""

    def __init__(self, ncp: "EzspNcp", write: Callable[[bytes], None]) -> None:
        self.ncp = ncp
        self.dongle = ncp.dongle
        self.network_up = False
        self.endpoints: dict[int, Endpoint] = {}
        self.config: dict[int, int] = {}
        self.values: dict[int, bytes] = {}
        self.extended_timeouts: set[int] = set()
        self.address_table: dict[int, tuple[int, int, bool]] = {}
        self.fragment_acks = 0  # APS block acknowledgements the host sent (sendReply)
        self.host_fragments = Reassembler()  # APS blocks the host sends, until the message is whole
        self.handlers: CommandHandlers | None = None
        self.closed = False
        self._last_seq = 0
        self.ash = NcpAsh(ncp.clock, write, self._on_ezsp_frame, self._on_host_reset, faults=ncp.faults)

    # -- EZSP command path -----------------------------------------------------------------
    def _on_host_reset(self) -> None:
        """The host sent RST: the NCP reboots and forgets everything but its flash."""
        self._reboot()

    def _reboot(self) -> None:
        self.network_up = False
        self.endpoints.clear()
        self.config.clear()
        self.values.clear()
        self.extended_timeouts.clear()
        self.address_table.clear()
        self.handlers = None

    def _on_ezsp_frame(self, data: bytes) -> None:
        try:
            header, params_raw = decode_header(data)
        except EzspFrameError as exc:
            _LOGGER.warning("NCP: host sent a malformed EZSP frame: %s", exc)
            return
        self._last_seq = header.seq
        if header.frame_id == VERSION_FRAME_ID and header.fmt is FrameFormat.LEGACY:
            self._negotiate(header.seq, params_raw)
            return
        handlers = self.handlers
        if handlers is None:
            self._invalid(header.seq, header.fmt, t.EzspStatus.ERROR_VERSION_NOT_SET)
            return
        name = handlers.COMMANDS.name_of(header.frame_id)
        handler = handlers.handler_for(name) if name is not None else None
        if name is None or handler is None:
            _LOGGER.info("NCP: command %s (0x%04X) not emulated: invalidCommand", name, header.frame_id)
            self._invalid(header.seq, header.fmt, t.EzspStatus.ERROR_INVALID_FRAME_ID)
            return
        try:
            params = self._decode_params(handlers, name, params_raw)
        except (EzspFrameError, ValueError, KeyError) as exc:
            _LOGGER.warning("NCP: %s with bad parameters %s: %s", name, params_raw.hex(), exc)
            self._invalid(header.seq, header.fmt, t.EzspStatus.ERROR_INVALID_CALL)
            return
        _LOGGER.debug("NCP <- %s %s", name, params)
        fields = handler(params)
        self._respond(header.seq, header.fmt, name, fields)
        self.ncp._after_command(self, name)

    @staticmethod
    def _decode_params(handlers: CommandHandlers, name: str, raw: bytes) -> dict[str, Any]:
        if name == "addEndpoint":  # two counted lists: bellows' schema cannot split them
            return _decode_add_endpoint(raw)
        return handlers.COMMANDS.decode_request(name, raw)

    def _negotiate(self, seq: int, raw: bytes) -> None:
        desired = raw[0] if raw else 0
        cls = SUPPORTED_VERSIONS[self.ncp.ezsp_version]
        if self.handlers is None or type(self.handlers) is not cls:
            self.handlers = cls(self)
        _LOGGER.debug("NCP: host asks for EZSP v%d, NCP speaks v%d", desired, cls.VERSION)
        fields = self.handlers.version({"desiredProtocolVersion": desired})
        self._respond(seq, FrameFormat.LEGACY, "version", fields)

    def _respond(self, seq: int, fmt: FrameFormat, name: str, fields: dict[str, Any]) -> None:
        assert self.handlers is not None
        table = self.handlers.COMMANDS
        body = table.encode_response(name, fields)
        self.ash.send(encode_header(seq, table.id_of(name), fmt) + body)

    def _invalid(self, seq: int, fmt: FrameFormat, reason: t.EzspStatus) -> None:
        frame_id = self.handlers.COMMANDS.id_of(INVALID_COMMAND) if self.handlers else _LEGACY_INVALID_COMMAND_ID
        self.ash.send(encode_header(seq, frame_id, fmt) + t.EzspStatus(reason).serialize())

    def send_callback(self, name: str, fields: dict[str, Any]) -> None:
        """An asynchronous callback, numbered like the last command answered (never one the
        host is still waiting for, which it would take for the answer)."""
        if self.closed or self.handlers is None:
            _LOGGER.debug("NCP: %s dropped, no host session", name)
            return
        table = self.handlers.COMMANDS
        body = table.encode_response(name, fields)
        self.ash.send(encode_header(self._last_seq, table.id_of(name), FrameFormat.V8, callback=True) + body)
        self.ncp._disconnect_if_due(name)

    def defer(self, callback: Callable[[], None]) -> None:
        """After the response to the command being handled (a callback that answers it later)."""
        self.ncp.clock.call_later(0.0, callback)

    # -- network ---------------------------------------------------------------------------
    def bring_network_up(self) -> None:
        def up() -> None:
            self.network_up = True
            self.send_callback("stackStatusHandler", {"status": t.EmberStatus.NETWORK_UP})

        self.ncp.clock.call_later(0.0, up)

    def send_unicast(self, nwk: int, aps: t.EmberApsFrame, tag: int, payload: bytes) -> tuple[Any, int]:
        if not self.network_up:
            return t.EmberStatus.NETWORK_DOWN, 0
        return self.ncp._unicast(self, nwk, aps, tag, payload)

    def send_broadcast(self, dest: int, aps: t.EmberApsFrame, tag: int, payload: bytes) -> tuple[Any, int]:
        if not self.network_up:
            return t.EmberStatus.NETWORK_DOWN, 0
        return self.ncp._broadcast(self, dest, aps, tag, payload)

    def close(self) -> None:
        self.closed = True
        self.ash.close()


class EzspNcp:
    """The emulated dongle: a TCP server speaking ASH/EZSP, coordinator of a virtual HAN.

    ``han`` defaults to a fresh :class:`~emulator.han.virtual.VirtualHan` on an
    :class:`AsyncioClock` (created when the server starts). One host at a time, like a serial
    port: a new connection replaces the previous one.
    """

    _aps_layer: ApsLinkSecurity | None = None  # made on first APS-secured frame

    def __init__(
        self,
        *,
        ezsp_version: int = 8,
        dongle: DongleState | None = None,
        populate: Populate | None = None,
        han: HanMedium | None = None,
        faults: NcpFaults | None = None,
    ) -> None:
        if ezsp_version not in SUPPORTED_VERSIONS:
            supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
            raise ValueError(f"EZSP version {ezsp_version} is not emulated (supported: {supported})")
        self.ezsp_version = ezsp_version
        self.dongle = dongle if dongle is not None else DongleState()
        self.faults = faults if faults is not None else NcpFaults()
        self.han = han
        self._populate = populate
        self.clock: Clock = None  # type: ignore[assignment]  # set in start()
        self.radio: Any = None
        self.session: NcpSession | None = None
        self.connections = 0
        self.commands: list[str] = []
        """Names of the commands answered, in order (for tests and ``-v`` diagnostics)."""
        self._server: asyncio.base_events.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._aps_counter = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (0 picks a free port) and return the address bound."""
        self.clock = AsyncioClock()
        if self.han is None:
            from emulator.han.virtual import VirtualHan

            self.han = VirtualHan(self.clock)
        self.radio = self.han.attach(self.dongle.eui64, self.dongle.nwk)
        self.radio.set_receiver(self._on_radio_frame)
        if self._populate is not None:
            self._populate(_JoinRecorder(self.han, self.dongle), self.clock)
        self._server = await asyncio.start_server(self._on_connection, host, port)
        bound = self._server.sockets[0].getsockname()
        _LOGGER.info("EZSP v%d NCP emulator listening on %s:%d", self.ezsp_version, bound[0], bound[1])
        return bound[0], bound[1]

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"socket://{host}:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._drop_connection()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        assert self._server is not None, "start() first"
        await self._server.serve_forever()

    def reset(self, code: int = ResetCode.WATCHDOG) -> None:
        """Fault: the NCP reboots mid-session (a watchdog, a brown-out) and says so with RSTACK."""
        session = self.session
        if session is None:
            return
        _LOGGER.info("NCP fault: reset (code 0x%02X)", code)
        session._reboot()
        session.ash.start(code)

    def fail(self, code: int = ResetCode.ASSERT) -> None:
        """Fault: the NCP enters the FAILED state and reports it with an ASH ERROR frame."""
        if self.session is not None:
            session = self.session
            session._reboot()
            session.ash.fail(code)

    # -- connection ------------------------------------------------------------------------
    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._drop_connection()
        self.connections += 1
        self._writer = writer
        session = self.session = NcpSession(self, lambda data: self._write(writer, data))
        _LOGGER.info("NCP: host connected from %s", writer.get_extra_info("peername"))
        session.ash.start(ResetCode.POWER_ON if self.connections == 1 else ResetCode.SOFTWARE)
        try:
            while not writer.is_closing():
                data = await reader.read(4096)
                if not data:
                    break
                session.ash.receive(data)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            session.close()
            if self.session is session:
                self.session = None
            writer.close()
            _LOGGER.info("NCP: host disconnected")

    @staticmethod
    def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
        if not writer.is_closing():
            writer.write(data)

    def _drop_connection(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _after_command(self, session: NcpSession, name: str) -> None:
        self.commands.append(name)
        self._disconnect_if_due(name)

    def _disconnect_if_due(self, name: str) -> None:
        if self.faults.disconnect_after == name:
            self.faults.disconnect_after = None
            self.clock.call_later(0.0, self.disconnect)

    def disconnect(self) -> None:
        """Fault: the host's connection drops (the dongle is unplugged); the host may reconnect."""
        _LOGGER.info("NCP fault: host connection dropped")
        self._drop_connection()

    # -- radio -----------------------------------------------------------------------------
    def _unicast(self, session: NcpSession, nwk: int, aps: t.EmberApsFrame, tag: int, payload: bytes) -> tuple[Any, int]:
        if aps.options & t.EmberApsOption.APS_OPTION_FRAGMENT:
            return self._fragment(session, nwk, aps, tag, payload)
        seq = next(self._aps_counter) & 0xFF
        if nwk == self.dongle.nwk:
            self._loopback(session, aps, tag, payload)
            return t.EmberStatus.SUCCESS, seq
        packet = self._packet(self.dongle.eui64_of(nwk) or 0, nwk, aps, seq, payload)
        if t.EmberApsOption.APS_OPTION_ENCRYPTION in aps.options:
            secured = self._aps_secure(packet)
            if secured is None:  # no link key for the destination in the key table
                return t.EmberStatus.APS_ENCRYPTION_ERROR, seq
            packet = secured

        def delivered(_packet: ApsPacket, status: DeliveryStatus) -> None:
            ember = t.EmberStatus.SUCCESS if status is DeliveryStatus.DELIVERED else t.EmberStatus.DELIVERY_FAILED
            self._message_sent(session, t.EmberOutgoingMessageType.OUTGOING_DIRECT, nwk, aps, tag, ember, payload)

        self.radio.send(packet, delivered)
        return t.EmberStatus.SUCCESS, seq

    def _fragment(self, session: NcpSession, nwk: int, aps: t.EmberApsFrame, tag: int, payload: bytes) -> tuple[Any, int]:
        """One APS block of a long message from the host (index and count in groupId, as
        EmberZNet's fragmentation has them). Blocks before the last are acknowledged at once;
        with the last, the whole message goes on the virtual air (whose radio model counts each
        block's airtime) and its delivery answers the last block."""
        fragment = Fragment(aps.groupId & 0xFF, aps.groupId >> 8, payload)
        whole = session.host_fragments.add(nwk, aps.sequence, fragment, self.clock.now())
        if whole is None:
            self.clock.call_later(0.0, self._message_sent, session, t.EmberOutgoingMessageType.OUTGOING_DIRECT, nwk,
                                  aps, tag, t.EmberStatus.SUCCESS, payload)
            return t.EmberStatus.SUCCESS, aps.sequence
        seq = next(self._aps_counter) & 0xFF
        packet = self._packet(self.dongle.eui64_of(nwk) or 0, nwk, aps, seq, whole)

        def delivered(_packet: ApsPacket, status: DeliveryStatus) -> None:
            ember = t.EmberStatus.SUCCESS if status is DeliveryStatus.DELIVERED else t.EmberStatus.DELIVERY_FAILED
            self._message_sent(session, t.EmberOutgoingMessageType.OUTGOING_DIRECT, nwk, aps, tag, ember, payload)

        self.radio.send(packet, delivered)
        return t.EmberStatus.SUCCESS, seq

    def _aps_security(self) -> ApsLinkSecurity:
        """The APS layer of the NCP's stack, keyed by the key table (``DongleState.link_keys``)."""
        security = self._aps_layer
        if security is None:
            security = self._aps_layer = ApsLinkSecurity(self.dongle.eui64, require=False)
        for partner, key in self.dongle.link_keys.items():
            if security.key_of(partner) != key:
                security.set_key(partner, key)
        return security

    def _aps_secure(self, packet: ApsPacket) -> ApsPacket | None:
        """``packet`` APS-encrypted with the destination's link key (any cluster), or None."""
        security = self._aps_security()
        if security.key_of(packet.dst) is None:
            return None
        return security.secure(packet)

    def _packet(self, dst: int, dst_nwk: int, aps: t.EmberApsFrame, seq: int, payload: bytes) -> ApsPacket:
        """The frame the host asked for, as it goes on the air from the coordinator."""
        return ApsPacket(self.dongle.eui64, dst, self.dongle.nwk, dst_nwk, payload, aps.sourceEndpoint,
                         aps.destinationEndpoint, aps.profileId, aps.clusterId, seq)

    def _broadcast(self, session: NcpSession, dest: int, aps: t.EmberApsFrame, tag: int, payload: bytes) -> tuple[Any, int]:
        seq = next(self._aps_counter) & 0xFF
        packet = self._packet(0, dest, aps, seq, payload)

        def sent(_packet: ApsPacket, _status: DeliveryStatus) -> None:
            self._message_sent(
                session, t.EmberOutgoingMessageType.OUTGOING_BROADCAST, dest, aps, tag, t.EmberStatus.SUCCESS, payload
            )

        self.radio.send(packet, sent)
        return t.EmberStatus.SUCCESS, seq

    def _loopback(self, session: NcpSession, aps: t.EmberApsFrame, tag: int, payload: bytes) -> None:
        """A unicast to the NCP itself: only its ZDO answers."""
        reply = None
        if aps.profileId == ZDO_PROFILE:
            reply = zdo.answer(aps.clusterId, payload, self.dongle, session.endpoints.values())

        def done() -> None:
            self._message_sent(
                session, t.EmberOutgoingMessageType.OUTGOING_DIRECT, self.dongle.nwk, aps, tag,
                t.EmberStatus.SUCCESS, payload,
            )
            if reply is not None:
                cluster, data = reply
                frame = t.EmberApsFrame(
                    profileId=0, clusterId=cluster, sourceEndpoint=0, destinationEndpoint=0,
                    options=t.EmberApsOption.APS_OPTION_NONE, groupId=0, sequence=next(self._aps_counter) & 0xFF,
                )
                self._incoming(session, t.EmberIncomingMessageType.INCOMING_UNICAST, frame, self.dongle.nwk, data)

        self.clock.call_later(0.0, done)

    def _message_sent(
        self, session: NcpSession, kind: Any, dest: int, aps: t.EmberApsFrame, tag: int, status: Any, payload: bytes
    ) -> None:
        if session is not self.session or session.closed:
            return  # the host that asked has gone (reset, reconnect)
        if self.faults.drop_message_sent > 0 and kind == t.EmberOutgoingMessageType.OUTGOING_DIRECT:
            self.faults.drop_message_sent -= 1
            _LOGGER.info("NCP fault: messageSentHandler for 0x%04X tag %d dropped", dest, tag)
            return
        fields = {
            "type": kind,
            "indexOrDestination": dest,
            "apsFrame": aps,
            "messageTag": tag,
            "status": status,
            "messageContents": payload,
        }
        if self.faults.message_sent_delay > 0:
            self.clock.call_later(self.faults.message_sent_delay, session.send_callback, "messageSentHandler", fields)
        else:
            session.send_callback("messageSentHandler", fields)

    def _on_radio_frame(self, packet: ApsPacket) -> None:
        self.dongle.learn(packet.src_nwk, packet.src)
        options = t.EmberApsOption.APS_OPTION_NONE
        if isinstance(packet, SecuredApsPacket):
            plain = self._aps_security().incoming(packet)
            if plain is None:
                _LOGGER.info("NCP: APS-secured frame from 0x%04X dropped: no key or bad MIC", packet.src_nwk)
                return
            if isinstance(plain, ApsFragment):  # one APS block, unsecured: the air side reassembles
                whole = self.radio.reassemble(plain)
                if whole is None:
                    return
                plain = whole
            packet = plain
            options = t.EmberApsOption.APS_OPTION_ENCRYPTION
        session = self.session
        if session is None or not session.network_up:
            _LOGGER.debug("NCP: frame from 0x%04X dropped, no host on the network", packet.src_nwk)
            return
        frame = t.EmberApsFrame(
            profileId=packet.profile,
            clusterId=packet.cluster,
            sourceEndpoint=packet.src_ep,
            destinationEndpoint=packet.dst_ep,
            options=options,
            groupId=0,
            sequence=packet.aps_counter & 0xFF,
        )
        kind = (
            t.EmberIncomingMessageType.INCOMING_BROADCAST
            if packet.is_broadcast
            else t.EmberIncomingMessageType.INCOMING_UNICAST
        )
        if not packet.is_broadcast and len(packet.payload) > MAX_UNFRAGMENTED_PAYLOAD:
            # A long message arrived as APS blocks: EmberZNet hands each to the host (the
            # APS_OPTION_FRAGMENT option, count and index in groupId); the host reassembles
            # and acknowledges each block (bellows: sendReply). Each block of a secured message
            # was APS-encrypted on the air: it carries APS_OPTION_ENCRYPTION as well.
            for fragment in split(packet.payload):
                block = t.EmberApsFrame(
                    profileId=packet.profile, clusterId=packet.cluster, sourceEndpoint=packet.src_ep,
                    destinationEndpoint=packet.dst_ep, options=t.EmberApsOption.APS_OPTION_FRAGMENT | options,
                    groupId=fragment.group_id, sequence=packet.aps_counter & 0xFF,
                )
                self._incoming(session, kind, block, packet.src_nwk, fragment.data, lqi=packet.lqi, rssi=packet.rssi)
            return
        self._incoming(session, kind, frame, packet.src_nwk, packet.payload, lqi=packet.lqi, rssi=packet.rssi)

    def _incoming(
        self, session: NcpSession, kind: Any, aps: t.EmberApsFrame, sender: int, payload: bytes,
        *, lqi: int = 255, rssi: int = -40,
    ) -> None:
        session.send_callback(
            "incomingMessageHandler",
            {
                "type": kind,
                "apsFrame": aps,
                "lastHopLqi": lqi,
                "lastHopRssi": max(-128, min(127, rssi)),
                "sender": sender,
                "bindingIndex": 0xFF,
                "addressIndex": 0xFF,
                "messageContents": payload,
            },
        )


def _decode_add_endpoint(raw: bytes) -> dict[str, Any]:
    if len(raw) < 8:
        raise EzspFrameError(f"addEndpoint needs at least 8 bytes, got {len(raw)}")
    n_in, n_out = raw[6], raw[7]
    need = 8 + 2 * (n_in + n_out)
    if len(raw) != need:
        raise EzspFrameError(f"addEndpoint with {n_in}+{n_out} clusters needs {need} bytes, got {len(raw)}")
    clusters = [int.from_bytes(raw[i : i + 2], "little") for i in range(8, need, 2)]
    return {
        "endpoint": raw[0],
        "profileId": int.from_bytes(raw[1:3], "little"),
        "deviceId": int.from_bytes(raw[3:5], "little"),
        "deviceVersion": raw[5],
        "inputClusterList": clusters[:n_in],
        "outputClusterList": clusters[n_in:],
    }
