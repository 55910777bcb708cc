"""Strict reading of TOML files (scenarios, benches): a typo is an error naming the key.

Every layer that reads a file of the user's builds on :class:`StrictTable`: it remembers the key
path for messages (``requests[2].device``), type-checks each value and, in :meth:`done`, rejects
keys nobody asked for. Subclasses set :attr:`error` to their own exception type.
"""

from __future__ import annotations

import dataclasses
import enum
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Mapping, Self

from emulator.eui64 import parse_eui64


def read_toml(path: str | Path, error: type[Exception]) -> dict[str, Any]:
    """The parsed file; every failure is ``error`` naming the file and what is wrong."""
    source = str(path)
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{source}: no such file") from None
    except OSError as exc:
        raise error(f"{source}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{source}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: not valid TOML: {exc}") from None


class StrictTable:
    """One TOML table being read."""

    error: ClassVar[type[Exception]] = ValueError

    def __init__(self, data: Any, path: str, source: str) -> None:
        if not isinstance(data, Mapping):
            raise self.error(f"{source}: {path or 'top level'}: expected a table, got {type(data).__name__}")
        self.data = data
        self.path = path
        self.source = source
        self.used: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> Exception:
        return self.error(f"{self.source}: {self.where(key)}: {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise self.fail(key, "is required")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(key, f"expected {names}, got {value!r}")
        return value

    def eui(self, key: str, *, required: bool = False) -> int | None:
        text = self.get(key, str, required=required)
        if text is None:
            return None
        try:
            return parse_eui64(text)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    def number(self, key: str, bits: int) -> int | None:
        """An int, or a hex string (``"1A62"``, ``"0x1A62"``, ``"00-DB-…"``)."""
        value = self.get(key, (int, str))
        if value is None:
            return None
        if isinstance(value, str):
            text = value.strip().lower().removeprefix("0x").replace("-", "").replace(":", "")
            try:
                value = int(text, 16)
            except ValueError:
                raise self.fail(key, f"{value!r} is not a hexadecimal number") from None
        if not 0 <= value < 1 << bits:
            raise self.fail(key, f"{value:#x} does not fit {bits} bits")
        return value

    def hex_bytes(self, key: str) -> bytes | None:
        text = self.get(key, str)
        if text is None:
            return None
        try:
            return bytes.fromhex(text.replace("-", "").replace(":", "").replace(" ", ""))
        except ValueError:
            raise self.fail(key, "not hexadecimal") from None

    def eui_keys(self) -> list[tuple[str, int]]:
        """Every key of this table read as an EUI-64 (``{ "00-DB-…" = … }`` tables), in order."""
        out = []
        for key in self.data:
            try:
                out.append((key, parse_eui64(key)))
            except ValueError as exc:
                raise self.fail(key, str(exc)) from None
        return out

    def overrides(self, cls: type, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """Every key of this table as a field override of dataclass ``cls``.

        Each value is checked against the field's annotation (``int``, ``float``, ``bool``,
        ``str``, an :class:`enum.Enum` by value, or ``X | None`` of those), so a wrong type is an
        error naming the key here, not a ``TypeError`` deep inside the engine later. Keys in
        ``skip`` are left to the caller.
        """
        hints = typing.get_type_hints(cls)
        names = sorted(f.name for f in dataclasses.fields(cls) if f.init)
        changes: dict[str, Any] = {}
        for key in self.data:
            if key in skip:
                continue
            if key not in names:
                raise self.fail(key, f"unknown setting (known: {', '.join(names)})")
            changes[key] = self.typed(key, hints[key])
        return changes

    def typed(self, key: str, hint: Any) -> Any:
        """The value of ``key`` checked against the type annotation ``hint``."""
        self.used.add(key)
        value = self.data[key]
        kinds = [k for k in _union_arms(hint) if k is not type(None)]
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, enum.Enum):
                try:
                    return kind(value)
                except ValueError:
                    known = ", ".join(repr(m.value) for m in kind)
                    raise self.fail(key, f"{value!r} is not one of {known}") from None
        simple = tuple(k for k in kinds if k in (int, float, bool, str))
        if not simple:
            raise self.fail(key, "cannot be set from a file")
        if float in simple and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, simple) and not (isinstance(value, bool) and bool not in simple):
            return value
        raise self.fail(key, f"expected {' or '.join(k.__name__ for k in simple)}, got {value!r}")

    def table(self, key: str, *, required: bool = False) -> Self:
        return type(self)(self.get(key, dict, {}, required=required), self.where(key), self.source)

    def tables(self, key: str) -> list[Self]:
        items = self.get(key, list, [])
        return [type(self)(item, f"{self.where(key)}[{i}]", self.source) for i, item in enumerate(items)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(
                f"{self.source}: {self.path or 'top level'}: unknown key(s) {', '.join(unknown)}"
                f" (known: {', '.join(sorted(self.used))})"
            )


def _union_arms(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)
