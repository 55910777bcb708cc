"""The emulator's stand-in for GBCS messages between the Comms Hub and its devices.

Real GBCS commands, responses and alerts travel over the ZigBee Tunneling cluster (0x0704),
signed and encrypted in GBCS's own encoding. The emulator models what they *mean* (11.2/11.3
commands, their responses, device alerts) as compact JSON in a Tunneling-cluster frame, so the
flow crosses the HAN (and its faults) like the real thing. It is not GBCS-compatible: a real
device on a bench will not understand it (docs/ota.md, "GBCS tunnel").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TUNNELING_CLUSTER = 0x0704


_KINDS = {"c": "command", "r": "response", "a": "alert"}


class TunnelError(ValueError):
    """A tunnel payload that is not one of ours."""


@dataclass(frozen=True, slots=True)
class TunnelMessage:
    """``kind`` is ``command``, ``response`` or ``alert``."""

    kind: str
    service: str | None = None  # "11.2" / "11.3" for commands and responses
    transaction: int | None = None  # pairs a response with its command (the hub maps it to a RequestID)
    alert_code: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        """Compact JSON: keys of one letter, so a frame stays within one 802.15.4 frame."""
        body: dict[str, Any] = {"k": self.kind[0]}
        if self.details:
            body["d"] = self.details
        if self.service is not None:
            body["s"] = self.service
        if self.transaction is not None:
            body["t"] = self.transaction
        if self.alert_code is not None:
            body["a"] = self.alert_code
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes) -> "TunnelMessage":
        try:
            body = json.loads(payload)
            kind = _KINDS.get(body["k"])
            if kind is None:
                raise TunnelError(f"unknown tunnel message kind {body['k']!r}")
            return cls(kind, body.get("s"), body.get("t"), body.get("a"), dict(body.get("d", {})))
        except (ValueError, KeyError, TypeError) as exc:
            raise TunnelError(f"not an emulator tunnel message: {exc}") from None
