"""RedisTokenCache on a real Redis Cluster: three redis-server primaries on 127.0.0.1, formed
once per test session (tests/redis_server.py), flushed before each test.

``url=`` may name any one node: the cache finds out that it is a cluster and follows it.
Token and lock keys of one entry share a hash slot, so the lock and the Lua scripts run on
the node that owns the token. A redirection (MOVED) is never reported as an outage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
import redis
import valkey.cluster
from loopback import LoopbackServer
from redis_server import ByTurn, RedisClusterOfThree, redis_cluster_fixture
from test_cache_file import (
    LOCK_GAVE_UP,
    PROCESSES,
    Fleet,
    call_api,
    key_for,
    make_auth,
    run_cold_start,
    warnings_of,
)
from test_redis_handoff import NEVER, WAITER_BUDGET, Waiter, wait_for_subscribers

from delivery_auth import Token
from delivery_auth.cache.redis import RedisTokenCache

UNREACHABLE = "unreachable"


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterOfThree]:
    yield from redis_cluster_fixture()


@pytest.fixture
def cluster(redis_cluster: RedisClusterOfThree) -> RedisClusterOfThree:
    redis_cluster.flush()
    return redis_cluster


@pytest.fixture
def cluster_client(cluster: RedisClusterOfThree) -> Iterator[redis.RedisCluster]:
    client = redis.RedisCluster.from_url(cluster.urls[0])
    yield client
    client.close()


@pytest.fixture
def fleet_factory(server: LoopbackServer) -> Iterator[Callable[..., Fleet]]:
    fleets: list[Fleet] = []

    def make(make_cache: Callable[[], object]) -> Fleet:
        fleet = Fleet(server, make_cache)  # type: ignore[arg-type]
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.kill_all()


def keys_by_node(cluster: RedisClusterOfThree) -> dict[int, list[bytes]]:
    """Every key stored, by the port of the node that holds it."""
    found: dict[int, list[bytes]] = {}
    for node in cluster.nodes:
        with redis.Redis(host="127.0.0.1", port=node.port) as client:
            keys = sorted(client.keys("*"))
        if keys:
            found[node.port] = keys
    return found


def test_processes_given_different_nodes_of_a_cold_cluster_make_one_token_request(
    server: LoopbackServer,
    cluster: RedisClusterOfThree,
    fleet_factory: Callable[..., Fleet],
) -> None:
    # Worker n gets url= of node n % 3: at least two of the three nodes do not own the
    # token's slot, so their workers meet a redirection at once.
    fleet = fleet_factory(ByTurn(RedisTokenCache, cluster.urls, PROCESSES.Value("i", 0)))
    outcomes = run_cold_start(fleet, server, workers=6)
    assert [w for o in outcomes for w in o.warnings] == [], "no outage, no lock given up"
    assert sum(len(keys) for keys in keys_by_node(cluster).values()) == 1, "one token stored"


@pytest.mark.parametrize("given", ["url", "RedisCluster"])
def test_token_and_lock_keys_share_one_slot_on_one_node(
    server: LoopbackServer,
    cluster: RedisClusterOfThree,
    cluster_client: redis.RedisCluster,
    given: str,
) -> None:
    if given == "url":
        cache = RedisTokenCache(url=cluster.urls[1])
    else:
        cache = RedisTokenCache(redis.RedisCluster.from_url(cluster.urls[1]))
    key = key_for(server)
    cache.set(key, Token("t", lifetime=600))
    with cache.lock(key, 5.0) as owner:
        assert isinstance(owner, str), "the cluster lock, not a per-process one"
        stored = keys_by_node(cluster)
    assert len(stored) == 1, f"token and lock on one node: {stored}"
    (keys,) = stored.values()
    assert keys == [
        f"delivery_auth:lock:{{{key}}}".encode(),
        f"delivery_auth:token:{{{key}}}".encode(),
    ]
    assert len({cluster_client.keyslot(k) for k in keys}) == 1
    assert cache.get(key) == Token("t")


def test_the_lock_excludes_holders_that_came_through_other_nodes(
    cluster: RedisClusterOfThree,
    cluster_client: redis.RedisCluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = (RedisTokenCache(url=url) for url in cluster.urls[:2])
    with first.lock("k", 5.0) as owner:
        assert isinstance(owner, str)
        assert cluster_client.get("delivery_auth:lock:{k}") == owner.encode()
        with caplog.at_level(logging.WARNING, logger="delivery_auth"):
            with second.lock("k", 0.0) as held:  # gives up after 2 s: the lock is taken
                assert held is None
        assert [m for m in warnings_of(caplog) if LOCK_GAVE_UP not in m] == []
        cluster_client.set("delivery_auth:lock:{k}", "another-worker")  # ours "expired"
    assert cluster_client.get("delivery_auth:lock:{k}") == b"another-worker", "owner only"
    cluster_client.delete("delivery_auth:lock:{k}")
    with second.lock("k", 5.0) as owner:
        assert isinstance(owner, str)
    assert cluster_client.exists("delivery_auth:lock:{k}") == 0, "released"


def test_a_stale_invalidation_does_not_delete_a_newer_token(cluster: RedisClusterOfThree) -> None:
    one, two = RedisTokenCache(url=cluster.urls[0]), RedisTokenCache(url=cluster.urls[2])
    old, new = Token("old-token", lifetime=600), Token("new-token", lifetime=600)
    one.set("k", old)
    two.set("k", new)  # another worker refreshed meanwhile
    assert one.delete_if("k", old) is False  # the compare-and-delete script, on the owner
    assert two.get("k") == new
    assert one.delete_if("k", new) is True
    assert two.get("k") is None


def use_every_command(urls: list[str]) -> None:
    """Store, lock, read and invalidate a dozen entries (spread over the slots of all three
    nodes) through ``url=`` of each node."""
    keys = [f"entry-{n}" for n in range(12)]
    for url in urls:
        cache = RedisTokenCache(url=url)
        for key in keys:
            cache.set(key, Token(f"t-{key}", lifetime=60))
            with cache.lock(key, 1.0) as owner:
                assert isinstance(owner, str), "the cluster lock, not a per-process one"
            assert cache.get(key) == Token(f"t-{key}")
            assert cache.delete_if(key, Token(f"t-{key}")) is True
        assert "connected" in repr(cache)


def test_a_redirection_is_never_reported_as_an_outage(
    cluster: RedisClusterOfThree, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="delivery_auth")
    use_every_command(cluster.urls)
    assert len(keys_by_node(cluster)) == 0
    assert caplog.records == [], [r.getMessage() for r in caplog.records]


@pytest.fixture
def urls_without_info(cluster: RedisClusterOfThree) -> Iterator[list[str]]:
    """URLs of a user allowed every command but INFO, as some managed services do."""
    for node in cluster.nodes:
        with redis.Redis(host="127.0.0.1", port=node.port) as client:
            client.execute_command("ACL SETUSER", "noinfo", "on", ">pw", "~*", "+@all", "-info")
    yield [f"redis://noinfo:pw@127.0.0.1:{node.port}/0" for node in cluster.nodes]
    for node in cluster.nodes:
        with redis.Redis(host="127.0.0.1", port=node.port) as client:
            client.execute_command("ACL DELUSER", "noinfo")


def test_a_node_that_refuses_info_is_followed_from_its_first_redirection(
    cluster: RedisClusterOfThree, urls_without_info: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with redis.Redis.from_url(urls_without_info[0]) as client:
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.info("cluster")
    caplog.set_level(logging.INFO, logger="delivery_auth")
    use_every_command(urls_without_info)
    assert caplog.records == [], [r.getMessage() for r in caplog.records]


def test_a_plain_client_on_a_cluster_node_gets_an_error_that_says_what_to_pass(
    server: LoopbackServer, cluster: RedisClusterOfThree, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="delivery_auth")
    for url in cluster.urls:  # at least two nodes redirect the token's key
        auth = make_auth(server, RedisTokenCache(redis.Redis.from_url(url)))
        with auth:
            call_api(server, auth)  # the calls themselves keep working
            call_api(server, auth)
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 2, "once for each of the two caches on a node that redirects"
    assert all(UNREACHABLE not in m for m in messages), messages
    assert all("Redis Cluster" in m and "RedisCluster" in m and "url=" in m for m in messages)
    assert all(r.levelno == logging.ERROR for r in caplog.records if r.levelno >= logging.WARNING)


@pytest.mark.parametrize("library", ["redis", "valkey"])
def test_cluster_clients_passed_directly_share_one_token(
    server: LoopbackServer, cluster: RedisClusterOfThree, library: str
) -> None:
    def cluster_cache(url: str) -> RedisTokenCache:
        if library == "redis":
            return RedisTokenCache(redis.RedisCluster.from_url(url))
        return RedisTokenCache(valkey.cluster.ValkeyCluster.from_url(url))

    first = make_auth(server, cluster_cache(cluster.urls[0]))
    second = make_auth(server, cluster_cache(cluster.urls[2]))
    with first, second:
        call_api(server, first)
        call_api(server, second)
        assert len(server.state.token_requests) == 1
        server.state.revoke_all()
        call_api(server, first)  # invalidates the token, fetches and stores a new one
        call_api(server, second)  # its stale invalidation must not delete that one
    assert len(server.state.token_requests) == 2


@pytest.fixture
def own_cluster() -> Iterator[RedisClusterOfThree]:
    """A cluster of this test alone: it gets stopped."""
    yield from redis_cluster_fixture()


def test_a_cluster_that_goes_down_is_an_outage_whatever_the_client(
    server: LoopbackServer, own_cluster: RedisClusterOfThree, caplog: pytest.LogCaptureFixture
) -> None:
    url = own_cluster.urls[0]
    caches = [
        RedisTokenCache(url=url),
        RedisTokenCache(redis.RedisCluster.from_url(url)),
        RedisTokenCache(valkey.cluster.ValkeyCluster.from_url(url)),
    ]
    for cache in caches:
        cache.probe_interval = 0.0  # retry the cluster at every use: the test does not wait
    auths = [make_auth(server, cache) for cache in caches]
    for auth in auths:
        call_api(server, auth)
    assert len(server.state.token_requests) == 1
    own_cluster.stop()
    server.state.revoke_all()
    for auth in auths:  # rejected → invalidate, refetch, store: all without the cluster
        call_api(server, auth)
        call_api(server, auth)
        auth.close()
    assert len(server.state.token_requests) == 1 + len(auths), "one token per worker"
    outage = [m for m in warnings_of(caplog) if UNREACHABLE in m]
    assert len(outage) == len(caches), "one WARNING per worker and outage"


# -- the hand-off to waiting processes ------------------------------------------------


@pytest.mark.parametrize("given", ["url", "ValkeyCluster"])
def test_a_waiter_on_another_node_is_woken_by_the_store(
    cluster: RedisClusterOfThree, given: str
) -> None:
    """A PUBLISH reaches the subscribers on every node of a cluster (see redis_handoff)."""
    nodes = [redis.Redis(host="127.0.0.1", port=node.port) for node in cluster.nodes]
    holder = RedisTokenCache(url=cluster.urls[0])
    holder.get("warm-up")  # its first contact, before the count

    def counts() -> dict[str, int]:
        total: dict[str, int] = {}
        for node in nodes:
            for name, stats in node.info("commandstats").items():
                if isinstance(stats, dict):
                    key = name.removeprefix("cmdstat_")
                    total[key] = total.get(key, 0) + int(stats["calls"])
        return total

    before = counts()
    with holder.lock("k", NEVER):
        if given == "url":
            waiting = RedisTokenCache(url=cluster.urls[2])
        else:
            waiting = RedisTokenCache(valkey.cluster.ValkeyCluster.from_url(cluster.urls[2]))
        waiting.lock_recheck_interval = NEVER
        waiter = Waiter(waiting)
        wait_for_subscribers(nodes, 1, "delivery_auth:handoff:{k}")
        holder.set("k", Token("fresh", lifetime=600))
        waiter.join()
        after = counts()
    for node in nodes:
        node.close()
    assert (waiter.held, waiter.token) == (None, Token("fresh"))
    own = {"set": 2, "publish": 1, "info": len(nodes)}  # the holder's; the first INFO per node
    sent = {
        name: calls - before.get(name, 0) - own.get(name, 0)
        for name, calls in after.items()
        if name != "pubsub"
    }
    sent = {name: calls for name, calls in sent.items() if calls}
    # Ours: the engine's read, a lock attempt, SUBSCRIBE (on the node that owns the slot;
    # the holder published through another), one more attempt, the read after the
    # notification. Set-up: INFO at first contact, and the cluster client's own (CLUSTER
    # SLOTS, and COMMAND in redis-py).
    assert (sent.get("set"), sent.get("subscribe"), sent.get("get")) == (2, 1, 2), sent
    if given == "url":  # a client passed in sets up its connections its own way
        assert sum(sent.values()) <= WAITER_BUDGET, sent
