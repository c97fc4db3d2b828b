"""Shared-cache faults: corrupt and vanishing files, Redis down, killed mid-run, a killed
lock holder, and wall-clock jumps — every call still succeeds, token requests stay bounded,
and each outage is reported by one WARNING."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_server import RedisServer, find_redis_server, redis_server_fixture

from delivery_auth.cache.file import FileTokenCache
from delivery_auth.cache.redis import RedisTokenCache

from .conftest import MakeAuth
from .harness import CLIENT_CREDENTIALS, Rig, bounded, call_api

CORRUPTIONS = {
    "garbage": b"\x00\x9f<<not json>>",
    "truncated": b'{"format": "delivery-auth token cache", "version": 1, "tokens": {"k',
    "foreign-json": b'{"hello": "world"}',
    "json-array": b"[1, 2, 3]",
    "wrong-version": b'{"format": "delivery-auth token cache", "version": 99, "tokens": {}}',
    "deep-nesting": b"[" * 100_000,
    "empty": b"",
}


def warnings_of(caplog: pytest.LogCaptureFixture, fragment: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and fragment in r.getMessage()
    ]


def _valid_cache_file(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_bytes())
    assert document["format"] == "delivery-auth token cache"
    return dict(document["tokens"])


# -- the file cache ------------------------------------------------------------------------


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=list(CORRUPTIONS))
@pytest.mark.parametrize("provider", CLIENT_CREDENTIALS)
def test_corrupt_cache_file_is_read_as_empty_and_replaced(
    rig: Rig,
    make_auth: MakeAuth,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    provider: str,
    corruption: str,
) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(CORRUPTIONS[corruption])
    auth = make_auth(provider, cache=FileTokenCache(path))
    for _ in range(3):
        assert call_api("requests", auth, rig, provider).ok
    assert rig.count(provider, "token") == 1
    if corruption != "empty":
        assert len(warnings_of(caplog, "unusable")) == 1
    assert len(_valid_cache_file(path)) == 1, "replaced by a valid cache at the next write"
    # Another process (another auth object on the same file) reuses the stored token.
    other = make_auth(provider, cache=FileTokenCache(path))
    assert call_api("httpx-async", other, rig, provider).ok
    assert rig.count(provider, "token") == 1


@pytest.mark.parametrize("provider", CLIENT_CREDENTIALS)
def test_cache_file_corrupted_mid_run(
    rig: Rig, make_auth: MakeAuth, caplog: pytest.LogCaptureFixture, tmp_path: Path, provider: str
) -> None:
    path = tmp_path / "tokens.json"
    auth = make_auth(provider, cache=FileTokenCache(path))
    assert call_api("httpx", auth, rig, provider).ok
    path.write_bytes(b"\x00garbage")
    rig.emu.revoke_all(provider)  # the next call must refresh through the broken file
    outcome = call_api("httpx", auth, rig, provider)
    assert outcome.ok
    assert len(outcome.history) == 1
    assert rig.count(provider, "token") == 2
    assert len(warnings_of(caplog, "unusable")) == 1
    assert len(_valid_cache_file(path)) == 1


class _VanishingFile(FileTokenCache):
    """Deletes its own file right after reading it, once: the file disappears between
    the read and the write of a read-modify-write."""

    vanish = False

    def _read_entries(self) -> dict[str, Any]:
        entries = super()._read_entries()
        if self.vanish:
            self.vanish = False
            self.path.unlink(missing_ok=True)
        return entries


@pytest.mark.parametrize("provider", CLIENT_CREDENTIALS)
def test_cache_file_deleted_between_read_and_write(
    rig: Rig, make_auth: MakeAuth, tmp_path: Path, provider: str
) -> None:
    path = tmp_path / "tokens.json"
    cache = _VanishingFile(path)
    auth = make_auth(provider, cache=cache)
    assert call_api("requests", auth, rig, provider).ok
    assert path.exists()
    cache.vanish = True
    rig.emu.revoke_all(provider)
    outcome = call_api("requests", auth, rig, provider)
    assert outcome.ok
    assert outcome.history == [401 if provider != "tracker" else 200]
    assert rig.count(provider, "token") == 2
    assert len(_valid_cache_file(path)) == 1, "the write re-created the file"


@pytest.mark.parametrize("provider", CLIENT_CREDENTIALS)
def test_cache_directory_removed_mid_run_falls_back_to_memory(
    rig: Rig, make_auth: MakeAuth, caplog: pytest.LogCaptureFixture, tmp_path: Path, provider: str
) -> None:
    directory = tmp_path / "cache"
    path = directory / "tokens.json"
    auth = make_auth(provider, cache=FileTokenCache(path))
    assert call_api("requests", auth, rig, provider).ok
    for child in directory.iterdir():
        child.unlink()
    directory.rmdir()
    directory.write_bytes(b"now a file, so nothing can be created below it")
    rig.emu.revoke_all(provider)
    for _ in range(3):
        assert call_api("requests", auth, rig, provider).ok
    assert rig.count(provider, "token") == 2
    assert len(warnings_of(caplog, "cannot be used")) == 1


HOLDER = """
import os, signal, sys
{import_line}
cache = {make_cache}
held = cache.lock(sys.argv[1], float(sys.argv[2]))  # keep a reference: no release on GC
held.__enter__()
print("locked", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _kill_lock_holders(import_line: str, make_cache: str, keys: list[str], timeout: float) -> None:
    """Real processes take the refresh locks of ``keys`` and die (SIGKILL) holding them."""
    code = HOLDER.format(import_line=import_line, make_cache=make_cache)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, key, str(timeout)], stdout=subprocess.PIPE, text=True
        )
        for key in keys
    ]
    for process in processes:
        assert process.stdout is not None
        assert bounded(process.stdout.readline) == "locked\n"
        assert process.wait(timeout=20) == -signal.SIGKILL
        process.stdout.close()


