"""The fleet cold-start benchmark (benchmarks/processes.py) runs and counts what it should.

Its figures of time are the benchmark's business; here only counts are checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is beside the package, not installed with it
    sys.path.insert(0, str(ROOT))

from benchmarks.processes import fleet_cold_start  # noqa: E402


@pytest.mark.timeout(900)  # a hang bound: starting processes on a busy machine is slow
def test_a_small_fleet_makes_one_token_request_and_counts_the_commands_of_its_waiters() -> None:
    figures = fleet_cold_start(3, token_delay=0.05)
    assert "not_available" not in figures, figures
    assert (figures["token_requests"], figures["ok"], figures["errors"]) == (1, 3, 0), figures
    assert figures["redis_commands_fetching_process"] > 0
    assert 0 < figures["redis_commands_per_waiting_process"] <= 8, figures
    assert figures["last_served_after_stored_ms"] is not None


def test_a_fleet_of_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 processes"):
        fleet_cold_start(1)
