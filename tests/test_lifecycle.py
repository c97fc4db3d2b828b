"""close() racing token requests, and interrupts in the thread that fetches (issue 10, D.15
and D.16). Real threads, real asyncio and trio loops, a real token endpoint on loopback
that holds each token request until the test releases it.

Every wait is bounded (``WAIT``): a caller that hangs fails its test instead of hanging the
run. No assertion depends on how fast anything happens.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import requests
import trio
from conftest import CLIENTS, FAST_BACKOFF, call
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer

from delivery_auth import (
    ClientCredentialsAuth,
    DeliveryAuthError,
    FileTokenCache,
    MemoryTokenCache,
    Token,
)
from delivery_auth._workers import SHARED_POOL, WorkerPool
from delivery_auth.cache import cache_key
from delivery_auth.fetch import TokenFetcher

T = TypeVar("T")
MakeAuth = Callable[..., ClientCredentialsAuth]
#: How long a test waits for anything before it calls it a hang (never reached when it works).
WAIT = 30.0
CLOSED = "closed; create a new one"
INTERRUPTED = "interrupted"


# -- helpers --------------------------------------------------------------------------


def in_thread(run: Callable[[], T]) -> concurrent.futures.Future[T]:
    """Run ``run`` in a new (daemon) thread; the future holds what it returned or raised."""
    outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

    def main() -> None:
        try:
            outcome.set_result(run())
        except BaseException as exc:  # KeyboardInterrupt & co are what some tests look for
            outcome.set_exception(exc)

    threading.Thread(target=main, daemon=True).start()
    return outcome


def ended(outcome: concurrent.futures.Future[Any]) -> BaseException | None:
    """What a call ended with (``None``: it returned). A call that never ends fails the test."""
    try:
        error = outcome.exception(timeout=WAIT)
    except TimeoutError:
        pytest.fail(f"a caller was still waiting {WAIT:.0f} s later: it hangs")
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]  # trio may wrap what a task raised
    return error


def closed_or_none(error: BaseException | None) -> bool:
    return error is None or (isinstance(error, DeliveryAuthError) and CLOSED in str(error))


def interrupted(error: BaseException | None) -> bool:
    return isinstance(error, DeliveryAuthError) and INTERRUPTED in str(error)


async def async_get(auth: ClientCredentialsAuth, url: str) -> int:
    """One httpx.AsyncClient request, on whichever loop (asyncio or trio) runs it."""
    async with httpx.AsyncClient(auth=auth, timeout=WAIT) as client:
        return (await client.get(url)).status_code


def on_loop(loop: str, auth: ClientCredentialsAuth, url: str) -> Callable[[], int]:
    if loop == "asyncio":
        return lambda: asyncio.run(async_get(auth, url))
    return lambda: trio.run(async_get, auth, url)


def joins(auth: ClientCredentialsAuth, waiters: int) -> threading.Event:
    """Set once ``waiters`` callers have joined a flight that someone else flies."""
    engine = auth._engine
    original = engine._join_flight
    joined = threading.Event()
    count = [0]
    lock = threading.Lock()

    def counted(fresh: bool = False) -> Any:
        flight, leader = original(fresh)
        if not leader:
            with lock:
                count[0] += 1
                if count[0] >= waiters:
                    joined.set()
        return flight, leader

    engine._join_flight = counted  # type: ignore[method-assign]
    return joined


def source_closed(auth: ClientCredentialsAuth) -> threading.Event:
    """Set once close() has closed the token source (close() is under way)."""
    source = auth._engine._source
    original = source.close
    done = threading.Event()

    def close() -> None:
        original()
        done.set()

    source.close = close  # type: ignore[method-assign]
    return done


def seed(auth: ClientCredentialsAuth, server: LoopbackServer, cache: MemoryTokenCache) -> Token:
    """A token the server accepts, in ``cache``, past its half-life (due for refresh-ahead)."""
    seeded = Token("seeded-token", lifetime=3600, obtained_at=time.monotonic() - 2000)
    server.state.valid.add(seeded.access_token)
    fetcher = auth._fetcher
    key = cache_key(fetcher.token_url, fetcher.client_id, fetcher._client_secret, None, {})
    cache.set(key, seeded)
    return seeded


def assert_closed(auth: ClientCredentialsAuth, server: LoopbackServer) -> None:
    """After close(), every way of using the object raises, and no token request is made."""
    before = len(server.state.token_requests)
    with pytest.raises(DeliveryAuthError, match=CLOSED):
        auth.get_token()
    with pytest.raises(DeliveryAuthError, match=CLOSED):
        asyncio.run(auth.aget_token())
    with pytest.raises(DeliveryAuthError, match=CLOSED):
        trio.run(auth.aget_token)
    for client in CLIENTS:
        with pytest.raises(DeliveryAuthError, match=CLOSED):
            call(client, auth, "GET", server.url())
    assert len(server.state.token_requests) == before
    assert auth._engine.lease is None  # nothing stored after close() is ever served


@contextlib.contextmanager
def busy_pool(auth: ClientCredentialsAuth) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Keeps every worker of the engine's pool busy (slow cache I/O of other auth objects,
    say) until the block ends. Yields two events: the next submission was queued; that
    submission was cancelled. The pool is a private one of the shared pool's size, so
    workers that earlier tests left idle do not take the work."""
    pool = WorkerPool(max_workers=SHARED_POOL.max_workers, name="busy-test-pool")
    auth._engine._workers = pool
    started = threading.Barrier(pool.max_workers + 1)
    release = threading.Event()

    def busy() -> None:
        started.wait(WAIT)
        release.wait(WAIT)

    for _ in range(pool.max_workers):
        pool.submit(busy)
    started.wait(WAIT)  # every worker is busy: the next submission waits in the queue
    queued, cancelled = threading.Event(), threading.Event()
    submit = pool.submit

    def watched(work: Callable[[], None]) -> Any:
        job = submit(work)
        job.add_done_callback(lambda j: cancelled.set() if j.cancelled() else None)
        queued.set()
        return job

    pool.submit = watched  # type: ignore[method-assign]
    try:
        yield queued, cancelled
    finally:
        release.set()