@pytest.mark.parametrize("provider", CLIENT_CREDENTIALS)
def test_file_lock_holder_killed(
    rig: Rig, make_auth: MakeAuth, tmp_path: Path, provider: str
) -> None:
    path = tmp_path / "tokens.json"
    auth = make_auth(provider, cache=FileTokenCache(path))
    key = auth._engine._key
    _kill_lock_holders(
        "from delivery_auth.cache.file import FileTokenCache",
        f"FileTokenCache({str(path)!r})",
        [key],
        30.0,
    )
    assert Path(f"{path}.{key}.lock").exists(), "the dead holder's lock file"
    # The operating system released the dead holder's lock: no wait, one token request.
    assert call_api("requests", auth, rig, provider).ok
    assert rig.count(provider, "token") == 1


# -- Redis ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    yield from redis_server_fixture()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


def _redis_cache(url: str) -> RedisTokenCache:
    cache = RedisTokenCache(url=url)
    cache.probe_interval = 0.0  # try Redis again at every use: no waiting in tests
    return cache


@pytest.mark.parametrize("provider", CLIENT_CREDENTIALS)
def test_redis_down_before_start(
    rig: Rig,
    make_auth: MakeAuth,
    caplog: pytest.LogCaptureFixture,
    refused_url: str,
    provider: str,
) -> None:
    port = refused_url.split(":")[2].split("/")[0]
    auth = make_auth(provider, cache=_redis_cache(f"redis://127.0.0.1:{port}/0"))
    for client in ("requests", "httpx", "httpx-async"):
        assert call_api(client, auth, rig, provider).ok
    assert rig.count(provider, "token") == 1
    assert len(warnings_of(caplog, "unreachable")) == 1


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis server of this test alone: it gets killed."""
    if find_redis_server() is None:
        pytest.skip("no redis-server binary")
    with RedisServer() as server:
        yield server


@pytest.mark.parametrize("provider", CLIENT_CREDENTIALS)
def test_redis_killed_mid_run_and_back(
    rig: Rig,
    make_auth: MakeAuth,
    caplog: pytest.LogCaptureFixture,
    own_redis: RedisServer,
    provider: str,
) -> None:
    first = make_auth(provider, cache=_redis_cache(own_redis.url))
    assert call_api("requests", first, rig, provider).ok
    own_redis.stop()  # SIGKILL
    rig.emu.revoke_all(provider)  # force a refresh while Redis is gone
    for client in ("requests", "httpx", "httpx-async"):
        assert call_api(client, first, rig, provider).ok
    assert rig.count(provider, "token") == 2
    assert len(warnings_of(caplog, "unreachable")) == 1, "one WARNING per outage"
    own_redis.start()  # back, empty
    rig.emu.revoke_all(provider)
    assert call_api("requests", first, rig, provider).ok  # refreshes and stores in Redis
    assert rig.count(provider, "token") == 3
    second = make_auth(provider, cache=_redis_cache(own_redis.url))
    assert call_api("httpx", second, rig, provider).ok
    assert rig.count(provider, "token") == 3, "shared through Redis again"


def test_redis_lock_holder_killed(rig: Rig, make_auth: MakeAuth, redis_url: str) -> None:
    """One dead holder per provider at once (their locks expire together: one wait)."""
    auths = {p: make_auth(p, cache=_redis_cache(redis_url)) for p in CLIENT_CREDENTIALS}
    keys = [auth._engine._key for auth in auths.values()]
    _kill_lock_holders(
        "from delivery_auth.cache.redis import RedisTokenCache",
        f"RedisTokenCache(url={redis_url!r})",
        keys,
        60.0,  # the dead holders' locks outlive the checks below, however slow the machine
    )
    with redis.Redis.from_url(redis_url) as client:
        for auth in auths.values():
            lock = auth._engine._cache._lock_key(auth._engine._key)
            assert client.exists(lock) == 1, "a dead holder's lock"
            # Time passes: the dead holder's lease is about to run out.
            client.pexpire(lock, 100)
    for provider, auth in auths.items():
        assert call_api("requests", auth, rig, provider).ok
        assert rig.count(provider, "token") == 1


# -- wall-clock jumps ----------------------------------------------------------------------


@pytest.fixture
def wall_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """``jump(seconds)`` moves ``time.time`` (the wall clock) by ``seconds``, not monotonic."""
    real = time.time
    offset = [0.0]
    monkeypatch.setattr(time, "time", lambda: real() + offset[0])

    def jump(seconds: float) -> None:
        offset[0] += seconds

    return jump


YEAR = 365 * 24 * 3600.0


@pytest.mark.parametrize("provider", CLIENT_CREDENTIALS)
def test_wall_clock_jumps_do_not_expire_a_token_in_memory(
    rig: Rig, make_auth: MakeAuth, wall_clock: Callable[[float], None], provider: str
) -> None:
    auth = make_auth(provider)
    assert call_api("requests", auth, rig, provider).ok
    for jump in (10 * YEAR, -20 * YEAR, 10 * YEAR + 7200):
        wall_clock(jump)
        for client in ("requests", "httpx", "httpx-async"):
            assert call_api(client, auth, rig, provider).ok
    assert rig.count(provider, "token") == 1


def _file(tmp_path: Path) -> Any:
    return FileTokenCache(tmp_path / "tokens.json")


@pytest.mark.parametrize("shared", ["file", "redis"])
@pytest.mark.parametrize("provider", CLIENT_CREDENTIALS)
def test_wall_clock_jumps_with_a_shared_cache(
    rig: Rig,
    make_auth: MakeAuth,
    wall_clock: Callable[[float], None],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    provider: str,
    shared: str,
) -> None:
    def cache() -> Any:
        if shared == "file":
            return _file(tmp_path)
        return _redis_cache(request.getfixturevalue("redis_url"))

    writer = make_auth(provider, cache=cache())
    assert call_api("requests", writer, rig, provider).ok
    lifetime = writer.get_token().lifetime
    assert lifetime is not None
    # Forwards: another process sees a record older than its lifetime — a miss, one
    # more token request, never a failure.
    wall_clock(2 * YEAR)
    forward = make_auth(provider, cache=cache())
    assert call_api("httpx", forward, rig, provider).ok
    after_forward = rig.count(provider, "token")
    assert after_forward == 2
    # Backwards: a record "from the future" is used for its lifetime from now, not longer.
    wall_clock(-4 * YEAR)
    backward = make_auth(provider, cache=cache())
    assert call_api("httpx-async", backward, rig, provider).ok
    assert rig.count(provider, "token") == after_forward
    token = backward.get_token()
    assert token.expires_at is not None
    assert token.expires_at - time.monotonic() <= lifetime


def test_bringg_server_clock_far_off_is_one_warning(
    rig: Rig, make_auth: MakeAuth, caplog: pytest.LogCaptureFixture
) -> None:
    rig.emu.clock_offset = -3 * 3600.0
    auth = make_auth("bringg", refresh_ratio=0.0)  # refresh at every call: many tokens
    for _ in range(3):
        assert call_api("requests", auth, rig, "bringg").ok
        rig.emu.revoke_all("bringg")
    assert len(warnings_of(caplog, "clock")) == 1
