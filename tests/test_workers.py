"""The worker pool shared by every auth object (issue 12 item 3): a few threads started
on demand and ended when idle, a clear error when no thread can be started, and no
thread per auth object.

Real threads, real asyncio and trio loops, real token endpoints on loopback. Every wait
is bounded (``WAIT``) and only a hang reaches it; no assertion depends on speed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from conftest import FAST_BACKOFF
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer

from delivery_auth import (
    ClientCredentialsAuth,
    DeliveryAuthError,
    FileTokenCache,
    MemoryTokenCache,
    Token,
)
from delivery_auth import deadline as deadline_module
from delivery_auth import engine as engine_module
from delivery_auth._workers import SHARED_POOL, WorkerPool, WorkerStartError, no_thread
from delivery_auth.cache import cache_key

MakeAuth = Callable[..., ClientCredentialsAuth]
WAIT = 30.0
#: The name of the private pools of these tests: only their threads are refused.
TEST_POOL = "worker-test-pool"
NO_THREAD = "can't start new thread"


# -- the pool on its own ----------------------------------------------------------------


def test_idle_workers_end_and_new_ones_start_when_work_comes() -> None:
    pool = WorkerPool(max_workers=2, idle_timeout=0.01, name=TEST_POOL)
    ran: list[threading.Thread] = []
    pool.submit(lambda: ran.append(threading.current_thread())).result(WAIT)
    ran[0].join(WAIT)  # ends by itself once idle
    assert not ran[0].is_alive()
    assert pool.threads == ()
    pool.submit(lambda: ran.append(threading.current_thread())).result(WAIT)
    assert ran[1] is not ran[0]  # a new worker took the new work
    assert all(worker.daemon for worker in ran)  # never keeps the process alive
    ran[1].join(WAIT)
    assert pool.threads == ()


def test_stop_idle_ends_the_idle_workers_and_spares_the_busy_one() -> None:
    pool = WorkerPool(max_workers=3, name=TEST_POOL)
    gate = threading.Barrier(3 + 1)
    release = threading.Event()
    jobs = [pool.submit(lambda: gate.wait(WAIT)) for _ in range(2)]
    busy = pool.submit(lambda: (gate.wait(WAIT), release.wait(WAIT)))
    gate.wait(WAIT)  # three workers started; two of them are about to be done
    for job in jobs:
        job.result(WAIT)
    workers = set(pool.threads)
    assert len(workers) == 3
    pool.stop_idle()  # the two whose jobs are done end, even if not yet back to waiting
    ended = [t for t in workers if not t.is_alive()]
    assert len(ended) == 2  # returned once they had ended
    assert len(pool.threads) == 1
    release.set()
    busy.result(WAIT)
    assert pool.submit(lambda: None).result(WAIT) is None  # the pool goes on
    pool.stop_idle()
    assert pool.threads == ()


def test_never_more_workers_than_max_workers() -> None:
    pool = WorkerPool(max_workers=3, name=TEST_POOL)
    busy = threading.Barrier(3 + 1)
    release = threading.Event()
    done: list[int] = []

    def work(n: int) -> None:
        if n < 3:
            busy.wait(WAIT)
            release.wait(WAIT)
        done.append(n)

    jobs = [pool.submit(lambda n=n: work(n)) for n in range(50)]  # type: ignore[misc]
    busy.wait(WAIT)  # three workers busy, 47 jobs queued
    assert len(pool.threads) == 3
    release.set()
    for job in jobs:
        job.result(WAIT)
    assert sorted(done) == list(range(50))
    assert len(pool.threads) <= 3


def test_a_job_cancelled_while_queued_never_runs() -> None:
    pool = WorkerPool(max_workers=1, name=TEST_POOL)
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []
    first = pool.submit(lambda: (started.set(), release.wait(WAIT), ran.append("first")))
    assert started.wait(WAIT)
    queued = pool.submit(lambda: ran.append("queued"))
    assert queued.cancel()
    release.set()
    first.result(WAIT)
    pool.submit(lambda: ran.append("last")).result(WAIT)
    assert ran == ["first", "last"]


def test_a_job_that_raises_fails_its_future_and_the_worker_goes_on() -> None:
    pool = WorkerPool(max_workers=1, name=TEST_POOL)

    def fail() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        pool.submit(fail).result(WAIT)
    assert pool.submit(lambda: None).result(WAIT) is None


@pytest.fixture
def threads_refused(monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], None]:
    """While on (the start), starting a thread of a pool named TEST_POOL raises what
    CPython raises when the process has run out of threads. Call it with False to lift."""
    original = threading.Thread.start
    refused = [True]

    def start(self: threading.Thread) -> None:
        if refused[0] and self.name.startswith(TEST_POOL):
            raise RuntimeError(NO_THREAD)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    return lambda on: refused.__setitem__(0, on)


def test_no_thread_and_no_worker_refuses_the_work(
    threads_refused: Callable[[bool], None],
) -> None:
    pool = WorkerPool(name=TEST_POOL)
    with pytest.raises(WorkerStartError, match=NO_THREAD):
        pool.submit(lambda: None)
    threads_refused(False)
    assert pool.submit(lambda: None).result(WAIT) is None
    assert len(pool.threads) == 1  # the refused work was not left in the queue


def test_no_thread_while_workers_are_busy_queues_the_work(
    threads_refused: Callable[[bool], None],
) -> None:
    threads_refused(False)
    pool = WorkerPool(max_workers=4, name=TEST_POOL)
    started, release = threading.Event(), threading.Event()
    busy = pool.submit(lambda: (started.set(), release.wait(WAIT)))
    assert started.wait(WAIT)
    threads_refused(True)
    queued = pool.submit(lambda: None)  # no new thread, but the busy one takes it later
    release.set()
    busy.result(WAIT)
    assert queued.result(WAIT) is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_workers() -> None:
    """A worker of the parent and the pool's lock held by a thread of the parent at fork:
    the child has neither, and its pool works."""
    pool = WorkerPool(max_workers=1, name=TEST_POOL)
    started, release = threading.Event(), threading.Event()
    busy = pool.submit(lambda: (started.set(), release.wait(WAIT)))
    assert started.wait(WAIT)
    held, unlock = threading.Event(), threading.Event()

    def hold() -> None:
        with pool._cond:
            held.set()
            unlock.wait(WAIT)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(WAIT)
    pid = os.fork()
    if pid == 0:  # child
        signal.alarm(int(WAIT))
        try:
            ok = pool.submit(lambda: None).result(WAIT) is None and len(pool.threads) == 1
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    unlock.set()
    release.set()
    holder.join(WAIT)
    busy.result(WAIT)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize(
    ("reason", "why"),
    [
        (NO_THREAD, "the process has run out of threads"),
        ("can't create new thread at interpreter shutdown", "the interpreter is shutting down"),
        ("daemon threads are disabled in this (sub)interpreter", "does not let us start one"),
    ],
)
def test_the_no_thread_message_says_why(reason: str, why: str) -> None:
    message = no_thread("the token request", reason)
    assert message.startswith("Could not start a worker thread for the token request")
    assert f"({reason})" in message
    assert why in message


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_no_thread_of_ours_outlives_close(
    server: LoopbackServer, make_auth: MakeAuth, loop: str
) -> None:
    """An async token request started a worker; once the object is closed, no worker
    is left (it would otherwise wait idle_timeout for more work)."""
    auth = make_auth()
    pool = private_pool(auth)
    assert run_on(loop, auth.aget_token).access_token
    workers = pool.threads
    assert workers
    auth.close()
    assert not any(worker.is_alive() for worker in workers)
    assert pool.threads == ()


def test_closing_one_object_leaves_the_others_work_on_the_shared_pool(
    server: LoopbackServer, make_auth: MakeAuth
) -> None:
    """Two objects' token requests wait in the queue of one busy pool; closing the first
    answers its caller at once and the second's request still runs."""
    pool = WorkerPool(max_workers=1, name=TEST_POOL)
    first, second = make_auth(), make_auth()
    first._engine._workers = second._engine._workers = pool
    started, release = threading.Event(), threading.Event()
    busy = pool.submit(lambda: (started.set(), release.wait(WAIT)))
    assert started.wait(WAIT)  # the one worker is busy: what comes next is queued

    async def both() -> tuple[BaseException | Token, BaseException | Token]:
        one = asyncio.ensure_future(first.aget_token())
        two = asyncio.ensure_future(second.aget_token())
        await asyncio.sleep(0)  # both have joined their flights and queued their requests
        first.close()
        assert not busy.done()  # close() waited for no queued job (nor for other objects')
        outcome = await asyncio.gather(one, return_exceptions=True)
        release.set()
        return outcome[0], await two

    closed, token = asyncio.run(both())
    assert isinstance(closed, DeliveryAuthError)
    assert "closed" in str(closed)
    assert isinstance(token, Token)
    assert len(server.state.token_requests) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_fetches_from_an_event_loop(
    server: LoopbackServer, make_auth: MakeAuth
) -> None:
    """The parent's shared pool has a worker and its lock is held by a parent thread at
    fork: the child's async token request still runs, on a worker of its own."""
    auth = make_auth()
    assert asyncio.run(auth.aget_token()).access_token  # the shared pool has a worker now
    held, unlock = threading.Event(), threading.Event()

    def hold() -> None:
        with SHARED_POOL._cond:
            held.set()
            unlock.wait(WAIT)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(WAIT)
    pid = os.fork()
    if pid == 0:  # child
        signal.alarm(int(WAIT))
        try:
            old = auth.get_token()
            auth._engine.invalidate(old)
            ok = asyncio.run(auth.aget_token()) != old
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    unlock.set()
    holder.join(WAIT)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(server.state.token_requests) == 2  # the child's


