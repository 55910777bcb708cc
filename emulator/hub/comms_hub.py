"""The Comms Hub: receives images over the WAN, serves them over the HAN, reports upstream.

It implements :class:`~emulator.hub.port.HubPort` for the CSP. Per target device it keeps a
*distribution* (which image, activate now or wait, which request), turns the OTA server's outcome
records (:class:`~emulator.ota.actions.TransferEnded`, :class:`~emulator.ota.actions.QueryAnswered`)
into GBCS CCS08 alerts (0x8F8A transferred / 0x8F89 failed, discarded, hardware mismatch) and
relays device alerts and command responses that arrive through the GBCS tunnel. The hub is one
node: its OTA frames and its tunnel frames share one APS counter.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

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
from emulator.gbcs.device_log import AddDeviceToLog, RemoveDeviceFromLog
from emulator.han.security.aes_mmo import install_code_crc
from emulator.gbcs.tunnel import TUNNELING_CLUSTER
from .gbcs_commands import HubGbcs
from .ota_service import OtaService
from .time_server import TIME_CLUSTER, TimeServer
from .trust_centre import TrustCentre
from .port import CommandResponse, DeviceAlert, HubMessage, UpstreamSink
from .tunnels import HubTunnels

_LOGGER = logging.getLogger(__name__)
_NO_TYPES: Mapping[int, str] = {}
_DEFAULT_POLICY = ServerPolicy()  # frozen: every hub without a policy of its own shares it


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
        gbcs: Any = None,
        device_types: Mapping[int, str] | None = None,
    ) -> None:
        self.eui64 = eui64
        self.transport = transport
        self.clock = clock
        self.bus = bus
        self.policies = PolicyBook(policy or _DEFAULT_POLICY)
        self.catalog = catalog if catalog is not None else ImageCatalog()
        self.server = OtaServer(self.catalog, self.policies, sessions if sessions is not None else MemorySessionStore())
        self.ota = self._ota_service()
        self.notify_on_distribution = notify_on_distribution
        self.distributions: dict[int, Distribution] = {}
        # The hub's own devices (its CHF and GPF) with the firmware version each runs: they are
        # not on the HAN, so the hub answers for them itself (11.1 to the CHF, 11.2 to either).
        self.own_firmware: dict[int, int] = {}
        self.own_images: dict[int, ServedImage] = {}  # CHF image received over the WAN, held
        self._upstream: UpstreamSink | None = None
        self._nwk: dict[int, int] = {}
        # GBCS: the DCC's commands built and protected here (TEST ONLY keys), carried in ZSE tunnels
        self.gbcs = HubGbcs(eui64, gbcs, device_types if device_types is not None else _NO_TYPES)
        self.tunnels = HubTunnels(self)
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
        own = [device for device in targets if device in self.own_firmware or device == self.eui64]
        for device in own:  # its own image: held at once, reported as transferred (CS05a)
            self.own_images[device] = served
            self.clock.call_later(0.0, lambda d=device: self._alert(
                d, GbcsAlertCode.CCS08_TRANSFER_SUCCESS, None, result=TransferResult.TRANSFERRED,
                request_id=request_id, firmware_version=served.file_version))
        targets = [device for device in targets if device not in own]
        if not targets:
            return
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

    def abandon_distribution(self, device: int) -> None:
        """The DSP ended ``device``'s distribution (its deadline passed): stop serving the image,
        with no CCS08 of our own (the DSP raised the failure alert)."""
        dist = self.distributions.get(device)
        if dist is None or dist.state is not DistributionState.PENDING:
            return
        dist.state = DistributionState.FAILED
        self.ota.execute(self.server.abort(self.clock.now(), device, reason="distribution deadline passed"))
        self.catalog.untarget(device, dist.image)

    def activate_firmware(
        self, device: int, firmware_hash: bytes, execution_time: float | None, *, request_id: str
    ) -> None:
        """CS06 to ``device`` (KRP-signed for the requesting supplier, MAC'd by the ACB)."""
        self._tunnel_send(device, self.gbcs.activate(device, firmware_hash, execution_time, request_id=request_id))

    def cancel_activation(self, device: int, *, request_id: str) -> None:
        """11.3 with ExecutionDateTime 3000-12-31: CS06 dated 9999-12-31 23:59:59 (GBCS's cancel)."""
        self._tunnel_send(device, self.gbcs.cancel(device, request_id=request_id))

    def transform_activation(
        self, device: int, firmware_hash: bytes, execution_time: float | None, *, request_id: str, cancel: bool = False
    ) -> bytes:
        """The CS06 pre-command (11.3 CV 4); nothing goes to the device until the User signs it."""
        if cancel:
            return self.gbcs.cancel_precommand(device, request_id=request_id)
        return self.gbcs.precommand(device, firmware_hash, execution_time, request_id=request_id)

    def send_signed_precommand(self, device: int, signed_precommand: bytes, *, request_id: str) -> None:
        """11.3 CV 5: ``HubGbcs.signed_command`` (the ACB's MAC) into the GBCS tunnel."""
        self._tunnel_send(device, self.gbcs.signed_command(device, signed_precommand, request_id=request_id))

    def read_firmware_version(self, device: int, *, request_id: str) -> None:
        """ECS52 (ESME), GCS38 (GSME) or CS08 (PPMID, HCALCS) to ``device``; the hub answers for
        its own CHF and GPF itself."""
        if device in self.own_firmware:
            version = self.own_firmware[device]
            self.clock.call_later(0.0, lambda: self._send_upstream(CommandResponse(
                request_id, "11.2", device, self.eui64, self.clock.now(), {"firmware_version": version})))
            return
        self._tunnel_send(device, self.gbcs.read_version(device, request_id=request_id))

    def read_command(self, device: int, *, request_id: str) -> bytes:
        """11.2 CV 2/3: the read command for ``device`` (ECS52 for the CHF too), not sent."""
        return self.gbcs.read_command(device, request_id=request_id)

    def signed_command(self, device: int, signed_precommand: bytes, *, request_id: str) -> bytes:
        """11.3 CV 6/7: the User's signed CS06 with the ACB's MAC, not sent."""
        return self.gbcs.mac_signed_precommand(signed_precommand)

    def device_log_command(self, device: int, install_code: bytes | None, join_time_period: int | None,
                           *, request_id: str) -> bytes:
        """8.11 CV 2/3: the CCS01/CCS02 the DCC side builds for this CHF (ACB MAC), not sent."""
        return self.gbcs.device_log_command(device, install_code, join_time_period, request_id=request_id)

    def update_han_device_log(self, device: int, install_code: bytes | None, join_time_period: int | None,
                              *, request_id: str, command: bytes | None = None) -> None:
        """SR 8.11: the DCC's CCS01 (add, ``install_code`` without its CRC) or CCS02 (remove) reaches
        this CHF (``command``: the one already built and returned to the User, CV 3); its Trust
        Centre changes the Device Log, the CCS01/CCS02 response goes upstream, then CS14 (0x8F12)
        with the log if it changed."""
        if command is None:
            command = self.gbcs.device_log_command(device, install_code, join_time_period, request_id=request_id)
        before = self.trust_centre.device_log_records() if self.trust_centre is not None else ()
        answered = self.gbcs.answer_device_log(command, self._apply_device_log)
        if answered is None:
            self.bus.emit("comms_hub", "command_refused", device, reason=self.gbcs.last_error)
            return
        response, details = answered
        now = self.clock.now()
        self._send_upstream(CommandResponse(request_id, "8.11", self.eui64, self.eui64, now, details, gbcs=response))
        if self.trust_centre is not None and self.trust_centre.device_log_records() != before:
            self.trust_centre.report_device_log()  # CS14 only when the log changed (GBCS CS14)

    def _apply_device_log(self, change: AddDeviceToLog | RemoveDeviceFromLog) -> bool:
        trust_centre = self.trust_centre
        if isinstance(change, AddDeviceToLog):
            code = change.install_code + install_code_crc(change.install_code).to_bytes(2, "little")
            if trust_centre is None:  # no join is modelled without HAN security: nothing to whitelist
                self.bus.emit("comms_hub", "device_log_updated", change.device_id, trust_centre=False,
                              join_time_period_s=change.join_time_period)
                return True
            if change.device_id in trust_centre.device_log:
                # GBCS CCS01: a device already in the log keeps its keys; the key parameter is
                # discarded and register_device succeeds.
                self.bus.emit("comms_hub", "device_log_unchanged", change.device_id, reason="already in the Device Log")
                return True
            try:
                trust_centre.update_device_log(change.device_id, code, change.join_time_period, report=False)
            except ValueError as exc:
                self.bus.emit("comms_hub", "device_log_refused", change.device_id, reason=str(exc))
                return False
            return True
        if trust_centre is None:
            self.bus.emit("comms_hub", "device_log_removed", change.device_id, trust_centre=False)
            return True
        return trust_centre.remove_from_device_log(change.device_id, report=False)

    def send_gbcs(self, device: int, message: bytes, *, request_id: str, service_reference: str) -> None:
        """Forward a GBCS command built elsewhere (e.g. the User's signed CS06); its response is
        matched by the command's counter and reported for ``request_id``. A read of the hub's
        own CHF/GPF is answered by the hub itself, as :meth:`read_firmware_version` does."""
        if device in self.own_firmware and service_reference == "11.2":
            self.read_firmware_version(device, request_id=request_id)
            return
        self.gbcs.expect(device, message, request_id=request_id, service_reference=service_reference)
        self._tunnel_send(device, message)

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
        if packet.cluster != KEY_ESTABLISHMENT_CLUSTER:  # no tunnel before the device holds its link key
            self.tunnels.heard(packet.src, packet.src_nwk)
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
        self.tunnels.receive(packet)

    def _on_gbcs_message(self, device: int, message: bytes) -> None:
        """A device's GBCS alert or response, out of its tunnel: reported upstream with its bytes."""
        now = self.clock.now()
        read = self.gbcs.read(device, message)
        if read is None:
            self.bus.emit("comms_hub", "malformed_frame", device, reason=self.gbcs.last_error)
            return
        report, awaited = read
        if report.alert_code is not None:
            details = dict(report.details)
            dist = self.distributions.get(device)
            if dist is not None and details.get("firmware_version") is None:
                details["firmware_version"] = dist.image.file_version
            self._send_upstream(DeviceAlert(report.alert_code, device, self.eui64, now, details, gbcs=message))
            return
        if awaited is None:
            self.bus.emit("comms_hub", "unexpected_response", device, counter=report.counter)
            return
        request_id, service = awaited
        self._send_upstream(CommandResponse(request_id, service, device, self.eui64, now, dict(report.details),
                                            gbcs=message))

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
            case QueryAnswered(refusal=Refusal.NO_NEWER_VERSION, current_file_version=current) \
                    if current == dist.image.file_version:
                # The device already runs this image's version: it will never fetch it, so the
                # distribution ends now as a failed transfer (docs/dcc.md). A device reporting a
                # later version is left to the DSP's deadline (it may be reporting wrongly).
                dist.state = DistributionState.FAILED
                self.catalog.untarget(dist.device, dist.image)
                self._alert(dist.device, GbcsAlertCode.CCS08_TRANSFER_FAILURE, outcome,
                            result=TransferResult.TRANSFER_FAILED, request_id=dist.request_id,
                            firmware_version=dist.image.file_version, reason="device already runs this version")
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
        self.bus.report("comms_hub", device, alert, render)
        if self._upstream is None:
            return  # nobody to tell (a fleet benchmark): the CCS08 is not even signed
        now = self.clock.now()
        gbcs = self.gbcs.ccs08(device, code, details.get("result", 0), details.get("firmware_version"), now)
        self._send_upstream(DeviceAlert(int(code), device, self.eui64, now, details, gbcs=gbcs))

    def raise_hub_alert(self, code: int, details: dict[str, Any]) -> None:
        """An alert the CHF raises about itself: CS14 (0x8F12) with its Device Log after a change.

        The HAN's extended PAN ID is the hub's EUI-64 (the virtual HAN's and the emulated
        dongle's convention)."""
        if self._upstream is None:
            return
        now = self.clock.now()
        gbcs = None
        if code == GbcsAlertCode.CHF_DEVICE_LOG_CHANGED and self.trust_centre is not None:
            gbcs = self.gbcs.cs14(self.trust_centre.device_log_records(), now, extended_pan_id=self.eui64)
        self._send_upstream(DeviceAlert(code, self.eui64, self.eui64, now, details, gbcs=gbcs))

    def _send_upstream(self, message: HubMessage) -> None:
        if self._upstream is not None:
            self._upstream(message)

    def _tunnel_send(self, device: int, message: bytes) -> None:
        nwk = self.nwk_of(device)
        if nwk is None:
            raise ValueError(f"device {device:016X} is not known on this HAN")
        self.tunnels.send(device, nwk, message)

    def is_sleepy(self, device: int) -> bool:
        """A GSME: it requests its own tunnel and pulls its messages."""
        return self.gbcs.is_sleepy(device)

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