@pytest.fixture
def gate(server: LoopbackServer) -> Iterator[threading.Event]:
    """Holds every token request at the server until set (always set at the end)."""
    held = threading.Event()
    server.state.token_gate = held
    yield held
    held.set()


# -- D.15: close() racing a token request ---------------------------------------------


def test_close_during_a_foreground_fetch(
    server: LoopbackServer, make_auth: MakeAuth, gate: threading.Event
) -> None:
    """A requests call fetches in its own thread; a thread, an asyncio and a trio caller
    wait on that fetch; close() comes while the token endpoint holds the request."""
    auth = make_auth()
    joined = joins(auth, 3)
    leader = in_thread(lambda: requests.get(server.url(), auth=auth, timeout=WAIT).status_code)
    assert server.state.token_arrived.wait(WAIT)
    waiters = [
        in_thread(auth.get_token),
        in_thread(on_loop("asyncio", auth, server.url())),
        in_thread(on_loop("trio", auth, server.url())),
    ]
    assert joined.wait(WAIT)
    auth.close()
    gate.set()  # the token request now completes, after close()
    for caller in [leader, *waiters]:
        error = ended(caller)
        assert closed_or_none(error), repr(error)
    assert_closed(auth, server)
    assert len(server.state.token_requests) == 1


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_close_during_an_async_fetch(
    server: LoopbackServer, make_auth: MakeAuth, gate: threading.Event, loop: str
) -> None:
    """An async caller's token request runs on the shared pool; close() waits for this
    object's running work, so it runs in a thread while the test releases the endpoint."""
    auth = make_auth()
    closing = source_closed(auth)
    caller = in_thread(on_loop(loop, auth, server.url()))
    assert server.state.token_arrived.wait(WAIT)
    closer = in_thread(auth.close)
    assert closing.wait(WAIT)
    gate.set()
    assert ended(closer) is None
    error = ended(caller)
    assert closed_or_none(error), repr(error)
    assert_closed(auth, server)


