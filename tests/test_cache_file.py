"""FileTokenCache: one JSON file shared by the processes of a machine.

Real processes (multiprocessing, forkserver), a real token endpoint and API on 127.0.0.1.
The process helpers here are also used by test_cache_redis.py.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet, MultiFernet
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer

from delivery_auth import BackoffPolicy, ClientCredentialsAuth, Token
from delivery_auth.cache import TokenCache, cache_key
from delivery_auth.cache.codec import CacheRecordError, TokenCodec
from delivery_auth.cache.file import FileTokenCache

# Fresh processes forked from a clean single-threaded server that imported the modules
# once (spawn would re-import everything per worker; fork would copy our threads).
PROCESSES = multiprocessing.get_context("forkserver")
PROCESSES.set_forkserver_preload(["test_cache_file"])
NO_RETRY = BackoffPolicy(attempts=1, base_delay=0.0, max_delay=0.0)
LOCK_GAVE_UP = "without getting it"
#: Waits on worker processes that only a hang reaches (on a busy machine, starting eight
#: workers takes tens of seconds).
HANG = 120.0


# -- processes ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one worker process saw (the token itself never leaves the worker)."""

    pid: int
    status: int
    token_fingerprint: str
    token_requests: int
    warnings: list[str]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _worker(
    token_url: str,
    api_url: str,
    make_cache: Callable[[], TokenCache],
    start: Any,
    results: Any,
    timeout: float,
) -> None:
    """One worker of a fleet: its own cache object and auth, one real API call."""
    records = _Records()
    logging.getLogger("delivery_auth").addHandler(records)
    auth = ClientCredentialsAuth(
        token_url, CLIENT_ID, CLIENT_SECRET, cache=make_cache(), timeout=timeout, backoff=NO_RETRY
    )
    start.wait(HANG)  # a Barrier (start together) or an Event (start on a signal)
    response = requests.get(api_url, auth=auth, timeout=30)
    header = response.request.headers.get("Authorization", "")
    results.put(
        Outcome(
            pid=os.getpid(),
            status=response.status_code,
            token_fingerprint=hashlib.sha256(header.encode()).hexdigest()[:12],
            token_requests=auth.token_requests,
            warnings=records.messages,
        )
    )
    auth.close()


