"""The retry plan driven with plain values: no server, no client, no socket.

:mod:`delivery_auth.flow` describes one authorised send and what follows its response as
a generator of instructions (``READ_BODY``, ``Invalidate``, ``REWIND_BODY``,
``FRESH_LEASE``) that returns the lease to resend with, or ``None``. Here it is fed the
answers by hand (``plan.send(...)``, httpx's ``test_auth.py`` habit), then run by the two
drivers against a real engine whose token source is a list. The same behaviour through
real clients and servers: tests/test_retry.py, test_replay.py, test_response_bodies.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests

from delivery_auth import DeliveryAuth, MemoryTokenCache, RefreshPolicy, Token
from delivery_auth._drive import Driver
from delivery_auth.engine import Lease, TokenEngine
from delivery_auth.flow import (
    FRESH_LEASE,
    READ_BODY,
    REWIND_BODY,
    Attempt,
    FailureDetector,
    Flow,
    Instruction,
    Invalidate,
    Plan,
    StatusFailureDetector,
    Step,
    body_limit,
    judge_response,
)
from delivery_auth.replay import UNREPLAYABLE, Rewind, SeekPoints

URL = "https://api.example.com/v1/orders"
ORIGIN = "https://api.example.com:443"


class Tokens:
    """A token source that hands out the given access tokens in order."""

    def __init__(self, *values: str) -> None:
        self.values = list(values)

    def fetch(self) -> Token:
        return Token(self.values.pop(0))

    def close(self) -> None:
        pass

    def reset_after_fork(self) -> None:
        pass


class RecordingEngine(TokenEngine):
    """A real engine that also notes the calls a driver makes, in order."""

    def __init__(self, *values: str, refreshable: bool = True, log: list[str]) -> None:
        super().__init__(
            Tokens(*values),
            cache=MemoryTokenCache(),
            key="k",
            policy=RefreshPolicy(),
            format_header=lambda t: f"Bearer {t.access_token}",
            refreshable=refreshable,
        )
        self.log = log

    def invalidate(self, token: Token) -> bool:
        self.log.append(f"invalidate {token.access_token}")
        return super().invalidate(token)

    def current(self, *, fresh: bool = False) -> Lease:
        return self.note(super().current(fresh=fresh), fresh)

    async def acurrent(self, *, fresh: bool = False) -> Lease:
        return self.note(await super().acurrent(fresh=fresh), fresh)

    def note(self, lease: Lease, fresh: bool) -> Lease:
        self.log.append(f"{'fresh' if fresh else 'current'} {lease.token.access_token}")
        return lease


class JsonCodeDetector:
    """Needs the body of JSON answers: ``{"code": "TOKEN_EXPIRED"}`` at any status."""

    max_body = 64

    def needs_body(self, status_code: int, content_type: str) -> bool:
        return "json" in content_type

    def is_auth_failure(self, status_code: int, content_type: str, body: bytes | None) -> bool:
        return body is not None and json.loads(body).get("code") == "TOKEN_EXPIRED"


def lease(value: str) -> Lease:
    return Lease(Token(value), f"Bearer {value}", refresh_at=float("inf"), usable_until=1e300)


def finish(plan: Plan, answer: object) -> Lease | None:
    """Send the last answer; the plan must end, and this is what it returned."""
    with pytest.raises(StopIteration) as stop:
        plan.send(answer)
    result: Lease | None = stop.value.value
    return result


class Machine:
    """A flow with the ``cannot_refresh`` reports it made, and one rejected attempt."""

    def __init__(self, detector: FailureDetector | None = None) -> None:
        self.unrefreshable: list[int] = []
        self.flow = Flow(detector or StatusFailureDetector(), self.unrefreshable.append)
        self.old = lease("old")
        self.attempt = Attempt(ORIGIN, self.old)

    def judge(
        self,
        status: int,
        content_type: str = "",
        url: str = URL,
        header: str | None = "Bearer old",
    ) -> Step:
        return judge_response(self.attempt, self.flow.detector, status, content_type, url, header)

    def plan(self, status: int = 401, content_type: str = "") -> Plan:
        step = self.judge(status, content_type)
        assert step is not Step.DONE
        return self.flow.plan(self.attempt, step, status, content_type)


# -- the plan, answered by hand -------------------------------------------------------


class TestJudge:
    def test_success_is_done(self) -> None:
        assert Machine().judge(200) is Step.DONE

    def test_rejection_of_our_token_is_a_retry(self) -> None:
        assert Machine().judge(401) is Step.RETRY

    def test_cross_origin_final_url_is_done(self) -> None:
        machine = Machine()
        assert machine.judge(401, url="https://elsewhere.example/v1/orders") is Step.DONE
        assert machine.judge(401, url="https://api.example.com:8443/x") is Step.DONE
        assert machine.judge(401, url="not a url") is Step.DONE

    def test_missing_or_other_header_is_done(self) -> None:
        machine = Machine()
        assert machine.judge(401, header=None) is Step.DONE
        assert machine.judge(401, header="Bearer someone-else") is Step.DONE

    def test_body_needed_only_when_the_detector_asks(self) -> None:
        machine = Machine(JsonCodeDetector())
        assert machine.judge(200, "application/json") is Step.READ_BODY
        assert machine.judge(200, "text/html") is Step.DONE


class TestPlan:
    def test_rejection_invalidate_rewind_fresh_lease_resend(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="delivery_auth")
        machine = Machine()
        plan = machine.plan(401)
        # The rejected token is dropped first, the body rewound before the fresh token.
        assert next(plan) == Invalidate(Token("old"))
        assert plan.send(True) is REWIND_BODY
        assert plan.send(True) is FRESH_LEASE
        fresh = lease("new")
        assert finish(plan, fresh) is fresh
        assert machine.unrefreshable == []
        (record,) = caplog.records
        assert record.levelno == logging.INFO
        assert "resending once with token" in record.getMessage()

    def test_second_rejection_of_the_resend_is_not_ours(self) -> None:
        # The resend carries the fresh token: a 401 to it does not match the attempt's
        # lease, so the flow is done with it (one resend at most, never a loop).
        machine = Machine()
        assert machine.judge(401, header="Bearer new") is Step.DONE

    def test_unrefreshable_warns_and_returns(self) -> None:
        machine = Machine()
        plan = machine.plan(401)
        assert next(plan) == Invalidate(Token("old"))
        assert finish(plan, False) is None  # no rewind, no fresh lease asked for
        assert machine.unrefreshable == [401]

    def test_unreplayable_body_warns_and_returns(self, caplog: pytest.LogCaptureFixture) -> None:
        machine = Machine()
        plan = machine.plan(401)
        assert next(plan) == Invalidate(Token("old"))  # dropped even though not resent
        assert plan.send(True) is REWIND_BODY
        assert finish(plan, False) is None  # no fresh lease asked for
        assert "cannot be sent twice" in caplog.text
        assert [r.levelno for r in caplog.records] == [logging.WARNING]

    def test_same_token_reissued_is_not_resent(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO, logger="delivery_auth")
        machine = Machine()
        plan = machine.plan(401)
        next(plan)
        plan.send(True)
        plan.send(True)
        assert finish(plan, lease("old")) is None
        assert "issued the same token again" in caplog.text
        assert [r.levelno for r in caplog.records] == [logging.WARNING]

    def test_body_read_then_judged(self) -> None:
        machine = Machine(JsonCodeDetector())
        plan = machine.plan(200, "application/json")
        assert next(plan) is READ_BODY
        assert plan.send(b'{"code": "TOKEN_EXPIRED"}') == Invalidate(Token("old"))

        plan = machine.plan(200, "application/json")
        assert next(plan) is READ_BODY
        assert finish(plan, b'{"code": "OK"}') is None

        plan = machine.plan(200, "application/json")
        assert next(plan) is READ_BODY
        assert finish(plan, None) is None  # longer than the limit: not read, not judged


# -- the two drivers, on a real engine ------------------------------------------------


def drive(
    mode: str,
    driver: Driver,
    plan: Plan,
    rewind: Rewind = None,
    body: bytes | None = None,
    reads: list[int] | None = None,
) -> Lease | None:
    """Run ``plan`` with the sync or the async driver; ``reads`` gets the read bounds."""

    def read_body(detector: FailureDetector) -> bytes | None:
        if reads is not None:
            reads.append(body_limit(detector))
        return body

    async def aread_body(detector: FailureDetector) -> bytes | None:
        return read_body(detector)

    if mode == "sync":
        return driver.run(plan, read_body, rewind)
    return asyncio.run(driver.arun(plan, aread_body, rewind))


class NotedFile(io.BytesIO):
    """A seekable body that notes its rewinds in the engine's log."""

    def __init__(self, log: list[str]) -> None:
        super().__init__(b"payload")
        self.log = log

    def seek(self, offset: int, whence: int = 0) -> int:
        self.log.append(f"rewind to {offset}")
        return super().seek(offset, whence)


