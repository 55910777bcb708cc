"""DCC side: DUIS front door, DSP (validation, SMI, SAT, alerts), CSP (checks, WAN delivery)."""
