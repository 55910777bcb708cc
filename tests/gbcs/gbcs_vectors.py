"""DCC's RTDS 4.5.0 GBCS vectors of the firmware flow and the RTDS keystore, from shared/."""

from __future__ import annotations

from pathlib import Path


def _gbcs_dir() -> Path:
    """shared/ lies beside the repository (a CI clone gets a copy there); /work/shared otherwise."""
    beside = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "gbcs"
    return beside if beside.is_dir() else Path("/work/shared/vectors/gbcs")


GBCS_VECTORS = _gbcs_dir()
RTDS = GBCS_VECTORS / "RTDS-4.5.0"
KEYSTORE = GBCS_VECTORS / "keystore"

FLOW_USE_CASES = (
    "11.2_CS08", "11.2_ECS52", "11.2_GCS38", "11.3_CS06",
    "NA_CCS08", "NA_CS09", "NA_FDRA-DLMS", "NA_FDRA-ZigBee",
)
"""The RTDS folders of the firmware flow's use cases (dcc-fidelity.md)."""
GENERIC_ALERT_USE_CASES = ("NA_GCA-DLMS", "NA_GCA-ZigBee", "NA_GNCA-DLMS", "NA_GNCA-ZigBee")
"""Generic alert families (RTDS has 0x8F30 / 0x810E; 0x8F43 and 0x8F1B use the same formats)."""


def vector_files(use_cases: tuple[str, ...]) -> list[Path]:
    return sorted(path for case in use_cases for path in (RTDS / case).glob("*.HEX"))


def read_vector(path: Path) -> bytes:
    return bytes.fromhex(path.read_text().strip())


def vector_id(path: Path) -> str:
    return path.stem.removesuffix("_GBCS")


from collections import Counter  # noqa: E402

TRIED: Counter[str] = Counter()
MATCHED: Counter[str] = Counter()
"""Per use case: vectors a test tried and matched in full (read by conftest's summary)."""

ENVELOPES: Counter[str] = Counter()
"""Whole RTDS set at envelope level: "files", "re-encoded", "verified", "unprotected", "no key" (conftest prints)."""


def all_use_cases() -> tuple[str, ...]:
    return tuple(sorted(path.name for path in RTDS.iterdir() if path.is_dir())) if RTDS.is_dir() else ()
