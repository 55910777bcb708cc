"""Emulated HAN devices (PPMID, ESME, GSME, HCALCS): an OTA client plus firmware and GBCS behaviour."""
