"""Strict reading of TOML files (scenarios, benches): a typo is an error naming the key.

Every layer that reads a file of the user's builds on :class:`StrictTable`: it remembers the key
path for messages (``requests[2].device``), type-checks each value and, in :meth:`done`, rejects
keys nobody asked for. Subclasses set :attr:`error` to their own exception type.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, ClassVar, Mapping

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

    def table(self, key: str, *, required: bool = False) -> "StrictTable":
        return type(self)(self.get(key, dict, {}, required=required), self.where(key), self.source)

    def tables(self, key: str) -> list["StrictTable"]:
        items = self.get(key, list, [])
        return [type(self)(item, f"{self.where(key)}[{i}]", self.source) for i, item in enumerate(items)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(
                f"{self.source}: {self.path or 'top level'}: unknown key(s) {', '.join(unknown)}"
                f" (known: {', '.join(sorted(self.used))})"
            )
