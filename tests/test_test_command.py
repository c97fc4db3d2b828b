"""The test command itself: a run of a few files passes when its tests pass, and the
coverage gate of .ci/run fails when the coverage of the run is below the bound."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _gate() -> list[str]:
    """The coverage command of .ci/run, as CI runs it."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    (line,) = [x for x in lines if x.startswith("python -m coverage report")]
    return shlex.split(line)


def test_a_subset_run_exits_0_and_the_ci_gate_fails_on_its_coverage(tmp_path: Path) -> None:
    # The inner run writes its coverage data here, not over the data of this run.
    env = {**os.environ, "COVERAGE_FILE": str(tmp_path / ".coverage")}
    subset = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/test_flow.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang bound: about 3 s idle
        check=False,
    )
    assert subset.returncode == 0, subset.stdout[-2000:] + subset.stderr[-2000:]
    assert " passed" in subset.stdout
    assert (tmp_path / ".coverage").exists()

    gate = subprocess.run(
        [sys.executable if word == "python" else word for word in _gate()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # test_flow.py alone covers about a quarter of delivery_auth/: below the bound.
    assert gate.returncode == 2, gate.stdout + gate.stderr
    assert "less than fail-under=90" in gate.stdout + gate.stderr
