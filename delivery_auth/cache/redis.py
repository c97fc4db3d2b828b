"""A token cache on Redis or Valkey (one server or a cluster), shared by every process of
every machine.

``url=`` needs the ``redis`` extra: ``pip install 'delivery-auth[redis]'``. A ready client
may come from redis-py or valkey-py.

Example::

    from delivery_auth import ClientCredentialsAuth
    from delivery_auth.cache import RedisTokenCache

    cache = RedisTokenCache(url="redis://cache.internal:6379/0")   # a server or any cluster node
    auth = ClientCredentialsAuth(url, "id", "secret", cache=cache)   # in every worker
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from ..token import Token
from .base import CacheObservers
from .codec import (
    CacheRecordError,
    EncryptionKey,
    TokenCodec,
    WarnOnce,
    remaining_lifetime,
    token_fingerprint,
)
from .memory import MemoryTokenCache
from .redis_clients import Connection, connect_url, hash_tag, is_redirection, library_errors
from .redis_handoff import GAVE_UP, RELEASED, STORED, TAKEN, Handoff

__all__ = ["RedisTokenCache"]

logger = logging.getLogger("delivery_auth")

T = TypeVar("T")

#: Added to the engine's lock timeout: the lock of a holder that died expires after
#: ``timeout + _LOCK_MARGIN`` seconds; a waiter waits one margin longer before giving up.
_LOCK_MARGIN = 1.0
_OUTAGE = "outage"


class _RedisDown(Exception):
    """Redis did not answer (or is in its back-off period): use the local fallback."""


class RedisTokenCache:
    """Keeps tokens on a Redis or Valkey server (or cluster) so that a whole fleet shares them.

    - Tokens are stored under ``<prefix>token:{<key>}`` with a TTL equal to their remaining
      lifetime, their lock under ``<prefix>lock:{<key>}``: ``{<key>}`` is a hash tag, so in
      a cluster both live in one slot and the lock and the scripts act on the node that
      holds the token. The key is :func:`~delivery_auth.cache.cache_key`, a hash: neither
      the client secret nor the client id is stored.
    - :meth:`lock` is a Redis lock (``SET NX PX`` with a random owner, released only by
      its owner): N workers on a cold cache make one token request. A worker that finds
      the lock taken subscribes to the entry's channel ``<prefix>handoff:{<key>}`` and
      sleeps until the holder publishes that it stored the token (then it reads the
      token without the lock) or let the lock go (then it tries the lock). It looks at
      the lock by itself only after :attr:`lock_recheck_interval` seconds (doubling)
      and when the holder's lease must have run out: the lock of a holder that died
      expires ``timeout + 1`` seconds after it was taken, and a waiter gives up (going
      on without it, with a WARNING) after ``timeout + 2`` seconds. Where the user may
      not use pub/sub (an ACL without channels), waiters poll every 50 ms instead (one
      WARNING says what to grant).
    - Invalidation is compare-and-delete on the server (a Lua script): a worker never
      deletes a newer token that another worker has just stored.
    - If Redis is unreachable or fails, requests keep working: tokens are fetched and
      kept per process (one WARNING per outage), and Redis is tried again at most every
      :attr:`probe_interval` seconds; when it answers, the fleet shares tokens again.
    - ``encryption_key`` (a Fernet key) encrypts tokens at rest: without the key a
      stored token is unreadable; with another key it is a miss (and one WARNING).
    - A Redis Cluster works through ``url=`` of any one node (at first contact the cache
      asks the node whether it is in a cluster, and then follows the cluster) or through a
      cluster client.

    Give either a ready ``client`` or a ``url``. A client may be redis-py's ``Redis`` or
    ``RedisCluster``, or valkey-py's ``Valkey`` or ``ValkeyCluster`` (any
    ``decode_responses``); its library's connection and timeout errors mean an outage. A
    plain (non-cluster) client connected to a cluster node cannot follow the cluster's
    redirections: that is logged as an ERROR saying what to pass, and tokens are kept per
    process. A client made from ``url`` gives up on an unreachable server after 2 s and
    retries a failed command once; a client you pass keeps its own settings (give it short
    timeouts and few retries: its retries delay the fallback).

    Example::

        cache = RedisTokenCache(url="rediss://:password@redis.internal:6380/0",
                                prefix="myapp:", encryption_key=os.environ["TOKEN_KEY"])
        auth = ClientCredentialsAuth(url, "id", "secret", cache=cache)
    """

    #: Seconds between attempts to reach Redis again during an outage.
    probe_interval: float = 1.0
    #: Seconds a worker waiting for another's token waits for its notification before
    #: it looks at the lock by itself (then twice as long, and so on): what a holder
    #: that publishes nothing (an older version of this library) costs the waiters.
    lock_recheck_interval: float = 1.0

    def __init__(
        self,
        client: Any = None,
        *,
        url: str | None = None,
        prefix: str = "delivery_auth:",
        encryption_key: EncryptionKey | None = None,
    ) -> None:
        if (client is None) == (url is None):
            raise TypeError(
                "RedisTokenCache needs either a redis client or url=..., not "
                + ("both" if client is not None else "neither")
            )
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        if "{" in prefix and hash_tag(prefix) is None:
            raise ValueError(
                "prefix opens a Redis Cluster hash tag ('{') that it does not close around "
                "some text, so the token and lock keys of one entry would land in different "
                "slots: use a prefix without '{', or with a whole tag such as '{app}:' (then "
                "all of its keys share one slot)"
            )
        self._url = url
        self._connection: Connection | None = None  # made at first contact from ``url``
        if url is not None:
            if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
                # Never echo the URL: it may carry a password.
                raise ValueError(
                    "url must be a Redis URL starting with redis://, rediss:// or unix://, "
                    "e.g. 'redis://localhost:6379/0'"
                )
            try:
                import redis as redis_py
            except ImportError:
                raise ImportError(
                    "RedisTokenCache(url=...) needs the redis package: "
                    "pip install 'delivery-auth[redis]' (or pass a ready client)"
                ) from None
            self._errors = library_errors(redis_py.Redis)
        else:
            self._connection = Connection(client)
            self._errors = library_errors(type(client))
        self.prefix = prefix
        self._codec = TokenCodec(encryption_key)
        self._memory = MemoryTokenCache()
        self._warnings = WarnOnce()
        #: the auth objects told of outages and recoveries (``observers.add(events)``)
        self.observers = CacheObservers(type(self).__name__)
        self._guard = threading.Lock()
        self._connecting = threading.Lock()
        self._down = False
        self._failed_at = 0.0
        self._told_redirected = False
        self._handoff = Handoff(self._errors, self._warnings, f"{prefix}handoff:")

    def __repr__(self) -> str:
        # Not the client or its URL: they may carry a password.
        state = "unreachable, per-process fallback" if self._down else "connected"
        return (
            f"RedisTokenCache(prefix={self.prefix!r}, encrypted={self._codec.encrypted}, "
            f"state={state!r})"
        )

    # -- the TokenCache protocol ----------------------------------------------------

    def get(self, key: str) -> Token | None:
        """The stored token for ``key``, or ``None`` (also for an unreadable one)."""
        try:
            raw = self._call(lambda redis: redis.client.get(self._token_key(key)))
        except _RedisDown:
            return self._memory.get(key)
        if raw is None:
            return None
        try:
            token = self._decode(raw)
        except CacheRecordError as exc:
            self._warnings.warn(
                f"entry:{key}",
                "Redis token cache entry %s: %s; treating it as a miss.",
                self._token_key(key),
                exc,
            )
            return None
        self._warnings.clear(f"entry:{key}")
        remaining = remaining_lifetime(token)
        if remaining is not None and remaining <= 0:
            return None
        return token

    def set(self, key: str, token: Token) -> None:
        """Store ``token`` under ``key`` with a TTL of its remaining lifetime."""
        remaining = remaining_lifetime(token)
        if remaining is not None and remaining <= 0:
            return  # already expired: nobody could use it
        record = json.dumps(self._codec.seal(token), separators=(",", ":"))
        value = f"{token_fingerprint(token)}:{record}".encode()
        ttl_ms = None if remaining is None else max(1, int(remaining * 1000))
        try:
            self._call(lambda redis: redis.client.set(self._token_key(key), value, px=ttl_ms))
        except _RedisDown:
            self._memory.set(key, token)
            return
        # Wakes the workers waiting for this token.
        self._handoff.publish(self._run, self._channel(key), STORED)

    def delete_if(self, key: str, token: Token) -> bool:
        """Delete the entry for ``key`` only if it still holds ``token`` (atomic, on the server)."""
        deleted_locally = self._memory.delete_if(key, token)
        expected = f"{token_fingerprint(token)}:"
        try:
            result = self._call(
                lambda redis: redis.compare_and_delete(keys=[self._token_key(key)], args=[expected])
            )
        except _RedisDown:
            return deleted_locally
        return bool(result)

    def lock(self, key: str, timeout: float) -> AbstractContextManager[object]:
        """A fleet-wide lock for refreshing ``key`` that expires ``timeout + 1`` s after it
        was taken; a per-process lock while Redis is unreachable.

        A caller that finds it taken waits for the holder's word; when the holder says it
        stored a token, the caller gets ``None`` (the lock not held) and reads the cache,
        as the engine does under the lock anyway."""
        return self._lock(key, timeout)

    def reset_after_fork(self) -> None:
        """Called by the engine in a forked child (redis-py reconnects by itself)."""
        self._guard = threading.Lock()
        self._connecting = threading.Lock()
        self._memory.reset_after_fork()
        self._warnings.reset_after_fork()

    # -- internals ------------------------------------------------------------------

    # ``{key}`` is the hash tag: in a cluster, the lock and the token of one entry share a
    # slot (unless the prefix has a tag of its own: then every entry shares that one).
    def _token_key(self, key: str) -> str:
        return f"{self.prefix}token:{{{key}}}"

    def _lock_key(self, key: str) -> str:
        return f"{self.prefix}lock:{{{key}}}"

    def _channel(self, key: str) -> str:
        return f"{self.prefix}handoff:{{{key}}}"

    @contextlib.contextmanager
    def _lock(self, key: str, timeout: float) -> Iterator[object]:
        lock_key = self._lock_key(key)
        owner = secrets.token_hex(16)
        expiry = timeout + _LOCK_MARGIN
        expiry_ms = max(1, int(expiry * 1000))

        def attempt() -> bool:
            return bool(
                self._call(lambda redis: redis.client.set(lock_key, owner, nx=True, px=expiry_ms))
            )

        started = time.monotonic()
        try:
            outcome = TAKEN
            if not attempt():
                outcome = self._handoff.wait(
                    self._connection,
                    self._channel(key),
                    attempt,
                    lease_end=started + expiry,
                    # A lock taken just before our first attempt expires ``expiry`` later;
                    # one more margin lets us see it free before we give up.
                    deadline=started + expiry + _LOCK_MARGIN,
                    recheck=self.lock_recheck_interval,
                )
        except _RedisDown:  # exclude the threads of this process at least
            with self._memory.lock(key, timeout) as held:
                yield held
            return
        if outcome == STORED:  # the holder stored a token: the caller reads it, lock-free
            yield None
            return
        if outcome == GAVE_UP:
            logger.warning(
                "Waited %.1f s for the Redis token lock %s without getting it; going on "
                "without it (at worst one extra token request).",
                expiry + _LOCK_MARGIN,
                lock_key,
            )
            yield None
            return
        try:
            yield owner
        finally:
            with contextlib.suppress(_RedisDown):  # it expires by itself
                self._call(
                    lambda redis: redis.release(
                        keys=[lock_key], args=[owner, self._channel(key), RELEASED]
                    )
                )

    def _call(self, action: Callable[[Connection], T]) -> T:
        """Run one Redis command, or raise :class:`_RedisDown` (logging the outage once)."""
        if self._down and time.monotonic() - self._failed_at < self.probe_interval:
            raise _RedisDown
        try:
            result = self._run(action)
        except self._errors as exc:
            if is_redirection(exc):  # the server answered: a misconfiguration, no outage
                with self._guard:
                    told, self._told_redirected = self._told_redirected, True
                if not told:
                    logger.error(
                        "Redis token cache: a Redis Cluster node redirected a command (%s: %s), "
                        "and the client given to RedisTokenCache is not a cluster client: "
                        "each process fetches and keeps its own tokens. Pass a cluster client "
                        "(redis.RedisCluster, valkey.cluster.ValkeyCluster) or url= of any node.",
                        type(exc).__name__,
                        str(exc)[:200],
                    )
                raise _RedisDown from exc
            with self._guard:
                self._down = True
                self._failed_at = time.monotonic()
            if self._warnings.warn(
                _OUTAGE,
                "Redis token cache is unreachable (%s: %s); until it answers again, each "
                "process fetches and keeps its own tokens.",
                type(exc).__name__,
                str(exc)[:200],
            ):
                self.observers.outage(exc)
            raise _RedisDown from exc
        if self._down:
            with self._guard:
                self._down = False
                # Tokens kept during the outage may have been revoked since: forget them.
                self._memory = MemoryTokenCache()
            if self._warnings.clear(_OUTAGE):
                logger.info("Redis token cache is reachable again; tokens are shared again.")
                self.observers.recovered()
        return result

    def _run(self, action: Callable[[Connection], T]) -> T:
        connection = self._connection or self._connect(cluster=None)
        try:
            return action(connection)
        except self._errors as exc:
            if not (is_redirection(exc) and self._url is not None and not connection.cluster):
                raise
        # The node of ``url`` would not say whether it is in a cluster (INFO refused), and
        # has just shown it: follow the cluster from now on.
        return action(self._connect(cluster=True))

    def _connect(self, *, cluster: bool | None) -> Connection:
        """The client for ``url``, made once (see :func:`connect_url`); ``cluster=True``
        replaces a plain client with a cluster client."""
        assert self._url is not None
        with self._connecting:
            current = self._connection
            if current is not None and (cluster is None or current.cluster):
                return current  # another thread connected meanwhile
            self._connection = connect_url(self._url, cluster=cluster)
            return self._connection

    def _decode(self, raw: Any) -> Token:
        if isinstance(raw, bytes):
            try:
                raw = raw.decode()
            except UnicodeDecodeError:
                raise CacheRecordError("the stored value is not a delivery-auth token") from None
        if not isinstance(raw, str):
            raise CacheRecordError("the stored value is not a delivery-auth token")
        _, sep, record = raw.partition(":")
        if not sep:
            raise CacheRecordError("the stored value is not a delivery-auth token")
        try:
            parsed = json.loads(record)
        except (ValueError, RecursionError):
            raise CacheRecordError("the stored value is not a delivery-auth token") from None
        return self._codec.unseal(parsed)
