"""The HAN boundary on a real radio: a zigpy ``ControllerApplication`` (bellows for EZSP).

zigpy is built for Home Automation: it drops Smart Energy frames (profile 0x0109) and frames
from nodes it has not interviewed. The Comms Hub therefore takes frames of its profiles before
zigpy sees them, in an override of ``packet_received`` that every radio library calls, and sends
with ``send_packet``, whose completion is the stack's delivery confirmation
(``messageSentHandler`` on EZSP).

The application runs as a bare coordinator: zigpy's OTA server, database, backups, topology
scans and watchdog are off, and the only endpoint registered is the hub's Smart Energy endpoint
(an ESI with the OTA Upgrade server cluster). When the radio resets or the link fails, the
transport reconnects on its own; sends in the meantime report FAILED.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any, Callable, cast

import zigpy.application
import zigpy.config
import zigpy.types as zt

from emulator.han.aps_fragmentation import MAX_UNFRAGMENTED_PAYLOAD, split
from emulator.han.packet import OTA_CLUSTER, SMART_ENERGY_ENDPOINT, SMART_ENERGY_PROFILE, ApsPacket, DeliveryStatus
from emulator.han.transport import DeliveryCallback, HanTransport, TransportError

if TYPE_CHECKING:
    from .ncp_cbke import NcpCbkeLibrary

_LOGGER = logging.getLogger(__name__)
FRAGMENT_SENT_TIMEOUT_S = 8.0
"""How long one APS block may take to be acknowledged (bellows waits as long for a whole frame)."""

ESI_DEVICE_ID = 0x0500
"""Smart Energy device id of an Energy Service Interface (the Comms Hub's role)."""
BASIC_CLUSTER = 0x0000
TIME_CLUSTER = 0x000A
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
"""Seconds between reconnection attempts (the last one repeats)."""
STOP_GRACE_S = 0.5
"""At stop, how long the sends in flight get to end (FAILED) once the radio is shut down."""


def hub_endpoint(endpoint: int = SMART_ENERGY_ENDPOINT) -> dict[str, Any]:
    """The hub's Smart Energy endpoint, in zigpy's ``additional_endpoints`` form."""
    return {
        "endpoint": endpoint,
        "profile": SMART_ENERGY_PROFILE,
        "device_type": ESI_DEVICE_ID,
        "device_version": 0,
        "input_clusters": [BASIC_CLUSTER, TIME_CLUSTER, OTA_CLUSTER],
        "output_clusters": [],
    }


def hub_config(path: str, *, baudrate: int = 115200, flow_control: str | None = None) -> dict[str, Any]:
    """zigpy/bellows configuration for a Comms Hub radio: a coordinator and nothing else."""
    return {
        "device": {"path": path, "baudrate": baudrate, "flow_control": flow_control},
        "database_path": None,
        "use_thread": False,
        "ota": {"enabled": False},
        "backup_enabled": False,
        "topology_scan_enabled": False,
        "watchdog_enabled": False,
        "startup_energy_scan": False,
        "additional_endpoints": [hub_endpoint()],
    }


@functools.cache
def hub_application_class(base: type) -> type:
    """``base`` (a zigpy ``ControllerApplication``) taught to hand hub frames to a transport."""

    class HubApplication(base):
        hub_transport: "ZigpyTransport | None" = None

        async def register_endpoints(self) -> None:
            # Only the hub's endpoints: zigpy's Home Automation endpoint 1 would take the
            # number the Smart Energy endpoint needs.
            for descriptor in self.config[zigpy.config.CONF_ADDITIONAL_ENDPOINTS]:
                await self.add_endpoint(descriptor)

        async def connect(self) -> None:
            await super().connect()
            observe_fragment_acks(self)

        def packet_received(self, packet: zt.ZigbeePacket) -> None:
            transport = self.hub_transport
            if transport is not None and transport.accepts(packet):
                transport._on_zigbee_packet(packet)
                return
            super().packet_received(packet)

    HubApplication.__name__ = HubApplication.__qualname__ = f"Hub{base.__name__}"
    return HubApplication


class _ObservedTasks(set[asyncio.Task[Any]]):
    """bellows' set of APS fragment acknowledgement tasks, each given a done callback that
    retrieves its outcome: an acknowledgement cut off by a lost connection is logged, not left
    as "Task exception was never retrieved" (bellows keeps the task only until it is done)."""

    def add(self, task: asyncio.Task[Any]) -> None:
        task.add_done_callback(_fragment_ack_done)
        super().add(task)


def _fragment_ack_done(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        _LOGGER.info("APS fragment acknowledgement not sent (radio link lost): %r", exc)


def observe_fragment_acks(app: Any) -> None:
    """Once bellows has connected (each reconnection makes a new EZSP protocol handler): its
    fragment acknowledgement tasks get their outcome retrieved (:class:`_ObservedTasks`). Other
    radio libraries have no such set: nothing to do."""
    protocol = getattr(getattr(app, "_ezsp", None), "_protocol", None)
    tasks = getattr(protocol, "_fragment_ack_tasks", None)
    if isinstance(tasks, set) and not isinstance(tasks, _ObservedTasks):
        observed = _ObservedTasks()
        for task in tasks:
            observed.add(task)
        protocol._fragment_ack_tasks = observed  # type: ignore[union-attr]


class ZigpyTransport(HanTransport):
    """A Comms Hub node on a real (or emulated) radio driven by zigpy.

    ``aps_encrypted_clusters``: unicasts on these clusters go with the APS option ENCRYPTION
    (0x0020), so the NCP encrypts them with the destination's link key from its key table (the
    OTA and Tunneling clusters once a device has done CBKE). Empty by default: NWK security only.
    """

    aps_encrypted_clusters: frozenset[int] = frozenset()
    on_aps_security: "Callable[[ApsPacket, bool], None] | None" = None
    """Told of each received frame whether the NCP got it APS-encrypted (incomingMessageHandler's
    APS_OPTION_ENCRYPTION, which bellows hands on as ``tx_options``): certify's D4 on a bench."""
    ncp_cbke: "NcpCbkeLibrary | None" = None
    """The NCP's CBKE library (suite 2) once :meth:`probe_cbke` found one: the hub's Trust Centre
    then has the NCP compute its side of Key Establishment (docs/cbke.md)."""

    def __init__(
        self,
        app: zigpy.application.ControllerApplication,
        *,
        hub_eui64: int | None = None,
        profiles: frozenset[int] = frozenset({SMART_ENERGY_PROFILE}),
    ) -> None:
        super().__init__(hub_eui64 or 0, 0x0000)
        self.app = app
        self.profiles = profiles
        self._fixed_eui64 = hub_eui64
        self._tasks: set[asyncio.Task[Any]] = set()
        self._eui_by_nwk: dict[int, int] = {}
        self._unresolved: dict[int, list[zt.ZigbeePacket]] = {}
        self._reconnect_task: asyncio.Task[None] | None = None
        self._stopping = False
        self.reconnections = 0
        self.connected = asyncio.Event()
        self.reconnected = asyncio.Event()
        """Set after each successful reconnection (clear it to wait for the next one)."""
        app.hub_transport = self  # type: ignore[attr-defined]
        app.add_listener(self)

    # -- lifecycle -------------------------------------------------------------------------
    async def _start(self) -> None:
        try:
            await self.app.startup(auto_form=False)
        except Exception as exc:
            path = self.app.config[zigpy.config.CONF_DEVICE][zigpy.config.CONF_DEVICE_PATH]
            raise TransportError(f"radio at {path} did not start: {exc!r}") from exc
        self._adopt_identity()
        self.connected.set()

    async def _stop(self) -> None:
        self._stopping = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        if self.ncp_cbke is not None:
            self.ncp_cbke.stop()
        self.connected.clear()
        # The radio goes down before the sends in flight end: one cancelled while bellows waits
        # for its ASH acknowledgement would leave bellows' shielded write to fail alone later
        # ("Task exception was never retrieved": Connection has been closed). After the
        # shutdown each send gets that error itself and reports FAILED.
        await self.app.shutdown()
        pending = list(self._tasks)
        if pending:
            _done, late = await asyncio.wait(pending, timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
        await asyncio.gather(*pending, *(t for t in [self._reconnect_task] if t), return_exceptions=True)

    @property
    def radio_eui64(self) -> int | None:
        """The dongle's own EUI-64 (what devices on the air see as the Trust Centre), once started."""
        node = getattr(getattr(self.app, "state", None), "node_info", None)
        ieee = getattr(node, "ieee", None)
        return None if ieee is None else _eui64_int(ieee)

    def _adopt_identity(self) -> None:
        node = self.app.state.node_info
        self.nwk = int(node.nwk)
        if self._fixed_eui64 is None:
            self.eui64 = _eui64_int(node.ieee)

    # -- zigpy listener events -------------------------------------------------------------
    def connection_lost(self, exc: Exception | None) -> None:
        """zigpy: the radio reset or the link failed. Reconnect, as a Comms Hub must."""
        self.connected.clear()
        if self._stopping or (self._reconnect_task is not None and not self._reconnect_task.done()):
            return
        _LOGGER.warning("radio connection lost (%r): reconnecting", exc)
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        attempt = 0
        while not self._stopping:
            delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
            await asyncio.sleep(delay)
            attempt += 1
            try:
                await self.app.disconnect()
                await self.app.startup(auto_form=False)
            except Exception as exc:  # the radio may still be rebooting: try again
                _LOGGER.warning("radio reconnection attempt %d failed: %r", attempt, exc)
                continue
            self.reconnections += 1
            self._adopt_identity()
            self.connected.set()
            self.reconnected.set()
            _LOGGER.info("radio reconnected after %d attempt(s)", attempt)
            return

    # -- sending ---------------------------------------------------------------------------
    def _send(self, packet: ApsPacket, on_delivery: DeliveryCallback | None) -> None:
        if packet.dst:
            self._eui_by_nwk[packet.dst_nwk] = packet.dst
        task = asyncio.get_running_loop().create_task(self._send_packet(packet, on_delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_packet(self, packet: ApsPacket, on_delivery: DeliveryCallback | None) -> None:
        status = DeliveryStatus.FAILED
        try:
            if not packet.is_broadcast and len(packet.payload) > MAX_UNFRAGMENTED_PAYLOAD:
                await self._send_fragmented(packet)
            else:
                await self.app.send_packet(self._to_zigpy(packet))
            status = DeliveryStatus.DELIVERED
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # DeliveryError, a timeout, a radio gone: the frame was not delivered
            _LOGGER.info("send to 0x%04X (%016X) failed: %r", packet.dst_nwk, packet.dst, exc)
        finally:
            if on_delivery is not None:
                on_delivery(packet, status)

    async def _send_fragmented(self, packet: ApsPacket) -> None:
        """A message longer than one frame, as APS blocks (window 1): bellows reassembles what it
        receives but sends only whole messages, so the host splits here, as EmberZNet's host
        fragmentation does: each block a ``sendUnicast`` with APS_OPTION_FRAGMENT, its index and
        the block count in groupId, one APS counter for all, and the next block only once the
        previous one's ``messageSentHandler`` says it was delivered."""
        import bellows.types as bt

        app: Any = self.app
        ezsp = app._ezsp
        loop = asyncio.get_running_loop()
        sequence = packet.aps_counter & 0xFF
        for fragment in split(packet.payload):
            frame = bt.EmberApsFrame(
                profileId=packet.profile, clusterId=packet.cluster, sourceEndpoint=packet.src_ep,
                destinationEndpoint=packet.dst_ep,
                options=(bt.EmberApsOption.APS_OPTION_RETRY | bt.EmberApsOption.APS_OPTION_ENABLE_ROUTE_DISCOVERY
                         | bt.EmberApsOption.APS_OPTION_FRAGMENT),
                groupId=fragment.group_id, sequence=sequence,
            )
            tag = app.get_sequence()
            pending = (zt.NWK(packet.dst_nwk), tag)
            future = app._pending_requests[pending] = loop.create_future()  # bellows resolves it on messageSent
            try:
                status, _ = await ezsp.send_unicast(zt.NWK(packet.dst_nwk), frame, tag, fragment.data)
                if bt.sl_Status.from_ember_status(status) != bt.sl_Status.OK:
                    raise TransportError(f"block {fragment.index + 1}/{fragment.count} refused by the NCP: {status!r}")
                sent, _ = await asyncio.wait_for(future, FRAGMENT_SENT_TIMEOUT_S)
                if bt.sl_Status.from_ember_status(sent) != bt.sl_Status.OK:
                    raise TransportError(f"block {fragment.index + 1}/{fragment.count} not delivered: {sent!r}")
            finally:
                app._pending_requests.pop(pending, None)

    def _to_zigpy(self, packet: ApsPacket) -> zt.ZigbeePacket:
        if packet.is_broadcast:
            dst = zt.AddrModeAddress(addr_mode=zt.AddrMode.Broadcast, address=zt.BroadcastAddress(packet.dst_nwk))
            options = zt.TransmitOptions.NONE
        else:
            dst = zt.AddrModeAddress(addr_mode=zt.AddrMode.NWK, address=zt.NWK(packet.dst_nwk))
            options = zt.TransmitOptions.ACK
            if packet.cluster in self.aps_encrypted_clusters:
                options |= zt.TransmitOptions.APS_Encryption
        return zt.ZigbeePacket(
            src=zt.AddrModeAddress(addr_mode=zt.AddrMode.NWK, address=zt.NWK(self.nwk)),
            src_ep=zt.uint8_t(packet.src_ep),
            dst=dst,
            dst_ep=zt.uint8_t(packet.dst_ep),
            tsn=zt.uint8_t(packet.aps_counter & 0xFF),
            profile_id=zt.uint16_t(packet.profile),
            cluster_id=zt.uint16_t(packet.cluster),
            data=zt.SerializableBytes(packet.payload),
            tx_options=options,
            radius=zt.uint8_t(0),
        )

    async def probe_cbke(self) -> "NcpCbkeLibrary | None":
        """Ask the NCP for its suite-2 CBKE data (getCertificate283k1); remembered in
        :attr:`ncp_cbke`. None: no library or no data, the host computes CBKE."""
        from .ncp_cbke import NcpCbkeLibrary

        self.ncp_cbke = await NcpCbkeLibrary.probe(lambda: getattr(self.app, "_ezsp"))
        return self.ncp_cbke

    def install_link_key(self, eui64: int, key: bytes) -> None:
        """Put a host-computed APS link key (CBKE done by the host) in the NCP's key table:
        ``importLinkKey`` (EZSP 13 and later) or ``addOrUpdateKeyTableEntry`` (before)."""
        task = asyncio.get_running_loop().create_task(self._install_link_key(eui64, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _install_link_key(self, eui64: int, key: bytes) -> None:
        ezsp = getattr(self.app, "_ezsp", None)
        if ezsp is None:
            _LOGGER.warning("no EZSP: link key of %016X not installed", eui64)
            return
        address = zt.EUI64(eui64.to_bytes(8, "little"))
        try:
            if ezsp.ezsp_version >= 13:
                result = await ezsp.importLinkKey(index=0, address=address, key=zt.KeyData(key))
            else:
                result = await ezsp.addOrUpdateKeyTableEntry(address=address, linkKey=True, keyData=zt.KeyData(key))
        except Exception as exc:  # the radio went away: the device's frames will fail their MIC
            _LOGGER.warning("link key of %016X not installed: %r", eui64, exc)
            return
        _LOGGER.info("link key of %016X installed in the NCP key table: %s", eui64, result[0])

    # -- receiving -------------------------------------------------------------------------
    def accepts(self, packet: zt.ZigbeePacket) -> bool:
        return packet.profile_id in self.profiles and packet.src is not None

    def nwk_of(self, eui64: int) -> int | None:
        for nwk, known in self._eui_by_nwk.items():
            if known == eui64:
                return nwk
        for device in self.app.devices.values():
            if _eui64_int(device.ieee) == eui64:
                return int(device.nwk)
        return None

    async def resolve_nwk(self, eui64: int) -> int | None:
        """Ask the radio for the NWK address of ``eui64`` (EZSP ``lookupNodeIdByEui64``) and
        remember it, so the hub can reach a device that has not spoken yet (``None``: unknown)."""
        known = self.nwk_of(eui64)
        if known is not None:
            return known
        ezsp = getattr(self.app, "_ezsp", None)
        if ezsp is None:
            return None
        result = await ezsp.lookupNodeIdByEui64(eui64=zt.EUI64(eui64.to_bytes(8, "little")))
        nwk = int(result[-1])  # v4-v13 answer (nodeId,), v14+ (status, nodeId)
        if nwk >= 0xFFF8:
            return None
        self._eui_by_nwk[nwk] = eui64
        return nwk

    async def describe_radio(self) -> dict[str, Any]:
        """What a bench engineer wants to know first: firmware, protocol, the network it is on."""
        state = self.app.state
        info: dict[str, Any] = {
            "radio_eui64": f"{_eui64_int(state.node_info.ieee):016X}",
            "nwk": f"0x{int(state.node_info.nwk):04X}",
            "logical_type": str(getattr(state.node_info.logical_type, "name", state.node_info.logical_type)),
            "channel": state.network_info.channel,
            "pan_id": f"0x{int(state.network_info.pan_id):04X}",
            "extended_pan_id": f"{_eui64_int(state.network_info.extended_pan_id):016X}",
            "network_key": bytes(state.network_info.network_key.key.serialize()).hex().upper(),
        }
        ezsp = getattr(self.app, "_ezsp", None)
        if ezsp is not None:
            info["ezsp_version"] = ezsp.ezsp_version
            manufacturer, board, version = await ezsp.get_board_info()
            info.update(manufacturer=manufacturer, board=board, firmware=version)
        return info

    def _on_zigbee_packet(self, packet: zt.ZigbeePacket) -> None:
        src = packet.src
        assert src is not None and src.address is not None  # zigpy fills both for received frames
        if src.addr_mode == zt.AddrMode.IEEE:
            self._deliver(self._to_aps(packet, _eui64_int(cast(zt.EUI64, src.address)), 0xFFFE))
            return
        nwk = int(cast(zt.NWK, src.address))
        if nwk in self._unresolved:  # keep a node's frames in order while its EUI-64 is looked up
            self._unresolved[nwk].append(packet)
            return
        eui64 = self._known_eui64(nwk)
        if eui64 is not None:
            self._deliver(self._to_aps(packet, eui64, nwk))
            return
        self._unresolved[nwk] = [packet]
        task = asyncio.get_running_loop().create_task(self._resolve(nwk))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _known_eui64(self, nwk: int) -> int | None:
        eui64 = self._eui_by_nwk.get(nwk)
        if eui64 is not None:
            return eui64
        for device in self.app.devices.values():
            if device.nwk == nwk:
                return _eui64_int(device.ieee)
        return None

    async def _resolve(self, nwk: int) -> None:
        """Ask the radio which EUI-64 uses ``nwk`` (EZSP ``lookupEui64ByNodeId``)."""
        eui64: int | None = None
        try:
            ezsp = getattr(self.app, "_ezsp", None)
            if ezsp is not None:
                status, ieee = await ezsp.lookupEui64ByNodeId(nodeId=nwk)
                if int(status) == 0:
                    eui64 = _eui64_int(ieee)
        except Exception as exc:  # the radio could not say: the frames cannot be attributed
            _LOGGER.warning("EUI-64 lookup of 0x%04X failed: %r", nwk, exc)
        finally:
            packets = self._unresolved.pop(nwk, [])
        if eui64 is None:
            _LOGGER.warning("%d frame(s) from unknown node 0x%04X dropped", len(packets), nwk)
            return
        self._eui_by_nwk[nwk] = eui64
        for packet in packets:
            self._deliver(self._to_aps(packet, eui64, nwk))

    def _to_aps(self, packet: zt.ZigbeePacket, src: int, src_nwk: int) -> ApsPacket:
        broadcast = packet.dst is not None and packet.dst.addr_mode == zt.AddrMode.Broadcast
        aps = ApsPacket(
            src=src,
            dst=0 if broadcast else self.eui64,
            src_nwk=src_nwk,
            dst_nwk=int(cast(zt.NWK, packet.dst.address)) if broadcast and packet.dst is not None else self.nwk,
            payload=bytes(packet.data.serialize()),  # bellows hands an LVBytes: the codec wants plain bytes
            src_ep=packet.src_ep or 0,
            dst_ep=packet.dst_ep or 0,
            profile=packet.profile_id,
            cluster=packet.cluster_id,
            aps_counter=packet.tsn or 0,
            lqi=packet.lqi if packet.lqi is not None else 255,
            rssi=packet.rssi if packet.rssi is not None else -40,
        )
        if self.on_aps_security is not None:
            self.on_aps_security(aps, zt.TransmitOptions.APS_Encryption in (packet.tx_options or zt.TransmitOptions.NONE))
        return aps


def _eui64_int(eui64: zt.EUI64) -> int:
    return int.from_bytes(eui64.serialize(), "little")


async def open_ezsp_transport(
    path: str,
    *,
    baudrate: int = 115200,
    flow_control: str | None = None,
    hub_eui64: int | None = None,
) -> ZigpyTransport:
    """Start bellows on the dongle at ``path`` (``/dev/ttyUSB0``, ``socket://host:port``) and
    return the running transport. ``hub_eui64`` is the EUI-64 the hub reports as its own;
    ``None`` adopts the dongle's. Raises :class:`TransportError` if the radio does not start."""
    import bellows.zigbee.application

    app_class = hub_application_class(bellows.zigbee.application.ControllerApplication)
    try:
        app = app_class(hub_config(path, baudrate=baudrate, flow_control=flow_control))
    except Exception as exc:  # voluptuous rejects the settings
        raise TransportError(f"invalid radio settings for {path}: {exc}") from exc
    transport = ZigpyTransport(app, hub_eui64=hub_eui64)
    await transport.start()
    return transport
