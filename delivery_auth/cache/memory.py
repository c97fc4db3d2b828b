"""The default cache: a dict guarded by a lock, private to this process."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager

from ..token import Token

__all__ = ["MemoryTokenCache"]


class MemoryTokenCache:
    """Keeps tokens in this process. Pass one instance to several auth objects that use
    the same credentials and they share one token.

    Example::

        cache = MemoryTokenCache()
        auth = ClientCredentialsAuth(url, "id", "secret", cache=cache)
    """

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __repr__(self) -> str:
        return f"MemoryTokenCache(entries={len(self._tokens)})"

    def get(self, key: str) -> Token | None:
        return self._tokens.get(key)

    def set(self, key: str, token: Token) -> None:
        with self._guard:
            self._tokens[key] = token

    def delete_if(self, key: str, token: Token) -> bool:
        with self._guard:
            if self._tokens.get(key) == token:
                del self._tokens[key]
                return True
            return False

    def lock(self, key: str, timeout: float) -> AbstractContextManager[object]:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def reset_after_fork(self) -> None:
        """Locks held by threads of the parent are dead in the child: make new ones."""
        self._guard = threading.Lock()
        self._locks = {}
