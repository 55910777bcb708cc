"""Errors every layer may raise for the command line, without importing it."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit code 2."""