def test_close_during_a_background_refresh(
    server: LoopbackServer, make_auth: MakeAuth, gate: threading.Event
) -> None:
    """A refresh-ahead is under way; a requests call whose token was just rejected waits
    for it; close() comes before the token endpoint answers."""
    cache = MemoryTokenCache()
    auth = make_auth(cache=cache)
    seeded = seed(auth, server, cache)
    assert auth.get_token() == seeded  # adopts the seeded token
    assert auth.get_token() == seeded  # and starts the refresh-ahead
    assert server.state.token_arrived.wait(WAIT)
    server.state.revoke_all()  # the API rejects the seeded token: the caller needs a fresh one
    joined = joins(auth, 1)
    rejected = in_thread(lambda: requests.get(server.url(), auth=auth, timeout=WAIT).status_code)
    assert joined.wait(WAIT)
    closing = source_closed(auth)
    closer = in_thread(auth.close)
    assert closing.wait(WAIT)
    gate.set()
    assert ended(closer) is None
    error = ended(rejected)
    assert closed_or_none(error), repr(error)
    assert_closed(auth, server)


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_close_never_strands_the_waiters_of_a_queued_flight(
    server: LoopbackServer, make_auth: MakeAuth, loop: str
) -> None:
    """The pool is busy (slow cache I/O stands in here), so an async caller's token request
    is queued; close() cancels queued work. Its caller must get an answer, not wait forever."""
    auth = make_auth()
    with busy_pool(auth) as (queued, cancelled):
        caller = in_thread(on_loop(loop, auth, server.url()))
        assert queued.wait(WAIT)
        closer = in_thread(auth.close)
        assert cancelled.wait(WAIT)  # close() dropped the queued token request
    assert ended(closer) is None
    error = ended(caller)
    assert isinstance(error, DeliveryAuthError), repr(error)
    assert CLOSED in str(error)
    assert server.state.token_requests == []


