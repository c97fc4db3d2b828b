"""The :class:`TokenCache` protocol and how cache keys are made."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from ..token import Token

__all__ = ["TokenCache", "cache_key"]


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
    material = json.dumps(parts, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:32]
