"""GBCS key material: remote parties' keys loaded from key stores, emulated devices' TEST ONLY keys."""
