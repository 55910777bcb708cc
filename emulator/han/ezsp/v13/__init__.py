"""EZSP v13: keys move to the security manager (``exportKey``, ``getNetworkKeyInfo``), NV3
tokens are readable (``getTokenData``) and the host probes XNCP with ``customFrame``."""

from __future__ import annotations

from typing import Any

import bellows.types as t
from bellows.ezsp.v13.commands import COMMANDS

from ..frames import CommandTable
from ..handlers import _eui64_int, command
from ..v8 import Handlers as HandlersV8


class Handlers(HandlersV8):
    VERSION = 13
    COMMANDS = CommandTable(COMMANDS)

    @command("importTransientKey")
    def import_transient_key(self, params: dict[str, Any]) -> dict[str, Any]:
        """0x0111 (EZSP 13+, the security manager's addTransientLinkKey): flags are not needed here."""
        added = self.session.trust_centre.add_transient_key(_eui64_int(params["eui64"]), bytes(params["plaintext_key"]))
        return {"status": t.sl_Status.OK if added else t.sl_Status.FULL}

    @command("exportKey")
    def export_key(self, params: dict[str, Any]) -> dict[str, Any]:
        key_type = params["context"].core_key_type
        if key_type == t.SecurityManagerKeyType.NETWORK:
            key = self.dongle.network_key
        elif key_type == t.SecurityManagerKeyType.TC_LINK:
            key = self.dongle.tc_link_key
        else:
            return {"key": t.KeyData(bytes(16)), "status": t.sl_Status.NOT_FOUND}
        return {"key": t.KeyData(key), "status": t.sl_Status.OK}

    @command("getNetworkKeyInfo")
    def get_network_key_info(self, params: dict[str, Any]) -> dict[str, Any]:
        info = t.SecurityManagerNetworkKeyInfo(
            network_key_set=True,
            alternate_network_key_set=False,
            network_key_sequence_number=self.dongle.network_key_seq,
            alt_network_key_sequence_number=0,
            network_key_frame_counter=self.dongle.network_key_frame_counter,
        )
        return {"status": t.sl_Status.OK, "network_key_info": info}

    @command("getTokenData")
    def get_token_data(self, params: dict[str, Any]) -> dict[str, Any]:
        # No NV3 token is emulated: the EUI-64 cannot be rewritten, like most NCP firmware.
        return {"status": t.EmberStatus.ERR_FATAL}

    @command("customFrame")
    def custom_frame(self, params: dict[str, Any]) -> dict[str, Any]:
        # Not an XNCP firmware: a non-OK status tells bellows so.
        return {"status": t.EmberStatus.LIBRARY_NOT_PRESENT, "reply": b""}