def test_pool_work_that_breaks_still_answers_its_waiters(
    server: LoopbackServer, make_auth: MakeAuth
) -> None:
    """The engine's pool work settles its flight itself; should it ever raise instead,
    the caller still gets an answer rather than waiting forever."""
    auth = make_auth()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    auth._engine._fly = broken  # type: ignore[method-assign]
    outcome: concurrent.futures.Future[Token] = concurrent.futures.Future()

    def main() -> None:
        try:
            outcome.set_result(asyncio.run(auth.aget_token()))
        except BaseException as exc:
            outcome.set_exception(exc)

    threading.Thread(target=main, daemon=True).start()
    error = outcome.exception(WAIT)
    assert isinstance(error, DeliveryAuthError)
    assert "interrupted (RuntimeError" in str(error)
    del auth._engine._fly
    assert asyncio.run(auth.aget_token()).access_token  # nothing left pending


# -- the engine when no thread can be started ---------------------------------------------


def private_pool(auth: ClientCredentialsAuth) -> WorkerPool:
    """Give ``auth`` a pool of its own, so that only its threads are refused."""
    pool = WorkerPool(name=TEST_POOL)
    auth._engine._workers = pool
    return pool


async def async_get(auth: ClientCredentialsAuth, url: str) -> int:
    async with httpx.AsyncClient(auth=auth, timeout=WAIT) as client:
        return (await client.get(url)).status_code


