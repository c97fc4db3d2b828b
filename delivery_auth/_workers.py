"""One small pool of worker threads shared by every auth object in the process.

Async callers need a thread for a token request (it must not block their event loop),
and a token past its refresh time is renewed in the background. Both run here, for all
auth objects together: at most ``max_workers`` threads, started when work arrives and
ended after ``idle_timeout`` seconds without any, so a process with a thousand auth
objects has at most a few threads, and an idle process none. Closing an auth object
ends the workers that are idle at that moment (:meth:`WorkerPool.stop_idle`): once a
program has closed its auth objects, no thread of ours is left.

The workers are daemon threads: a background refresh in progress must not keep the
interpreter alive at exit (a token request may take ``timeout`` seconds per attempt),
and nothing they do needs finishing once the program ends. A non-daemon pool would also
have to refuse work once the main thread ends (as ``ThreadPoolExecutor`` does), which
breaks async callers in threads that are still running then.

Example::

    job = SHARED_POOL.submit(work)       # a concurrent.futures.Future[None]
    job.cancel()                         # True while it is still queued
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable

__all__ = ["SHARED_POOL", "WorkerPool", "WorkerStartError", "is_thread_start_error", "no_thread"]

Job = concurrent.futures.Future[None]


def no_thread(task: str, reason: str) -> str:
    """The message for a ``task`` that needed a thread when none could be started."""
    if sys.is_finalizing() or "shutdown" in reason:
        why = "the interpreter is shutting down"
    elif "new thread" in reason:
        why = (
            "the process has run out of threads (too many threads, or a limit such as "
            "ulimit -u or a container's pids limit)"
        )
    else:
        why = "this interpreter does not let us start one"
    return (
        f"Could not start a worker thread for {task} ({reason}): {why}. The next call tries again."
    )


def is_thread_start_error(exc: RuntimeError) -> bool:
    """True for what ``Thread.start()`` raises when no thread can be started
    ("can't start new thread", "can't create new thread at interpreter shutdown")."""
    return "new thread" in str(exc)


class WorkerStartError(RuntimeError):
    """No worker thread could be started and none is running to take the work.

    ``reason`` is what starting the thread raised (e.g. ``can't start new thread``).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WorkerPool:
    """At most ``max_workers`` threads, started on demand, each ending after
    ``idle_timeout`` seconds without work.

    :meth:`submit` returns a :class:`concurrent.futures.Future` that completes when the
    work has run; cancelling it while queued means the work never runs.
    """

    def __init__(
        self,
        *,
        max_workers: int = 4,
        idle_timeout: float = 30.0,
        name: str = "delivery-auth-worker",
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers!r}")
        self.max_workers = max_workers
        self.idle_timeout = idle_timeout
        self.name = name
        self._started = 0  # for thread names
        self._reset()
        _POOLS.add(self)

    def _reset(self) -> None:
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # workers wait here for work
        self._answered = threading.Condition(lock)  # stop_idle() waits here for its answers
        self._queue: collections.deque[tuple[Job, Callable[[], None]]] = collections.deque()
        self._workers: set[threading.Thread] = set()
        self._idle: set[threading.Thread] = set()  # workers waiting for work
        self._busy: dict[threading.Thread, Job] = {}  # workers with a job, and the job
        self._retiring: set[threading.Thread] = set()  # idle workers told to end

    def __repr__(self) -> str:
        return (
            f"WorkerPool(workers={len(self._workers)}, idle={len(self._idle)}, "
            f"queued={len(self._queue)}, max_workers={self.max_workers})"
        )

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        """The worker threads alive now (for tests and diagnostics)."""
        with self._cond:
            return tuple(self._workers)

    def current_job(self) -> Job | None:
        """The job the calling thread is running, when it is one of this pool's workers."""
        return self._busy.get(threading.current_thread())

    def submit(self, work: Callable[[], None]) -> Job:
        """Queue ``work``; a worker runs it as soon as one is free.

        Raises :class:`WorkerStartError` when a thread is needed, none can be started
        (the process has run out of threads, or the interpreter is shutting down) and
        no worker is alive to take the work later; the work is then not queued.
        """
        job: Job = concurrent.futures.Future()
        with self._cond:
            self._queue.append((job, work))
            if self._idle:
                self._cond.notify()
            if len(self._queue) > len(self._idle) and len(self._workers) < self.max_workers:
                try:
                    self._start_worker()
                except RuntimeError as exc:
                    if not self._workers:  # nobody would ever take it
                        self._queue.pop()
                        raise WorkerStartError(str(exc) or type(exc).__name__) from None
                    # the busy workers take it in turn
        return job

    def _start_worker(self) -> None:
        self._started += 1
        thread = threading.Thread(
            target=self._work, name=f"{self.name}-{self._started}", daemon=True
        )
        thread.start()  # RuntimeError: out of threads, or the interpreter is finalizing
        self._workers.add(thread)

    def stop_idle(self) -> None:
        """End the workers that have no work now, and return once they have ended.

        Workers whose job has not finished go on (and wait ``idle_timeout`` after it as
        usual); work submitted later starts new workers. A worker that finds work queued
        when told to end takes the work instead.
        """
        with self._cond:
            me = threading.current_thread()
            retiring = {
                worker
                for worker in self._workers
                if worker is not me and ((job := self._busy.get(worker)) is None or job.done())
            }
            if not retiring:
                return
            self._retiring |= retiring
            self._cond.notify_all()
            # Each answers at once: it ends, or takes work that was queued meanwhile.
            self._answered.wait_for(lambda: not self._retiring & retiring, timeout=_ANSWER)
            ended = retiring - self._workers
        for thread in ended:
            thread.join(_ANSWER)

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                self._busy.pop(me, None)
                idle_until = time.monotonic() + self.idle_timeout
                while not self._queue:
                    remaining = idle_until - time.monotonic()
                    if remaining <= 0 or me in self._retiring:
                        self._workers.discard(me)
                        self._answer(me)
                        return
                    self._idle.add(me)
                    try:
                        self._cond.wait(remaining)
                    finally:
                        self._idle.discard(me)
                self._answer(me)  # told to end, but there is work: it stays
                job, work = self._queue.popleft()
                self._busy[me] = job
            if job.set_running_or_notify_cancel():  # False: cancelled while queued
                try:
                    work()
                except BaseException as exc:  # the job's owner decides what it means
                    job.set_exception(exc)
                else:
                    job.set_result(None)
            del job, work  # hold nothing while idle

    def _answer(self, me: threading.Thread) -> None:
        if me in self._retiring:
            self._retiring.discard(me)
            self._answered.notify_all()


#: A bound for waits that end at once unless something is badly wrong (never a hang).
_ANSWER = 30.0

_POOLS: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


def _reset_pools_after_fork() -> None:
    """The child has none of the parent's threads, and their lock may be held: start over.

    Work queued in the parent is dropped; the engines forget their flights likewise.
    """
    for pool in list(_POOLS):
        pool._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pools_after_fork)

#: The pool every engine uses for async token requests, background refreshes and cache
#: I/O of async callers.
SHARED_POOL = WorkerPool()
