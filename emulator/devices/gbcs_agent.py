"""A device's GBCS: its end of the ZSE tunnel to the hub, the security checks on commands, and
the protection of what it sends (its own TEST ONLY keys, derived from the scenario seed).

Tunnel roles as GBCS has them: an ESME, HCALCS or PPMID answers the hub's RequestTunnel (it is
the tunnel's server) and receives commands pushed in PUTs; a GSME, which sleeps, requests its
own tunnel and pulls queued commands with GET when it is awake (when its tunnel opens, after
each message it sends, while the hub says more remain, and when its OTA Query Next Image is answered).
Everything a device sends goes in a PUT; messages wait while the tunnel is not up.

A command is acted on only if its MAC is the ACB's for this device and, for CS06, its KRP
signature is a trusted supplier's: a command that fails either is discarded, as a meter does.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol

from emulator.gbcs.flow import GbcsSetup
from emulator.gbcs.framing import GeneralCiphering, GeneralSigning
from emulator.gbcs.message_codes import CraFlag, MessageCode
from emulator.gbcs.messages import GbcsMessage, decode_message
from emulator.gbcs.protection import Check
from emulator.gbcs.tunnel import (
    TUNNELING_CLUSTER,
    GbcsTunnelHeader,
    RequestTunnel,
    RequestTunnelResponse,
    TransferData,
    TunnelError,
    TunnelStatus,
    decode_frame,
    encode_frame,
)
from emulator.gbcs.wire import GbcsDecodeError
from emulator.han.packet import ApsPacket
from emulator.han.transport import HanTransport
from emulator.runtime.events import EventBus

_LOGGER = logging.getLogger(__name__)

CommandHandler = Callable[[GbcsMessage], None]


class GbcsDevice(Protocol):
    """What the agent needs of its device (attributes, not copies: a fleet has 10,000 of them)."""

    eui64: int
    source: str
    bus: EventBus

    @property
    def transport(self) -> HanTransport: ...

    @property
    def client(self) -> Any: ...  # the OTA client: server_eui64 / server_nwk say where the hub is

    @property
    def ota(self) -> Any: ...  # the engine host: next_aps() is the node's APS counter

    def _on_gbcs_command(self, message: GbcsMessage) -> None: ...
DEVICE_TUNNEL_ID = 0x0001
"""The tunnel id a device gives the hub's RequestTunnel (it serves one tunnel)."""