def run_on(loop: str, function: Callable[..., Any], *args: Any) -> Any:
    """``await function(*args)`` on a new asyncio or trio loop."""
    if loop == "asyncio":
        return asyncio.run(function(*args))
    return trio.run(function, *args)


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_an_async_cold_call_without_a_thread_says_so(
    server: LoopbackServer,
    make_auth: MakeAuth,
    threads_refused: Callable[[bool], None],
    loop: str,
) -> None:
    auth = make_auth()
    private_pool(auth)
    with pytest.raises(DeliveryAuthError) as raised:
        run_on(loop, auth.aget_token)
    message = str(raised.value)
    print(message)
    assert "Could not start a worker thread for the token request" in message
    assert NO_THREAD in message
    assert "run out of threads" in message
    assert "closed" not in message
    assert server.state.token_requests == []
    threads_refused(False)
    assert run_on(loop, async_get, auth, server.url()) == 200  # once threads start again, it works
    assert len(server.state.token_requests) == 1


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_dropping_a_rejected_token_without_a_thread_says_so(
    server: LoopbackServer,
    make_auth: MakeAuth,
    threads_refused: Callable[[bool], None],
    tmp_path: Path,
    loop: str,
) -> None:
    """The shared cache is updated off the event loop: no thread, a clear error."""
    auth = make_auth(cache=FileTokenCache(tmp_path / "tokens.json"))
    private_pool(auth)
    auth.get_token()  # a sync call needs no worker
    server.state.revoke_all()
    with pytest.raises(DeliveryAuthError, match="Could not start a worker thread") as raised:
        run_on(loop, async_get, auth, server.url())
    assert "dropping the rejected token" in str(raised.value)
    assert "closed" not in str(raised.value)
    threads_refused(False)
    assert run_on(loop, async_get, auth, server.url()) == 200
    assert len(server.state.token_requests) == 2


