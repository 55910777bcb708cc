"""Key material: the one reader of key stores (``store``, ``pem``), the shipped TEST ONLY ZAZ1 and
emulator certificates (``embedded``), emulated devices' TEST ONLY keys (``devices``)."""
