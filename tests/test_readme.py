"""The README's examples, run as a newcomer runs them: against ``delivery-auth emulate``.

- The emulator is started with the README's own ``delivery-auth emulate`` line, in a real
  process (``--port 0`` instead of 8080, so the test never fights over a port).
- The environment is what the README's "Run the examples offline" block sets, evaluated by
  bash (with the README's ``http://127.0.0.1:8080`` replaced by the emulator's URL).
- Every ```python block then runs in a fresh process, as ``python example.py`` (a block
  that defines pytest tests runs as ``python -m pytest``). A block whose first line is
  ``# Not runnable offline: <reason>`` is reported as skipped with that reason, and only
  the blocks listed in :data:`MARKED` may say so.
- The ```console block of the command line reference runs in bash, line by line as typed
  (``/tmp/`` becomes a temporary directory), and its output must be what the README shows.

Non-loopback traffic goes to a dead proxy, so an example that missed the emulator fails
instead of reaching a real service.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from delivery_auth.emulator import CREDENTIALS, TRACKER_LEGACY

README = Path(__file__).resolve().parent.parent / "README.md"
README_EMULATOR = "http://127.0.0.1:8080"
NOT_RUNNABLE = re.compile(r"# Not runnable offline: (?P<reason>\S.*)")
#: Sections whose blocks the README marks as not runnable offline, and how many.
MARKED = {"delivery-auth": 1, "Scaling out: one token for the whole fleet": 2}
TIMEOUT = 120  # a bound for a hung example, not a speed expectation


@dataclass(frozen=True)
class Block:
    section: str
    language: str
    code: str
    line: int

    @property
    def marked(self) -> str | None:
        first = self.code.splitlines()[0] if self.code.strip() else ""
        match = NOT_RUNNABLE.fullmatch(first.strip())
        return match["reason"] if match else None


def read_blocks() -> list[Block]:
    """Every fenced block of the README with its language and the heading above it."""
    blocks: list[Block] = []
    section, fence, code, start = "", None, [], 0
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if fence is None and line.startswith("```"):
            fence, code, start = line[3:].strip(), [], number
        elif fence is not None and line.startswith("```"):
            blocks.append(Block(section, fence, "\n".join(code) + "\n", start))
            fence = None
        elif fence is not None:
            code.append(line)
        elif line.startswith("#"):
            section = line.lstrip("#").strip()
    return blocks


BLOCKS = read_blocks()
PYTHON = [block for block in BLOCKS if block.language == "python"]


def _base_env(names_to_drop: set[str]) -> dict[str, str]:
    """This process's environment without the variables the README sets, plus the venv's
    scripts on PATH and a dead proxy for anything that is not loopback."""
    env = {k: v for k, v in os.environ.items() if k not in names_to_drop}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    for proxy in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        env[proxy] = "http://127.0.0.1:9"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    return env


def _offline_block() -> Block:
    heading = [i for i, b in enumerate(BLOCKS) if b.section == "Run the examples offline"]
    assert heading, "the README has a 'Run the examples offline' section with a bash block"
    block = BLOCKS[heading[0]]
    assert block.language == "bash"
    return block


def _exported_names(code: str) -> set[str]:
    return set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", code))


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """The README's ``delivery-auth emulate`` line, run on a free port."""
    (line,) = [
        line
        for line in _offline_block().code.splitlines()
        if line.startswith("delivery-auth emulate")
    ]
    argv = line.rstrip("& ").replace("--port 8080", "--port 0").split()
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_base_env(set()),
    )
    try:
        first = process.stdout.readline()  # printed once it listens
        assert first.startswith("delivery-auth emulator on http://127.0.0.1:"), first
        yield first.split(" on ")[1].strip()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if it hangs
            process.kill()
            process.communicate()


@pytest.fixture(scope="module")
def readme_env(emulator_url: str) -> dict[str, str]:
    """The environment after pasting the README's 'Run the examples offline' block."""
    code = _offline_block().code
    script = "\n".join(
        line for line in code.splitlines() if not line.startswith("delivery-auth emulate")
    ).replace(README_EMULATOR, emulator_url)
    result = subprocess.run(
        ["bash", "-c", f"set -eu\n{script}\nenv -0"],
        capture_output=True,
        env=_base_env(_exported_names(code)),
        timeout=TIMEOUT,
        check=True,
    )
    pairs = (item.split(b"=", 1) for item in result.stdout.split(b"\0") if b"=" in item)
    return {name.decode(): value.decode() for name, value in pairs}


def _block_id(block: Block) -> str:
    return f"line{block.line}-{re.sub(r'[^a-z0-9]+', '-', block.section.lower()).strip('-')}"


@pytest.mark.parametrize("block", PYTHON, ids=[_block_id(block) for block in PYTHON])
def test_python_example_runs_against_the_emulator(block, readme_env, tmp_path):
    if block.marked:
        pytest.skip(f"README line {block.line} says: Not runnable offline: {block.marked}")
    if re.search(r"^def test_", block.code, re.M):
        (tmp_path / "test_example.py").write_text(block.code)
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"]
    else:
        (tmp_path / "example.py").write_text(block.code)
        argv = [sys.executable, "example.py"]
    result = subprocess.run(
        argv, cwd=tmp_path, env=readme_env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, f"README line {block.line}:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr


def test_only_the_listed_blocks_are_marked_not_runnable():
    marked: dict[str, int] = {}
    for block in PYTHON:
        if block.marked:
            marked[block.section] = marked.get(block.section, 0) + 1
    assert marked == MARKED


def test_console_block_of_the_command_line_reference(emulator_url, tmp_path):
    (block,) = [b for b in BLOCKS if b.language == "console"]
    commands, expected = [], []
    for line in block.code.replace(README_EMULATOR, emulator_url).splitlines():
        line = line.replace("/tmp/", f"{tmp_path}/")
        if not line.startswith("$ "):
            expected.append(line)
        elif not line.startswith("$ delivery-auth emulate"):  # the fixture runs it
            commands.append(line[2:])
    result = subprocess.run(
        ["bash", "-c", "\n".join(commands)],
        capture_output=True,
        text=True,
        env=_base_env(_exported_names(block.code)),
        timeout=TIMEOUT,
    )
    assert result.stdout.splitlines() == expected, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("delivery-auth:")]
    assert len(errors) == 1, result.stderr  # the failing check at the end, in one line
    assert "DHL_ECOMMERCE_CLIENT_SECRET" in errors[0]


def test_the_readme_lists_the_emulators_test_credentials():
    docs = sorted((README.parent / "docs").glob("**/*.md"))  # a provider's own page may
    text = "\n".join(path.read_text(encoding="utf-8") for path in (README, *docs))
    for known in (*CREDENTIALS.values(), TRACKER_LEGACY):
        for value in (known.client_id, known.client_secret, known.token, known.refresh_token):
            if value:
                assert f"`{value}`" in text, value


def test_every_emulator_url_in_the_readme_is_one_it_serves():
    import requests

    from delivery_auth.emulator import Emulator

    urls = set(re.findall(r"http://127\.0\.0\.1:8080[\w/.-]*", README.read_text("utf-8")))
    assert urls
    with Emulator() as emu:
        for url in sorted(urls):
            response = requests.get(url.replace(README_EMULATOR, emu.base_url), timeout=TIMEOUT)
            assert response.status_code != 404, f"{url}: {response.text[:200]}"