class _SlowCache(MemoryTokenCache):
    """A cache whose reads wait for ``release`` once armed (a slow shared cache)."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.reading, self.release = threading.Event(), threading.Event()

    def get(self, key: str) -> Token | None:
        if self.armed:
            self.reading.set()
            self.release.wait(WAIT)
        return super().get(key)


def test_close_during_a_cache_read_serves_nothing(
    server: LoopbackServer, make_auth: MakeAuth
) -> None:
    """A caller finds a token in the (slow) cache while close() comes: the closed object
    must not keep that token and serve it afterwards."""
    cache = _SlowCache()
    auth = make_auth(cache=cache)
    seeded = seed(auth, server, cache)
    cache.armed = True
    caller = in_thread(auth.get_token)
    try:
        assert cache.reading.wait(WAIT)
        auth.close()
    finally:
        cache.release.set()
    error = ended(caller)
    assert closed_or_none(error), repr(error)
    cache.armed = False
    assert_closed(auth, server)
    assert cache.get(auth._engine._key) == seeded
    assert server.state.token_requests == []


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_close_between_joining_and_starting_a_flight(
    server: LoopbackServer, make_auth: MakeAuth, loop: str
) -> None:
    """close() comes right after an async caller became the one to make the token request
    and before that request is handed to the pool: no thread starts after close()."""
    auth = make_auth()
    engine = auth._engine
    original = engine._join_flight

    def join_then_close(fresh: bool = False) -> Any:
        flight, leader = original(fresh)
        if leader:
            auth.close()
        return flight, leader

    engine._join_flight = join_then_close  # type: ignore[method-assign]
    with pytest.raises(DeliveryAuthError, match=CLOSED):
        on_loop(loop, auth, server.url())()
    assert engine._jobs is None  # no work was handed to the pool after close()
    assert server.state.token_requests == []


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_close_cancels_a_queued_rejection_check(
    server: LoopbackServer, make_auth: MakeAuth, tmp_path: Any, loop: str
) -> None:
    """An async caller's token was rejected; dropping it from a shared cache runs on the
    pool, which is busy, so it is queued; close() cancels it. The caller must learn that
    the object was closed, not see its task cancelled or wait forever."""
    auth = make_auth(cache=FileTokenCache(tmp_path / "tokens.json"))
    auth.get_token()
    server.state.revoke_all()
    with busy_pool(auth) as (queued, cancelled):
        caller = in_thread(on_loop(loop, auth, server.url()))
        assert queued.wait(WAIT)
        closer = in_thread(auth.close)
        assert cancelled.wait(WAIT)  # close() dropped the queued cache update
    assert ended(closer) is None
    error = ended(caller)
    assert isinstance(error, DeliveryAuthError), repr(error)
    assert CLOSED in str(error)
    assert len(server.state.token_requests) == 1


def test_a_rejection_seen_after_close_raises_and_starts_no_thread(
    server: LoopbackServer, make_auth: MakeAuth, tmp_path: Any
) -> None:
    """A request is in flight when close() comes and the API then rejects its token: the
    caller learns the object is closed, and the closed object starts no new thread."""
    auth = make_auth(cache=FileTokenCache(tmp_path / "tokens.json"))
    token = auth.get_token()
    server.state.revoke_all()

    async def close_on_401(response: httpx.Response) -> None:
        if response.status_code == 401:
            await auth.aclose()

    async def main() -> None:
        hooks = {"response": [close_on_401]}
        async with httpx.AsyncClient(auth=auth, event_hooks=hooks, timeout=WAIT) as client:
            await client.get(server.url())

    with pytest.raises(DeliveryAuthError, match=CLOSED):
        asyncio.run(main())
    assert auth._engine._jobs is None  # no work was handed to the pool after close()
    with pytest.raises(DeliveryAuthError, match=CLOSED):
        auth._engine.invalidate(token)
    assert_closed(auth, server)
    assert len(server.state.token_requests) == 1


# -- D.16: an interrupt stays in the thread it hit ------------------------------------


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """Python's own SIGINT handler (KeyboardInterrupt in the main thread) for the test."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_raises")
def test_ctrl_c_in_the_fetching_thread_reaches_only_that_thread(
    server: LoopbackServer, make_auth: MakeAuth, gate: threading.Event
) -> None:
    """The main thread makes the token request; a thread, an asyncio loop and a trio loop
    wait for it; Ctrl-C (SIGINT) hits the main thread while the endpoint holds the request."""
    auth = make_auth()
    joined = joins(auth, 3)
    waiters: list[concurrent.futures.Future[Any]] = []

    def conductor() -> None:
        assert server.state.token_arrived.wait(WAIT)  # the main thread leads the flight
        waiters.append(in_thread(auth.get_token))
        waiters.append(in_thread(on_loop("asyncio", auth, server.url())))
        waiters.append(in_thread(on_loop("trio", auth, server.url())))
        assert joined.wait(WAIT)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    conducting = in_thread(conductor)
    with pytest.raises(KeyboardInterrupt):
        requests.get(server.url(), auth=auth, timeout=WAIT)
    assert ended(conducting) is None
    gate.set()
    outcomes = [ended(waiter) for waiter in waiters]
    assert all(interrupted(error) for error in outcomes), outcomes
    assert "KeyboardInterrupt" in str(outcomes[0])
    assert "retrying is fine" in str(outcomes[0]).lower()
    # Nothing is broken: the next call makes a new token request and succeeds.
    assert requests.get(server.url(), auth=auth, timeout=WAIT).status_code == 200
    assert len(server.state.token_requests) == 2


class _InterruptOnce:
    """A token source that makes the real request, then raises ``error`` (once)."""

    def __init__(self, fetcher: TokenFetcher, error: BaseException) -> None:
        self.fetcher = fetcher
        self.error: BaseException | None = error

    def fetch(self) -> Token:
        token = self.fetcher.fetch()
        error, self.error = self.error, None
        if error is not None:
            raise error
        return token

    def close(self) -> None:
        self.fetcher.close()

    def reset_after_fork(self) -> None:  # pragma: no cover - no fork here
        self.fetcher.reset_after_fork()


