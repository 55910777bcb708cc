"""Home area network transports: one APS-level boundary, virtual or real radio behind it."""
