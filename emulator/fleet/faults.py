"""The fault catalogue moved to :mod:`emulator.faults` (scenarios name its faults too)."""

from emulator.faults import FAULTS, SUCCEEDED, Fault

__all__ = ["FAULTS", "SUCCEEDED", "Fault"]
