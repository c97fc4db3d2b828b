"""Thread-safe futures for the engine: settling them once, awaiting them from asyncio or
trio, and the errors their waiters get when the work behind them cannot run.

Example::

    lease = await await_future(flight)   # from any event loop, never blocking it
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sys
from typing import TypeVar

from ._workers import no_thread
from .errors import DeliveryAuthError

__all__ = ["await_future"]

T = TypeVar("T")
_CLOSED = "This auth object was closed; create a new one to go on."


def closed_error() -> DeliveryAuthError:
    return DeliveryAuthError(_CLOSED)


def no_worker_error(reason: str, task: str) -> DeliveryAuthError:
    """What an async caller sees when no thread can be started for its ``task``."""
    return DeliveryAuthError(no_thread(task, reason))


def interrupted(what: str, task: str = "The token request") -> DeliveryAuthError:
    """What the waiters of a task see when the thread running it was interrupted.

    A ``KeyboardInterrupt`` or ``SystemExit`` belongs to the thread it hit; raised in
    every waiter it would stop other threads and other threads' event loops.
    """
    return DeliveryAuthError(
        f"{task} was interrupted ({what} in the thread that ran it); nothing is known "
        "about the credentials. Retrying is fine: the next call makes a new token request."
    )


def settle(future: concurrent.futures.Future[T], result: T | BaseException) -> None:
    """Complete ``future`` unless it is complete already (close() may have got there first)."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


async def await_future(future: concurrent.futures.Future[T]) -> T:
    """Await a thread-safe future from asyncio or trio without blocking the loop."""
    if future.done():
        return future.result()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return await asyncio.wrap_future(future)
    trio = sys.modules.get("trio")
    if trio is None:  # pragma: no cover - only reachable from an unknown event loop
        raise RuntimeError("delivery_auth supports asyncio and trio event loops")
    trio_token = trio.lowlevel.current_trio_token()
    done = trio.Event()

    def wake(_: object) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            trio_token.run_sync_soon(done.set)

    future.add_done_callback(wake)
    await done.wait()
    return future.result()
