"""A token cache on Redis (or Valkey), shared by every process of every machine.

Needs the ``redis`` extra: ``pip install 'delivery-auth[redis]'``.

Example::

    from delivery_auth import ClientCredentialsAuth
    from delivery_auth.cache import RedisTokenCache

    cache = RedisTokenCache(url="redis://cache.internal:6379/0")
    auth = ClientCredentialsAuth(url, "id", "secret", cache=cache)   # in every worker
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from ..token import Token
from .codec import (
    CacheRecordError,
    EncryptionKey,
    TokenCodec,
    WarnOnce,
    remaining_lifetime,
    token_fingerprint,
)
from .memory import MemoryTokenCache

if TYPE_CHECKING:
    import redis as redis_py

__all__ = ["RedisTokenCache"]

logger = logging.getLogger("delivery_auth")

T = TypeVar("T")

#: Added to the engine's lock timeout: the lock of a holder that died expires after
#: ``timeout + _LOCK_MARGIN`` seconds; a waiter waits one margin longer before giving up.
_LOCK_MARGIN = 1.0
#: How often a waiter asks whether the lock is free (plus up to 50% jitter).
_POLL_INTERVAL = 0.05
_OUTAGE = "outage"

# Release the lock only if we still own it (it may have expired and been taken by another).
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Delete the token only if it is still the one that was rejected. A stored value is
# "<sha256 of the access token>:<record>", so the comparison needs no decryption.
_COMPARE_AND_DELETE_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class _RedisDown(Exception):
    """Redis did not answer (or is in its back-off period): use the local fallback."""


class RedisTokenCache:
    """Keeps tokens on a Redis (or Valkey) server so that a whole fleet shares them.

    - Tokens are stored under ``<prefix>token:<key>`` with a TTL equal to their remaining
      lifetime. The key is :func:`~delivery_auth.cache.cache_key`, a hash: neither the
      client secret nor the client id is stored.
    - :meth:`lock` is a Redis lock (``SET NX PX`` with a random owner, released only by
      its owner): N workers on a cold cache make one token request. The lock of a
      holder that died expires ``timeout + 1`` seconds after it was taken; waiters poll
      every 50 ms and give up (going on without it, with a WARNING) after
      ``timeout + 2`` seconds.
    - Invalidation is compare-and-delete on the server (a Lua script): a worker never
      deletes a newer token that another worker has just stored.
    - If Redis is unreachable or fails, requests keep working: tokens are fetched and
      kept per process (one WARNING per outage), and Redis is tried again at most every
      :attr:`probe_interval` seconds; when it answers, the fleet shares tokens again.
    - ``encryption_key`` (a Fernet key) encrypts tokens at rest: without the key a
      stored token is unreadable; with another key it is a miss (and one WARNING).

    Give either a ready ``client`` (``redis.Redis``; any ``decode_responses``) or a
    ``url``. A client made from ``url`` gives up on an unreachable server after 2 s and
    retries a failed command once; a client you pass keeps its own settings (give it
    short timeouts and few retries: its retries delay the fallback).

    Example::

        cache = RedisTokenCache(url="rediss://:password@redis.internal:6380/0",
                                prefix="myapp:", encryption_key=os.environ["TOKEN_KEY"])
        auth = ClientCredentialsAuth(url, "id", "secret", cache=cache)
    """

    #: Seconds between attempts to reach Redis again during an outage.
    probe_interval: float = 1.0

    def __init__(
        self,
        client: redis_py.Redis | None = None,
        *,
        url: str | None = None,
        prefix: str = "delivery_auth:",
        encryption_key: EncryptionKey | None = None,
    ) -> None:
        try:
            import redis as redis_py
        except ImportError:  # pragma: no cover - the test extra installs redis
            raise ImportError(
                "RedisTokenCache needs the redis package: pip install 'delivery-auth[redis]'"
            ) from None
        if (client is None) == (url is None):
            raise TypeError(
                "RedisTokenCache needs either a redis client or url=..., not "
                + ("both" if client is not None else "neither")
            )
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        if url is not None:
            if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
                # Never echo the URL: it may carry a password.
                raise ValueError(
                    "url must be a Redis URL starting with redis://, rediss:// or unix://, "
                    "e.g. 'redis://localhost:6379/0'"
                )
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            client = redis_py.Redis.from_url(
                url,
                socket_connect_timeout=2.0,
                socket_timeout=5.0,
                retry=Retry(NoBackoff(), 1),
            )
        assert client is not None
        self._client = client
        self.prefix = prefix
        self._codec = TokenCodec(encryption_key)
        self._errors: tuple[type[BaseException], ...] = (redis_py.RedisError, OSError)
        self._release = client.register_script(_RELEASE_SCRIPT)
        self._compare_and_delete = client.register_script(_COMPARE_AND_DELETE_SCRIPT)
        self._memory = MemoryTokenCache()
        self._warnings = WarnOnce()
        self._guard = threading.Lock()
        self._down = False
        self._failed_at = 0.0

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
            raw = self._call(lambda: self._client.get(self._token_key(key)))
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
            self._call(lambda: self._client.set(self._token_key(key), value, px=ttl_ms))
        except _RedisDown:
            self._memory.set(key, token)

    def delete_if(self, key: str, token: Token) -> bool:
        """Delete the entry for ``key`` only if it still holds ``token`` (atomic, on the server)."""
        deleted_locally = self._memory.delete_if(key, token)
        expected = f"{token_fingerprint(token)}:"
        try:
            result = self._call(
                lambda: self._compare_and_delete(keys=[self._token_key(key)], args=[expected])
            )
        except _RedisDown:
            return deleted_locally
        return bool(result)

    def lock(self, key: str, timeout: float) -> AbstractContextManager[object]:
        """A fleet-wide lock for refreshing ``key`` that expires ``timeout + 1`` s after it
        was taken; a per-process lock while Redis is unreachable."""
        return self._lock(key, timeout)

    def reset_after_fork(self) -> None:
        """Called by the engine in a forked child (redis-py reconnects by itself)."""
        self._guard = threading.Lock()
        self._memory.reset_after_fork()
        self._warnings.reset_after_fork()

    # -- internals ------------------------------------------------------------------

    def _token_key(self, key: str) -> str:
        return f"{self.prefix}token:{key}"

    def _lock_key(self, key: str) -> str:
        return f"{self.prefix}lock:{key}"

    @contextlib.contextmanager
    def _lock(self, key: str, timeout: float) -> Iterator[object]:
        lock_key = self._lock_key(key)
        owner = secrets.token_hex(16)
        expiry = timeout + _LOCK_MARGIN
        expiry_ms = max(1, int(expiry * 1000))
        # A lock taken just before we came expires ``expiry`` later; one more margin lets
        # us see it free before we give up.
        wait = expiry + _LOCK_MARGIN
        deadline = time.monotonic() + wait
        taken: object = None
        while not taken:
            try:
                taken = self._call(lambda: self._client.set(lock_key, owner, nx=True, px=expiry_ms))
            except _RedisDown:
                break
            if not taken and time.monotonic() >= deadline:
                logger.warning(
                    "Waited %.1f s for the Redis token lock %s without getting it; going on "
                    "without it (at worst one extra token request).",
                    wait,
                    lock_key,
                )
                yield None
                return
            if not taken:
                # No notification crosses machines for free: poll, with jitter so that
                # waiters do not hit Redis in step.
                time.sleep(_POLL_INTERVAL * (1 + random.random() / 2))
        if not taken:  # Redis is down: exclude the threads of this process at least
            with self._memory.lock(key, timeout) as held:
                yield held
            return
        try:
            yield owner
        finally:
            with contextlib.suppress(_RedisDown):  # it expires by itself
                self._call(lambda: self._release(keys=[lock_key], args=[owner]))

    def _call(self, action: Callable[[], T]) -> T:
        """Run one Redis command, or raise :class:`_RedisDown` (logging the outage once)."""
        if self._down and time.monotonic() - self._failed_at < self.probe_interval:
            raise _RedisDown
        try:
            result = action()
        except self._errors as exc:
            with self._guard:
                self._down = True
                self._failed_at = time.monotonic()
            self._warnings.warn(
                _OUTAGE,
                "Redis token cache is unreachable (%s: %s); until it answers again, each "
                "process fetches and keeps its own tokens.",
                type(exc).__name__,
                str(exc)[:200],
            )
            raise _RedisDown from exc
        if self._down:
            with self._guard:
                self._down = False
                # Tokens kept during the outage may have been revoked since: forget them.
                self._memory = MemoryTokenCache()
            if self._warnings.clear(_OUTAGE):
                logger.info("Redis token cache is reachable again; tokens are shared again.")
        return result

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
