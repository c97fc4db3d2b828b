"""Markdown tables, the JSON file and the PNG chart of one run."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from . import tables

LIBRARIES = (
    "delivery-auth",
    "requests",
    "httpx",
    "httpx2",
    "authlib",
    "requests-auth",
    "httpx-auth",
)


def machine() -> dict[str, Any]:
    model = ""
    try:
        lscpu = subprocess.run(
            ["lscpu"],  # noqa: S607 - optional machine info
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
    }


def machine_line(results: dict[str, Any]) -> str:
    """One line: when, on what, with which versions, at which sizes."""
    info = results["machine"]
    versions = ", ".join(
        f"{name} {version}" for name, version in info["versions"].items() if version
    )
    return (
        f"Run {info['date']} on {info['cpus']} CPUs ({info['cpu_model']}), "
        f"{info['platform']}, Python {info['python']}; {versions}; settings: "
        f"{results['mode']}."
    )


def markdown(results: dict[str, Any]) -> str:
    """The report: the machine line, then one numbered section per scenario."""
    out = [machine_line(results)]
    for number, (title, body) in enumerate(tables.sections(results), start=1):
        out += ["", f"{number}. {title}", "", body]
    for name, error in results.get("scenario_errors", {}).items():
        out += ["", f"Scenario {name} crashed: `{error.strip().splitlines()[-1]}`"]
    return "\n".join(out) + "\n"


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")


def write_png(results: dict[str, Any], path: Path) -> str | None:
    """Draw the overhead, stampede and throughput results; ``None`` or why it could not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]')"
    scen = results["scenarios"]
    panels = [k for k in ("round", "stampede", "throughput") if scen.get(k)]
    if not panels:
        return "no results to draw"
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), squeeze=False)
    colours = {"delivery_auth": "#2a7ab0", "floor": "#999999", "floor + refresh": "#bbbbbb"}
    for ax, key in zip(axes[:, 0], panels, strict=True):
        if key == "round":
            rows = [r for r in scen[key] if r.get("ok_ratio") is not None]
            values = [r["ok_ratio"] for r in rows]
            ax.set_title("Whole round with a 200, cached token (x floor, lower is better)")
            ax.axvline(1.0, color="#444444", linewidth=0.8)
        elif key == "stampede":
            rows = [r for r in scen[key] if isinstance(r.get("token_requests"), int)]
            values = [r["token_requests"] for r in rows]
            ax.set_title("Cold-start stampede: token requests (1 is right; log scale)")
            ax.set_xscale("log")
        else:
            rows = [r for r in scen[key] if r.get("ratio") is not None]
            values = [r["ratio"] for r in rows]
            ax.set_title("End-to-end throughput (x floor, higher is better)")
            ax.axvline(1.0, color="#444444", linewidth=0.8)
            if values:
                ax.set_xlim(max(0.0, min(values) - 0.1), max(values) + 0.05)
        labels = [f"{tables.library(r)} [{r['client']}]" for r in rows]
        bar_colours = [colours.get(tables.library(r), "#d08c2a") for r in rows]
        positions = list(range(len(rows)))[::-1]
        ax.barh(positions, values, color=bar_colours)
        ax.set_yticks(positions, labels, fontsize=8)
        for y, v in zip(positions, values, strict=True):
            ax.text(v, y, f" {v:g}", va="center", fontsize=7)
    info = results["machine"]
    fig.suptitle(
        f"delivery-auth benchmark, {info['date']}, {info['cpus']} CPUs, Python {info['python']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
