"""Token caches: one small protocol, a per-process default and shared ones.

Example::

    from delivery_auth import ClientCredentialsAuth, MemoryTokenCache
    cache = MemoryTokenCache()   # share one token between several auth objects
    a = ClientCredentialsAuth(url, "id", "secret", cache=cache)
    b = ClientCredentialsAuth(url, "id", "secret", cache=cache)
"""

from __future__ import annotations

from .base import TokenCache, cache_key
from .file import FileTokenCache
from .memory import MemoryTokenCache
from .redis import RedisTokenCache  # imports redis-py only when one is built

__all__ = ["FileTokenCache", "MemoryTokenCache", "RedisTokenCache", "TokenCache", "cache_key"]
