"""The two drivers of :mod:`delivery_auth.flow`'s plans: one for sync code (requests,
``httpx.Client``, ``httpx2.Client``) and one for asyncio and trio (``AsyncClient``).

A driver does the I/O a plan asks for (the engine's calls, the body read, the rewind)
and hands the plan the answers; it decides nothing. The adapters in
:mod:`delivery_auth.auth` send, and resend with the lease a plan returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .engine import Lease, TokenEngine
from .flow import (
    FailureDetector,
    Flow,
    FreshLease,
    Instruction,
    Invalidate,
    Plan,
    ReadBody,
    RewindBody,
)
from .replay import Rewind, arewound, rewound

__all__ = ["Driver"]


class _Exchange:
    """A plan's instructions, one per iteration; set ``answer`` before taking the next.

    When the plan ends, ``result`` holds what it returned.
    """

    __slots__ = ("answer", "plan", "result")

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.answer: object = None
        self.result: Lease | None = None

    def __iter__(self) -> _Exchange:
        return self

    def __next__(self) -> Instruction:
        try:
            return self.plan.send(self.answer)
        except StopIteration as done:
            self.result = done.value
            raise StopIteration from None


class Driver:
    """Carries out the plans of one auth object: its :class:`~delivery_auth.flow.Flow`
    and its engine, given explicitly to every adapter that needs them.

    ``read_body(detector)`` reads the response body: at most ``body_limit(detector)`` bytes
    of it, or ``None`` (longer, not read: the response is still the user's, every byte).
    ``rewind`` is how to put the request body back (see :mod:`delivery_auth.replay`).
    """

    __slots__ = ("engine", "flow")

    def __init__(self, engine: TokenEngine, flow: Flow) -> None:
        self.engine = engine
        self.flow = flow

    def run(
        self, plan: Plan, read_body: Callable[[FailureDetector], bytes | None], rewind: Rewind
    ) -> Lease | None:
        """Carry out ``plan`` from sync code: the lease to resend with, or ``None``."""
        exchange = _Exchange(plan)
        for instruction in exchange:
            match instruction:
                case ReadBody():
                    exchange.answer = read_body(self.flow.detector)
                case Invalidate(token=token):
                    exchange.answer = self.engine.invalidate(token)
                case RewindBody():
                    exchange.answer = rewound(rewind)
                case FreshLease():
                    exchange.answer = self.engine.current(fresh=True)
        return exchange.result

    async def arun(
        self,
        plan: Plan,
        read_body: Callable[[FailureDetector], Awaitable[bytes | None]],
        rewind: Rewind,
    ) -> Lease | None:
        """:meth:`run` for asyncio and trio: every answer is awaited."""
        exchange = _Exchange(plan)
        for instruction in exchange:
            match instruction:
                case ReadBody():
                    exchange.answer = await read_body(self.flow.detector)
                case Invalidate(token=token):
                    exchange.answer = await self.engine.ainvalidate(token)
                case RewindBody():
                    exchange.answer = await arewound(rewind)
                case FreshLease():
                    exchange.answer = await self.engine.acurrent(fresh=True)
        return exchange.result