@pytest.fixture
def interrupted_auth(server: LoopbackServer) -> Iterator[Callable[..., ClientCredentialsAuth]]:
    made: list[ClientCredentialsAuth] = []

    def make(error: BaseException, **options: Any) -> ClientCredentialsAuth:
        class Interrupted(ClientCredentialsAuth):
            def _token_source(self, fetcher: TokenFetcher) -> Any:
                return _InterruptOnce(fetcher, error)

        auth = Interrupted(
            server.token_url, CLIENT_ID, CLIENT_SECRET, backoff=FAST_BACKOFF, **options
        )
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth.close()


@pytest.mark.parametrize("error", [SystemExit(3), KeyboardInterrupt()], ids=type)
def test_an_interrupt_in_a_pool_flight_reaches_no_waiter(
    server: LoopbackServer,
    interrupted_auth: Callable[..., ClientCredentialsAuth],
    gate: threading.Event,
    error: BaseException,
) -> None:
    """An asyncio caller's token request runs on the pool and the source raises
    SystemExit/KeyboardInterrupt there; a thread and a trio loop wait on it too."""
    auth = interrupted_auth(error)
    joined = joins(auth, 2)
    leader = in_thread(on_loop("asyncio", auth, server.url()))
    assert server.state.token_arrived.wait(WAIT)
    waiters = [in_thread(auth.get_token), in_thread(on_loop("trio", auth, server.url()))]
    assert joined.wait(WAIT)
    gate.set()
    outcomes = [ended(caller) for caller in [leader, *waiters]]
    assert all(interrupted(error) for error in outcomes), outcomes
    assert auth.get_token().access_token  # the next call fetches again
    assert len(server.state.token_requests) == 2


def test_an_interrupt_in_a_background_refresh_reaches_no_waiter(
    server: LoopbackServer,
    interrupted_auth: Callable[..., ClientCredentialsAuth],
    gate: threading.Event,
) -> None:
    """A refresh-ahead runs on the pool and the source raises SystemExit there, while a
    requests call whose token was rejected waits for that refresh."""
    cache = MemoryTokenCache()
    auth = interrupted_auth(SystemExit(3), cache=cache)
    seeded = seed(auth, server, cache)
    assert auth.get_token() == seeded
    assert auth.get_token() == seeded  # starts the refresh-ahead
    assert server.state.token_arrived.wait(WAIT)
    server.state.revoke_all()
    joined = joins(auth, 1)
    rejected = in_thread(lambda: requests.get(server.url(), auth=auth, timeout=WAIT).status_code)
    assert joined.wait(WAIT)
    gate.set()
    assert interrupted(ended(rejected))
    assert requests.get(server.url(), auth=auth, timeout=WAIT).status_code == 200
    assert len(server.state.token_requests) == 2


class _InterruptingFileCache(FileTokenCache):
    """A shared cache whose next delete raises ``error`` (in the pool thread that runs it)."""

    error: BaseException | None = None

    def delete_if(self, key: str, token: Token) -> bool:
        error, self.error = self.error, None
        if error is not None:
            raise error
        return super().delete_if(key, token)


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_an_interrupt_in_a_pool_cache_update_reaches_no_waiter(
    server: LoopbackServer, make_auth: MakeAuth, tmp_path: Any, loop: str
) -> None:
    """An async caller's token was rejected; dropping it from the shared cache runs on the
    pool and SystemExit hits that pool thread: the caller gets an error, its loop lives on."""
    cache = _InterruptingFileCache(tmp_path / "tokens.json")
    auth = make_auth(cache=cache)
    auth.get_token()
    server.state.revoke_all()
    cache.error = SystemExit(3)
    assert interrupted(ended(in_thread(on_loop(loop, auth, server.url()))))
    assert on_loop(loop, auth, server.url())() == 200  # the next call refreshes and succeeds
    assert len(server.state.token_requests) == 2
