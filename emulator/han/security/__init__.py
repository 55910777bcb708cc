"""ZigBee Smart Energy security without I/O: CBKE (both crypto suites), the test CA, the Key
Establishment cluster engines, install-code link keys and APS frame security (docs/cbke.md)."""
