"""Pickling and copying frozen, slotted dataclasses the same way in the pure and compiled builds.

A fleet's worker processes and a Dask cluster pickle records, and tests deep-copy them. CPython's
dataclasses restore a frozen slotted record with ``object.__setattr__``; the compiled build (mypyc,
docs/fleet.md) restores its native classes with plain ``setattr``, which a frozen class refuses
(FrozenInstanceError). A record that defines ``__reduce__`` with :func:`reduce_by_init_fields` is
rebuilt by calling its class, in both builds.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def reduce_by_init_fields(record: Any) -> tuple[Any, ...]:
    """``__reduce__`` for a frozen dataclass: its class called with its init fields, in order
    (fields computed in ``__post_init__`` are computed again)."""
    cls = type(record)
    return (cls, tuple(getattr(record, f.name) for f in dataclasses.fields(cls) if f.init))
