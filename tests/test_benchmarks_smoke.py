"""The benchmark still runs end to end (tiny sizes) and reports what it should.

Only the shape of the results is checked (which rows, which keys), never a timing:
speed is what the benchmark reports, not what the tests assert.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCENARIOS = {
    "round",
    "client",
    "origins",
    "build",
    "threads",
    "stampede",
    "fleet",
    "rotation",
    "recovery",
    "throughput",
}
CLIENTS = {"requests", "httpx", "httpx-async", "httpx2", "httpx2-async"}
#: The peers come with the bench extra (`pip install -e '.[bench]'`), not with the test
#: extra: without them their rows say why they did not run, and nothing else is checked.
PEERS = {
    library: importlib.util.find_spec(module) is not None
    for library, module in (("requests-auth", "requests_auth"), ("httpx-auth", "httpx_auth"))
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-png", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, json.loads((out / "results.json").read_text())


def _rows(results: dict[str, Any], scenario: str) -> dict[str, dict[str, Any]]:
    rows: list[dict[str, Any]] = results["scenarios"][scenario]
    found = {}
    for row in rows:
        if not PEERS.get(row.get("library", ""), True):
            assert "error" in row, row  # a peer that is not installed says so
            continue
        assert "error" not in row, row
        found[row["contender"]] = row
    return found


@pytest.mark.timeout(900)  # a hang bound: the quick run takes about 14 s on a busy 2-core box
def test_quick_benchmark_runs_every_scenario(quick_run: tuple[str, dict[str, Any]]) -> None:
    stdout, results = quick_run
    assert results["scenario_errors"] == {}
    assert set(results["scenarios"]) == SCENARIOS
    assert stdout.startswith("Run ")  # the machine line
    assert "**Whole round per call, cached token**" in stdout
    # The old request-leg-only figure is labelled as a part, never as the cost of a call.
    assert "Per-call overhead" not in stdout
    # Our library: one token request per stampede, and it recovers from a revocation.
    for row in results["scenarios"]["stampede"]:
        if row["library"] == "delivery_auth" and "not_available" not in row:
            assert row["token_requests"] == 1, row
            assert row["errors"] == 0, row
    for row in results["scenarios"]["recovery"]:
        if row["library"] == "delivery_auth":
            assert row["recovered"] is True, row


@pytest.mark.timeout(900)
def test_whole_round_rows_for_every_client(quick_run: tuple[str, dict[str, Any]]) -> None:
    rows = _rows(quick_run[1], "round")
    for client in CLIENTS:
        floor, refresh = rows[f"floor [{client}]"], rows[f"floor + refresh [{client}]"]
        ours = rows[f"delivery_auth [{client}]"]
        assert floor["leg_ratio"] == floor["ok_ratio"] == 1.0
        assert refresh["rejected_ratio"] == 1.0
        for key in ("leg_ns", "leg_ratio", "ok_ns", "ok_ratio", "rejected_ns", "rejected_ratio"):
            assert ours[key] > 0, (client, key)
        assert ours["on_401"] == "fresh token, one resend"
    peers = ["authlib [requests]"]
    peers += [name for name in ("requests-auth [requests]", "httpx-auth [httpx]") if name in rows]
    for name in peers:
        assert rows[name]["ok_ratio"] > 0
        assert rows[name]["rejected_ns"] is None  # it returns the 401: nothing to compare
        assert rows[name]["on_401"] == "returns the 401"
    assert rows["authlib [httpx2-async]"]["ok_ratio"] > 0


@pytest.mark.timeout(900)
def test_client_origins_build_threads_rows(quick_run: tuple[str, dict[str, Any]]) -> None:
    results = quick_run[1]
    calls = _rows(results, "client")
    for client in CLIENTS:
        assert calls[f"floor [{client}]"]["call_ratio"] == 1.0
        assert calls[f"delivery_auth [{client}]"]["call_ns"] > 0
        assert "auth_share" in calls[f"delivery_auth [{client}]"]
    counts = results["settings"]["origin_counts"]
    origins = results["scenarios"]["origins"]
    for client in ("requests", "httpx"):
        ours = {r["origins"]: r for r in origins if r["contender"] == f"delivery_auth [{client}]"}
        assert set(ours) == set(counts)
        assert all(r["ok_ratio"] > 0 for r in ours.values())
    build = {
        row["library"]: row
        for row in results["scenarios"]["build"]
        if PEERS.get(row["library"], True)
    }
    installed = {library for library, present in PEERS.items() if present}
    assert set(build) == {"floor", "delivery_auth", "authlib", *installed}
    assert build["authlib"]["build_vs_authlib"] == 1.0
    assert build["delivery_auth"]["build_ns"] > 0
    assert build["delivery_auth"]["retained_bytes"] > 0
    (threads,) = results["scenarios"]["threads"]
    assert "error" not in threads, threads
    assert threads["refreshed"] == threads["objects"] == results["settings"]["thread_objects"]
    assert threads["token_requests"] == 2 * threads["objects"]
    for key in ("extra_threads_after_refreshes", "extra_threads_peak", "extra_threads_after_close"):
        assert isinstance(threads[key], int)
    (fleet,) = results["scenarios"]["fleet"]
    assert (fleet["token_requests"], fleet["ok"]) == (1, fleet["processes"])
