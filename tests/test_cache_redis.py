"""RedisTokenCache against a real redis-server on 127.0.0.1 (started by tests/redis_server.py).

Real processes (multiprocessing) for single flight and a killed lock holder; a server that
is stopped and restarted on the same port for the outage behaviour, through redis-py and
valkey-py clients. A Redis Cluster is in test_redis_cluster.py.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import requests
import valkey
from cryptography.fernet import Fernet
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer
from redis_server import RedisServer, redis_server_fixture
from test_cache_file import (
    Fleet,
    call_api,
    key_for,
    make_auth,
    run_cold_start,
    run_killed_holder,
    warnings_of,
)

from delivery_auth import Token
from delivery_auth.cache.redis import RedisTokenCache

UNREACHABLE = "Redis token cache is unreachable"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    yield from redis_server_fixture()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def fleet_factory(server: LoopbackServer) -> Iterator[Callable[..., Fleet]]:
    fleets: list[Fleet] = []

    def make(make_cache: Callable[[], Any]) -> Fleet:
        fleet = Fleet(server, make_cache)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.kill_all()


def everything_stored(client: redis.Redis) -> list[bytes]:
    """Every key and every string value on the server."""
    seen: list[bytes] = []
    for key in client.scan_iter(match="*"):
        seen.append(key)
        if client.type(key) == b"string":
            seen.append(client.get(key) or b"")
    return seen


def set_calls(client: redis.Redis) -> int:
    """How many SET commands the server has run (lock attempts are SETs)."""
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_set", {}).get("calls", 0))


# -- many processes -------------------------------------------------------------------


def test_eight_processes_on_a_cold_redis_cache_make_one_token_request(
    server: LoopbackServer,
    redis_url: str,
    client: redis.Redis,
    fleet_factory: Callable[..., Fleet],
) -> None:
    fleet = fleet_factory(functools.partial(RedisTokenCache, url=redis_url))
    run_cold_start(fleet, server)
    stored = everything_stored(client)
    assert stored, "the token was stored in Redis"
    assert all(CLIENT_SECRET.encode() not in item for item in stored)
    assert all(CLIENT_ID.encode() not in item for item in stored)


def test_a_killed_lock_holder_delays_the_others_only_until_its_lock_expires(
    server: LoopbackServer,
    redis_url: str,
    client: redis.Redis,
    fleet_factory: Callable[..., Fleet],
) -> None:
    fleet = fleet_factory(functools.partial(RedisTokenCache, url=redis_url))
    lock = RedisTokenCache(client)._lock_key(key_for(server))
    run_killed_holder(
        fleet,
        server,
        waiter_attempts=lambda: set_calls(client),
        # The lease runs out now rather than timeout + 1 s later on the wall clock.
        expire_lock=lambda: client.delete(lock) == 1,
    )


# -- one process, real server ---------------------------------------------------------


def test_tokens_live_as_long_as_their_lifetime(client: redis.Redis) -> None:
    cache = RedisTokenCache(client)
    cache.set("k", Token("t", lifetime=600, scope="read", extra={"n": 1}))
    ttl_ms = client.pttl("delivery_auth:token:{k}")
    assert 590_000 < ttl_ms <= 600_000
    token = cache.get("k")
    assert token is not None
    assert (token.scope, dict(token.extra)) == ("read", {})  # no key: access token only
    cache.set("forever", Token("f"))  # no lifetime: kept until the API rejects it
    assert client.pttl("delivery_auth:token:{forever}") == -1
    cache.set("gone", Token("g", lifetime=10, obtained_at=0.0))  # long expired
    assert client.exists("delivery_auth:token:{gone}") == 0


def test_a_stale_invalidation_does_not_delete_a_newer_token(client: redis.Redis) -> None:
    one, two = RedisTokenCache(client), RedisTokenCache(client)
    old, new = Token("old-token", lifetime=600), Token("new-token", lifetime=600)
    one.set("k", old)
    two.set("k", new)  # another worker refreshed meanwhile
    assert one.delete_if("k", old) is False
    assert two.get("k") == new
    assert one.delete_if("k", new) is True
    assert two.get("k") is None


def test_two_workers_rejected_with_the_same_token_cause_one_new_token_request(
    server: LoopbackServer, redis_url: str
) -> None:
    first = make_auth(server, RedisTokenCache(url=redis_url))
    second = make_auth(server, RedisTokenCache(url=redis_url))
    with first, second:
        call_api(server, first)
        call_api(server, second)
        assert len(server.state.token_requests) == 1
        server.state.revoke_all()
        call_api(server, first)  # invalidates the token, fetches and stores a new one
        call_api(server, second)  # its stale invalidation must not delete that one
    assert len(server.state.token_requests) == 2


def test_the_lock_expires_and_is_released_only_by_its_owner(client: redis.Redis) -> None:
    cache = RedisTokenCache(client, prefix="app:")
    with cache.lock("k", 60.0) as owner:
        assert isinstance(owner, str)
        assert 0 < client.pttl("app:lock:{k}") <= 61_000  # timeout + 1 s
        client.set("app:lock:{k}", "another-worker")  # ours expired and was taken meanwhile
    assert client.get("app:lock:{k}") == b"another-worker"
    client.delete("app:lock:{k}")
    with cache.lock("k", 2.0):
        pass
    assert client.exists("app:lock:{k}") == 0


def test_a_waiter_gives_up_on_a_lock_that_never_frees(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    client.set("delivery_auth:lock:{k}", "a-foreign-holder-without-expiry")
    cache = RedisTokenCache(client)
    with caplog.at_level(logging.WARNING, logger="delivery_auth"), cache.lock("k", 0.0) as held:
        assert held is None
    assert "without getting it" in caplog.text


def test_a_client_with_decoded_responses_works(redis_url: str) -> None:
    cache = RedisTokenCache(redis.Redis.from_url(redis_url, decode_responses=True))
    cache.set("k", Token("t", lifetime=60))
    assert cache.get("k") == Token("t")
    assert cache.delete_if("k", Token("t")) is True
    with cache.lock("k", 1.0) as owner:
        assert owner is not None


@pytest.mark.parametrize(
    "value", [b"\xff\xfe", b"no-colon", b"fp:{not json", b'fp:{"v": 99}', b"fp:" + b"[" * 100_000]
)
def test_a_foreign_value_is_a_miss_with_one_warning(
    client: redis.Redis, caplog: pytest.LogCaptureFixture, value: bytes
) -> None:
    client.set("delivery_auth:token:{k}", value)
    cache = RedisTokenCache(client)
    with caplog.at_level(logging.WARNING, logger="delivery_auth"):
        assert cache.get("k") is None
        assert cache.get("k") is None
    warnings = warnings_of(caplog)
    assert len(warnings) == 1, warnings
    assert "treating it as a miss" in warnings[0]
    cache.set("k", Token("good", lifetime=60))
    assert cache.get("k") == Token("good")


def test_token_and_lock_keys_of_one_entry_share_a_hash_slot(client: redis.Redis) -> None:
    """In a Redis Cluster a key's slot comes from its {hash tag}: one per entry, whatever the
    prefix, unless the prefix holds a whole tag of its own (then the whole app is one slot)."""
    from redis.crc import key_slot

    for prefix, token_key, lock_key in [
        ("delivery_auth:", b"delivery_auth:token:{k}", b"delivery_auth:lock:{k}"),
        ("app}:", b"app}:token:{k}", b"app}:lock:{k}"),
        ("{app}:", b"{app}:token:{k}", b"{app}:lock:{k}"),
    ]:
        cache = RedisTokenCache(client, prefix=prefix)
        cache.set("k", Token("t", lifetime=60))
        with cache.lock("k", 1.0):
            assert sorted(client.keys("*")) == sorted([token_key, lock_key])
        assert key_slot(token_key) == key_slot(lock_key)
        client.flushall()
    for prefix in ["a{", "a{}:", "{:"]:  # a tag the key name would complete: refused
        with pytest.raises(ValueError, match="hash tag") as raised:
            RedisTokenCache(client, prefix=prefix)
        assert "'{app}:'" in str(raised.value)


def test_encrypted_tokens_are_unreadable_without_the_key(
    server: LoopbackServer, redis_url: str, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    key = Fernet.generate_key()
    with make_auth(server, RedisTokenCache(url=redis_url, encryption_key=key)) as auth:
        call_api(server, auth)
        access_token = auth.get_token().access_token
    stored = everything_stored(client)
    assert all(access_token.encode() not in item for item in stored)
    assert all(CLIENT_SECRET.encode() not in item for item in stored)
    key_id = key_for(server)
    assert RedisTokenCache(url=redis_url, encryption_key=key).get(key_id) == Token(access_token)
    with caplog.at_level(logging.WARNING, logger="delivery_auth"):
        assert RedisTokenCache(url=redis_url).get(key_id) is None
        wrong = RedisTokenCache(url=redis_url, encryption_key=Fernet.generate_key())
        assert wrong.get(key_id) is None
        assert wrong.get(key_id) is None
    warnings = warnings_of(caplog)
    assert len(warnings) == 2, warnings
    assert "pass the same encryption_key" in warnings[0]
    assert "cannot be decrypted" in warnings[1]
    assert access_token not in caplog.text
    # Compare-and-delete needs no key: it compares hashes.
    assert RedisTokenCache(url=redis_url).delete_if(key_id, Token(access_token)) is True


def test_bad_arguments_are_refused_without_echoing_the_url(client: redis.Redis) -> None:
    with pytest.raises(TypeError, match="not both"):
        RedisTokenCache(client, url="redis://localhost")
    with pytest.raises(TypeError, match="neither"):
        RedisTokenCache()
    with pytest.raises(ValueError, match="must be a Redis URL") as raised:
        RedisTokenCache(url="http://user:hunter2@example.com")
    assert "hunter2" not in str(raised.value)
    with pytest.raises(TypeError, match="prefix must be a str"):
        RedisTokenCache(client, prefix=None)  # type: ignore[arg-type]
    cache = RedisTokenCache(url="redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in repr(cache)


# -- outages --------------------------------------------------------------------------


@pytest.fixture
def flaky_redis() -> Iterator[RedisServer]:
    """A server of its own, to be stopped and restarted by the test."""
    yield from redis_server_fixture()


def test_requests_keep_working_while_redis_is_down_and_share_again_when_it_is_back(
    server: LoopbackServer, flaky_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    def worker_cache() -> RedisTokenCache:
        cache = RedisTokenCache(url=flaky_redis.url)
        cache.probe_interval = 0.0  # retry Redis at every use: the test does not wait
        return cache

    def unreachable_warnings() -> int:
        return sum(UNREACHABLE in message for message in warnings_of(caplog))

    caplog.set_level(logging.INFO, logger="delivery_auth")
    running_cache = worker_cache()
    running = make_auth(server, running_cache)
    call_api(server, running)
    assert len(server.state.token_requests) == 1

    flaky_redis.stop()
    call_api(server, running)  # its own copy of the token: no cache needed
    server.state.revoke_all()
    call_api(server, running)  # rejected → invalidate, refetch: all without Redis
    newcomer = make_auth(server, worker_cache())  # a worker started during the outage
    call_api(server, newcomer)
    call_api(server, newcomer)
    assert len(server.state.token_requests) == 3, "one token per worker during the outage"
    assert unreachable_warnings() == 2, "one WARNING per worker and outage"
    assert CLIENT_SECRET not in caplog.text

    flaky_redis.start()  # same port, empty
    caplog.clear()
    first_back, second_back = make_auth(server, worker_cache()), make_auth(server, worker_cache())
    call_api(server, first_back)
    call_api(server, second_back)
    assert len(server.state.token_requests) == 4, "shared again: one token for both"
    assert running_cache.get(key_for(server)) == second_back.get_token()
    assert "reachable again" in caplog.text
    assert unreachable_warnings() == 0

    flaky_redis.stop()  # a second outage warns again, once
    assert running_cache.get(key_for(server)) is None
    assert running_cache.get(key_for(server)) is None
    assert unreachable_warnings() == 1
    for auth in (running, newcomer, first_back, second_back):
        auth.close()


def test_during_an_outage_redis_is_retried_at_most_every_probe_interval(
    flaky_redis: RedisServer,
) -> None:
    cache = RedisTokenCache(url=flaky_redis.url)
    cache.probe_interval = 3600.0
    flaky_redis.stop()
    cache.set("k", Token("local", lifetime=60))  # fails over to this process
    flaky_redis.start()
    assert cache.get("k") == Token("local"), "still on the fallback until the next probe"
    with cache.lock("k", 1.0):
        pass  # a local lock, no Redis round trip
    assert cache.delete_if("k", Token("local")) is True
    assert "per-process fallback" in repr(cache)
    cache.probe_interval = 0.0
    cache.set("k", Token("shared", lifetime=60))
    assert RedisTokenCache(url=flaky_redis.url).get("k") == Token("shared")
    assert "connected" in repr(cache)


def _valkey_cache(url: str) -> RedisTokenCache:
    client = valkey.Valkey.from_url(url, socket_connect_timeout=2.0, socket_timeout=5.0)
    cache = RedisTokenCache(client)
    cache.probe_interval = 0.0  # retry the server at every use: the test does not wait
    return cache


def test_a_valkey_client_falls_back_while_the_server_is_down_and_shares_again_after(
    server: LoopbackServer, flaky_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="delivery_auth")
    running = make_auth(server, _valkey_cache(flaky_redis.url))
    call_api(server, running)
    flaky_redis.stop()
    server.state.revoke_all()
    call_api(server, running)  # rejected → invalidate, refetch, store: all without the server
    call_api(server, running)
    newcomer = make_auth(server, _valkey_cache(flaky_redis.url))  # started during the outage
    call_api(server, newcomer)
    assert len(server.state.token_requests) == 3, "one token per worker during the outage"
    outage = [m for m in warnings_of(caplog) if UNREACHABLE in m]
    assert len(outage) == 2, "one WARNING per worker and outage"
    assert "ConnectionError" in outage[0]

    flaky_redis.start()  # same port, empty
    caplog.clear()
    server.state.revoke_all()
    call_api(server, running)  # refreshes and stores the new token on the server
    assert "reachable again" in caplog.text
    later = make_auth(server, _valkey_cache(flaky_redis.url))
    call_api(server, later)
    assert len(server.state.token_requests) == 4, "shared again"
    assert warnings_of(caplog) == []
    for auth in (running, newcomer, later):
        auth.close()


def test_a_valkey_client_needs_no_redis_package(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` now fails
    cache = RedisTokenCache(valkey.Valkey.from_url(redis_url))
    cache.set("k", Token("t", lifetime=60))
    assert cache.get("k") == Token("t")
    with cache.lock("k", 1.0) as owner:
        assert owner is not None
    assert cache.delete_if("k", Token("t")) is True
    with pytest.raises(ImportError, match="pip install 'delivery-auth\\[redis\\]'"):
        RedisTokenCache(url=redis_url)


def test_the_errors_of_a_client_come_from_its_own_library() -> None:
    from delivery_auth.cache.redis_clients import library_errors

    class Wrapped(valkey.Valkey):  # a subclass made elsewhere, in a package of its own
        pass

    # cryptography has an ``exceptions`` module too, but it is no Redis client library.
    Wrapped.__module__ = "cryptography.wrapped"
    errors = library_errors(Wrapped)
    assert valkey.exceptions.ValkeyError in errors
    assert valkey.exceptions.ValkeyClusterException in errors  # not a ValkeyError
    assert OSError in errors
    assert all(not error.__module__.startswith("cryptography") for error in errors)


def test_redis_failing_while_a_lock_is_held_keeps_the_flow_going(
    flaky_redis: RedisServer,
) -> None:
    cache = RedisTokenCache(url=flaky_redis.url)
    with cache.lock("k", 1.0) as owner:
        assert owner is not None
        flaky_redis.stop()
        cache.set("k", Token("t", lifetime=60))  # goes to the fallback
    assert cache.get("k") == Token("t")
    cache.reset_after_fork()
    assert cache.get("k") == Token("t")


def test_async_callers_share_the_redis_token(server: LoopbackServer, redis_url: str) -> None:
    import asyncio

    import httpx

    # The engine runs cache calls for a non-memory cache in a worker thread.
    first = make_auth(server, RedisTokenCache(url=redis_url))
    second = make_auth(server, RedisTokenCache(url=redis_url))

    async def main() -> list[int]:
        async with httpx.AsyncClient(auth=first) as one, httpx.AsyncClient(auth=second) as two:
            calls = [client.get(server.url()) for client in (one, two) for _ in range(10)]
            responses = await asyncio.gather(*calls)
        return [r.status_code for r in responses]

    with first, second:
        assert asyncio.run(main()) == [200] * 20
    assert len(server.state.token_requests) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_an_auth_object_made_before_a_fork_shares_through_redis_in_the_child(
    server: LoopbackServer, redis_url: str
) -> None:
    parent = make_auth(server, RedisTokenCache(url=redis_url))  # like gunicorn --preload
    call_api(server, parent)
    server.state.revoke_all()
    pid = os.fork()
    if pid == 0:  # child: invalidate through Redis, refetch, store in Redis
        signal.alarm(20)
        try:
            ok = requests.get(server.url(), auth=parent, timeout=10).status_code == 200
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(server.state.token_requests) == 2
    with make_auth(server, RedisTokenCache(url=redis_url)) as later:
        call_api(server, later)  # the child's token, from Redis
    assert len(server.state.token_requests) == 2
    parent.close()
