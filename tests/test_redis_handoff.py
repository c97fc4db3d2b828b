"""The hand-off from the process that fetched a token to those waiting for it, on a real
redis-server: a waiter is told when the token is stored (or the lock let go) instead of
polling the lock, and still takes over from a holder that died.

Nothing here measures time. A waiter that polled would be caught by what it sends: the
waiters here look at the lock by themselves only after 600 s (``lock_recheck_interval``),
so a test ends early only if the notification woke them, and the server's own command
counts (``INFO commandstats``) say what each waiter sent, connection set-up included.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import valkey
from loopback import LoopbackServer
from redis_server import RedisServer, redis_server_fixture
from test_cache_file import HANG, PROCESSES, Fleet, key_for, warnings_of

from delivery_auth import Token
from delivery_auth.cache.redis import RedisTokenCache
from delivery_auth.cache.redis_handoff import (
    GAVE_UP,
    STORED,
    TAKEN,
    Listener,
    listen,
    wait_for_holder,
)

CHANNEL = "delivery_auth:handoff:{k}"
LOCK = "delivery_auth:lock:{k}"
#: A waiter never looks at the lock by itself within a test's lifetime.
NEVER = 600.0
#: What a waiting process may send, connection set-up included (issue 12).
WAITER_BUDGET = 8


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    yield from redis_server_fixture()


@pytest.fixture
def admin(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.script_flush()
    yield client
    for user in client.acl_users():
        if user not in (b"default", "default"):
            client.acl_deluser(user)
    client.close()


def command_counts(admin: Any) -> dict[str, int]:
    """Calls per command name since the server started (``INFO commandstats``)."""
    return {
        name.removeprefix("cmdstat_"): int(stats["calls"])
        for name, stats in admin.info("commandstats").items()
        if isinstance(stats, dict)
    }


def sent_since(before: dict[str, int], admin: Any, *, own: dict[str, int]) -> dict[str, int]:
    """Commands run since ``before``, less ``own`` (the test's and the holder's): one more
    INFO (the snapshot ``before`` itself) and every PUBSUB (the test's NUMSUB) are the
    test's."""
    after = command_counts(admin)
    own = {**own, "info": own.get("info", 0) + 1}
    sent = {name: calls - before.get(name, 0) - own.get(name, 0) for name, calls in after.items()}
    return {name: calls for name, calls in sent.items() if calls and name != "pubsub"}


def wait_for_subscribers(nodes: list[Any], count: int, channel: str = CHANNEL) -> None:
    """Until ``count`` clients listen on ``channel`` (on any node of ``nodes``)."""
    deadline = time.monotonic() + HANG
    while sum(dict(node.pubsub_numsub(channel)).get(channel.encode(), 0) for node in nodes) < count:
        assert time.monotonic() < deadline, "the waiter never subscribed to the entry's channel"
        time.sleep(0.01)  # another client's progress: no event to wait on


class Waiter:
    """What the engine does on a miss, in a thread of its own with a cache of its own:
    read, then take the lock (or be told the token is there) and read again."""

    def __init__(self, cache: RedisTokenCache, timeout: float = NEVER) -> None:
        self.cache = cache
        self.held: object = "never ran"
        self.token: Token | None = None
        self.first_read: Token | None = None
        self._thread = threading.Thread(target=self._run, args=(timeout,), daemon=True)
        self._thread.start()

    def _run(self, timeout: float) -> None:
        self.first_read = self.cache.get("k")
        with self.cache.lock("k", timeout) as held:
            self.held = held
            self.token = self.cache.get("k")

    def join(self) -> None:
        self._thread.join(HANG * 5)
        assert not self._thread.is_alive(), "the waiter is still waiting"


def waiting_cache(url: str, recheck: float = NEVER) -> RedisTokenCache:
    cache = RedisTokenCache(url=url)
    cache.lock_recheck_interval = recheck
    return cache


def with_user(url: str, user: str, password: str) -> str:
    return url.replace("redis://", f"redis://{user}:{password}@", 1)


# -- one waiter -----------------------------------------------------------------------


@pytest.mark.parametrize("login", ["default user", "ACL user with a password"])
def test_a_waiter_is_woken_by_the_store_while_the_lock_is_still_held(
    redis_server: RedisServer, admin: redis.Redis, login: str
) -> None:
    url = redis_server.url
    if login != "default user":  # AUTH on every new connection: counted too
        admin.acl_setuser("worker", enabled=True, passwords=["+pw"], keys="*", commands=["+@all"])
        url = with_user(url, "worker", "pw")
    holder = RedisTokenCache(url=url)
    holder.get("warm-up")  # the holder's first contact, before the count
    before = command_counts(admin)
    with holder.lock("k", NEVER):  # a lease of 601 s
        waiter = Waiter(waiting_cache(url))
        wait_for_subscribers([admin], 1)
        holder.set("k", Token("fresh", lifetime=600))
        waiter.join()
        sent = sent_since(before, admin, own={"set": 2, "publish": 1})
        assert admin.exists(LOCK) == 1, "the holder still holds the lock"
    assert waiter.held is None, "told that the token is there: it reads it without the lock"
    assert waiter.token == Token("fresh")
    # First contact (INFO), the engine's read, a lock attempt, SUBSCRIBE, one more lock
    # attempt now that no notification can be missed, the read after the notification.
    expected = {"info": 1, "get": 2, "set": 2, "subscribe": 1}
    if login != "default user":
        expected["auth"] = 2  # the connection for commands and the one that listens
    assert sent == expected
    assert sum(sent.values()) <= WAITER_BUDGET


def test_a_holder_that_lets_go_without_storing_hands_the_lock_to_a_waiter(
    redis_server: RedisServer, admin: redis.Redis
) -> None:
    holder = RedisTokenCache(url=redis_server.url)
    with holder.lock("k", NEVER):  # its token request fails: it stores nothing
        waiter = Waiter(waiting_cache(redis_server.url))
        wait_for_subscribers([admin], 1)
        before = command_counts(admin)
    waiter.join()
    assert isinstance(waiter.held, str), "woken by the release, it took the lock"
    assert waiter.token is None, "and now fetches the token itself"
    sent = sent_since(before, admin, own={})
    assert sent.get("set") == 1, f"one lock attempt after the release: {sent}"


def test_a_holder_that_died_is_taken_over_when_its_lease_ends_without_polling(
    redis_server: RedisServer, admin: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # A holder of the same lock timeout (0.5 s: a lease of 1.5 s) died holding the lock:
    # nobody publishes anything. The waiter tries the lock when that lease must be over.
    admin.set(LOCK, "a-holder-that-died", px=1500)
    before = command_counts(admin)
    caplog.set_level(logging.WARNING, logger="delivery_auth")
    waiter = Waiter(waiting_cache(redis_server.url), timeout=0.5)
    waiter.join()
    assert isinstance(waiter.held, str), "it took the lock"
    assert warnings_of(caplog) == []
    sent = sent_since(before, admin, own={})
    # Lock attempts: the first, the one after SUBSCRIBE, the one at the end of the lease
    # (a poller every 50 ms would have sent about 30).
    assert sent.get("set") == 3, sent


def test_a_lease_cut_short_is_noticed_by_the_waiters_own_look(
    redis_server: RedisServer, admin: redis.Redis
) -> None:
    # The holder died and its lease ran out early (or an older version of this library
    # held it and let go without a word): the waiter looks now and then by itself.
    admin.set(LOCK, "a-holder-that-died", px=int(NEVER * 1000))
    waiter = Waiter(waiting_cache(redis_server.url, recheck=0.01), timeout=NEVER)
    wait_for_subscribers([admin], 1)
    admin.pexpire(LOCK, 1)
    waiter.join()
    assert isinstance(waiter.held, str)


def test_a_waiter_whose_listening_connection_fails_goes_on_polling(
    redis_server: RedisServer, admin: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    holder = RedisTokenCache(url=redis_server.url)
    caplog.set_level(logging.WARNING, logger="delivery_auth")
    with holder.lock("k", NEVER):
        waiter = Waiter(waiting_cache(redis_server.url))
        wait_for_subscribers([admin], 1)
        admin.client_kill_filter(_type="pubsub")  # the notification can no longer reach it
        holder.set("k", Token("fresh", lifetime=600))
    waiter.join()
    assert waiter.token == Token("fresh")
    assert warnings_of(caplog) == []


def test_without_the_right_to_use_channels_waiters_poll_and_say_what_to_grant(
    redis_server: RedisServer, admin: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    admin.execute_command(
        "ACL", "SETUSER", "nochannels", "on", ">pw", "~*", "+@all", "resetchannels"
    )
    url = with_user(redis_server.url, "nochannels", "pw")
    caplog.set_level(logging.WARNING, logger="delivery_auth")
    holder = RedisTokenCache(url=url)
    with holder.lock("k", NEVER):
        waiter = Waiter(waiting_cache(url))
        deadline = time.monotonic() + HANG
        while not any("refused SUBSCRIBE" in m for m in warnings_of(caplog)):
            assert time.monotonic() < deadline, "the waiter never tried to subscribe"
            time.sleep(0.01)  # another thread's progress: no event to wait on
        holder.set("k", Token("fresh", lifetime=600))
    assert admin.exists(LOCK) == 0, "the lock was released although PUBLISH was refused"
    waiter.join()
    assert waiter.token == Token("fresh")
    warnings = warnings_of(caplog)
    assert len(warnings) == 2, warnings  # one per cache: SUBSCRIBE, PUBLISH
    assert all("&delivery_auth:handoff:*" in m for m in warnings), warnings
    assert all("unreachable" not in m for m in warnings)
    with holder.lock("k", NEVER):  # refused once: not asked again
        holder.set("k", Token("fresher", lifetime=600))
    assert len(warnings_of(caplog)) == 2


@pytest.mark.parametrize("library", ["redis", "valkey"])
def test_a_waiter_on_a_client_passed_in_is_woken_the_same_way(
    redis_server: RedisServer, admin: redis.Redis, library: str
) -> None:
    module: Any = redis if library == "redis" else valkey
    holder = RedisTokenCache(module.Redis.from_url(redis_server.url))
    waiting = RedisTokenCache(module.Redis.from_url(redis_server.url, decode_responses=True))
    waiting.lock_recheck_interval = NEVER
    holder.get("warm-up")
    before = command_counts(admin)
    with holder.lock("k", NEVER):
        waiter = Waiter(waiting)
        wait_for_subscribers([admin], 1)
        holder.set("k", Token("fresh", lifetime=600))
        waiter.join()
        sent = sent_since(before, admin, own={"set": 2, "publish": 1})
    assert (waiter.held, waiter.token) == (None, Token("fresh"))
    assert (sent.get("set"), sent.get("subscribe"), sent.get("get")) == (2, 1, 2), sent


# -- a fleet of processes -------------------------------------------------------------


def test_a_fleet_waits_for_one_token_request_and_is_told_when_it_is_stored(
    server: LoopbackServer, redis_server: RedisServer, admin: redis.Redis
) -> None:
    workers = 6
    channel = f"delivery_auth:handoff:{{{key_for(server)}}}"
    fleet = Fleet(server, functools.partial(waiting_cache, redis_server.url))
    gate = threading.Event()
    server.state.token_gate = gate  # the token request waits until every waiter listens
    before = command_counts(admin)
    try:
        fleet.start(workers, PROCESSES.Barrier(workers))
        assert server.state.token_arrived.wait(HANG), "nobody asked for a token"
        wait_for_subscribers([admin], workers - 1, channel)
        gate.set()
        outcomes = fleet.outcomes(workers)
    finally:
        gate.set()
        fleet.kill_all()
    assert [o.status for o in outcomes] == [200] * workers
    assert sum(o.token_requests for o in outcomes) == 1
    assert len(server.state.token_requests) == 1
    assert [w for o in outcomes for w in o.warnings] == []
    sent = sent_since(before, admin, own={})
    # The one that fetched: INFO, GET, SET (lock), GET, SET (token), PUBLISH, and its
    # release, a script (EVALSHA; the first on this server fails and loads it) whose GET,
    # DEL and PUBLISH count too.
    holder = {"info": 1, "get": 3, "set": 2, "publish": 2, "del": 1}
    waiters = {
        name: calls - holder.get(name, 0)
        for name, calls in sent.items()
        if name not in ("evalsha", "script") and calls != holder.get(name)
    }
    assert waiters == {
        "info": workers - 1,
        "get": 2 * (workers - 1),
        "set": 2 * (workers - 1),
        "subscribe": workers - 1,
    }
    assert sum(waiters.values()) <= WAITER_BUDGET * (workers - 1)


# -- the waiting rules, without a server (narrow unit tests) --------------------------


class ScriptedPubSub:
    """Hands out the given messages (or raises the given errors) one per get_message; then
    nothing (``silence``: as after a timeout), or a failure of the test."""

    def __init__(self, *script: object, silence: bool = False) -> None:
        self.script = list(script)
        self.silence = silence
        self.closed = False

    def get_message(self, timeout: float = 0.0) -> object:
        if not self.script:
            assert self.silence, "waited for a message that never comes"
            return None
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


class Attempts:
    """A lock that is taken until attempt number ``free_at`` (1-based)."""

    def __init__(self, free_at: int) -> None:
        self.free_at = free_at
        self.count = 0

    def __call__(self) -> bool:
        self.count += 1
        return self.count >= self.free_at


def message(data: object, kind: str = "message") -> dict[str, object]:
    return {"type": kind, "pattern": None, "channel": CHANNEL, "data": data}


def wait(listener: Listener | None, attempt: Attempts, **bounds: float) -> str:
    far = time.monotonic() + 3600  # no timer fires within a unit test
    return wait_for_holder(
        listener,
        attempt,
        lease_end=bounds.get("lease_end", far),
        deadline=bounds.get("deadline", far),
        recheck=bounds.get("recheck", 3600.0),
        poll=0.0,
    )


def scripted(*script: object, silence: bool = False) -> tuple[Listener, ScriptedPubSub]:
    pubsub = ScriptedPubSub(*script, silence=silence)
    return Listener(pubsub, None, (redis.ConnectionError,)), pubsub


def test_a_store_wakes_the_waiter_without_another_look_at_the_lock() -> None:
    listener, _ = scripted(None, message(b"stored"))
    attempt = Attempts(free_at=99)
    assert wait(listener, attempt) == STORED
    assert attempt.count == 1  # the look right after subscribing


def test_a_release_and_a_new_subscription_each_make_the_waiter_look_at_the_lock() -> None:
    listener, _ = scripted(message("released"), message(1, kind="subscribe"), message("other"))
    attempt = Attempts(free_at=3)
    assert wait(listener, attempt) == TAKEN
    assert attempt.count == 3  # after subscribing, on "released", after subscribing again


def test_a_lost_listener_turns_the_waiter_into_a_poller() -> None:
    listener, pubsub = scripted(redis.ConnectionError("gone"))
    attempt = Attempts(free_at=5)
    assert wait(listener, attempt) == TAKEN
    assert attempt.count == 5
    assert pubsub.closed


def test_the_end_of_the_lease_and_the_deadline_make_the_waiter_look() -> None:
    # No message ever; the fake returns at once, so the loop spins until the time comes.
    listener, _ = scripted(silence=True)
    soon = time.monotonic() + 0.01
    assert wait(listener, Attempts(free_at=2), lease_end=soon) == TAKEN
    soon = time.monotonic() + 0.01
    assert wait(listener, Attempts(free_at=99), lease_end=soon, deadline=soon) == GAVE_UP


def test_a_subscription_never_confirmed_is_an_error() -> None:
    class Unconfirmed(ScriptedPubSub):
        def __init__(self, *args: object) -> None:
            super().__init__(silence=True)

        def subscribe(self, channel: str) -> None:
            pass  # the server never answers

    class Client(redis.Redis):
        def pubsub(self, **kwargs: Any) -> Any:
            return Unconfirmed()

    with pytest.raises(TimeoutError):
        listen(Client(), CHANNEL, cluster=False, errors=(), within=0.0)
