"""The Comms Hub: receives images over the WAN, serves them over the HAN, reports upstream.

It implements :class:`~emulator.hub.port.HubPort` for the CSP. Per target device it keeps a
*distribution* (which image, activate now or wait, which request), turns the OTA server's outcome
records (:class:`~emulator.ota.actions.TransferEnded`, :class:`~emulator.ota.actions.QueryAnswered`)
into GBCS CCS08 alerts (0x8F8A transferred / 0x8F89 failed, discarded, hardware mismatch) and
relays device alerts and command responses that arrive through the GBCS tunnel. The hub is one
node: its OTA frames and its tunnel frames share one APS counter.
"""

from __future__ import annotations

import base64
import enum
import logging
from dataclasses import dataclass
from typing import Any, Sequence

from emulator.han.packet import ApsPacket, OTA_CLUSTER
from emulator.han.security.ke_frames import KEY_ESTABLISHMENT_CLUSTER
from emulator.han.transport import HanTransport
from emulator.ota.actions import (
    AlertRaised,
    BlockRefused,
    Outcome,
    QueryAnswered,
    Refusal,
    TimeoutPhase,
    TransferEnded,
    TransferOutcome,
)
from emulator.ota.catalog import ImageCatalog, ServedImage
from emulator.ota.policy import PolicyBook, ServerPolicy, UpgradeTiming
from emulator.ota.server import OtaServer
from emulator.ota.sessions import MemorySessionStore, SessionStore
from emulator.runtime.clock import Clock
from emulator.ota.timeline import render, status_name
from emulator.runtime.events import EventBus

from emulator.gbcs.codes import GbcsAlertCode, TransferResult
from emulator.gbcs.tunnel import TUNNELING_CLUSTER, TunnelError, TunnelMessage
from .ota_service import OtaService
from .time_server import TIME_CLUSTER, TimeServer
from .trust_centre import TrustCentre
from .port import CommandResponse, DeviceAlert, HubMessage, UpstreamSink

_LOGGER = logging.getLogger(__name__)


class DistributionState(str, enum.Enum):
    PENDING = "pending"
    TRANSFERRED = "transferred"
    FAILED = "failed"
    DISCARDED = "discarded"


@dataclass(slots=True)
class Distribution:
    device: int
    image: ServedImage
    request_id: str
    state: DistributionState = DistributionState.PENDING


class HubImageError(ValueError):
    """The image delivered over the WAN cannot be served (not an OTA file)."""


