"""The README's and the docs' examples, run as a newcomer runs them: against
``delivery-auth emulate``.

- The emulator is started with the README's own ``delivery-auth emulate`` line, in a real
  process (``--port 0`` instead of 8080, so the test never fights over a port).
- The environment is what the README's "Run the examples offline" block sets, evaluated by
  bash (with the README's ``http://127.0.0.1:8080`` replaced by the emulator's URL).
- Every ```python block then runs in a fresh process, as ``python example.py`` (a block
  that defines pytest tests runs as ``python -m pytest``). A block whose first line is
  ``# Not runnable offline: <reason>`` is reported as skipped with that reason, and only
  the blocks listed in :data:`MARKED` may say so.
- Every ```python block of ``docs/**/*.md`` runs the same way, reported per file and
  section. Its environment is the README's, plus what the file's own "Run the examples
  offline" ```bash block sets (evaluated after the README's, in the same bash, so ``$E``
  and the README's variables are there): a page documents the variables its carrier
  needs without touching the README. Only the blocks in :data:`DOCS_MARKED` may be
  marked not runnable.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from delivery_auth.emulator import CREDENTIALS, TRACKER_LEGACY

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
OFFLINE = "Run the examples offline"
README_EMULATOR = "http://127.0.0.1:8080"
NOT_RUNNABLE = re.compile(r"# Not runnable offline: (?P<reason>\S.*)")
#: Sections whose blocks the README marks as not runnable offline, and how many.
MARKED = {"delivery-auth": 1, "Scaling out: one token for the whole fleet": 2}
#: The same for docs/: ``(file relative to docs/, section) -> count``.
DOCS_MARKED: dict[tuple[str, str], int] = {}
TIMEOUT = 120  # a bound for a hung example, not a speed expectation


@dataclass(frozen=True)
class Block:
    section: str
    language: str
    code: str
    line: int
    source: str = "README.md"  # the file, relative to the repository

    @property
    def marked(self) -> str | None:
        first = self.code.splitlines()[0] if self.code.strip() else ""
        match = NOT_RUNNABLE.fullmatch(first.strip())
        return match["reason"] if match else None


def read_blocks(path: Path = README) -> list[Block]:
    """Every fenced block of a Markdown file with its language and the heading above it."""
    source = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    blocks: list[Block] = []
    section, fence, code, start = "", None, [], 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if fence is None and line.startswith("```"):
            fence, code, start = line[3:].strip(), [], number
        elif fence is not None and line.startswith("```"):
            blocks.append(Block(section, fence, "\n".join(code) + "\n", start, source))
            fence = None
        elif fence is not None:
            code.append(line)
        elif line.startswith("#"):
            section = line.lstrip("#").strip()
    return blocks


BLOCKS = read_blocks()
PYTHON = [block for block in BLOCKS if block.language == "python"]
DOC_FILES = sorted(DOCS.rglob("*.md"))
DOC_BLOCKS = {path.relative_to(DOCS).as_posix(): read_blocks(path) for path in DOC_FILES}
DOC_PYTHON = [
    block for blocks in DOC_BLOCKS.values() for block in blocks if block.language == "python"
]


def _base_env(names_to_drop: set[str]) -> dict[str, str]:
    """This process's environment without the variables the README sets, plus the venv's
    scripts on PATH and a dead proxy for anything that is not loopback."""
    env = {k: v for k, v in os.environ.items() if k not in names_to_drop}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    for proxy in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        env[proxy] = "http://127.0.0.1:9"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    return env


def _offline_block(blocks: list[Block] = BLOCKS) -> Block | None:
    """The ```bash block of a file's "Run the examples offline" section (``None``: none)."""
    found = [b for b in blocks if b.section == OFFLINE and b.language == "bash"]
    assert len(found) <= 1, f"{blocks[0].source}: one bash block under '{OFFLINE}', not more"
    return found[0] if found else None


def _readme_offline_block() -> Block:
    block = _offline_block()
    assert block is not None, f"the README has a '{OFFLINE}' section with a bash block"
    return block


def _exported_names(code: str) -> set[str]:
    return set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", code))


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """The README's ``delivery-auth emulate`` line, run on a free port."""
    (line,) = [
        line
        for line in _readme_offline_block().code.splitlines()
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


def _environment_after(emulator_url: str, *blocks: Block) -> dict[str, str]:
    """The environment after pasting ``blocks`` (bash, in order) into one shell, with the
    emulator the fixture started instead of the README's ``delivery-auth emulate`` line."""
    script = "\n".join(
        line
        for block in blocks
        for line in block.code.splitlines()
        if not line.startswith("delivery-auth emulate")
    ).replace(README_EMULATOR, emulator_url)
    names = set().union(*(_exported_names(block.code) for block in blocks))
    result = subprocess.run(
        ["bash", "-c", f"set -eu\n{script}\nenv -0"],
        capture_output=True,
        env=_base_env(names),
        timeout=TIMEOUT,
        check=True,
    )
    pairs = (item.split(b"=", 1) for item in result.stdout.split(b"\0") if b"=" in item)
    return {name.decode(): value.decode() for name, value in pairs}


@pytest.fixture(scope="module")
def readme_env(emulator_url: str) -> dict[str, str]:
    """The environment after pasting the README's 'Run the examples offline' block."""
    return _environment_after(emulator_url, _readme_offline_block())


@pytest.fixture(scope="module")
def docs_env(emulator_url: str) -> Callable[[str], dict[str, str]]:
    """``docs_env(file)``: the README's environment plus the file's own offline block."""
    made: dict[str, dict[str, str]] = {}

    def env_for(name: str) -> dict[str, str]:
        if name not in made:
            own = _offline_block(DOC_BLOCKS[name])
            extra = () if own is None else (own,)
            made[name] = _environment_after(emulator_url, _readme_offline_block(), *extra)
        return made[name]

    return env_for


def _block_id(block: Block) -> str:
    return f"line{block.line}-{re.sub(r'[^a-z0-9]+', '-', block.section.lower()).strip('-')}"


def _run_example(block: Block, env: dict[str, str], tmp_path: Path) -> None:
    if block.marked:
        pytest.skip(f"{block.source} line {block.line} says: Not runnable offline: {block.marked}")
    if re.search(r"^def test_", block.code, re.M):
        (tmp_path / "test_example.py").write_text(block.code)
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"]
    else:
        (tmp_path / "example.py").write_text(block.code)
        argv = [sys.executable, "example.py"]
    result = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    where = f"{block.source} line {block.line} ({block.section})"
    assert result.returncode == 0, f"{where}:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, where


@pytest.mark.parametrize("block", PYTHON, ids=[_block_id(block) for block in PYTHON])
def test_python_example_runs_against_the_emulator(block, readme_env, tmp_path):
    _run_example(block, readme_env, tmp_path)


def _doc_id(block: Block) -> str:
    return f"{block.source.removeprefix('docs/')}-{_block_id(block)}"


@pytest.mark.parametrize("block", DOC_PYTHON, ids=[_doc_id(block) for block in DOC_PYTHON])
def test_docs_python_example_runs_against_the_emulator(block, docs_env, tmp_path):
    _run_example(block, docs_env(block.source.removeprefix("docs/")), tmp_path)


def test_only_the_listed_blocks_are_marked_not_runnable():
    marked: dict[str, int] = {}
    for block in PYTHON:
        if block.marked:
            marked[block.section] = marked.get(block.section, 0) + 1
    assert marked == MARKED
    docs_marked: dict[tuple[str, str], int] = {}
    for block in DOC_PYTHON:
        if block.marked:
            key = (block.source.removeprefix("docs/"), block.section)
            docs_marked[key] = docs_marked.get(key, 0) + 1
    assert docs_marked == DOCS_MARKED


def test_the_docs_collector_reads_every_file_its_sections_and_its_own_environment(
    tmp_path, emulator_url
):
    """The collector itself: a page under docs/ (here a throwaway one) yields its python
    blocks with their sections, and its offline block is evaluated after the README's."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Carrier\n\n## Usage\n\n```python\nprint('hi')\n```\n\n"
        f"## {OFFLINE}\n\n```bash\nexport PAGE_URL=$E/acme CLIENT_ID=overridden\n```\n",
        encoding="utf-8",
    )
    blocks = read_blocks(page)
    assert [(b.section, b.language, b.line) for b in blocks] == [
        ("Usage", "python", 5),
        (OFFLINE, "bash", 11),
    ]
    env = _environment_after(emulator_url, _readme_offline_block(), _offline_block(blocks))
    assert env["PAGE_URL"] == f"{emulator_url}/acme"
    assert env["CLIENT_ID"] == "overridden"  # the page's block runs after the README's
    assert env["DHL_ECOMMERCE_CLIENT_ID"]  # and the README's variables are there
    # every python fence of every file under docs/ is collected, in file order
    expected = [
        (path.relative_to(ROOT).as_posix(), number)
        for path in DOC_FILES
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if line.strip() == "```python"
    ]
    assert [(b.source, b.line) for b in DOC_PYTHON] == expected


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


def test_the_readme_or_the_docs_list_the_emulators_test_credentials():
    """Every test credential a user puts in a variable (the spec's ``EnvVar`` fields; a
    page's placeholders for credentials its carrier does not have are not among them)."""
    from delivery_auth.providers.spec import registry

    text = "\n".join(path.read_text(encoding="utf-8") for path in [README, *DOC_FILES])
    values = [v for n, s in registry().items() for v in s.environment_for(CREDENTIALS[n]).values()]
    legacy = TRACKER_LEGACY
    values += [legacy.client_id, legacy.client_secret, legacy.token, legacy.refresh_token]
    for value in values:
        if value:
            assert f"`{value}`" in text, value


def test_every_emulator_url_in_the_readme_and_docs_is_one_it_serves():
    import requests

    from delivery_auth.emulator import Emulator

    text = "\n".join(path.read_text("utf-8") for path in [README, *DOC_FILES])
    urls = set(re.findall(r"http://127\.0\.0\.1:8080[\w/.-]*", text))
    assert urls
    with Emulator() as emu:
        for url in sorted(urls):
            response = requests.get(url.replace(README_EMULATOR, emu.base_url), timeout=TIMEOUT)
            assert response.status_code != 404, f"{url}: {response.text[:200]}"
