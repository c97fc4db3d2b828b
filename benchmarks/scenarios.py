"""The scenarios of one run, and their sizes (:class:`Settings`).

This module holds the scenarios over loopback (stampede, rotation, recovery,
throughput), the fleet hook and the registry :data:`SCENARIOS`; the in-process ones are
in :mod:`benchmarks.whole` (round, client, origins) and :mod:`benchmarks.objects`
(build, threads). Each returns plain dicts (JSON-ready) and never raises for a
contender that fails: a failure is recorded as a result."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import contenders as c
from .server import ServerProcess


@dataclass(frozen=True)
class Settings:
    """Sizes of one run; :meth:`quick` is the smoke-test size."""

    # round, client, origins (in-process; see whole.py)
    round_batch: int = 50  # small batches, many repeats: see rounds.py
    round_repeats: int = 101
    round401_batch: int = 5  # each round makes a real token request
    round401_repeats: int = 41
    client_batch: int = 10
    client_repeats: int = 301  # a call is ~0.2 ms: many samples to see 1 %
    origin_counts: tuple[int, ...] = (1, 10, 1000)
    # build, threads (objects.py)
    build_batch: int = 20
    build_repeats: int = 41
    memory_objects: int = 1000
    thread_objects: int = 1000
    thread_token_age: float = 1.0
    thread_wait: float = 120.0
    # fleet (processes.fleet_cold_start reads these)
    fleet_processes: int = 64
    fleet_token_delay: float = 0.5
    # stampede, rotation, throughput (over loopback)
    stampede_threads: int = 64
    stampede_coroutines: int = 1000
    stampede_processes: int = 8  # 0: skip the cross-process scenarios
    stampede_token_delay: float = 0.05
    rotation_threads: int = 16
    rotation_seconds: float = 10.0
    rotation_lifetime: int = 2
    rotation_token_delay: float = 0.02
    throughput_window: float = 0.25
    throughput_rounds: int = 12

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            round_batch=20,
            round_repeats=3,
            round401_batch=3,
            round401_repeats=2,
            client_batch=5,
            client_repeats=3,
            origin_counts=(1, 10, 100),
            build_batch=10,
            build_repeats=2,
            memory_objects=20,
            thread_objects=20,
            thread_token_age=0.2,
            thread_wait=60.0,
            fleet_processes=4,
            fleet_token_delay=0.05,
            stampede_threads=8,
            stampede_coroutines=20,
            stampede_processes=0,
            stampede_token_delay=0.01,
            rotation_threads=2,
            rotation_seconds=0.15,
            rotation_token_delay=0.005,
            throughput_window=0.05,
            throughput_rounds=1,
        )


def _error(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _close(handle: c.Handle) -> None:
    with contextlib.suppress(Exception):  # closing is best effort in a benchmark
        handle.close()


async def _aclose(handle: c.Handle) -> None:
    try:
        if handle.aclose is not None:
            await handle.aclose()
        else:
            handle.close()
    except Exception:  # noqa: S110
        pass


def _call(handle: c.Handle) -> int:
    assert handle.call is not None
    return handle.call()


# -- 2. cold-start stampede --------------------------------------------------------------


def _stampede_threads(
    server: ServerProcess, contender: c.Contender, threads: int
) -> dict[str, Any]:
    server.reset()
    handle = contender.build(server.token_url, server.api_url, False)
    barrier = threading.Barrier(threads)
    statuses: list[int] = []
    errors: list[str] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            statuses.append(_call(handle))
        except Exception as exc:
            errors.append(_error(exc))

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    elapsed = time.perf_counter() - started
    _close(handle)
    return _stampede_row(server, contender, threads, "threads", statuses, errors, elapsed)


def _stampede_row(
    server: ServerProcess,
    contender: c.Contender,
    callers: int,
    unit: str,
    statuses: list[int],
    errors: list[str],
    elapsed: float,
    stall: float | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    bad = [s for s in statuses if s != 200]
    row: dict[str, Any] = {
        "contender": contender.name,
        "library": contender.library,
        "client": contender.client,
        "callers": f"{callers} {unit}",
        "token_requests": server.stats()["token_requests"],
        "errors": len(errors) + len(bad),
        "ok": len(statuses) - len(bad),
        "seconds": round(elapsed, 3),
    }
    if stall is not None:
        row["max_loop_stall_ms"] = round(stall * 1000, 1)
    samples = sorted(set(errors)) + sorted({f"HTTP {s}" for s in bad})
    if samples:
        row["error_kinds"] = samples[:3]
    if notes:
        row["notes"] = notes
    return row


def _stampede_async(
    server: ServerProcess, contender: c.Contender, coroutines: int
) -> dict[str, Any]:
    server.reset()
    statuses: list[int] = []
    errors: list[str] = []
    notes: list[str] = []
    stall = 0.0

    async def main() -> float:
        nonlocal stall
        handle = contender.build(server.token_url, server.api_url, False)
        notes.extend(handle.notes)
        assert handle.acall is not None
        acall = handle.acall
        running = True

        async def heartbeat() -> None:
            nonlocal stall
            last = time.perf_counter()
            while running:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                stall = max(stall, now - last - 0.005)
                last = now

        async def one() -> None:
            try:
                statuses.append(await acall())
            except Exception as exc:
                errors.append(_error(exc))

        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.02)
        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(coroutines))), 120)
        elapsed = time.perf_counter() - started
        running = False
        await beat
        await _aclose(handle)
        return elapsed

    elapsed = asyncio.run(main())
    return _stampede_row(
        server, contender, coroutines, "coroutines", statuses, errors, elapsed, stall, notes
    )


def stampede(server: ServerProcess, settings: Settings) -> list[dict[str, Any]]:
    from . import processes

    server.configure(token_delay=settings.stampede_token_delay)
    rows: list[dict[str, Any]] = []
    groups: list[tuple[tuple[str, ...], Callable[..., dict[str, Any]], int]] = [
        (("requests", "httpx", "httpx2"), _stampede_threads, settings.stampede_threads),
        (("httpx-async", "httpx2-async"), _stampede_async, settings.stampede_coroutines),
    ]
    for clients, run, callers in groups:
        for client in clients:
            for contender in c.by_client(client):
                if contender.floor:
                    continue
                try:
                    rows.append(run(server, contender, callers))
                except Exception as exc:
                    rows.append(
                        {
                            "contender": contender.name,
                            "client": client,
                            "library": contender.library,
                            "error": _error(exc),
                        }
                    )
    if settings.stampede_processes:
        rows.extend(processes.run_all(server, settings.stampede_processes))
    server.configure()
    return rows


# -- 3. token rotation under load --------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _rotation_one(
    server: ServerProcess, contender: c.Contender, settings: Settings
) -> dict[str, Any]:
    handle = contender.build(server.token_url, server.api_url, True)
    try:
        first = _call(handle)
        if first != 200:
            raise RuntimeError(f"warm-up call answered HTTP {first}")
        server.reset()
        results: list[tuple[float, int, list[tuple[float, float]]]] = []
        errors: list[str] = []
        lock = threading.Lock()
        barrier = threading.Barrier(settings.rotation_threads)
        deadline_box: list[float] = []

        def worker() -> None:
            barrier.wait(timeout=30)
            if not deadline_box:
                with lock:
                    if not deadline_box:
                        deadline_box.append(time.monotonic() + settings.rotation_seconds)
            deadline = deadline_box[0]
            local: list[tuple[float, int, list[tuple[float, float]]]] = []
            while time.monotonic() < deadline:
                sink: list[tuple[float, float]] = []
                c.OBSERVED.set(sink)
                started = time.perf_counter()
                try:
                    status = _call(handle)
                except Exception as exc:
                    with lock:
                        errors.append(_error(exc))
                    continue
                local.append((time.perf_counter() - started, status, sink))
            with lock:
                results.extend(local)

        pool = [
            threading.Thread(target=worker, daemon=True) for _ in range(settings.rotation_threads)
        ]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=settings.rotation_seconds + 120)
        stats = server.stats()
    finally:
        _close(handle)
    ends = [end for _start, end in stats["token_intervals"]]
    half_delay = settings.rotation_token_delay / 2

    def waited(intervals: list[tuple[float, float]]) -> bool:
        # The auth step lasted at least half a token request and a token response
        # arrived while it was blocked: it waited for that token request.
        return any(b - a >= half_delay and any(a <= e <= b for e in ends) for a, b in intervals)

    latencies = [lat for lat, _s, _i in results]
    failed = sum(1 for _l, s, _i in results if s != 200) + len(errors)
    row: dict[str, Any] = {
        "contender": contender.name,
        "library": contender.library,
        "client": contender.client,
        "calls": len(results) + len(errors),
        "token_requests": stats["token_requests"],
        "waited": sum(1 for _l, _s, i in results if waited(i)),
        "saw_401": stats["api_401"],
        "failed": failed,
        "p50_ms": round(_percentile(latencies, 0.5) * 1000, 3) if latencies else None,
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 3) if latencies else None,
    }
    if errors:
        row["error_kinds"] = sorted(set(errors))[:3]
    return row


def rotation(server: ServerProcess, settings: Settings) -> list[dict[str, Any]]:
    server.configure(
        expires_in=settings.rotation_lifetime, token_delay=settings.rotation_token_delay
    )
    rows: list[dict[str, Any]] = []
    for client in ("requests", "httpx", "httpx2"):
        group = c.by_client(client)
        floor: dict[str, Any] | None = None
        for contender in group:
            try:
                row = _rotation_one(server, contender, settings)
            except Exception as exc:
                row = {
                    "contender": contender.name,
                    "client": client,
                    "library": contender.library,
                    "error": _error(exc),
                }
            if contender.floor:
                floor = row
            elif floor is not None and floor.get("p50_ms") and row.get("p50_ms"):
                row["p50_added_ms"] = round(row["p50_ms"] - floor["p50_ms"], 3)
                row["p99_added_ms"] = round(row["p99_ms"] - floor["p99_ms"], 3)
                row["p50_ratio"] = round(row["p50_ms"] / floor["p50_ms"], 2)
                row["p99_ratio"] = round(row["p99_ms"] / floor["p99_ms"], 2)
            row["floor"] = contender.floor
            rows.append(row)
    server.configure()
    return rows


# -- 4. recovery after server-side revocation --------------------------------------------


def _recovery_sync(server: ServerProcess, contender: c.Contender) -> dict[str, Any]:
    handle = contender.build(server.token_url, server.api_url, False)
    try:
        first = _call(handle)
        server.reset()
        server.revoke()
        outcome: dict[str, Any] = {"warm_status": first}
        for label in ("next_status", "second_status"):
            try:
                outcome[label] = _call(handle)
            except Exception as exc:
                outcome[label] = _error(exc)
        outcome["token_requests"] = server.stats()["token_requests"]
        return outcome
    finally:
        _close(handle)


def _recovery_async(server: ServerProcess, contender: c.Contender) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        handle = contender.build(server.token_url, server.api_url, False)
        assert handle.acall is not None
        try:
            first = await handle.acall()
            server.reset()
            server.revoke()
            outcome: dict[str, Any] = {"warm_status": first}
            for label in ("next_status", "second_status"):
                try:
                    outcome[label] = await handle.acall()
                except Exception as exc:
                    outcome[label] = _error(exc)
            outcome["token_requests"] = server.stats()["token_requests"]
            return outcome
        finally:
            await _aclose(handle)

    return asyncio.run(main())


def recovery(server: ServerProcess, settings: Settings) -> list[dict[str, Any]]:
    server.configure()
    rows: list[dict[str, Any]] = []
    for client in ("requests", "httpx", "httpx2", "httpx-async", "httpx2-async"):
        for contender in c.by_client(client):
            if contender.floor:
                continue
            row: dict[str, Any] = {
                "contender": contender.name,
                "library": contender.library,
                "client": client,
            }
            try:
                if client.endswith("async"):
                    row.update(_recovery_async(server, contender))
                else:
                    row.update(_recovery_sync(server, contender))
                row["recovered"] = row.get("next_status") == 200
            except Exception as exc:
                row["error"] = _error(exc)
                row["recovered"] = False
            rows.append(row)
    return rows


# -- 5. end-to-end throughput ------------------------------------------------------------


def _count_sync(call: Callable[[], int], window: float) -> tuple[int, int]:
    calls = bad = 0
    deadline = time.perf_counter() + window
    while time.perf_counter() < deadline:
        if call() != 200:
            bad += 1
        calls += 1
    return calls, bad


def throughput(server: ServerProcess, settings: Settings) -> list[dict[str, Any]]:
    server.configure()
    rows: list[dict[str, Any]] = []
    for client in ("requests", "httpx", "httpx2"):
        rows.extend(_throughput_sync(server, settings, client))
    for client in ("httpx-async", "httpx2-async"):
        rows.extend(asyncio.run(_throughput_async(server, settings, client)))
    return rows


def _throughput_rows(
    group: list[c.Contender],
    rates: dict[str, list[float]],
    errors: dict[str, str],
    bad: dict[str, int],
) -> list[dict[str, Any]]:
    floor_name = next(x.name for x in group if x.floor)
    floor_rates = rates.get(floor_name) or []
    rows = []
    for contender in group:
        name = contender.name
        row: dict[str, Any] = {
            "contender": name,
            "library": contender.library,
            "client": contender.client,
            "floor": contender.floor,
            "extra": contender.extra,
        }
        if name in errors:
            row["error"] = errors[name]
        elif rates.get(name):
            row["calls_per_s"] = round(statistics.median(rates[name]), 1)
            # Each round's rate over the floor's rate in the same round, then the median:
            # slow drifts of a noisy machine cancel out.
            paired = [a / b for a, b in zip(rates[name], floor_rates, strict=False) if b]
            row["ratio"] = round(statistics.median(paired), 3) if paired else None
            if len(paired) >= 4:
                quartiles = statistics.quantiles(paired, n=4)
                row["ratio_iqr"] = [round(quartiles[0], 3), round(quartiles[2], 3)]
            row["rounds"] = len(paired)
            row["non_200"] = bad.get(name, 0)
        rows.append(row)
    return rows


def _throughput_sync(
    server: ServerProcess, settings: Settings, client: str
) -> list[dict[str, Any]]:
    group = c.by_client(client, extras=True)
    handles: dict[str, c.Handle] = {}
    rates: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    bad: dict[str, int] = {}
    for contender in group:
        try:
            handle = contender.build(server.token_url, server.api_url, False)
            handles[contender.name] = handle
            _count_sync(handle.call or (lambda: 0), settings.throughput_window / 4)  # warm
            rates[contender.name] = []
        except Exception as exc:
            errors[contender.name] = _error(exc)
    for _ in range(settings.throughput_rounds):
        for contender in group:
            name = contender.name
            if name in errors or name not in handles:
                continue
            try:
                started = time.perf_counter()
                call = handles[name].call
                assert call is not None
                calls, failures = _count_sync(call, settings.throughput_window)
                rates[name].append(calls / (time.perf_counter() - started))
                bad[name] = bad.get(name, 0) + failures
            except Exception as exc:
                errors[name] = _error(exc)
    for handle in handles.values():
        _close(handle)
    return _throughput_rows(group, rates, errors, bad)


async def _throughput_async(
    server: ServerProcess, settings: Settings, client: str
) -> list[dict[str, Any]]:
    group = c.by_client(client)
    handles: dict[str, c.Handle] = {}
    rates: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    bad: dict[str, int] = {}

    async def count(acall: Any, window: float) -> tuple[int, int]:
        calls = failures = 0
        deadline = time.perf_counter() + window
        while time.perf_counter() < deadline:
            if await acall() != 200:
                failures += 1
            calls += 1
        return calls, failures

    for contender in group:
        try:
            handle = contender.build(server.token_url, server.api_url, False)
            handles[contender.name] = handle
            await count(handle.acall, settings.throughput_window / 4)
            rates[contender.name] = []
        except Exception as exc:
            errors[contender.name] = _error(exc)
    for _ in range(settings.throughput_rounds):
        for contender in group:
            name = contender.name
            if name in errors or name not in handles:
                continue
            try:
                started = time.perf_counter()
                calls, failures = await count(handles[name].acall, settings.throughput_window)
                rates[name].append(calls / (time.perf_counter() - started))
                bad[name] = bad.get(name, 0) + failures
            except Exception as exc:
                errors[name] = _error(exc)
    for handle in handles.values():
        await _aclose(handle)
    return _throughput_rows(group, rates, errors, bad)


# -- fleet cold start (benchmarks/processes.py) --------------------------------------


def fleet(server: ServerProcess, settings: Settings) -> list[dict[str, Any]]:
    """Many processes on a cold shared Redis cache: ``processes.fleet_cold_start``'s
    figures as one row (every key a column), sized by ``settings.fleet_processes`` and
    ``settings.fleet_token_delay``."""
    from . import processes

    figures = processes.fleet_cold_start(
        settings.fleet_processes, token_delay=settings.fleet_token_delay, server=server
    )
    return [
        {
            "contender": "delivery_auth [fleet]",
            "library": "delivery_auth",
            "client": "processes",
            **figures,
        }
    ]


def _scenarios() -> dict[str, Callable[[ServerProcess, Settings], list[dict[str, Any]]]]:
    from . import objects, whole

    return {
        "round": whole.whole_round,
        "client": whole.client_calls,
        "origins": whole.origins,
        "build": objects.build,
        "threads": objects.threads,
        "stampede": stampede,
        "fleet": fleet,
        "rotation": rotation,
        "recovery": recovery,
        "throughput": throughput,
    }


#: Every scenario, in the order of a run and of the report.
SCENARIOS = _scenarios()


def run_safely(
    name: str, server: ServerProcess, settings: Settings
) -> tuple[list[dict[str, Any]], str | None]:
    """Run one scenario; a crash of the scenario itself is recorded, not raised."""
    try:
        return SCENARIOS[name](server, settings), None
    except Exception:
        return [], traceback.format_exc(limit=5)
