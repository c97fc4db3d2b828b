"""The token engine: cached look-up, refresh policy and single-flight refresh.

One engine serves every thread, coroutine and event loop that uses an auth object.
The cached path is one attribute read and one monotonic-clock read. Everything else
goes through one *flight*: a :class:`concurrent.futures.Future` that the first caller
creates and completes and that sync callers wait on and async callers (asyncio or
trio, on any loop) await, so any mix of callers causes one token request.

Example::

    engine = TokenEngine(fetcher, cache=MemoryTokenCache(), key="k", policy=RefreshPolicy())
    lease = engine.current()           # Lease(token=…, header='Bearer …')
    engine.invalidate(lease.token)     # the API rejected it: the next current() refreshes
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

from ._futures import await_future, closed_error, interrupted, no_worker_error, settle
from ._workers import SHARED_POOL, WorkerPool, WorkerStartError
from .cache.base import TokenCache
from .cache.memory import MemoryTokenCache
from .errors import DeliveryAuthError
from .events import SILENT, Events
from .policy import RefreshPolicy
from .token import Token

__all__ = ["Lease", "TokenEngine", "TokenSource", "await_future"]

logger = logging.getLogger("delivery_auth")

T = TypeVar("T")
Flight = concurrent.futures.Future["Lease"]
_INF = math.inf
#: After a failed background refresh, wait this long (capped by the token's usable
#: time) before trying again in the background.
_BACKGROUND_RETRY = 5.0


class TokenSource(Protocol):
    """What the engine asks for a new token (a :class:`~delivery_auth.fetch.TokenFetcher`)."""

    def fetch(self) -> Token: ...

    def close(self) -> None: ...

    def reset_after_fork(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Lease:
    """A token with its ready-made header value and its schedule (monotonic times)."""

    token: Token
    header: str = field(repr=False)  # holds the token itself
    refresh_at: float
    usable_until: float


_ENGINES: weakref.WeakSet[TokenEngine] = weakref.WeakSet()


def _reset_engines_after_fork() -> None:
    for engine in list(_ENGINES):
        engine._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_engines_after_fork)


class TokenEngine:
    """Hands out tokens; refreshes them once, for everybody, when they age or fail.

    ``format_header`` turns a token into the ``Authorization`` value (computed once per
    token). ``initial`` seeds the engine with a token that needs no request (a static
    token); ``refreshable=False`` means there is no way to get another one.

    Async token requests, background refreshes and the cache I/O of async callers run
    on one pool of a few threads shared by every engine in the process.
    """

    #: Where async token requests, background refreshes and async cache I/O run.
    _workers: WorkerPool = SHARED_POOL

    def __init__(
        self,
        source: TokenSource,
        *,
        cache: TokenCache,
        key: str,
        policy: RefreshPolicy,
        format_header: Callable[[Token], str],
        lock_timeout: float = 60.0,
        initial: Token | None = None,
        refreshable: bool = True,
    ) -> None:
        self._source = source
        self._cache = cache
        self._key = key
        self.policy = policy
        self._format_header = format_header
        self._lock_timeout = lock_timeout
        self.refreshable = refreshable
        self._guard = threading.Lock()
        self._flight: Flight | None = None
        #: this engine's work queued or running on the pool (created on first use)
        self._jobs: set[concurrent.futures.Future[None]] | None = None
        self._rejected: Token | None = None
        self._background_not_before = 0.0
        self._closed = False
        #: The current lease, or ``None``. Read it, never write it: the requests adapter
        #: compares it by identity to know that the lease it cached is still current.
        self.lease: Lease | None = self._lease_for(initial) if initial is not None else None
        #: token requests this engine made (for tests, the demo and the benchmark)
        self.fetch_count = 0
        #: where this engine reports what it does (see :meth:`attach`)
        self.events: Events = SILENT
        self._waiters = 0  # callers that joined the flight in progress
        self._obtained_from = "token endpoint"  # where the flight's token came from
        _ENGINES.add(self)

    def attach(self, events: Events) -> None:
        """Report to ``events`` (the auth object's): token fetches, refreshes and their
        failures, and the outages of a shared cache (its ``observers``)."""
        self.events = events
        if hasattr(self._source, "events"):  # the fetcher reports its failed attempts
            self._source.events = events
        observers = getattr(self._cache, "observers", None)
        if observers is not None:
            observers.add(events)

    # -- the hot path ---------------------------------------------------------------

    def current(self, *, fresh: bool = False) -> Lease:
        """A usable token, refreshing it (once, for every caller) when needed.

        Blocks only when there is no usable token; a token past its refresh time but
        still usable is returned at once while one background refresh runs. ``fresh``
        (for a retry after a rejection) accepts only a token not yet due for refresh, so
        a resend never goes out with a token about to expire.
        """
        lease = self.lease
        if lease is not None:
            now = time.monotonic()
            if now < lease.refresh_at:
                return lease
            if now < lease.usable_until and not fresh:
                self._refresh_in_background(lease, now)
                return lease
        flight, leader = self._join_flight(fresh)
        if leader:
            self._fly(flight)
        return flight.result()

    async def acurrent(self, *, fresh: bool = False) -> Lease:
        """:meth:`current` for asyncio and trio: never blocks the event loop."""
        lease = self.lease
        if lease is not None:
            now = time.monotonic()
            if now < lease.refresh_at:
                return lease
            if now < lease.usable_until and not fresh:
                self._refresh_in_background(lease, now)
                return lease
        flight, leader = self._join_flight(fresh)
        if leader:
            self._in_pool(
                flight, functools.partial(self._fly, flight, pooled=True), "the token request"
            )
        return await await_future(flight)

    # -- failures -------------------------------------------------------------------

    def invalidate(self, token: Token) -> bool:
        """The API rejected ``token``: forget it unless it was already replaced.

        Compare-and-refresh: only the token that failed is dropped, so a caller whose
        stale token failed does not throw away the fresh one another caller fetched.
        Returns ``False`` when no other token can be had (nothing to retry with).
        """
        if self._closed:
            raise closed_error()
        if not self.refreshable:
            return False
        with self._guard:
            self._rejected = token
            if self.lease is not None and self.lease.token == token:
                self.lease = None
        self._cache.delete_if(self._key, token)
        return True

    async def ainvalidate(self, token: Token) -> bool:
        """:meth:`invalidate` for async callers (cache I/O runs off the loop)."""
        if self._closed or not self.refreshable or _is_local(self._cache):
            return self.invalidate(token)
        # Our own future, not the pool's: a pool future cancelled by close() would look
        # like a cancellation of the caller's task.
        done: concurrent.futures.Future[bool] = concurrent.futures.Future()
        done.set_running_or_notify_cancel()

        def run() -> None:
            try:
                settle(done, self.invalidate(token))
            except BaseException as exc:
                if not isinstance(exc, Exception):  # SystemExit & co: never for the caller's loop
                    exc = interrupted(type(exc).__name__, "Dropping the rejected token")
                settle(done, exc)

        self._in_pool(done, run, "dropping the rejected token from the cache")
        return await await_future(done)

    # -- life cycle -----------------------------------------------------------------

    def close(self) -> None:
        """Stop the token source and this engine's background work; the engine cannot be
        used after.

        Every later call raises :class:`DeliveryAuthError`; whoever waits for a token
        request in progress gets that error at once, and a token that request brings
        back afterwards is neither served nor stored. This engine's work still queued on
        the shared pool is cancelled (its waiters get the same error); work already
        running is waited for. The shared pool goes on serving other engines; its idle
        workers end now (new ones start when work comes).
        """
        with self._guard:  # the same guard under which a flight stores its lease
            self._closed = True
            self.lease = None  # every later use takes the slow path, which refuses
            flight, self._flight = self._flight, None
            jobs = list(self._jobs or ())
            used_pool = self._jobs is not None
        if flight is not None:
            settle(flight, closed_error())
        self._source.close()
        # Queued jobs cancel (their done-callbacks abandon them); running ones are waited
        # for, except the one calling close(), if any.
        own = self._workers.current_job()
        running = [job for job in jobs if not job.cancel() and job is not own]
        concurrent.futures.wait(running)
        if used_pool:  # no idle thread of ours outlives the objects that used it
            self._workers.stop_idle()

    def _reset_after_fork(self) -> None:
        self._guard = threading.Lock()
        self._flight = None
        self._jobs = None
        reset = getattr(self._cache, "reset_after_fork", None)
        if reset is not None:
            reset()
        self._source.reset_after_fork()

    # -- internals ------------------------------------------------------------------

    def _lease_for(self, token: Token) -> Lease:
        schedule = self.policy.schedule(token)
        return Lease(
            token=token,
            header=self._format_header(token),
            refresh_at=_INF if schedule.refresh_at is None else schedule.refresh_at,
            usable_until=_INF if schedule.usable_until is None else schedule.usable_until,
        )

    def _join_flight(self, fresh: bool = False) -> tuple[Flight, bool]:
        """The flight in progress, or a new one that the caller must fly (leader)."""
        with self._guard:
            if self._closed:
                raise closed_error()
            lease = self.lease
            good_until = 0.0 if lease is None else lease.refresh_at if fresh else lease.usable_until
            if lease is not None and time.monotonic() < good_until:
                done: Flight = concurrent.futures.Future()
                done.set_result(lease)
                return done, False
            if self._flight is not None:
                self._waiters += 1
                return self._flight, False
            flight: Flight = concurrent.futures.Future()
            # A running future cannot be cancelled by one impatient waiter.
            flight.set_running_or_notify_cancel()
            self._flight = flight
            self._waiters = 0
            return flight, True

    def _refresh_in_background(self, lease: Lease, now: float) -> None:
        if now < self._background_not_before or self._flight is not None or not self.refreshable:
            return
        with self._guard:
            if self._flight is not None or self.lease is not lease or self._closed:
                return
            flight: Flight = concurrent.futures.Future()
            flight.set_running_or_notify_cancel()
            self._flight = flight
            self._waiters = 0
        logger.debug("Refreshing token %s ahead of expiry", lease.token.fingerprint)
        self._in_pool(
            flight,
            functools.partial(self._fly, flight, background=True, pooled=True),
            "the background token refresh",
            background=True,
        )

    def _in_pool(
        self,
        done: concurrent.futures.Future[T],
        work: Callable[[], None],
        task: str,
        *,
        background: bool = False,
    ) -> None:
        """Run ``work``, which completes ``done``, on the shared pool. If it never runs
        (close() came first or cancelled it while queued, or no thread could be started),
        ``done`` fails with the reason: nobody waits forever. A background refresh that
        could not start is logged and tried again later, like one that failed."""
        job: concurrent.futures.Future[None] | None = None
        failure: DeliveryAuthError = closed_error()
        with self._guard:  # a job is submitted only while open, and close() sees it
            if not self._closed:
                try:
                    job = self._workers.submit(work)
                except WorkerStartError as exc:
                    failure = no_worker_error(exc.reason, task)
                else:
                    if self._jobs is None:
                        self._jobs = set()
                    self._jobs.add(job)
        if job is None:
            if background and not self._closed:
                self._land(cast(Flight, done), failure, True, time.monotonic())
            else:
                self._abandon(done, failure)
            return

        def finished(job: concurrent.futures.Future[None]) -> None:
            with self._guard:
                if self._jobs is not None:
                    self._jobs.discard(job)
            if job.cancelled():
                self._abandon(done, closed_error())
            elif (error := job.exception()) is not None:  # ``work`` settles ``done``
                self._abandon(done, interrupted(type(error).__name__))  # ...unless it broke

        # Outside the guard: a job that already ran calls ``finished`` at once, here.
        job.add_done_callback(finished)

    def _abandon(self, done: concurrent.futures.Future[T], error: DeliveryAuthError) -> None:
        """``done`` will never be completed by its work: fail it with ``error``."""
        with self._guard:
            if self._flight is done:
                self._flight = None
        settle(done, error)

    def _fly(self, flight: Flight, *, background: bool = False, pooled: bool = False) -> None:
        """Obtain a token for everybody waiting on ``flight``; never leaves it pending.

        A ``KeyboardInterrupt``/``SystemExit`` goes on in the thread it hit (unless that
        is a pool thread) and the waiters get a :class:`DeliveryAuthError` instead.
        """
        outcome: Lease | Exception = interrupted("an interrupt")
        started = time.monotonic()
        try:
            outcome = self._obtain()
        except Exception as exc:
            outcome = exc
        except BaseException as exc:
            outcome = interrupted(type(exc).__name__)
            if not pooled:
                raise
            logger.error("A %s interrupted a token request in a worker thread", type(exc).__name__)
        finally:
            self._land(flight, outcome, background, started)

    def _land(
        self, flight: Flight, outcome: Lease | Exception, background: bool, started: float
    ) -> None:
        with self._guard:
            previous = self.lease
            waiters, self._waiters = self._waiters, 0
            if self._flight is flight:
                self._flight = None
            if isinstance(outcome, Lease):
                if self._closed:  # close() came during the request: serve nothing
                    outcome = closed_error()
                else:
                    self.lease = outcome
        if background and isinstance(outcome, Exception) and not self._closed:
            lease_now = self.lease
            remaining = 0.0 if lease_now is None else lease_now.usable_until - time.monotonic()
            self._background_not_before = time.monotonic() + min(
                _BACKGROUND_RETRY, max(remaining / 4, 0.0)
            )
            logger.warning(
                "Refreshing the token ahead of expiry failed (%s); the current token "
                "stays in use and the refresh will be tried again.",
                outcome,
            )
        if self.events.wanted and not self._closed:
            source = self._obtained_from
            attempts = 0 if source != "token endpoint" else getattr(self._source, "attempts", 1)
            retry_in = max(self._background_not_before - time.monotonic(), 0.0)
            self.events.landed(
                outcome,
                previous,
                background=background,
                source=source,
                started=started,
                attempts=attempts,
                waiters=waiters,
                retry_in=retry_in,
            )
        settle(flight, outcome)

    def _adoptable(self, token: Token | None, replacing: Token | None) -> Lease | None:
        if token is None or token == replacing or token == self._rejected:
            return None
        lease = self._lease_for(token)
        return lease if time.monotonic() < lease.usable_until else None

    def _obtain(self) -> Lease:
        """Take a newer token from the cache, or fetch one under the cache's lock."""
        if self._closed:
            raise closed_error()
        current = self.lease
        replacing = None if current is None else current.token
        self._obtained_from = _layer(self._cache)
        lease = self._adoptable(self._cache.get(self._key), replacing)
        if lease is not None:
            return lease
        with self._cache.lock(self._key, self._lock_timeout):
            lease = self._adoptable(self._cache.get(self._key), replacing)
            if lease is not None:
                return lease
            self._obtained_from = getattr(self._source, "kind", "token endpoint")
            token = self._source.fetch()
            self.fetch_count += 1
            if self._closed:  # close() came during the request: keep nothing
                raise closed_error()
            self._cache.set(self._key, token)
        return self._lease_for(token)


def _layer(cache: TokenCache) -> str:
    """The name events give ``cache`` (``"memory"``, ``"file"``, ``"redis"``)."""
    name = type(cache).__name__
    return name.removesuffix("TokenCache").lower() or name


def _is_local(cache: TokenCache) -> bool:
    return isinstance(cache, MemoryTokenCache)
