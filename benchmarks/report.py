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


def _library(row: dict[str, Any]) -> str:
    return str(row.get("library", row.get("contender", "?")))


def _x(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}x"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    out: list[str] = []
    info = results["machine"]
    out.append(
        f"Run {info['date']} on {info['cpus']} CPUs ({info['cpu_model']}), "
        f"Python {info['python']}; settings: {results['mode']}."
    )
    scen = results["scenarios"]
    if "per_call" in scen:
        rows = []
        for r in scen["per_call"]:
            label = _library(r) + (" (floor)" if r.get("floor") else "")
            label += " (info)" if r.get("extra") else ""
            rows.append([r["client"], label, r.get("error") or _x(r.get("ratio"))])
        out += [
            "",
            "**1. Per-call overhead, cached token** (auth step only; median of "
            "repeats; lower is better)",
            "",
            _table(["client", "library", "x floor"], rows),
        ]
    if "stampede" in scen:
        rows = []
        for r in scen["stampede"]:
            if "not_available" in r:
                rows.append([r["client"], _library(r), r["callers"], "not available", "-", ""])
                continue
            if "error" in r:
                rows.append([r["client"], _library(r), r.get("callers", ""), "-", "-", r["error"]])
                continue
            notes = list(r.get("error_kinds", []))
            if "max_loop_stall_ms" in r:
                notes.append(f"longest event-loop stall {r['max_loop_stall_ms']:.0f} ms")
            notes += r.get("notes", [])
            rows.append(
                [
                    r["client"],
                    _library(r),
                    r["callers"],
                    str(r["token_requests"]),
                    str(r["errors"]),
                    "; ".join(notes),
                ]
            )
        out += [
            "",
            "**2. Cold-start stampede** (token requests made; 1 is right; token "
            f"endpoint latency {results['settings']['stampede_token_delay'] * 1000:g} ms)",
            "",
            _table(["client", "library", "callers", "token requests", "errors", "notes"], rows),
        ]
    if "rotation" in scen:
        rows = []
        for r in scen["rotation"]:
            label = _library(r) + (" (floor)" if r.get("floor") else "")
            if "error" in r:
                rows.append([r["client"], label, r["error"], "", "", "", "", "", ""])
                continue
            rows.append(
                [
                    r["client"],
                    label,
                    str(r["calls"]),
                    str(r["token_requests"]),
                    str(r["waited"]),
                    str(r["saw_401"]),
                    str(r["failed"]),
                    "1.00x" if r.get("floor") else _x(r.get("p50_ratio")),
                    "1.00x" if r.get("floor") else _x(r.get("p99_ratio")),
                ]
            )
        cfg = results["settings"]
        out += [
            "",
            f"**3. Token rotation under load** ({cfg['rotation_lifetime']} s tokens, "
            f"{cfg['rotation_threads']} threads, {cfg['rotation_seconds']:g} s; latency as "
            "a ratio to the floor's)",
            "",
            _table(
                [
                    "client",
                    "library",
                    "calls",
                    "token requests",
                    "calls that waited",
                    "calls that saw a 401",
                    "failed calls",
                    "p50 x floor",
                    "p99 x floor",
                ],
                rows,
            ),
        ]
    if "recovery" in scen:
        rows = []
        for r in scen["recovery"]:
            if "error" in r:
                rows.append([r["client"], _library(r), r["error"], "", ""])
                continue
            rows.append(
                [
                    r["client"],
                    _library(r),
                    _status(r.get("next_status")),
                    _status(r.get("second_status")),
                    str(r.get("token_requests")),
                ]
            )
        out += [
            "",
            "**4. Recovery after server-side revocation**",
            "",
            _table(["client", "library", "next call", "the call after", "token requests"], rows),
        ]
    if "throughput" in scen:
        rows = []
        for r in scen["throughput"]:
            label = _library(r) + (" (floor)" if r.get("floor") else "")
            label += " (info)" if r.get("extra") else ""
            cell = r.get("error") or _x(r.get("ratio"), 3)
            if r.get("ratio_iqr") and not r.get("floor"):
                cell += f" ({r['ratio_iqr'][0]:.2f}-{r['ratio_iqr'][1]:.2f})"
            rows.append([r["client"], label, cell])
        out += [
            "",
            "**5. End-to-end throughput**, one caller, keep-alive (higher is better; "
            "median of per-round ratios, interquartile range in brackets)",
            "",
            _table(["client", "library", "calls/s x floor"], rows),
        ]
    for name, error in results.get("scenario_errors", {}).items():
        out += ["", f"Scenario {name} crashed: `{error.strip().splitlines()[-1]}`"]
    return "\n".join(out) + "\n"


def _status(value: Any) -> str:
    if value == 200:
        return "200 (recovered)"
    if isinstance(value, int):
        return f"{value}"
    return str(value)


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
    panels = [k for k in ("per_call", "stampede", "throughput") if scen.get(k)]
    if not panels:
        return "no results to draw"
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), squeeze=False)
    colours = {"delivery_auth": "#2a7ab0", "floor": "#999999"}
    for ax, key in zip(axes[:, 0], panels, strict=True):
        if key == "per_call":
            rows = [r for r in scen[key] if r.get("ratio") is not None]
            values = [r["ratio"] for r in rows]
            ax.set_title("Per-call overhead, cached token (x floor, lower is better)")
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
        labels = [f"{_library(r)} [{r['client']}]" for r in rows]
        bar_colours = [colours.get(_library(r), "#d08c2a") for r in rows]
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