class Fleet:
    """Worker processes that each make one API call through a shared cache."""

    def __init__(self, server: LoopbackServer, make_cache: Callable[[], TokenCache]) -> None:
        self.server = server
        self.make_cache = make_cache
        self.results: Any = PROCESSES.Queue()
        self.processes: list[multiprocessing.process.BaseProcess] = []
        # Synchronisation objects must outlive the workers that unpickle them.
        self.keep_alive: list[Any] = []

    def start(self, count: int, start: Any, timeout: float = 10.0) -> list[Any]:
        self.keep_alive.append(start)
        started = []
        for _ in range(count):
            process = PROCESSES.Process(
                target=_worker,
                args=(
                    self.server.token_url,
                    self.server.url(),
                    self.make_cache,
                    start,
                    self.results,
                    timeout,
                ),
                daemon=True,
            )
            process.start()
            started.append(process)
        self.processes.extend(started)
        return started

    def outcomes(self, count: int) -> list[Outcome]:
        got = [self.results.get(timeout=HANG) for _ in range(count)]
        for process in self.processes:
            process.join(timeout=30)
        return got

    def kill_all(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join(timeout=10)


@pytest.fixture
def fleet_factory(server: LoopbackServer) -> Iterator[Callable[[Callable[[], TokenCache]], Fleet]]:
    fleets: list[Fleet] = []

    def make(make_cache: Callable[[], TokenCache]) -> Fleet:
        fleet = Fleet(server, make_cache)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.kill_all()


def run_cold_start(fleet: Fleet, server: LoopbackServer, workers: int = 8) -> list[Outcome]:
    """``workers`` processes call the API at once on a cold cache."""
    barrier = PROCESSES.Barrier(workers)
    fleet.start(workers, barrier)
    outcomes = fleet.outcomes(workers)
    assert [o.status for o in outcomes] == [200] * workers
    assert len({o.token_fingerprint for o in outcomes}) == 1, "every worker uses one token"
    assert sum(o.token_requests for o in outcomes) == 1
    assert len(server.state.token_requests) == 1
    assert all(LOCK_GAVE_UP not in w for o in outcomes for w in o.warnings)
    return outcomes


def run_killed_holder(
    fleet: Fleet,
    server: LoopbackServer,
    waiter_attempts: Callable[[], int] | None = None,
    expire_lock: Callable[[], bool] | None = None,
) -> list[Outcome]:
    """A worker dies (SIGKILL) holding the cache lock mid-fetch; two others must go on.

    ``waiter_attempts`` counts lock attempts where the cache can tell (Redis): then the
    holder is killed only once both others are known to be waiting for its lock.
    ``expire_lock`` ends the dead holder's lease where it is one (Redis) and says whether
    there was one: the waiters' budgets then have all their time left for the one that
    fetches, instead of the second one waiting only a second longer than the lease.
    """
    gate = threading.Event()
    server.state.token_gate = gate
    go = PROCESSES.Event()
    waiters = fleet.start(2, go)  # warm, waiting for `go`
    holder_go = PROCESSES.Event()
    holder_go.set()
    (holder,) = fleet.start(1, holder_go)
    assert server.state.token_arrived.wait(HANG), "the holder never asked for a token"
    baseline = None if waiter_attempts is None else waiter_attempts()
    go.set()  # the others now ask for a token and find the lock taken
    if waiter_attempts is not None and baseline is not None:
        deadline = time.monotonic() + 30
        while waiter_attempts() < baseline + 2:  # polling another process: no event exists
            assert time.monotonic() < deadline, "the waiters never tried the lock"
            time.sleep(0.01)
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(timeout=10)
    assert holder.exitcode == -signal.SIGKILL
    if expire_lock is not None:
        assert expire_lock(), "the dead holder's lock"
    gate.set()
    outcomes = [fleet.results.get(timeout=HANG) for _ in waiters]
    for process in waiters:
        process.join(timeout=30)
    assert [o.status for o in outcomes] == [200, 200]
    assert len({o.token_fingerprint for o in outcomes}) == 1
    # The dead holder's request, then exactly one more for both survivors.
    assert len(server.state.token_requests) == 2
    assert all(LOCK_GAVE_UP not in w for o in outcomes for w in o.warnings), outcomes
    return outcomes


# -- helpers --------------------------------------------------------------------------


def key_for(server: LoopbackServer) -> str:
    return cache_key(server.token_url, CLIENT_ID, CLIENT_SECRET, None, {})


def make_auth(server: LoopbackServer, cache: TokenCache) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        server.token_url, CLIENT_ID, CLIENT_SECRET, cache=cache, backoff=NO_RETRY
    )


def call_api(server: LoopbackServer, auth: ClientCredentialsAuth) -> requests.Response:
    response = requests.get(server.url(), auth=auth, timeout=10)
    assert response.status_code == 200
    return response


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "delivery_auth" and r.levelno >= logging.WARNING
    ]


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "tokens.json"


# -- many processes -------------------------------------------------------------------


