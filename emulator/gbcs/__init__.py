"""GBCS: the messages hub, devices and DCC exchange (codes, the HAN tunnel, and the message codec)."""
