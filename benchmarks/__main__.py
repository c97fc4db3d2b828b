"""``python -m benchmarks``: run every scenario once and write the table, JSON and PNG.

Example::

    python -m benchmarks                       # full run, a few minutes on 2 cores
    python -m benchmarks --quick --out /tmp/b  # smoke run, a few seconds
    python -m benchmarks --only round client origins
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from . import report
from .scenarios import SCENARIOS, Settings, run_safely
from .server import ServerProcess

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for results")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(SCENARIOS),
        default=list(SCENARIOS),
        help="run only these scenarios",
    )
    parser.add_argument("--no-png", action="store_true", help="skip the chart")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    settings = Settings.quick() if args.quick else Settings()
    # The peers log or warn on every token request; keep the output to our table.
    logging.getLogger().setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    results: dict[str, Any] = {
        "machine": report.machine(),
        "mode": "quick" if args.quick else "full",
        "settings": settings.__dict__,
        "scenarios": {},
        "scenario_errors": {},
        "seconds": {},
    }
    with ServerProcess() as server:
        for name in args.only:
            started = time.perf_counter()
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows, error = run_safely(name, server, settings)
            results["scenarios"][name] = rows
            if error:
                results["scenario_errors"][name] = error
                print(error, file=sys.stderr)
            results["seconds"][name] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "results.json"
    png_path = args.out / "overview.png"
    table = report.markdown(results)
    if not args.no_png:
        why = report.write_png(results, png_path)
        results["png"] = None if why else png_path.name
        if why:
            print(f"no chart: {why}", file=sys.stderr)
    report.write_json(results, json_path)
    print(table)
    print(f"JSON: {json_path}" + ("" if args.no_png else f"\nPNG: {png_path}"))
    return 1 if results["scenario_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