class CommsHub:
    """One Comms Hub (CHF) with its OTA server on a HAN transport.

    ``trust_centre`` (set when the HAN runs with security): the Device Log, joins and the Key
    Establishment server, fed cluster 0x0800. ``time_server``: the Time cluster (0x000A) server.
    """

    trust_centre: TrustCentre | None = None
    time_server: TimeServer | None = None

    def __init__(
        self,
        eui64: int,
        transport: HanTransport,
        clock: Clock,
        bus: EventBus,
        *,
        policy: ServerPolicy | None = None,
        sessions: SessionStore | None = None,
        catalog: ImageCatalog | None = None,
        notify_on_distribution: bool = True,
    ) -> None:
        self.eui64 = eui64
        self.transport = transport
        self.clock = clock
        self.bus = bus
        self.policies = PolicyBook(policy or ServerPolicy())
        self.catalog = catalog if catalog is not None else ImageCatalog()
        self.server = OtaServer(self.catalog, self.policies, sessions if sessions is not None else MemorySessionStore())
        self.ota = self._ota_service()
        self.notify_on_distribution = notify_on_distribution
        self.distributions: dict[int, Distribution] = {}
        self._upstream: UpstreamSink | None = None
        self._nwk: dict[int, int] = {}
        self._transactions: dict[int, str] = {}  # tunnel transaction -> DUIS RequestID
        self._next_transaction = 0
        self.time_server = TimeServer(transport, clock, bus, next_aps=lambda: self.ota.next_aps())
        transport.set_receiver(self._on_packet)

    # -- HubPort ---------------------------------------------------------------------------
    def set_upstream(self, sink: UpstreamSink) -> None:
        self._upstream = sink

    def distribute_image(
        self, image: bytes, targets: Sequence[int], *, activate_now: bool, request_id: str
    ) -> None:
        served = self._served_image(image)
        self.bus.emit("comms_hub", "image_received", None, request_id=request_id,
                      file_version=f"{served.file_version:08X}", image_size=served.size,
                      targets=len(targets), activate_now=activate_now)
        for device in targets:
            previous = self.distributions.get(device)
            if previous is not None and previous.state is DistributionState.PENDING:
                previous.state = DistributionState.DISCARDED
                self.ota.execute(self.server.abort(self.clock.now(), device,
                                                   reason="overwritten by a newer distribution"))
                self.catalog.untarget(device, previous.image)
                self._alert(device, GbcsAlertCode.CCS08_TRANSFER_FAILURE, None,
                            result=TransferResult.DISCARDED_OR_OVERWRITTEN, request_id=previous.request_id,
                            firmware_version=previous.image.file_version)
            self.distributions[device] = Distribution(device, served, request_id)
            self.policies.override(
                device, upgrade_timing=UpgradeTiming.NOW if activate_now else UpgradeTiming.WAIT_FOR_COMMAND
            )
        self.catalog.target(served, targets)
        if self.notify_on_distribution:
            for device in targets:
                nwk = self.nwk_of(device)
                if nwk is not None:
                    self.ota.execute(self.server.image_notify(device, nwk, served))

    def activate_firmware(
        self, device: int, firmware_hash: bytes, execution_time: float | None, *, request_id: str
    ) -> None:
        details: dict[str, Any] = {"h": base64.b64encode(firmware_hash).decode()}
        if execution_time is not None:
            details["x"] = execution_time
        self._tunnel_send(device, TunnelMessage("command", "11.3", self._transaction(request_id), details=details))

    def cancel_activation(self, device: int, *, request_id: str) -> None:
        """11.3 with ExecutionDateTime 3000-12-31: cancel a pending future-dated activation."""
        self._tunnel_send(device, TunnelMessage("command", "11.3", self._transaction(request_id),
                                                details={"x": "cancel"}))

    def read_firmware_version(self, device: int, *, request_id: str) -> None:
        self._tunnel_send(device, TunnelMessage("command", "11.2", self._transaction(request_id)))

    def _transaction(self, request_id: str) -> int:
        self._next_transaction = (self._next_transaction + 1) & 0xFFFF
        self._transactions[self._next_transaction] = request_id
        return self._next_transaction

    # -- operator commands ----------------------------------------------------------------------
    def add_image(self, image: bytes | ServedImage) -> ServedImage:
        """Offer an image to every matching device (outside any DCC distribution)."""
        served = image if isinstance(image, ServedImage) else self._served_image(image)
        return self.catalog.add(served)

    def set_device_policy(self, device: int, **changes: Any) -> ServerPolicy:
        return self.policies.override(device, **changes)

    def image_notify(self, device: int | None = None, *, query_jitter: int = 100) -> None:
        """Image Notify to one device or, with ``device`` None, broadcast to all."""
        if device is None:
            self.ota.execute(self.server.image_notify(None, 0xFFFF, None, query_jitter=query_jitter))
            return
        nwk = self.nwk_of(device)
        if nwk is None:
            raise ValueError(f"device {device:016X} is not known on this HAN")
        targeted = self.catalog.targeted_for(device)
        self.ota.execute(self.server.image_notify(device, nwk, targeted[-1] if targeted else None,
                                                  query_jitter=query_jitter))

    def upgrade_now(self, device: int) -> None:
        self.ota.execute(self.server.upgrade_now(self.clock.now(), device))

    def nwk_of(self, device: int) -> int | None:
        return self._nwk.get(device) or self.transport.nwk_of(device)

    def restart(self) -> None:
        """Model a hub process restart: the engine is rebuilt from the stored sessions."""
        self.ota.stop()
        aps = self.ota.aps  # the node's APS counter is the radio's, not the OTA process's
        self.server = OtaServer(self.catalog, self.policies, self.server.sessions)
        self.ota = self._ota_service()
        self.ota.aps = aps
        self.bus.emit("comms_hub", "server_restarted", None)
        self.ota.restore()

    def _ota_service(self) -> OtaService:
        return OtaService(self.server, self.transport, self.clock, self.bus, on_outcome=self._on_ota_outcome)

    # -- inputs ------------------------------------------------------------------------------
    def _on_packet(self, packet: ApsPacket) -> None:
        self._nwk[packet.src] = packet.src_nwk
        if packet.cluster == OTA_CLUSTER:
            self.ota.receive(packet)
        elif packet.cluster == TUNNELING_CLUSTER:
            self._on_tunnel(packet)
        elif packet.cluster == KEY_ESTABLISHMENT_CLUSTER and self.trust_centre is not None:
            self.trust_centre.receive(packet)
        elif packet.cluster == TIME_CLUSTER and self.time_server is not None:
            self.time_server.receive(packet)
        else:
            self.bus.emit("comms_hub", "frame_ignored", packet.src, cluster=f"0x{packet.cluster:04X}")

    def _on_tunnel(self, packet: ApsPacket) -> None:
        try:
            message = TunnelMessage.decode(packet.payload)
        except TunnelError as exc:
            self.bus.emit("comms_hub", "malformed_frame", packet.src, reason=str(exc))
            return
        now = self.clock.now()
        if message.kind == "alert" and message.alert_code is not None:
            details = dict(message.details)
            if isinstance(details.get("hash"), str):
                try:
                    details["hash"] = base64.b64decode(details["hash"], validate=True).hex()
                except ValueError:
                    pass
            dist = self.distributions.get(packet.src)
            if dist is not None and "firmware_version" not in details:
                details["firmware_version"] = dist.image.file_version
            self._send_upstream(DeviceAlert(message.alert_code, packet.src, self.eui64, now, details))
        elif message.kind == "response" and message.transaction is not None:
            request_id = self._transactions.pop(message.transaction, None)
            if request_id is None:
                self.bus.emit("comms_hub", "unexpected_response", packet.src, transaction=message.transaction)
                return
            self._send_upstream(CommandResponse(request_id, message.service or "", packet.src,
                                                self.eui64, now, dict(message.details)))

    def _on_ota_outcome(self, outcome: Outcome) -> None:
        dist = self.distributions.get(outcome.device)
        if dist is None or dist.state is not DistributionState.PENDING:
            return
        match outcome:
            case BlockRefused():
                # The device is still fetching an older image: tell it about the new one once its
                # download has been refused (the first notify reached it while busy).
                self.clock.call_later(1.0, self._renotify, dist)
            case TransferEnded(outcome=TransferOutcome.COMPLETED):
                dist.state = DistributionState.TRANSFERRED
                self._alert(dist.device, GbcsAlertCode.CCS08_TRANSFER_SUCCESS, outcome,
                            result=TransferResult.TRANSFERRED, request_id=dist.request_id,
                            firmware_version=dist.image.file_version)
            case TransferEnded():
                # Failed, timed out or aborted: reported failed upstream, so the hub discards the
                # image for this device: a device that comes back later is refused rather than
                # activating behind the DSP's back.
                dist.state = DistributionState.FAILED
                self.catalog.untarget(dist.device, dist.image)
                self._alert(dist.device, GbcsAlertCode.CCS08_TRANSFER_FAILURE, outcome,
                            result=TransferResult.TRANSFER_FAILED, request_id=dist.request_id,
                            firmware_version=dist.image.file_version, reason=_failure_reason(outcome))
            case QueryAnswered(refusal=Refusal.HARDWARE_VERSION_MISMATCH, hardware_version=hardware_version):
                dist.state = DistributionState.FAILED
                self.catalog.untarget(dist.device, dist.image)
                self._alert(dist.device, GbcsAlertCode.CCS08_TRANSFER_FAILURE, outcome,
                            result=TransferResult.HARDWARE_VERSION_MISMATCH, request_id=dist.request_id,
                            firmware_version=dist.image.file_version,
                            hardware_version=None if hardware_version is None else f"{hardware_version:04X}")

    def _renotify(self, dist: Distribution) -> None:
        nwk = self.nwk_of(dist.device)
        if dist.state is DistributionState.PENDING and nwk is not None:
            self.ota.execute(self.server.image_notify(dist.device, nwk, dist.image))

    # -- outputs -----------------------------------------------------------------------------
    def _alert(self, device: int, code: GbcsAlertCode, cause: TransferEnded | QueryAnswered | None,
               **details: Any) -> None:
        """A CCS08 alert: upstream with integer values, on the timeline with names and hex."""
        if "result" in details:
            details["result"] = int(details["result"])
        alert = AlertRaised(device, int(code), details, cause)
        if self.bus.active:
            name, fields = render(alert)
            self.bus.publish("comms_hub", name, device, fields, alert)
        self._send_upstream(DeviceAlert(int(code), device, self.eui64, self.clock.now(), details))

    def raise_hub_alert(self, code: int, details: dict[str, Any]) -> None:
        """An alert the CHF raises about itself (CS14 0x8F12 after a Device Log change)."""
        self._send_upstream(DeviceAlert(code, self.eui64, self.eui64, self.clock.now(), details))

    def _send_upstream(self, message: HubMessage) -> None:
        if self._upstream is not None:
            self._upstream(message)

    def _tunnel_send(self, device: int, message: TunnelMessage) -> None:
        nwk = self.nwk_of(device)
        if nwk is None:
            raise ValueError(f"device {device:016X} is not known on this HAN")
        self.transport.send(ApsPacket(self.eui64, device, self.transport.nwk, nwk, message.encode(),
                                      cluster=TUNNELING_CLUSTER, aps_counter=self.ota.next_aps()))

    def _served_image(self, data: bytes) -> ServedImage:
        from emulator.ota.image import ImageError, parse_image

        try:
            image = parse_image(data, source="image delivered over the WAN")
        except ImageError as exc:
            raise HubImageError(str(exc)) from None
        return ServedImage.from_ota_image(image)


def _failure_reason(ended: TransferEnded) -> str | None:
    """What a CCS08 failure alert gives as its reason: the client's status, the timeout's phase,
    or why the hub aborted."""
    match ended:
        case TransferEnded(outcome=TransferOutcome.FAILED, status=int(status)):
            return status_name(status)
        case TransferEnded(outcome=TransferOutcome.TIMED_OUT, phase=TimeoutPhase() as phase):
            return phase.value
    return ended.reason
