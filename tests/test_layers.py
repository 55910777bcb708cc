"""The package's layers: imports run downward only.

Lower layers (runtime, ota, han, gbcs, devices, hub, dcc) never import the composition layer
(scenario), the fleet, the bench (hil) or the command line; the HAN transport imports nothing
above itself; the EZSP emulator has no import cycle. Every import counts, also the ones inside
functions and under ``TYPE_CHECKING``. ``python tests/test_layers.py`` prints the package graph.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "emulator"
LOWER = ("runtime", "ota", "han", "gbcs", "devices", "hub", "dcc")
UPPER = ("scenario", "fleet", "hil", "cli")
NEUTRAL = ("eui64", "config", "errors")


def import_graph() -> dict[str, set[str]]:
    """Module -> the emulator modules it imports (``emulator.han.ezsp.ncp`` -> {...})."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        module = ".".join(parts)
        package = parts if is_package else parts[:-1]
        graph[module]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                continue
            graph[module].update(n for n in names if n == "emulator" or n.startswith("emulator."))
    return dict(graph)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Layer -> the other layers it imports."""
    out: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        out[layer(module)].update(layer(t) for t in targets if layer(t) != layer(module))
    return dict(out)


def test_lower_layers_never_import_composition_fleet_bench_or_cli() -> None:
    graph = import_graph()
    wrong = sorted(f"{m} imports {t}" for m, targets in graph.items() if layer(m) in LOWER
                   for t in targets if layer(t) in UPPER)
    assert not wrong, "upward imports:\n" + "\n".join(wrong)


def test_the_han_transport_imports_nothing_above_it() -> None:
    graph = import_graph()
    allowed = {"han", "runtime", *NEUTRAL}
    wrong = sorted(f"{m} imports {t}" for m, targets in graph.items() if layer(m) == "han"
                   for t in targets if layer(t) not in allowed)
    assert not wrong, "han/ must hold transport and NCP-emulator code only:\n" + "\n".join(wrong)


def _cycles(graph: dict[str, set[str]], prefix: str) -> list[list[str]]:
    nodes = {m for m in graph if m.startswith(prefix)}
    found: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if target not in nodes:
                continue
            if state.get(target) == 1:
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(nodes):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycle_in_the_ezsp_emulator() -> None:
    cycles = _cycles(import_graph(), "emulator.han.ezsp")
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_lazy_and_relative_imports() -> None:
    graph = import_graph()
    assert "emulator.han.ezsp.handlers" in graph["emulator.han.ezsp.ncp"]  # relative
    assert "emulator.scenario.ezsp_sim" in graph["emulator.scenario.ncp_sim"]  # inside a function


if __name__ == "__main__":
    packages = package_graph(import_graph())
    for name in sorted(packages):
        print(f"{name or 'emulator'} -> {', '.join(sorted(packages[name])) or '(nothing)'}")
    sys.exit(0)
