"""Scenarios of the whole round, in-process: ``round``, ``origins`` and ``client``.

- ``round``: per call with a cached token, for each client: the request leg alone (a
  part, shown to locate the cost), the whole round with a 200, and the whole round with
  a 401 (see :mod:`benchmarks.rounds` for what each includes).
- ``origins``: the whole round with a 200 when one auth object serves URLs cycling
  through N distinct origins (``https://h{i}.example.com/v1/x``; ``allowed_hosts`` is
  ``*.example.com``), requests and httpx.
- ``client``: one ``GET`` through the real client (``requests.Session``,
  ``httpx.Client``/``AsyncClient``, httpx2's) on an in-process transport, so that the
  auth's share of a whole call shows; ratio to the same call with the floor auth.

Each returns JSON-ready rows and records a contender's failure in its row.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import inprocess, subjects
from .rounds import LEG, OK, REJECTED, Bench, one_round, time_async, time_sync
from .server import ServerProcess
from .subjects import FLOOR, INFO, REFRESH_FLOOR, Entrant, Subject


def _error(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _row(entrant: Entrant, **extra: Any) -> dict[str, Any]:
    return {
        "contender": entrant.name,
        "library": entrant.library,
        "client": entrant.client,
        "role": entrant.role,
        **extra,
    }


async def _close(subject: Subject) -> None:
    with contextlib.suppress(Exception):  # closing is best effort in a benchmark
        subject.close()
        await subject.aclose()


Timer = Callable[[Subject, Bench, str, list[str], int, int], Awaitable[float]]


def _timer(bench: Bench) -> Timer:
    if bench.asynchronous:
        return time_async

    async def timed(
        subject: Subject, b: Bench, phase: str, urls: list[str], count: int, start: int
    ) -> float:
        return time_sync(subject, b, phase, urls, count, start)

    return timed


def _rotated(entrants: list[Entrant], repeat: int) -> list[Entrant]:
    """The round-robin order of one repeat: each contender takes every place in turn, so
    that whatever the first or last sample of a repeat pays is shared by all."""
    shift = repeat % len(entrants)
    return entrants[shift:] + entrants[:shift]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(value: float | None, floor: float | None, digits: int = 2) -> float | None:
    return round(value / floor, digits) if value is not None and floor else None


# -- round ---------------------------------------------------------------------------


async def _rounds_of(server: ServerProcess, settings: Any, client: str) -> list[dict[str, Any]]:
    bench = Bench(client)
    timer = _timer(bench)
    urls = [inprocess.API_URL]
    entrants = subjects.of_client(client)
    made: dict[str, Subject] = {}
    errors: dict[str, str] = {}
    samples: dict[str, dict[str, list[float]]] = {
        e.name: {LEG: [], OK: [], REJECTED: []} for e in entrants
    }
    phases = [
        (LEG, settings.round_batch, settings.round_repeats),
        (OK, settings.round_batch, settings.round_repeats),
        (REJECTED, settings.round401_batch, settings.round401_repeats),
    ]

    def runs(entrant: Entrant, phase: str) -> bool:
        return phase != REJECTED or entrant.retries

    for entrant in entrants:
        try:
            made[entrant.name] = entrant.make(server.token_url)
            for phase in (LEG, OK, REJECTED):  # first token, lazy set-up, warm caches
                if runs(entrant, phase):
                    await timer(made[entrant.name], bench, phase, urls, 20, 0)
            problem = await _verify(made[entrant.name], bench, entrant)
            if problem:
                errors[entrant.name] = problem
        except Exception as exc:
            errors[entrant.name] = _error(exc)
    for phase, count, repeats in phases:
        for repeat in range(repeats):
            for entrant in _rotated(entrants, repeat):
                name = entrant.name
                if name in errors or name not in made or not runs(entrant, phase):
                    continue
                try:
                    samples[name][phase].append(
                        await timer(made[name], bench, phase, urls, count, 0)
                    )
                except Exception as exc:
                    errors[name] = _error(exc)
    for subject in made.values():
        await _close(subject)
    medians = {name: {p: _median(v) for p, v in by.items()} for name, by in samples.items()}
    floor = next(e.name for e in entrants if e.role == FLOOR)
    refresh_floor = next(e.name for e in entrants if e.role == REFRESH_FLOOR)
    rows = []
    for entrant in entrants:
        name = entrant.name
        if name in errors:
            rows.append(_row(entrant, error=errors[name]))
            continue
        mine = medians[name]
        row = _row(
            entrant,
            retries=entrant.retries,
            leg_ns=_round(mine[LEG]),
            leg_ratio=_ratio(mine[LEG], medians[floor][LEG]),
            ok_ns=_round(mine[OK]),
            ok_ratio=_ratio(mine[OK], medians[floor][OK]),
            rejected_ns=_round(mine[REJECTED]),
            rejected_ratio=_ratio(mine[REJECTED], medians[refresh_floor][REJECTED]),
            on_401="fresh token, one resend" if entrant.retries else "returns the 401",
            repeats={p: len(v) for p, v in samples[name].items()},
            min_ns={p: _round(min(v)) if v else None for p, v in samples[name].items()},
        )
        rows.append(row)
    return rows


async def _verify(subject: Subject, bench: Bench, entrant: Entrant) -> str | None:
    """Why a round of ``subject`` does not do what the report says it does, or ``None``."""
    status, header = await one_round(subject, bench, OK)
    if status != 200 or not header:
        return f"a round with a 200 ended with HTTP {status}, Authorization set: {bool(header)}"
    if entrant.retries:
        status, resent = await one_round(subject, bench, REJECTED)
        if status != 200 or resent == header:
            return f"a round with a 401 ended with HTTP {status} (expected a resend answered 200)"
    return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def whole_round(server: ServerProcess, settings: Any) -> list[dict[str, Any]]:
    server.configure()
    rows: list[dict[str, Any]] = []
    for client in subjects.CLIENTS:
        rows += asyncio.run(_rounds_of(server, settings, client))
    return rows


# -- origins -------------------------------------------------------------------------

ORIGIN_CLIENTS = ("requests", "httpx")


def _origin_subject(entrant: Entrant, token_url: str) -> Subject:
    if entrant.library == "delivery_auth":
        return entrant.make(token_url, inprocess.ORIGINS_PATTERN)  # type: ignore[call-arg]
    return entrant.make(token_url)


async def _origins_of(server: ServerProcess, settings: Any, client: str) -> list[dict[str, Any]]:
    bench = Bench(client)
    timer = _timer(bench)
    entrants = [e for e in subjects.of_client(client) if e.role not in (REFRESH_FLOOR, INFO)]
    rows: list[dict[str, Any]] = []
    for count in settings.origin_counts:
        urls = [inprocess.origin_url(i) for i in range(count)]
        made: dict[str, Subject] = {}
        errors: dict[str, str] = {}
        samples: dict[str, list[float]] = {e.name: [] for e in entrants}
        for entrant in entrants:
            try:
                made[entrant.name] = _origin_subject(entrant, server.token_url)
                await timer(made[entrant.name], bench, OK, urls, max(count, 20), 0)  # warm
            except Exception as exc:
                errors[entrant.name] = _error(exc)
        batch = settings.round_batch
        for repeat in range(settings.round_repeats):
            for entrant in _rotated(entrants, repeat):
                name = entrant.name
                if name in errors or name not in made:
                    continue
                try:  # each batch goes on where the last one stopped in the cycle
                    samples[name].append(
                        await timer(made[name], bench, OK, urls, batch, repeat * batch)
                    )
                except Exception as exc:
                    errors[name] = _error(exc)
        for subject in made.values():
            await _close(subject)
        floor = _median(samples[next(e.name for e in entrants if e.role == FLOOR)])
        for entrant in entrants:
            if entrant.name in errors:
                rows.append(_row(entrant, origins=count, error=errors[entrant.name]))
                continue
            median = _median(samples[entrant.name])
            rows.append(
                _row(entrant, origins=count, ok_ns=_round(median), ok_ratio=_ratio(median, floor))
            )
    return rows


def origins(server: ServerProcess, settings: Any) -> list[dict[str, Any]]:
    server.configure()
    rows: list[dict[str, Any]] = []
    for client in ORIGIN_CLIENTS:
        rows += asyncio.run(_origins_of(server, settings, client))
    return rows


# -- client --------------------------------------------------------------------------


def _transport(client: str) -> Any:
    if client == "requests":
        return inprocess.CannedAdapter(200)
    return inprocess.canned_transport(
        inprocess.module(client), asynchronous=client.endswith("async")
    )


async def _clocked_calls(call: Callable[[], Any], count: int, asynchronous: bool) -> float:
    gc.disable()
    try:
        start = time.perf_counter_ns()
        if asynchronous:
            for _ in range(count):
                await call()
        else:
            for _ in range(count):
                call()
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return elapsed / count


async def _calls_of(server: ServerProcess, settings: Any, client: str) -> list[dict[str, Any]]:
    asynchronous = client.endswith("async")
    entrants = [e for e in subjects.of_client(client) if e.role != REFRESH_FLOOR]
    made: dict[str, tuple[Subject, Callable[[], Any], Callable[[], Any]]] = {}
    errors: dict[str, str] = {}
    samples: dict[str, list[float]] = {e.name: [] for e in entrants}
    for entrant in entrants:
        try:
            subject = entrant.make(server.token_url)
            call, close = subject.client(_transport(client))
            made[entrant.name] = (subject, call, close)
            response = (await call()) if asynchronous else call()
            if response.status_code != 200:
                errors[entrant.name] = f"warm-up call answered HTTP {response.status_code}"
            await _clocked_calls(call, 20, asynchronous)
        except Exception as exc:
            errors[entrant.name] = _error(exc)
    for repeat in range(settings.client_repeats):
        for entrant in _rotated(entrants, repeat):
            name = entrant.name
            if name in errors or name not in made:
                continue
            try:
                samples[name].append(
                    await _clocked_calls(made[name][1], settings.client_batch, asynchronous)
                )
            except Exception as exc:
                errors[name] = _error(exc)
    for subject, _call, close in made.values():
        with contextlib.suppress(Exception):
            closing = close()
            if asyncio.iscoroutine(closing):
                await closing
        await _close(subject)
    floor = _median(samples[next(e.name for e in entrants if e.role == FLOOR)])
    rows = []
    for entrant in entrants:
        if entrant.name in errors:
            rows.append(_row(entrant, error=errors[entrant.name]))
            continue
        median = _median(samples[entrant.name])
        share = None if median is None or floor is None else round((median - floor) / median, 3)
        rows.append(
            _row(
                entrant,
                call_ns=_round(median),
                call_ratio=_ratio(median, floor, 3),
                auth_share=share,
                repeats=len(samples[entrant.name]),
            )
        )
    return rows


def client_calls(server: ServerProcess, settings: Any) -> list[dict[str, Any]]:
    server.configure()
    rows: list[dict[str, Any]] = []
    for client in subjects.CLIENTS:
        rows += asyncio.run(_calls_of(server, settings, client))
    return rows