def test_eight_processes_on_a_cold_file_cache_make_one_token_request(
    server: LoopbackServer, cache_path: Path, fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(functools.partial(FileTokenCache, str(cache_path)))
    run_cold_start(fleet, server)
    assert CLIENT_SECRET not in cache_path.read_text()
    assert all(CLIENT_SECRET not in p.name for p in cache_path.parent.iterdir())


def test_a_killed_lock_holder_does_not_block_the_others(
    server: LoopbackServer, cache_path: Path, fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(functools.partial(FileTokenCache, str(cache_path)))
    run_killed_holder(fleet, server)


# -- one process ----------------------------------------------------------------------


def test_file_and_directory_are_private_and_writes_leave_no_temp_files(
    server: LoopbackServer, tmp_path: Path
) -> None:
    path = tmp_path / "new" / "dir" / "tokens.json"
    cache = FileTokenCache(path)
    with make_auth(server, cache) as auth:
        call_api(server, auth)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    document = json.loads(path.read_text())
    assert document["format"] == "delivery-auth token cache"
    assert list(document["tokens"]) == [key_for(server)]
    assert CLIENT_SECRET not in path.read_text()


def test_readers_never_see_a_half_written_file(cache_path: Path) -> None:
    writer_cache, reader_cache = FileTokenCache(cache_path), FileTokenCache(cache_path)
    writer_cache.set("k", Token("first", lifetime=600))
    stop = threading.Event()
    seen: list[str | None] = []

    def read() -> None:
        while not stop.is_set():
            token = reader_cache.get("k")
            seen.append(None if token is None else token.access_token)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(200):
            # Big records make a torn write likely if writes were not atomic.
            writer_cache.set("k", Token(f"tok-{i}-" + "x" * 20_000, lifetime=600))
    finally:
        stop.set()
        reader.join()
    assert seen, "the reader ran"
    assert None not in seen, "a reader saw a missing or torn file"


def test_a_stale_invalidation_does_not_delete_a_newer_token(
    server: LoopbackServer, cache_path: Path
) -> None:
    key = key_for(server)
    one, two = FileTokenCache(cache_path), FileTokenCache(cache_path)
    old, new = Token("old-token", lifetime=600), Token("new-token", lifetime=600)
    one.set(key, old)
    two.set(key, new)  # another process refreshed meanwhile
    assert one.delete_if(key, old) is False
    assert two.get(key) == new
    assert one.delete_if(key, new) is True
    assert two.get(key) is None


def test_two_workers_rejected_with_the_same_token_cause_one_new_token_request(
    server: LoopbackServer, cache_path: Path
) -> None:
    first = make_auth(server, FileTokenCache(cache_path))
    second = make_auth(server, FileTokenCache(cache_path))
    with first, second:
        call_api(server, first)
        call_api(server, second)
        assert len(server.state.token_requests) == 1
        server.state.revoke_all()  # both now hold a rejected token
        call_api(server, first)  # invalidates it, fetches and stores a new one
        call_api(server, second)  # its stale invalidation must not delete that one
    assert len(server.state.token_requests) == 2


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff garbage",
        b'{"format": "delivery-auth token cache", "version": 1, "tokens": {"a": ',  # truncated
        b'["a", "foreign", "json", "file"]',
        b'{"some": "other tool"}',
        b"[" * 100_000,  # deeply nested
    ],
    ids=["binary", "truncated", "foreign-list", "foreign-object", "nested"],
)
def test_a_corrupt_file_is_read_as_empty_with_one_warning_then_replaced(
    server: LoopbackServer,
    cache_path: Path,
    caplog: pytest.LogCaptureFixture,
    content: bytes,
) -> None:
    cache_path.parent.mkdir(parents=True)
    cache_path.write_bytes(content)
    cache = FileTokenCache(cache_path)
    with caplog.at_level(logging.DEBUG, logger="delivery_auth"):
        assert cache.get(key_for(server)) is None
        assert cache.get(key_for(server)) is None
        with make_auth(server, cache) as auth:
            call_api(server, auth)
    warnings = warnings_of(caplog)
    assert len(warnings) == 1, warnings
    assert str(cache_path) in warnings[0]
    assert "treating it as empty" in warnings[0]
    assert CLIENT_SECRET not in caplog.text
    assert json.loads(cache_path.read_text())["format"] == "delivery-auth token cache"
    assert FileTokenCache(cache_path).get(key_for(server)) is not None


