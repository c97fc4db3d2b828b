"""The whole round of an auth, per call, with no client and no socket.

A *round* is what the auth costs one call: the request leg (the auth puts its token on
the request) **and** the response side (the auth judges the response, and after a
rejection gets a fresh token and resends). It is driven the way the clients drive it:

- requests: ``auth(prepared)``, then the response hooks through requests' own
  ``dispatch_hook`` with a ``requests.Response`` built once, with the keyword arguments
  ``Session.send`` passes;
- httpx / httpx2, sync and async: ``sync_auth_flow`` / ``async_auth_flow``: the first
  yield, then each response sent in until the flow stops, then ``close()``, as
  ``Client._send_handling_auth`` does.

A round with a **401**: the API rejects the token the auth sent; the resend, if the auth
makes one, is answered 200 in-process (the requests hook resends through
``response.connection``, an in-process adapter; the httpx flow's next request gets a 200
response). Getting the fresh token is a real token request to the benchmark's token
server on 127.0.0.1, for every library that does it: it is part of handling a rejection,
and it is the same server for all. The round with a 401 is quoted as a ratio to the
hand-written "floor + refresh" (:mod:`benchmarks.subjects`); a library that returns the
401 unhandled has no such figure.

Every sample is nanoseconds per round over one small batch of fresh request objects
(built before the clock starts; garbage collection off while it runs, a collection
between repeats); a contender's figure is the median of many such samples, taken
round-robin so that noise hits every contender alike. Small batches and many repeats
keep a busy machine's preemptions in a minority of the samples, where the median
drops them.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from requests.hooks import dispatch_hook

from . import inprocess
from .subjects import Subject

#: What ``Session.send`` passes to the response hooks for a plain ``session.get``.
SEND_KWARGS: dict[str, Any] = {
    "stream": False,
    "timeout": None,
    "verify": True,
    "cert": None,
    "proxies": {},
}

LEG = "leg"
OK = "200"
REJECTED = "401"


class Bench:
    """The fixed parts of timing one client's rounds: fresh requests and responses."""

    def __init__(self, client: str) -> None:
        self.client = client
        self.asynchronous = client.endswith("async")
        self._prepared: dict[tuple[str, ...], list[Any]] = {}
        if client == "requests":
            self.mod: Any = None
            self.ok: Any = inprocess.requests_response(200, None)
            self.rejected: Any = inprocess.requests_response(
                401, None, inprocess.CannedAdapter(200)
            )
        else:
            self.mod = inprocess.module(client)
            self.ok = inprocess.httpx_response(self.mod, 200)
            self.rejected = inprocess.httpx_response(self.mod, 401)

    def fresh(self, urls: list[str], count: int, start: int = 0) -> list[Any]:
        if self.mod is None:
            key = tuple(urls)
            if key not in self._prepared:  # prepared once per URL list, copied per batch
                self._prepared[key] = inprocess.prepared(urls)
            return inprocess.fresh_prepared(self._prepared[key], count, start)
        return inprocess.fresh_httpx(self.mod, urls, count, start)

    def first(self, phase: str) -> Any:
        return self.rejected if phase == REJECTED else self.ok


# -- requests ------------------------------------------------------------------------


def _requests_leg(subject: Subject, fresh: list[Any], bench: Bench) -> None:
    auth = subject.auth
    for request in fresh:
        auth(request)


def _requests_round(subject: Subject, fresh: list[Any], first: Any) -> Any:
    auth = subject.auth
    dispatch: Callable[..., Any] = dispatch_hook
    kwargs = SEND_KWARGS
    final = None
    for request in fresh:
        request = auth(request)
        first.request = request
        final = dispatch("response", request.hooks, first, **kwargs)
    return final


# -- httpx and httpx2 ----------------------------------------------------------------


def _httpx_leg(subject: Subject, fresh: list[Any], keep: list[Any]) -> None:
    auth, check = subject.auth, subject.check
    for request in fresh:
        if check is not None:
            check()
        flow = auth.sync_auth_flow(request)
        next(flow)
        keep.append(flow)  # closed after the clock stops: only the request leg is timed


