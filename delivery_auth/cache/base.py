"""The :class:`TokenCache` protocol and how cache keys are made."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from ..events import Events, SharedCacheOutage, SharedCacheRecovered
from ..token import Token

__all__ = ["CacheObservers", "TokenCache", "cache_key"]

_COMPACT = json.JSONEncoder(separators=(",", ":"))  # json.dumps' own, without its set-up


@runtime_checkable
class TokenCache(Protocol):
    """Where tokens live between requests; the engine holds a copy for the fast path.

    ``lock`` is the cross-holder single-flight lock: the engine takes it around a
    token request, re-reads the cache under it and fetches only on a miss. A cache that
    is private to one process may return a lock that only excludes threads.
    Implementations must be thread-safe and must never log a token.
    """

    def get(self, key: str) -> Token | None:
        """The stored token for ``key``, or ``None``."""

    def set(self, key: str, token: Token) -> None:
        """Store ``token`` under ``key``, replacing what was there."""

    def delete_if(self, key: str, token: Token) -> bool:
        """Delete the entry only if it still holds ``token`` (compare-and-delete)."""

    def lock(self, key: str, timeout: float) -> AbstractContextManager[object]:
        """A lock for refreshing ``key``, held at most ``timeout`` seconds by one holder."""


def cache_key(
    token_url: str,
    client_id: str,
    client_secret: str,
    scope: str | None = None,
    params: Mapping[str, str] | None = None,
    *,
    identity: Sequence[str] = (),
) -> str:
    """A key that differs whenever the credentials or request differ; holds no secret.

    ``identity``: more that tells tokens apart (a username and a hash of its password,
    a digest of the token request's headers); hash secrets before passing them. Empty,
    it leaves the key as it was before the option existed (shared caches survive an
    upgrade).

    Example::

        cache_key("https://auth.example.com/token", "id", "secret", "read")
    """
    secret_hash = hashlib.sha256(client_secret.encode()).hexdigest()
    parts: list[object] = [token_url, client_id, secret_hash, scope]
    parts.append(sorted((params or {}).items()))
    if identity:
        parts.append(list(identity))
    material = _COMPACT.encode(parts)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


class CacheObservers:
    """The auth objects that hear a shared cache's outages and recoveries.

    A shared cache is used by many auth objects; each registers its
    :class:`~delivery_auth.events.Events` (held weakly: a dropped auth object stops
    hearing) and gets one :class:`~delivery_auth.events.SharedCacheOutage` per outage
    and one :class:`~delivery_auth.events.SharedCacheRecovered` when it ends.

    Example::

        observers = CacheObservers("RedisTokenCache")
        observers.add(events)
        observers.outage(ConnectionError("refused"))
    """

    def __init__(self, cache: str) -> None:
        self.cache = cache
        self._events: weakref.WeakSet[Events] = weakref.WeakSet()
        self._since: float | None = None
        self._guard = threading.Lock()

    def add(self, events: Events) -> None:
        """Let ``events`` hear this cache's outages and recoveries."""
        with self._guard:
            self._events.add(events)

    def outage(self, error: BaseException) -> None:
        """The cache stopped answering (call once per outage)."""
        with self._guard:
            self._since = time.monotonic()
            listening = list(self._events)
        for events in listening:
            if events.wanted:
                events.emit(
                    SharedCacheOutage(
                        provider=events.provider, cache=self.cache, error=type(error).__name__
                    )
                )

    def recovered(self) -> None:
        """The cache answers again (call once, when an outage ends)."""
        with self._guard:
            since, self._since = self._since, None
            listening = list(self._events)
        lasted = 0.0 if since is None else time.monotonic() - since
        for events in listening:
            if events.wanted:
                events.emit(
                    SharedCacheRecovered(provider=events.provider, cache=self.cache, outage=lasted)
                )

    def reset_after_fork(self) -> None:
        """A lock held by a parent thread is dead in the child: make a new one."""
        self._guard = threading.Lock()
