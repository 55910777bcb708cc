"""The real radio path: an emulated EZSP dongle (``ncp-sim``) and the zigpy/bellows transport.

zigpy and bellows are imported only inside this package, so the virtual HAN stays light.
"""
