"""Building an auth object is cheap (issue 12 item 4): no Authlib session, no thread, no
token request and a few KiB of memory until it is first used.

How fast construction is belongs to the benchmark; these tests check what is built, and
the memory an object holds (counted by tracemalloc: the same on any machine).
"""

from __future__ import annotations

import gc
import threading
import tracemalloc
from contextlib import AbstractContextManager, nullcontext

import pytest

from delivery_auth import ClientCredentialsAuth, Token

URL = "https://auth.example.com/oauth2/token"


def build() -> ClientCredentialsAuth:
    return ClientCredentialsAuth(URL, "client-id", "client-secret", scope="read")


def test_building_makes_no_session_no_thread_and_no_request() -> None:
    threads = threading.active_count()
    auth = build()
    assert auth._fetcher._session is None
    assert auth._engine._jobs is None
    assert threading.active_count() == threads
    assert auth.token_requests == 0
    auth.close()
    assert auth._fetcher._session is None  # closing an unused object builds nothing


def test_an_unused_object_holds_at_most_4_kib() -> None:
    """The memory retained per object after building 200 of them (11.6 KB before:
    Authlib's session and its connection adapters were built at once)."""
    build().close()  # first-use caches (imports, interned names) are not per object
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        auths = [build() for _ in range(200)]
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    retained = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    per_object = retained / len(auths)
    print(f"{per_object:.0f} bytes per unused ClientCredentialsAuth")
    assert per_object <= 4096
    for auth in auths:
        auth.close()


class DuckCache:
    """A cache that implements the protocol without naming it."""

    def get(self, key: str) -> Token | None:
        return None

    def set(self, key: str, token: Token) -> None:
        pass

    def delete_if(self, key: str, token: Token) -> bool:
        return False

    def lock(self, key: str, timeout: float) -> AbstractContextManager[object]:
        return nullcontext()


class NoLock:
    get = DuckCache.get
    set = DuckCache.set
    delete_if = DuckCache.delete_if
    lock = "not callable"


def test_a_cache_is_checked_by_its_methods() -> None:
    auth = ClientCredentialsAuth(URL, "id", "secret", cache=DuckCache())
    assert auth._engine._cache.__class__ is DuckCache
    auth.close()
    with pytest.raises(TypeError, match="TokenCache protocol .* got NoLock"):
        ClientCredentialsAuth(URL, "id", "secret", cache=NoLock())  # type: ignore[arg-type]
