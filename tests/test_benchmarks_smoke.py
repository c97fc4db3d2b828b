"""The benchmark still runs end to end (tiny sizes) and reports what it should."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(900)  # a hang bound: about 6 s idle, 12 s under busy.py 4
def test_quick_benchmark_runs_every_scenario(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-png", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "**1. Per-call overhead" in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["scenario_errors"] == {}
    scenarios = results["scenarios"]
    assert set(scenarios) == {"per_call", "stampede", "rotation", "recovery", "throughput"}
    per_call = {row["contender"]: row for row in scenarios["per_call"]}
    assert per_call["floor [requests]"]["ratio"] == 1.0
    assert per_call["delivery_auth [httpx]"]["ratio"] > 0
    # Our library: one token request per stampede, and it recovers from a revocation.
    for row in scenarios["stampede"]:
        if row["library"] == "delivery_auth" and "not_available" not in row:
            assert row["token_requests"] == 1, row
            assert row["errors"] == 0, row
    for row in scenarios["recovery"]:
        if row["library"] == "delivery_auth":
            assert row["recovered"] is True, row