def test_a_bad_entry_for_one_key_is_a_miss(cache_path: Path) -> None:
    cache = FileTokenCache(cache_path)
    cache.set("good", Token("fine", lifetime=600))
    document = json.loads(cache_path.read_text())
    document["tokens"]["bad"] = {"fp": "x", "v": 1, "token": {"access_token": 42}}
    cache_path.write_text(json.dumps(document))
    assert cache.get("bad") is None
    assert cache.get("good") == Token("fine")


def test_an_unwritable_path_falls_back_to_memory_with_one_warning(
    server: LoopbackServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = blocker / "tokens.json"  # its "directory" is a file: even root cannot write here
    with caplog.at_level(logging.WARNING, logger="delivery_auth"):
        cache = FileTokenCache(path)
        first, second = make_auth(server, cache), make_auth(server, cache)
        with first, second:
            call_api(server, first)
            call_api(server, second)
    assert len(server.state.token_requests) == 1, "the memory fallback is shared in-process"
    warnings = warnings_of(caplog)
    assert len(warnings) == 1, warnings
    assert "cannot be used" in warnings[0]
    assert "this process only" in warnings[0]
    assert "memory fallback" in repr(cache)


def test_a_path_that_is_a_directory_falls_back_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="delivery_auth"):
        cache = FileTokenCache(tmp_path)
        cache.set("k", Token("t", lifetime=60))
        assert cache.get("k") == Token("t")
        with cache.lock("k", 1.0):
            pass
    assert len(warnings_of(caplog)) == 1


def test_a_file_that_becomes_unwritable_at_run_time_falls_back_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "d"
    cache = FileTokenCache(directory / "tokens.json")
    cache.set("k", Token("before", lifetime=60))
    shutil.rmtree(directory)
    directory.write_text("now a file")  # the directory is gone: every write fails
    with caplog.at_level(logging.WARNING, logger="delivery_auth"):
        cache.set("k", Token("after", lifetime=60))
        assert cache.get("k") == Token("after")
        assert cache.delete_if("k", Token("after")) is True
    assert len(warnings_of(caplog)) == 1


