"""Builders for DUIS request documents in the shape of DCC's samples (tests only)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data" / "duis"
SR_NS = "http://www.dccinterface.co.uk/ServiceUserGateway"
USER = "90-B3-D5-1F-30-01-00-00"
DCC = "90-B3-D5-1F-30-00-00-02"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def request_xml(
    variant: str,
    body: str,
    *,
    request_id: str | None = None,
    command_variant: int | None = None,
    service_reference: str | None = None,
    namespace: str = SR_NS,
) -> bytes:
    """An unsigned DUIS request; ``body`` is the inner XML of sr:Body."""
    cv = command_variant if command_variant is not None else {"11.1": 8, "11.4": 8, "11.2": 1, "11.3": 4}[variant]
    rid = request_id or f"{USER}:{DCC}:1000"
    ref = service_reference or variant
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<sr:Request xmlns:sr="{namespace}" schemaVersion="5.4">'
        f"<sr:Header><sr:RequestID>{rid}</sr:RequestID>"
        f"<sr:CommandVariant>{cv}</sr:CommandVariant>"
        f"<sr:ServiceReference>{ref}</sr:ServiceReference>"
        f"<sr:ServiceReferenceVariant>{variant}</sr:ServiceReferenceVariant></sr:Header>"
        f"<sr:Body>{body}</sr:Body></sr:Request>"
    ).encode()


def update_body(
    element: str = "UpdateFirmware",
    *,
    image: str = "HvHuCwABPAA=",
    version: str = "00000001",
    devices: str = "00-DB-12-34-56-78-90-A0",
) -> str:
    return (
        f"<sr:{element}><sr:FirmwareImage>{image}</sr:FirmwareImage>"
        f"<sr:FirmwareVersion>{version}</sr:FirmwareVersion>"
        f"<sr:DeviceIDList>{devices}</sr:DeviceIDList></sr:{element}>"
    )
