"""Composition: premises (hub + HAN + devices) built from plain data, scenarios, the demo."""