@pytest.mark.parametrize("mode", ["sync", "async"])
class TestDrivers:
    def setup(
        self, *tokens: str, detector: FailureDetector | None = None, refreshable: bool = True
    ) -> tuple[list[str], Driver, Attempt, Callable[..., Plan]]:
        log: list[str] = []
        engine = RecordingEngine(*tokens, refreshable=refreshable, log=log)
        flow = Flow(
            detector or StatusFailureDetector(), lambda status: log.append(f"warn {status}")
        )
        attempt = Attempt(ORIGIN, engine.current())

        def plan(status: int = 401, content_type: str = "") -> Plan:
            step = judge_response(
                attempt, flow.detector, status, content_type, URL, attempt.lease.header
            )
            return flow.plan(attempt, step, status, content_type)

        return log, Driver(engine, flow), attempt, plan

    def test_order_of_operations(self, mode: str) -> None:
        log, driver, _, plan = self.setup("t1", "t2")
        fresh = drive(mode, driver, plan(), SeekPoints([(NotedFile(log), 3)]))
        assert fresh is not None
        assert fresh.header == "Bearer t2"
        assert log == ["current t1", "invalidate t1", "rewind to 3", "fresh t2"]

    def test_unreplayable_body_drops_the_token_and_fetches_none(self, mode: str) -> None:
        log, driver, _, plan = self.setup("t1", "t2")
        assert drive(mode, driver, plan(), UNREPLAYABLE) is None
        assert log == ["current t1", "invalidate t1"]
        assert driver.engine.lease is None  # the next request fetches a new token

    def test_unrefreshable(self, mode: str) -> None:
        log, driver, _, plan = self.setup("t1", refreshable=False)
        assert drive(mode, driver, plan()) is None
        assert log == ["current t1", "invalidate t1", "warn 401"]

    def test_same_token_reissued(self, mode: str) -> None:
        log, driver, _, plan = self.setup("t1", "t1")
        assert drive(mode, driver, plan()) is None
        assert log == ["current t1", "invalidate t1", "fresh t1"]

    def test_body_is_read_within_the_detectors_bound(self, mode: str) -> None:
        log, driver, _, plan = self.setup("t1", "t2", detector=JsonCodeDetector())
        reads: list[int] = []
        expired = b'{"code": "TOKEN_EXPIRED"}'
        fresh = drive(mode, driver, plan(200, "application/json"), body=expired, reads=reads)
        assert fresh is not None
        assert fresh.header == "Bearer t2"
        assert reads == [JsonCodeDetector.max_body]
        fine = drive(mode, driver, plan(200, "application/json"), body=b"{}", reads=reads)
        assert fine is None
        assert log == ["current t1", "invalidate t1", "fresh t2"]