class DeviceGbcs:
    """One device's GBCS tunnel and message protection."""

    # one per emulated device in a fleet: slots, and nothing allocated until it is used
    __slots__ = ("device", "setup", "sleepy", "tunnel_id", "_requested", "_outbox", "_tsn")

    def __init__(self, device: "GbcsDevice", setup: GbcsSetup, *, sleepy: bool) -> None:
        self.device = device
        self.setup = setup
        self.sleepy = sleepy
        self.tunnel_id: int | None = None
        self._requested = False
        self._outbox: list[bytes] | None = None
        self._tsn = 0

    # -- the tunnel ----------------------------------------------------------------------------
    def start(self) -> None:
        """A GSME requests its tunnel (the others wait for the hub's request)."""
        if self.sleepy and self.tunnel_id is None and not self._requested:
            self._requested = True
            self._send(encode_frame(RequestTunnel(), self._next_tsn()))

    def awake(self) -> None:
        """A sleepy device is awake (e.g. it queried for an image): it asks for queued messages."""
        if self.sleepy and self.tunnel_id is not None:
            self._get()

    def send(self, message: GeneralSigning) -> bytes:
        """Protect ``message`` as its use case requires and send it (or keep it until the tunnel is up)."""
        data = self.setup.protection.protect(message).encode()
        if self.tunnel_id is None:
            if self._outbox is None:
                self._outbox = []
            self._outbox.append(data)
            self.start()
        else:
            self._put(data)
        return data

    def receive(self, packet: ApsPacket) -> None:
        try:
            frame = decode_frame(packet.payload)
        except TunnelError as exc:
            self.device.bus.emit(self.device.source, "malformed_frame", self.device.eui64, cluster="0x0704", reason=str(exc))
            return
        payload = frame.payload
        if isinstance(payload, RequestTunnel):
            if payload.protocol_id != RequestTunnel().protocol_id:
                self._send(encode_frame(RequestTunnelResponse(0xFFFF, TunnelStatus.PROTOCOL_NOT_SUPPORTED),
                                        self._next_tsn()))
                return
            self.tunnel_id = DEVICE_TUNNEL_ID
            self._send(encode_frame(RequestTunnelResponse(DEVICE_TUNNEL_ID), self._next_tsn()))
            self._flush()
        elif isinstance(payload, RequestTunnelResponse):
            self._requested = False
            if payload.status is TunnelStatus.SUCCESS:
                self.tunnel_id = payload.tunnel_id
                self._flush()
                self._get()
        elif payload.tunnel_id != self.tunnel_id:
            self.device.bus.emit(self.device.source, "malformed_frame", self.device.eui64, cluster="0x0704",
                          reason=f"TransferData on tunnel {payload.tunnel_id}, not this device's")
        elif payload.header is GbcsTunnelHeader.GET_RESPONSE:
            if payload.message:
                self._command(payload.message)
            if payload.remaining:
                self._get()
        elif payload.header is GbcsTunnelHeader.PUT:
            self._command(payload.message)

    def _command(self, data: bytes) -> None:
        try:
            message = decode_message(data)
        except GbcsDecodeError as exc:
            self.device.bus.emit(self.device.source, "command_refused", self.device.eui64, reason=f"not a GBCS message: {exc}")
            return
        refusal = self.check_command(message)
        if refusal is not None:
            self.device.bus.emit(self.device.source, "command_refused", self.device.eui64,
                          message_code=f"0x{message.header.message_code:04X}", reason=refusal)
            return
        self.device._on_gbcs_command(message)

    def check_command(self, message: GbcsMessage) -> str | None:
        """Why a meter would discard ``message``, or None: addressed to it, a command, the ACB's
        MAC, and for CS06 a trusted supplier's KRP signature."""
        header = message.header
        if header.recipient != self.device.eui64:
            return f"addressed to {header.recipient:016X}"
        if header.cra_flag is not CraFlag.COMMAND:
            return f"a {header.cra_flag.name.lower()}, not a command"
        envelope = message.envelope
        if not isinstance(envelope, GeneralCiphering):
            return "not MAC'd (a command to a device carries the ACB's MAC)"
        protection = self.setup.protection
        if protection.verify_mac(envelope) is not Check.VALID:
            return "MAC does not verify with the ACB's key"
        if header.message_code == MessageCode.CS06_ACTIVATE_FIRMWARE:
            if header.originator not in self.setup.trusted_suppliers:
                return f"KRP signer {header.originator:016X} is not a supplier this device trusts"
            if protection.verify_signature(envelope.signing) is not Check.VALID:
                return "KRP signature does not verify with the supplier's key"
        return None

    # -- frames --------------------------------------------------------------------------------
    def _flush(self) -> None:
        queued, self._outbox = self._outbox or [], None
        for data in queued:
            self._put(data)

    def _put(self, data: bytes) -> None:
        assert self.tunnel_id is not None
        self._send(encode_frame(TransferData(self.tunnel_id, GbcsTunnelHeader.PUT, data), self._next_tsn(),
                                from_server=not self.sleepy))
        if self.sleepy:
            self._get()  # awake: anything for me?

    def _get(self) -> None:
        assert self.tunnel_id is not None
        self._send(encode_frame(TransferData(self.tunnel_id, GbcsTunnelHeader.GET), self._next_tsn()))

    def _send(self, zcl: bytes) -> None:
        device = self.device
        client = device.client
        device.transport.send(ApsPacket(device.eui64, client.server_eui64, device.transport.nwk, client.server_nwk, zcl,
                                        cluster=TUNNELING_CLUSTER, aps_counter=device.ota.next_aps()))

    def _next_tsn(self) -> int:
        self._tsn = (self._tsn + 1) & 0xFF
        return self._tsn