def test_a_background_refresh_without_a_thread_is_logged_and_tried_again(
    server: LoopbackServer,
    make_auth: MakeAuth,
    threads_refused: Callable[[bool], None],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(engine_module, "_BACKGROUND_RETRY", 0.0)  # "later" is now
    cache = MemoryTokenCache()
    auth = make_auth(cache=cache)
    private_pool(auth)
    seeded = Token("seeded-token", lifetime=3600, obtained_at=time.monotonic() - 2000)
    server.state.valid.add(seeded.access_token)
    cache.set(cache_key(server.token_url, CLIENT_ID, CLIENT_SECRET, None, {}), seeded)
    caplog.set_level(logging.WARNING, logger="delivery_auth")
    assert auth.get_token() == seeded  # adopts the seeded token, due for refresh-ahead
    assert auth.get_token() == seeded  # the refresh cannot start: the token stays in use
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    print(warnings)
    assert any("Could not start a worker thread" in w and "tried again" in w for w in warnings)
    assert auth._engine._flight is None  # nothing left pending
    assert server.state.token_requests == []
    threads_refused(False)
    assert auth.get_token() == seeded  # tried again: this time the refresh starts
    flight = auth._engine._flight
    if flight is not None:
        flight.result(WAIT)
    assert auth.get_token() != seeded
    assert len(server.state.token_requests) == 1


def test_a_token_request_whose_deadline_thread_cannot_start_says_so(
    server: LoopbackServer, make_auth: MakeAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each token request has a watchdog thread for its overall deadline (deadline.py)."""
    original = threading.Thread.start
    refused = [True]

    def start(self: threading.Thread) -> None:
        if refused[0] and self.name == "delivery-auth-deadline":
            raise RuntimeError(NO_THREAD)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    auth = make_auth()
    with pytest.raises(DeliveryAuthError) as raised:
        auth.get_token()
    message = str(raised.value)
    assert "Could not start a worker thread for the deadline of the token request" in message
    assert NO_THREAD in message
    assert server.state.token_requests == []
    refused[0] = False
    assert auth.get_token().access_token
    assert len(server.state.token_requests) == 1


def test_another_runtime_error_in_a_token_request_is_not_taken_for_a_thread_error(
    server: LoopbackServer, make_auth: MakeAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("something else")

    monkeypatch.setattr(deadline_module, "_Deadline", broken)
    with pytest.raises(RuntimeError, match="something else"):
        make_auth().get_token()


# -- no thread per auth object ----------------------------------------------------------


@pytest.fixture
def remote_token_url() -> Iterator[str]:
    """The loopback token endpoint in a child process, so that its threads (one per
    keep-alive connection) are not counted among this process's threads."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from loopback import LoopbackServer; "
        "s = LoopbackServer(); print(s.server_address[1], flush=True); s.serve_forever(0.05)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        yield f"http://127.0.0.1:{port}/token"
    finally:
        child.terminate()
        child.wait(WAIT)


OBJECTS = 200


@pytest.fixture
def many_auths(remote_token_url: str) -> Iterator[list[ClientCredentialsAuth]]:
    """``OBJECTS`` auth objects whose tokens are due for refresh-ahead as soon as fetched
    (``refresh_ratio=0``) and usable for an hour."""
    auths = [
        ClientCredentialsAuth(
            remote_token_url, CLIENT_ID, CLIENT_SECRET, refresh_ratio=0, backoff=FAST_BACKOFF
        )
        for _ in range(OBJECTS)
    ]
    yield auths
    for auth in auths:
        auth.close()


def pool_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith(SHARED_POOL.name))


def test_objects_that_each_refreshed_in_the_background_leave_at_most_four_threads(
    many_auths: list[ClientCredentialsAuth],
) -> None:
    before = threading.active_count() - pool_threads()  # idle workers of earlier tests count
    for auth in many_auths:
        auth.get_token()  # fetched in this thread
    for auth in many_auths:
        auth.get_token()  # due: one background refresh each, all queued at once
    for auth in many_auths:
        flight = auth._engine._flight
        if flight is not None:  # None: that refresh has already landed
            flight.result(WAIT)
    assert [auth.token_requests for auth in many_auths] == [2] * OBJECTS
    grown = threading.active_count() - before
    print(f"{OBJECTS} objects refreshed in the background: {grown} more threads")
    assert grown <= 4
    assert pool_threads() <= 4


def test_objects_fetching_from_an_event_loop_leave_at_most_four_threads(
    many_auths: list[ClientCredentialsAuth],
) -> None:
    before = threading.active_count() - pool_threads()  # idle workers of earlier tests count

    async def fetch_all() -> list[Any]:
        return await asyncio.gather(*(auth.aget_token() for auth in many_auths))

    assert all(token.access_token for token in asyncio.run(fetch_all()))
    assert [auth.token_requests for auth in many_auths] == [1] * OBJECTS
    grown = threading.active_count() - before
    print(f"{OBJECTS} async cold calls: {grown} more threads")
    assert grown <= 4
    assert pool_threads() <= 4