# -- the adapters, with plain request and response objects ---------------------------


def static_auth(*tokens: str) -> DeliveryAuth:
    return DeliveryAuth(RecordingEngine(*tokens, log=[]))


def test_first_send_carries_the_lease_and_a_success_ends_the_flow() -> None:
    auth = static_auth("t1")
    flow = auth.sync_auth_flow(httpx.Request("GET", URL))
    sent = next(flow)
    assert sent.headers["Authorization"] == "Bearer t1"
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200, request=sent))

    prepared = requests.Request("GET", URL).prepare()
    assert auth(prepared) is prepared
    assert prepared.headers["Authorization"] == "Bearer t1"
    (hook,) = prepared.hooks["response"]
    response = requests.Response()
    response.status_code, response.request = 200, prepared
    assert hook(response) is response


def test_two_rejections_one_resend() -> None:
    auth = static_auth("t1", "t2", "t3")
    flow = auth.sync_auth_flow(httpx.Request("GET", URL))
    sent = next(flow)
    resent = flow.send(httpx.Response(401, request=sent))
    assert resent.headers["Authorization"] == "Bearer t2"
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(401, request=resent))
    assert auth.token_requests == 2  # t3 never fetched


def test_async_two_rejections_one_resend() -> None:
    auth = static_auth("t1", "t2", "t3")

    async def main() -> Any:
        flow = auth.async_auth_flow(httpx.Request("GET", URL))
        sent = await flow.__anext__()
        resent = await flow.asend(httpx.Response(401, request=sent))
        assert resent.headers["Authorization"] == "Bearer t2"
        with pytest.raises(StopAsyncIteration):
            await flow.asend(httpx.Response(401, request=resent))

    asyncio.run(main())
    assert auth.token_requests == 2


def test_instructions_are_values() -> None:
    secret = "secret-access-token"
    instructions: list[Instruction] = [READ_BODY, Invalidate(Token(secret)), REWIND_BODY]
    assert instructions[1] == Invalidate(Token(secret))
    assert secret not in repr(instructions)  # a Token's repr never shows the token