def test_bad_arguments_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="path must be a file path"):
        FileTokenCache(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path must name a file"):
        FileTokenCache("")
    with pytest.raises(ValueError, match="not a valid Fernet key") as raised:
        FileTokenCache(tmp_path / "t.json", encryption_key="my-password")
    assert "my-password" not in str(raised.value)
    with pytest.raises(TypeError, match="encryption_key must be"):
        FileTokenCache(tmp_path / "t.json", encryption_key=42)  # type: ignore[arg-type]


# -- encryption -----------------------------------------------------------------------


def test_encrypted_tokens_are_unreadable_without_the_key(
    server: LoopbackServer, cache_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = Fernet.generate_key()
    key_id = key_for(server)
    with make_auth(server, FileTokenCache(cache_path, encryption_key=key)) as auth:
        call_api(server, auth)
        access_token = auth.get_token().access_token
    text = cache_path.read_text()
    assert access_token not in text
    assert CLIENT_SECRET not in text
    assert FileTokenCache(cache_path, encryption_key=key.decode()).get(key_id) == Token(
        access_token
    )

    with caplog.at_level(logging.WARNING, logger="delivery_auth"):
        no_key = FileTokenCache(cache_path)
        assert no_key.get(key_id) is None
        assert no_key.get(key_id) is None
        wrong_key = FileTokenCache(cache_path, encryption_key=Fernet.generate_key())
        assert wrong_key.get(key_id) is None
    warnings = warnings_of(caplog)
    assert len(warnings) == 2, warnings
    assert "pass the same encryption_key" in warnings[0]
    assert "cannot be decrypted with this encryption_key" in warnings[1]
    assert access_token not in caplog.text

    # A worker with the wrong key still works: it fetches its own token and stores it.
    with (
        caplog.at_level(logging.WARNING, logger="delivery_auth"),
        make_auth(server, wrong_key) as other,
    ):
        call_api(server, other)
    assert len(server.state.token_requests) == 2


def test_a_plain_token_is_not_trusted_by_a_cache_with_a_key(
    cache_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    FileTokenCache(cache_path).set("k", Token("planted", lifetime=60))
    with caplog.at_level(logging.WARNING, logger="delivery_auth"):
        assert FileTokenCache(cache_path, encryption_key=Fernet.generate_key()).get("k") is None
    assert "not encrypted" in caplog.text


# -- timing across processes ----------------------------------------------------------


def _store(path: Path, key: str, token: Token, issued_at: float) -> None:
    record = TokenCodec().seal(token)
    record["token"]["issued_at"] = issued_at
    document = {
        "format": "delivery-auth token cache",
        "version": 1,
        "tokens": {key: {"fp": "f", **record}},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


def test_token_age_comes_from_the_wall_clock_of_the_writer(cache_path: Path) -> None:
    _store(cache_path, "k", Token("t", lifetime=600), issued_at=time.time() - 100)
    token = FileTokenCache(cache_path).get("k")
    assert token is not None
    assert token.expires_at is not None
    remaining = token.expires_at - time.monotonic()
    assert 490 < remaining <= 500


def test_a_token_from_the_future_is_not_immortal(cache_path: Path) -> None:
    # The writer's clock was an hour ahead (or ours jumped back): the age counts as zero.
    _store(cache_path, "k", Token("t", lifetime=600), issued_at=time.time() + 3600)
    token = FileTokenCache(cache_path).get("k")
    assert token is not None
    assert token.expires_at is not None
    assert token.expires_at - time.monotonic() <= 600


def test_an_expired_token_is_a_miss_and_is_pruned_at_the_next_write(cache_path: Path) -> None:
    _store(cache_path, "old", Token("t", lifetime=600), issued_at=time.time() - 601)
    cache = FileTokenCache(cache_path)
    assert cache.get("old") is None
    cache.set("new", Token("u", lifetime=600, refresh_token="r", scope="s", extra={"x": [1]}))
    tokens = json.loads(cache_path.read_text())["tokens"]
    assert list(tokens) == ["new"]
    token = cache.get("new")
    assert token is not None
    # Without a key the file holds the access token only: no refresh token, no extras.
    assert (token.refresh_token, token.scope, dict(token.extra)) == (None, "s", {})
    assert "r" not in json.loads(cache_path.read_text())["tokens"]["new"]["token"].values()


def test_an_encrypted_cache_keeps_the_extras_but_never_a_refresh_token(cache_path: Path) -> None:
    from cryptography.fernet import Fernet

    cache = FileTokenCache(cache_path, encryption_key=Fernet.generate_key())
    cache.set("k", Token("u", lifetime=600, refresh_token="r", extra={"x": [1]}))
    token = cache.get("k")
    assert token is not None
    assert (token.refresh_token, dict(token.extra)) == (None, {"x": [1]})


def test_a_token_without_lifetime_round_trips(cache_path: Path) -> None:
    cache = FileTokenCache(cache_path)
    cache.set("k", Token("forever", token_type="MAC"))
    token = cache.get("k")
    assert token is not None
    assert (token.lifetime, token.token_type) == (None, "MAC")


def test_reset_after_fork_keeps_the_cache_usable(cache_path: Path) -> None:
    cache = FileTokenCache(cache_path)
    cache.reset_after_fork()
    cache.set("k", Token("t", lifetime=60))
    assert cache.get("k") == Token("t")
    assert repr(cache).startswith("FileTokenCache(path=")


# -- edge cases -----------------------------------------------------------------------


def test_a_lock_that_is_not_freed_in_time_is_given_up_with_a_warning(
    cache_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = FileTokenCache(cache_path)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with cache.lock("k", 60.0):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        with caplog.at_level(logging.WARNING, logger="delivery_auth"), cache.lock("k", 0.0) as got:
            assert got is None  # waited timeout + 1 s, then went on without it
    finally:
        release.set()
        holder.join()
    assert "without getting it" in caplog.text


def test_a_lock_file_that_cannot_be_created_falls_back_to_memory(
    cache_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = FileTokenCache(cache_path)
    Path(f"{cache_path}.k.lock").mkdir()  # the lock file's name is taken by a directory
    with caplog.at_level(logging.WARNING, logger="delivery_auth"):
        with cache.lock("k", 1.0):
            cache.set("k", Token("t", lifetime=60))
        assert cache.get("k") == Token("t")
    assert "this process only" in caplog.text


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"format": "delivery-auth token cache", "version": 2, "tokens": {}}, "unknown version"),
        ({"format": "delivery-auth token cache", "version": 1, "tokens": []}, "not a delivery"),
    ],
)
def test_a_file_of_another_version_or_shape_is_ignored(
    cache_path: Path, caplog: pytest.LogCaptureFixture, document: object, problem: str
) -> None:
    cache_path.parent.mkdir(parents=True)
    cache_path.write_text(json.dumps(document))
    with caplog.at_level(logging.WARNING, logger="delivery_auth"):
        assert FileTokenCache(cache_path).get("k") is None
    assert problem in caplog.text


def test_a_huge_file_is_not_read_into_memory(
    cache_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_path.parent.mkdir(parents=True)
    with open(cache_path, "wb") as file:
        file.truncate(8 * 1024 * 1024)
    with caplog.at_level(logging.WARNING, logger="delivery_auth"):
        assert FileTokenCache(cache_path).get("k") is None
    assert "far too big" in caplog.text


GOOD_BODY = {"access_token": "a", "token_type": "Bearer", "lifetime": 60.0, "issued_at": 1.0}


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (None, "not a delivery-auth token record"),
        ({"v": 1, "token": "text"}, "not a delivery-auth token record"),
        ({"v": 1, "token": {**GOOD_BODY, "access_token": "a\nb"}}, "invalid access_token"),
        ({"v": 1, "token": {**GOOD_BODY, "token_type": ""}}, "invalid token_type"),
        ({"v": 1, "token": {**GOOD_BODY, "lifetime": -5}}, "invalid lifetime"),
        ({"v": 1, "token": {**GOOD_BODY, "lifetime": "60"}}, "invalid lifetime"),
        ({"v": 1, "token": {**GOOD_BODY, "issued_at": None}}, "invalid issued_at"),
        ({"v": 1, "token": {**GOOD_BODY, "issued_at": float("nan")}}, "invalid issued_at"),
        ({"v": 1, "token": {**GOOD_BODY, "scope": 3}}, "invalid scope"),
        ({"v": 1, "token": {**GOOD_BODY, "extra": [1]}}, "invalid extra"),
        ({"v": 1, "fernet": "gAAAA-not-really"}, "pass the same encryption_key"),
    ],
)
def test_the_codec_names_what_is_wrong_with_a_record(record: object, problem: str) -> None:
    with pytest.raises(CacheRecordError, match=problem):
        TokenCodec().unseal(record)


def test_the_codec_accepts_a_multifernet_for_key_rotation() -> None:
    old, new = Fernet(Fernet.generate_key()), Fernet(Fernet.generate_key())
    written = TokenCodec(old).seal(Token("t", lifetime=60, extra={"bad": object(), "ok": 1}))
    rotated = TokenCodec(MultiFernet([new, old]))
    token = rotated.unseal(written)
    assert token == Token("t")
    assert dict(token.extra) == {"ok": 1}  # what JSON cannot hold is not stored
    not_json = {"v": 1, "fernet": old.encrypt(b"not json").decode()}
    with pytest.raises(CacheRecordError, match="not valid JSON"):
        TokenCodec(old).unseal(not_json)
    with pytest.raises(CacheRecordError, match="not a delivery-auth token record"):
        TokenCodec(old).unseal({"v": 1, "fernet": 12})