def _httpx_round(subject: Subject, fresh: list[Any], first: Any, then: Any) -> Any:
    auth, check = subject.auth, subject.check
    response = None
    for request in fresh:
        if check is not None:
            check()
        flow = auth.sync_auth_flow(request)
        try:
            request = next(flow)
            response = first
            for _ in range(3):
                response.request = request
                try:
                    request = flow.send(response)
                except StopIteration:
                    break
                response.read()
                response = then
            else:
                raise RuntimeError("the auth flow kept resending")
        finally:
            flow.close()
    return response


async def _ahttpx_leg(subject: Subject, fresh: list[Any], keep: list[Any]) -> None:
    auth, acheck = subject.auth, subject.acheck
    for request in fresh:
        if acheck is not None:
            await acheck()
        flow = auth.async_auth_flow(request)
        await flow.__anext__()
        keep.append(flow)


async def _ahttpx_round(subject: Subject, fresh: list[Any], first: Any, then: Any) -> Any:
    auth, acheck = subject.auth, subject.acheck
    response = None
    for request in fresh:
        if acheck is not None:
            await acheck()
        flow = auth.async_auth_flow(request)
        try:
            request = await flow.__anext__()
            response = first
            for _ in range(3):
                response.request = request
                try:
                    request = await flow.asend(response)
                except StopAsyncIteration:
                    break
                await response.aread()
                response = then
            else:
                raise RuntimeError("the auth flow kept resending")
        finally:
            await flow.aclose()
    return response


# -- timing --------------------------------------------------------------------------


def _clocked(run: Callable[[], None], count: int) -> float:
    gc.disable()
    try:
        start = time.perf_counter_ns()
        run()
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return elapsed / count


def time_sync(
    subject: Subject, bench: Bench, phase: str, urls: list[str], count: int, start: int = 0
) -> float:
    """Nanoseconds per round (or per request leg) of a sync subject over one batch of
    ``count`` requests to ``urls``, cycling from ``urls[start]``."""
    fresh = bench.fresh(urls, count, start)
    if bench.mod is None:
        if phase == LEG:
            return _clocked(lambda: _requests_leg(subject, fresh, bench), count)
        first = bench.first(phase)
        return _clocked(lambda: _requests_round(subject, fresh, first), count)
    if phase == LEG:
        keep: list[Any] = []
        try:
            return _clocked(lambda: _httpx_leg(subject, fresh, keep), count)
        finally:
            for flow in keep:
                flow.close()
    first = bench.first(phase)
    return _clocked(lambda: _httpx_round(subject, fresh, first, bench.ok), count)


async def time_async(
    subject: Subject, bench: Bench, phase: str, urls: list[str], count: int, start: int = 0
) -> float:
    """:func:`time_sync` for an async subject (run inside the event loop)."""
    fresh = bench.fresh(urls, count, start)
    gc.disable()
    keep: list[Any] = []
    try:
        start = time.perf_counter_ns()
        if phase == LEG:
            await _ahttpx_leg(subject, fresh, keep)
        else:
            await _ahttpx_round(subject, fresh, bench.first(phase), bench.ok)
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
        for flow in keep:
            await flow.aclose()
    return elapsed / count


async def one_round(subject: Subject, bench: Bench, phase: str) -> tuple[int, str | None]:
    """Run one round (``OK`` or ``REJECTED``) untimed: the final response's status and
    the ``Authorization`` its request carried (to check that a round does what it says)."""
    fresh = bench.fresh([inprocess.API_URL], 1)
    first = bench.first(phase)
    if bench.mod is None:
        final = _requests_round(subject, fresh, first)
    elif bench.asynchronous:
        final = await _ahttpx_round(subject, fresh, first, bench.ok)
    else:
        final = _httpx_round(subject, fresh, first, bench.ok)
    return int(final.status_code), final.request.headers.get("Authorization")
