"""EZSP command handlers shared by every emulated protocol version (v8 and later).

One method per command, registered with :func:`command`; the version folders (``v8/``,
``v13/``) subclass :class:`CommandHandlers` and add or replace what changed. A handler returns
the response fields by their UG100 names; commands without a handler are answered with
``invalidCommand``, as real firmware answers an id it does not know, except the
configuration setters in :attr:`CommandHandlers.ACCEPTED`, which succeed without effect.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, ClassVar, TypeVar

import bellows.types as t

from .frames import CommandTable, ok_status
from .session import Endpoint, HostSession

_LOGGER = logging.getLogger(__name__)

Handler = Callable[["CommandHandlers", dict[str, Any]], dict[str, Any]]
H = TypeVar("H", bound=Callable[..., dict[str, Any]])

STACK_TYPE_ZIGBEE_PRO = 2


def command(name: str) -> Callable[[H], H]:
    """Mark a method as the handler of EZSP command ``name``."""

    def mark(func: H) -> H:
        func.ezsp_command = name  # type: ignore[attr-defined]
        return func

    return mark


class CommandHandlers:
    """Answers the commands bellows needs to start on an already-formed network."""

    VERSION: ClassVar[int] = 8
    COMMANDS: ClassVar[CommandTable]
    ACCEPTED: ClassVar[frozenset[str]] = frozenset(
        {
            "setConfigurationValue",
            "setValue",
            "setConcentrator",
            "setManufacturerCode",
            "setRadioPower",
            "setMulticastTableEntry",
            "setExtendedTimeout",
            "clearKeyTable",
            "setPowerDescriptor",
            "setMacPollFailureWaitTime",
        }
    )
    _table: ClassVar[dict[str, Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, Handler] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                name = getattr(attr, "ezsp_command", None)
                if name is not None:
                    table[name] = attr
        cls._table = table

    def __init__(self, session: HostSession) -> None:
        self.session = session
        self.dongle = session.dongle

    def handler_for(self, name: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        func = self._table.get(name)
        if func is not None:
            return lambda params: func(self, params)
        if name in self.ACCEPTED:
            schema = self.COMMANDS.response_schema(name)
            if isinstance(schema, dict) and set(schema) <= {"status"}:
                fields = {"status": ok_status(schema["status"])} if schema else {}
                return lambda params: fields
        return None

    # -- identity and version --------------------------------------------------------------
    @command("version")
    def version(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "protocolVersion": self.VERSION,
            "stackType": STACK_TYPE_ZIGBEE_PRO,
            "stackVersion": self.dongle.stack_version,
        }

    @command("getEui64")
    def get_eui64(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"eui64": _eui64(self.dongle.eui64)}

    @command("getNodeId")
    def get_node_id(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"nodeId": self.dongle.nwk}

    @command("getMfgToken")
    def get_mfg_token(self, params: dict[str, Any]) -> dict[str, Any]:
        token = params["tokenId"]
        if token == t.EzspMfgTokenId.MFG_STRING:
            data = self.dongle.mfg_string.encode().ljust(16, b"\xff")
        elif token == t.EzspMfgTokenId.MFG_BOARD_NAME:
            data = self.dongle.board_name.encode().ljust(16, b"\xff")
        elif token == t.EzspMfgTokenId.MFG_CUSTOM_EUI_64:
            data = b"\xff" * 8  # never written: the factory EUI-64 is in use
        else:
            data = b""
        return {"tokenData": data}

    @command("getValue")
    def get_value(self, params: dict[str, Any]) -> dict[str, Any]:
        value_id = params["valueId"]
        if value_id == t.EzspValueId.VALUE_VERSION_INFO:
            major, minor, patch, special, build = self.dongle.firmware_version
            value = build.to_bytes(2, "little") + bytes([major, minor, patch, special])
        elif value_id == t.EzspValueId.VALUE_FREE_BUFFERS:
            value = bytes([200])
        elif value_id in self.session.values:
            value = self.session.values[value_id]
        else:
            return {"status": t.EzspStatus.ERROR_INVALID_ID, "value": b""}
        return {"status": t.EzspStatus.SUCCESS, "value": value}

    @command("setValue")
    def set_value(self, params: dict[str, Any]) -> dict[str, Any]:
        self.session.values[params["valueId"]] = bytes(params["value"])
        return {"status": t.EzspStatus.SUCCESS}

    @command("getConfigurationValue")
    def get_configuration_value(self, params: dict[str, Any]) -> dict[str, Any]:
        config_id = params["configId"]
        if config_id == t.EzspConfigId.CONFIG_SECURITY_LEVEL:
            value = self.dongle.security_level
        else:
            value = self.session.config.get(config_id, 0)
        return {"status": t.EzspStatus.SUCCESS, "value": value}

    @command("setConfigurationValue")
    def set_configuration_value(self, params: dict[str, Any]) -> dict[str, Any]:
        self.session.config[params["configId"]] = int(params["value"])
        if params["configId"] == t.EzspConfigId.CONFIG_TRANSIENT_KEY_TIMEOUT_S:
            self.session.trust_centre.transient_key_timeout_s = int(params["value"])
        return {"status": t.EzspStatus.SUCCESS}

    @command("addEndpoint")
    def add_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        ep = params["endpoint"]
        if self.session.network_up or ep in self.session.endpoints:
            return {"status": t.EzspStatus.ERROR_INVALID_CALL}
        self.session.endpoints[ep] = Endpoint(
            endpoint=ep,
            profile=params["profileId"],
            device_id=params["deviceId"],
            device_version=params["deviceVersion"],
            input_clusters=tuple(params["inputClusterList"]),
            output_clusters=tuple(params["outputClusterList"]),
        )
        return {"status": t.EzspStatus.SUCCESS}

    # -- network ---------------------------------------------------------------------------
    @command("networkState")
    def network_state(self, params: dict[str, Any]) -> dict[str, Any]:
        joined = t.EmberNetworkStatus.JOINED_NETWORK
        return {"status": joined if self.session.network_up else t.EmberNetworkStatus.NO_NETWORK}

    @command("networkInit")
    def network_init(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.session.network_up:
            return {"status": t.EmberStatus.INVALID_CALL}
        self.session.bring_network_up()
        return {"status": t.EmberStatus.SUCCESS}

    @command("getNetworkParameters")
    def get_network_parameters(self, params: dict[str, Any]) -> dict[str, Any]:
        d = self.dongle
        parameters = t.EmberNetworkParameters(
            extendedPanId=_eui64(d.extended_pan_id),
            panId=d.pan_id,
            radioTxPower=d.tx_power,
            radioChannel=d.channel,
            joinMethod=t.EmberJoinMethod.USE_MAC_ASSOCIATION,
            nwkManagerId=0x0000,
            nwkUpdateId=d.nwk_update_id,
            channels=t.Channels.from_channel_list([d.channel]),
        )
        return {
            "status": t.EmberStatus.SUCCESS,
            "nodeType": t.EmberNodeType.COORDINATOR,
            "parameters": parameters,
        }

    @command("getCurrentSecurityState")
    def get_current_security_state(self, params: dict[str, Any]) -> dict[str, Any]:
        bitmask = (
            t.EmberCurrentSecurityBitmask.GLOBAL_LINK_KEY
            | t.EmberCurrentSecurityBitmask.HAVE_TRUST_CENTER_LINK_KEY
        )
        state = t.EmberCurrentSecurityState(
            bitmask=bitmask, trustCenterLongAddress=_eui64(self.dongle.eui64)
        )
        return {"status": t.EmberStatus.SUCCESS, "state": state}

    @command("getMulticastTableEntry")
    def get_multicast_table_entry(self, params: dict[str, Any]) -> dict[str, Any]:
        entry = t.EmberMulticastTableEntry(multicastId=0x0000, endpoint=0, networkIndex=0)
        return {"status": t.EmberStatus.SUCCESS, "value": entry}

    @command("readCounters")
    def read_counters(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"values": [0] * len(t.EmberCounterType)}

    @command("readAndClearCounters")
    def read_and_clear_counters(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"values": [0] * len(t.EmberCounterType)}

    @command("nop")
    def nop(self, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    @command("setSourceRouteDiscoveryMode")
    def set_source_route_discovery_mode(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"remainingTime": 0}  # no many-to-one route discovery is modelled

    # -- the Trust Centre: join window, policy, transient keys (ncp_trust_centre) ----------------
    @command("permitJoining")
    def permit_joining(self, params: dict[str, Any]) -> dict[str, Any]:
        if not self.session.network_up:
            return {"status": t.EmberStatus.NETWORK_DOWN}
        self.session.trust_centre.permit_joining(int(params["duration"]))
        return {"status": t.EmberStatus.SUCCESS}

    @command("setPolicy")
    def set_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        self.session.trust_centre.set_policy(int(params["policyId"]), int(params["decisionId"]))
        return {"status": t.EzspStatus.SUCCESS}

    @command("getPolicy")
    def get_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        decision = self.session.trust_centre.policy(int(params["policyId"]))
        return {"status": t.EzspStatus.SUCCESS, "decisionId": t.EzspDecisionId(decision)}

    @command("clearTransientLinkKeys")
    def clear_transient_link_keys(self, params: dict[str, Any]) -> dict[str, Any]:
        self.session.trust_centre.clear_transient_keys()
        return {}

    # -- the key table (link keys from CBKE or installed by the host) -------------------------
    @command("findKeyTableEntry")
    def find_key_table_entry(self, params: dict[str, Any]) -> dict[str, Any]:
        """bellows calls it after each unsecured join, to erase the device's stale link key."""
        partner = _eui64_int(params["address"])
        for index, eui64 in enumerate(self.dongle.link_keys):
            if eui64 == partner and params["linkKey"]:
                return {"index": index}
        return {"index": 0xFF}

    @command("eraseKeyTableEntry")
    def erase_key_table_entry(self, params: dict[str, Any]) -> dict[str, Any]:
        partners = list(self.dongle.link_keys)
        index = int(params["index"])
        if index >= len(partners):
            return {"status": t.EmberStatus.INDEX_OUT_OF_RANGE}
        del self.dongle.link_keys[partners[index]]
        return {"status": t.EmberStatus.SUCCESS}

    # -- addressing ------------------------------------------------------------------------
    @command("getExtendedTimeout")
    def get_extended_timeout(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"extendedTimeout": _eui64_int(params["remoteEui64"]) in self.session.extended_timeouts}

    @command("setExtendedTimeout")
    def set_extended_timeout(self, params: dict[str, Any]) -> dict[str, Any]:
        eui64 = _eui64_int(params["remoteEui64"])
        if params["extendedTimeout"]:
            self.session.extended_timeouts.add(eui64)
        else:
            self.session.extended_timeouts.discard(eui64)
        return {}

    @command("lookupNodeIdByEui64")
    def lookup_node_id_by_eui64(self, params: dict[str, Any]) -> dict[str, Any]:
        nwk = self.dongle.nwk_of(_eui64_int(params["eui64"]))
        return {"nodeId": 0xFFFF if nwk is None else nwk}

    @command("lookupEui64ByNodeId")
    def lookup_eui64_by_node_id(self, params: dict[str, Any]) -> dict[str, Any]:
        eui64 = self.dongle.eui64_of(params["nodeId"])
        if eui64 is None:
            return {"status": t.EmberStatus.ERR_FATAL, "eui64": _eui64(0xFFFFFFFFFFFFFFFF)}
        return {"status": t.EmberStatus.SUCCESS, "eui64": _eui64(eui64)}

    @command("replaceAddressTableEntry")
    def replace_address_table_entry(self, params: dict[str, Any]) -> dict[str, Any]:
        index = params["addressTableIndex"]
        old = self.session.address_table.get(index, (0xFFFFFFFFFFFFFFFF, 0xFFFF, False))
        eui64, nwk = _eui64_int(params["newEui64"]), int(params["newId"])
        self.session.address_table[index] = (eui64, nwk, bool(params["newExtendedTimeout"]))
        self.dongle.learn(nwk, eui64)
        return {
            "status": t.EmberStatus.SUCCESS,
            "oldEui64": _eui64(old[0]),
            "oldId": old[1],
            "oldExtendedTimeout": old[2],
        }

    # -- messaging -------------------------------------------------------------------------
    @command("sendUnicast")
    def send_unicast(self, params: dict[str, Any]) -> dict[str, Any]:
        status, seq = self.session.send_unicast(
            params["indexOrDestination"],
            params["apsFrame"],
            params["messageTag"],
            bytes(params["messageContents"]),
        )
        return {"status": status, "sequence": seq}

    @command("sendReply")
    def send_reply(self, params: dict[str, Any]) -> dict[str, Any]:
        """bellows answers each APS block it receives with a fragment acknowledgement (sendReply)."""
        self.session.fragment_acks += 1
        return {"status": t.EmberStatus.SUCCESS}

    @command("sendBroadcast")
    def send_broadcast(self, params: dict[str, Any]) -> dict[str, Any]:
        status, seq = self.session.send_broadcast(
            params["destination"],
            params["apsFrame"],
            params["messageTag"],
            bytes(params["messageContents"]),
        )
        return {"status": status, "sequence": seq}


def _eui64(value: int) -> t.EUI64:
    """bellows' EUI64 is little-endian bytes; the project's EUI-64s are ints."""
    return t.EUI64(value.to_bytes(8, "little"))


def _eui64_int(value: t.EUI64) -> int:
    return int.from_bytes(value.serialize(), "little")
