"""Per-frame block exchanges per CPU-second, pure Python against the compiled (mypyc) build, alternating.

    .venv/bin/python benchmarks/compiled.py [--rounds N] [--premises N] [--json]

Needs ``make compiled`` first (docs/fleet.md). Each round runs benchmarks/fleet.py's per-frame rate
(server + virtual HAN + client, every frame through the full machinery) once under ``.venv`` and once
under ``.venv-compiled``, each in a fresh process, alternating so that load on a shared machine hits
both alike; CPU time (not wall time) is what is compared. Prints the median of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILDS = {"pure": ROOT / ".venv" / "bin" / "python", "compiled": ROOT / ".venv-compiled" / "bin" / "python"}

_ONE_RUN = """
import json, sys
sys.path.insert(0, {bench!r})
import fleet
from emulator.compiled import compiled_modules
rate = fleet.exchanges_per_second(fleet.make_image(), premises={premises})
print(json.dumps(dict(rate, compiled=sum(compiled_modules().values()))))
"""


def one_run(python: Path, premises: int) -> dict:
    """One per-frame measurement in a fresh interpreter of ``python``'s venv."""
    code = _ONE_RUN.format(bench=str(ROOT / "benchmarks"), premises=premises)
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--premises", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    missing = [str(p) for p in BUILDS.values() if not p.exists()]
    if missing:
        print(f"compiled.py: {', '.join(missing)} missing: run `make compiled` first", file=sys.stderr)
        return 2
    rates: dict[str, list[float]] = {name: [] for name in BUILDS}
    for _ in range(args.rounds):
        for name, python in BUILDS.items():
            run = one_run(python, args.premises)
            if (run["compiled"] > 0) != (name == "compiled"):
                print(f"compiled.py: the {name} build loaded {run['compiled']} compiled modules", file=sys.stderr)
                return 2
            rates[name].append(run["exchanges_per_cpu_s"])
    medians = {name: statistics.median(values) for name, values in rates.items()}
    out = {"rounds": args.rounds, "premises": args.premises,
           "exchanges_per_cpu_s": {name: [round(v) for v in values] for name, values in rates.items()},
           "median": {name: round(v) for name, v in medians.items()},
           "speedup": round(medians["compiled"] / medians["pure"], 2)}
    if args.json:
        print(json.dumps(out))
        return 0
    for name in BUILDS:
        print(f"per-frame block exchanges per CPU-second, {name}: median {out['median'][name]:,} "
              f"(runs: {', '.join(f'{v:,}' for v in out['exchanges_per_cpu_s'][name])})")
    print(f"compiled / pure: {out['speedup']}x  (target >= 75,000 exchanges/s on one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
