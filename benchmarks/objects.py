"""What an auth object costs to have: ``build`` (time and memory per object) and
``threads`` (threads left after many objects each refreshed their token once).

- ``build``: the time to construct one object (median over many small batches taken
  round-robin, garbage collection off while a batch runs) and the memory one object
  keeps before its first use (``tracemalloc``: bytes still allocated after building
  ``memory_objects`` objects and a ``gc.collect()``, divided by their number; one
  object is built first, outside the measurement, so that imports and first-use caches
  are not counted). Compared:
  delivery_auth's ``ClientCredentialsAuth``, Authlib's requests ``OAuth2Session``,
  ``requests_auth.OAuth2ClientCredentials``, ``httpx_auth.OAuth2ClientCredentials`` and
  the floor (a header setter). Authlib's httpx2 ``OAuth2Client`` is left out: it builds
  an ``httpx2.Client`` with its SSL context, about 17 ms each.
- ``threads``: ``thread_objects`` delivery_auth objects each get a token, then, once
  their tokens are ``thread_token_age`` seconds old (``max_token_age``), one call each
  starts a background refresh; once every refresh has landed (each object made two
  token requests) the growth of ``threading.active_count()`` is recorded, as is its
  peak while the refreshes ran, and after the objects are closed. The peers refresh on
  the caller's thread when a call finds the token expired, so they start no threads.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import gc
import statistics
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from .contenders import FLOOR_HEADER, FloorRequestsAuth
from .server import CLIENT_ID, CLIENT_SECRET, ServerProcess


def _ours(token_url: str) -> Any:
    from delivery_auth import ClientCredentialsAuth

    return ClientCredentialsAuth(token_url, CLIENT_ID, CLIENT_SECRET)


def _authlib(token_url: str) -> Any:
    from authlib.integrations.requests_client import OAuth2Session

    return OAuth2Session(
        CLIENT_ID,
        CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - not a secret
        token_endpoint=token_url,
        grant_type="client_credentials",
    )


def _requests_auth(token_url: str) -> Any:
    import requests_auth

    return requests_auth.OAuth2ClientCredentials(token_url, CLIENT_ID, CLIENT_SECRET)


def _httpx_auth(token_url: str) -> Any:
    import httpx_auth

    return httpx_auth.OAuth2ClientCredentials(token_url, CLIENT_ID, CLIENT_SECRET)


#: (library, what is built, builder(token_url))
BUILDERS: list[tuple[str, str, Callable[[str], Any]]] = [
    ("floor", "a header-setting requests auth", lambda url: FloorRequestsAuth(FLOOR_HEADER)),
    ("delivery_auth", "ClientCredentialsAuth", _ours),
    ("authlib", "requests OAuth2Session", _authlib),
    ("requests-auth", "OAuth2ClientCredentials", _requests_auth),
    ("httpx-auth", "OAuth2ClientCredentials", _httpx_auth),
]


def _dispose(objects: list[Any]) -> None:
    for item in objects:
        close = getattr(item, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()
        session = getattr(item, "session", None)  # requests-auth keeps a Session
        if session is not None and hasattr(session, "close"):
            with contextlib.suppress(Exception):
                session.close()


def _build_time(build: Callable[[], Any], count: int) -> float:
    gc.disable()
    made: list[Any] = []
    try:
        start = time.perf_counter_ns()
        for _ in range(count):
            made.append(build())
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
        _dispose(made)
    return elapsed / count


def _retained_bytes(build: Callable[[], Any], count: int) -> float:
    _dispose([build()])  # imports and first-use caches happen outside the measurement
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        made = [build() for _ in range(count)]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    _dispose(made)
    return (after - before) / count


def build(server: ServerProcess, settings: Any) -> list[dict[str, Any]]:
    url = server.token_url
    samples: dict[str, list[float]] = {lib: [] for lib, _w, _b in BUILDERS}
    errors: dict[str, str] = {}
    for repeat in range(settings.build_repeats):
        shift = repeat % len(BUILDERS)  # each takes every place of the round-robin in turn
        for library, _what, builder in BUILDERS[shift:] + BUILDERS[:shift]:
            if library in errors:
                continue
            try:
                samples[library].append(
                    _build_time(functools.partial(builder, url), settings.build_batch)
                )
            except Exception as exc:
                errors[library] = f"{type(exc).__name__}: {exc}"
    rows = []
    medians = {lib: statistics.median(v) for lib, v in samples.items() if v}
    authlib = medians.get("authlib")
    for library, what, builder in BUILDERS:
        row: dict[str, Any] = {"library": library, "contender": f"{library} ({what})"}
        if library in errors:
            row["error"] = errors[library]
            rows.append(row)
            continue
        median = medians[library]
        row["build_ns"] = round(median, 1)
        row["build_vs_authlib"] = round(median / authlib, 2) if authlib else None
        try:
            row["retained_bytes"] = round(
                _retained_bytes(functools.partial(builder, url), settings.memory_objects)
            )
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
        row["objects"] = settings.memory_objects
        rows.append(row)
    return rows


# -- threads -------------------------------------------------------------------------


def threads(server: ServerProcess, settings: Any) -> list[dict[str, Any]]:
    from delivery_auth import ClientCredentialsAuth

    server.configure()
    server.reset()
    count, age = settings.thread_objects, settings.thread_token_age
    gc.collect()
    baseline = threading.active_count()
    started = time.perf_counter()
    objects = [
        ClientCredentialsAuth(server.token_url, CLIENT_ID, CLIENT_SECRET, max_token_age=age)
        for _ in range(count)
    ]
    row: dict[str, Any] = {
        "library": "delivery_auth",
        "contender": "delivery_auth (ClientCredentialsAuth)",
        "objects": count,
    }
    try:
        # First tokens on 4 threads of our own, ended before anything is counted.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda auth: auth.get_token(), objects))
        last_fetch = time.monotonic()
        row["extra_threads_after_first_tokens"] = threading.active_count() - baseline
        time.sleep(max(0.0, last_fetch + age - time.monotonic()) + 0.05)  # tokens now due
        for auth in objects:
            auth.get_token()  # served at once; starts one background refresh
        peak = 0
        deadline = time.monotonic() + settings.thread_wait
        while time.monotonic() < deadline:
            peak = max(peak, threading.active_count() - baseline)
            if all(auth.token_requests >= 2 for auth in objects):
                break
            time.sleep(0.02)
        refreshed = sum(1 for auth in objects if auth.token_requests >= 2)
        row["refreshed"] = refreshed
        row["extra_threads_after_refreshes"] = threading.active_count() - baseline
        row["extra_threads_peak"] = max(peak, row["extra_threads_after_refreshes"])
        row["token_requests"] = server.stats()["token_requests"]
        if refreshed < count:
            row["error"] = f"only {refreshed} of {count} objects refreshed within the wait"
    finally:
        for auth in objects:
            with contextlib.suppress(Exception):
                auth.close()
    row["extra_threads_after_close"] = threading.active_count() - baseline
    row["seconds"] = round(time.perf_counter() - started, 2)
    return [row]
