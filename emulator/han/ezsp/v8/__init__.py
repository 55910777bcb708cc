"""EZSP v8: the first version with 16-bit frame ids; keys are read with ``getKey``."""

from __future__ import annotations

from typing import Any

import bellows.types as t
from bellows.ezsp.v8.commands import COMMANDS

from ..cbke import CbkeCommands
from ..frames import CommandTable
from ..handlers import _eui64, _eui64_int, command


class Handlers(CbkeCommands):
    VERSION = 8
    COMMANDS = CommandTable(COMMANDS)

    @command("addTransientLinkKey")
    def add_transient_link_key(self, params: dict[str, Any]) -> dict[str, Any]:
        """0x00AF (EZSP 8-12): a joining device's key (its install-code key) for the TC's next joins."""
        added = self.session.trust_centre.add_transient_key(_eui64_int(params["partner"]), bytes(params["transientKey"]))
        return {"status": t.EmberStatus.SUCCESS if added else t.EmberStatus.TABLE_FULL}

    @command("getKey")
    def get_key(self, params: dict[str, Any]) -> dict[str, Any]:
        key_type = params["keyType"]
        d = self.dongle
        if key_type == t.EmberKeyType.CURRENT_NETWORK_KEY:
            key = t.EmberKeyStruct(
                bitmask=(
                    t.EmberKeyStructBitmask.KEY_HAS_SEQUENCE_NUMBER
                    | t.EmberKeyStructBitmask.KEY_HAS_OUTGOING_FRAME_COUNTER
                ),
                type=key_type,
                key=t.KeyData(d.network_key),
                outgoingFrameCounter=d.network_key_frame_counter,
                incomingFrameCounter=0,
                sequenceNumber=d.network_key_seq,
                partnerEUI64=_eui64(0),
            )
        elif key_type == t.EmberKeyType.TRUST_CENTER_LINK_KEY:
            key = t.EmberKeyStruct(
                bitmask=t.EmberKeyStructBitmask.KEY_HAS_PARTNER_EUI64,
                type=key_type,
                key=t.KeyData(d.tc_link_key),
                outgoingFrameCounter=0,
                incomingFrameCounter=0,
                sequenceNumber=0,
                partnerEUI64=_eui64(0xFFFFFFFFFFFFFFFF),
            )
        else:
            return {"status": t.EmberStatus.KEY_INVALID, "keyStruct": _empty_key()}
        return {"status": t.EmberStatus.SUCCESS, "keyStruct": key}


def _empty_key() -> t.EmberKeyStruct:
    return t.EmberKeyStruct(
        bitmask=0, type=0, key=t.KeyData(bytes(16)), outgoingFrameCounter=0,
        incomingFrameCounter=0, sequenceNumber=0, partnerEUI64=_eui64(0),
    )
