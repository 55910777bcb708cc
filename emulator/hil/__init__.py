"""Hardware-in-the-loop bench runner: a real (or emulated) EZSP dongle and real devices under test."""
