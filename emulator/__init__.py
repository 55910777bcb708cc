"""Comms Hub emulator for GB smart-metering firmware distribution.

Data flows one way through the package folders:
``dcc`` (DSP, CSP, SMI, SAT, alerts, DUIS) -> ``hub`` (Comms Hub) -> ``ota`` (image format,
frame codec, server and client engines) -> ``han`` (transports: virtual, zigpy/bellows) ->
``devices`` (emulated PPMIDs and meters). ``runtime`` holds the clock every layer waits on.
"""

__version__ = "0.1.0"
