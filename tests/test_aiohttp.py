"""The aiohttp middleware through a real ``aiohttp.ClientSession``, against the loopback
servers and the emulator: the scenarios of the httpx async adapter."""

from __future__ import annotations

import asyncio
import hashlib
import io
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import httpx
import pytest
import requests
from loopback import LoopbackServer, Reply

from delivery_auth import ClientCredentialsAuth, InsecureTransportError
from delivery_auth.aiohttp import AuthMiddleware
from delivery_auth.demo import run_demo


async def _send(
    auth: Any, method: str, url: str, **kw: Any
) -> tuple[int, bytes, list[int], aiohttp.ClientResponse]:
    async with (
        aiohttp.ClientSession(middlewares=(AuthMiddleware(auth),)) as session,
        session.request(method, url, **kw) as response,
    ):
        body = await response.read()
        return response.status, body, [r.status for r in response.history], response


def send(auth: Any, method: str, url: str, **kw: Any) -> tuple[int, bytes, list[int]]:
    status, body, history, _ = asyncio.run(_send(auth, method, url, **kw))
    return status, body, history


def bearer(seen: Any) -> str | None:
    return seen.headers.get("Authorization")


def test_first_call_then_the_cached_token(
    server: LoopbackServer, make_auth: Callable[..., ClientCredentialsAuth]
) -> None:
    auth = make_auth()
    assert send(auth, "GET", server.url())[0] == 200
    assert send(auth, "GET", server.url())[0] == 200
    assert len(server.state.token_requests) == 1
    assert [bearer(s) for s in server.state.api_requests] == ["Bearer tok-1-" + _digest(1)] * 2


def _digest(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()[:8]


def test_cold_start_stampede_of_500_coroutines_makes_one_token_request(
    server: LoopbackServer, make_auth: Callable[..., ClientCredentialsAuth]
) -> None:
    auth = make_auth()

    async def stampede() -> list[int]:
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(
            middlewares=(AuthMiddleware(auth),), connector=connector
        ) as session:

            async def one() -> int:
                async with session.get(server.url()) as response:
                    await response.read()
                    return response.status

            return list(await asyncio.gather(*(one() for _ in range(500))))

    assert asyncio.run(stampede()) == [200] * 500
    assert len(server.state.token_requests) == 1


def test_revocation_costs_one_refresh_and_one_resend(
    server: LoopbackServer, make_auth: Callable[..., ClientCredentialsAuth]
) -> None:
    auth = make_auth()
    assert send(auth, "GET", server.url())[0] == 200
    server.state.revoke_all()
    status, _, _ = send(auth, "POST", server.url(), data=b'{"n": 1}')
    assert status == 200
    assert len(server.state.token_requests) == 2
    first, rejected, resent = server.state.api_requests
    assert bearer(rejected) == bearer(first) != bearer(resent)
    assert rejected.body == resent.body == b'{"n": 1}'


def test_401_twice_is_returned_after_one_resend(
    server: LoopbackServer, make_auth: Callable[..., ClientCredentialsAuth]
) -> None:
    server.state.api_script.extend([Reply(401, {"error": "no"}), Reply(401, {"error": "no"})])
    status, body, _ = send(make_auth(), "GET", server.url())
    assert (status, body) == (401, b'{"error": "no"}')
    assert len(server.state.api_requests) == 2
    assert len(server.state.token_requests) == 2


def test_a_streamed_request_body_is_not_resent(
    server: LoopbackServer,
    make_auth: Callable[..., ClientCredentialsAuth],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def stream() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b"part two"

    server.state.api_script.append(Reply(401, {"error": "invalid_token"}))
    status, _, _ = send(make_auth(), "POST", server.url(), data=stream())
    assert status == 401
    (seen,) = server.state.api_requests
    assert seen.body == b"part one, part two"
    assert len(server.state.token_requests) == 1  # an unreplayable body costs no token
    assert "cannot be sent twice" in caplog.text


@pytest.mark.parametrize(
    "make_body",
    [lambda: b"x" * 70_000, lambda: io.BytesIO(b"seekable " * 5000)],
    ids=["bytes", "seekable file"],
)
def test_a_replayable_body_is_resent_byte_for_byte(
    server: LoopbackServer,
    make_auth: Callable[..., ClientCredentialsAuth],
    make_body: Callable[[], Any],
) -> None:
    server.state.api_script.append(Reply(401, {"error": "invalid_token"}))
    status, _, _ = send(make_auth(), "PUT", server.url(), data=make_body())
    assert status == 200
    rejected, resent = server.state.api_requests
    assert len(rejected.body) > 40_000
    assert resent.body == rejected.body


def test_a_cross_origin_redirect_carries_no_token(
    server: LoopbackServer,
    other_server: LoopbackServer,
    make_auth: Callable[..., ClientCredentialsAuth],
) -> None:
    target = other_server.url("/api/elsewhere")
    status, _, history = send(make_auth(), "GET", server.url(f"/redirect?to={target}"))
    assert (status, history) == (401, [302])  # the other origin refuses the anonymous call
    (seen,) = other_server.state.api_requests
    assert bearer(seen) is None
    assert len(server.state.token_requests) == 1  # its 401 is not about our token


def test_a_same_origin_redirect_carries_the_token_and_its_401_is_retried(
    server: LoopbackServer, make_auth: Callable[..., ClientCredentialsAuth]
) -> None:
    auth = make_auth()
    assert send(auth, "GET", server.url())[0] == 200
    server.state.revoke_all()
    moved = server.url("/api/moved")
    status, _, history = send(auth, "GET", server.url(f"/redirect?to={moved}"))
    assert (status, history) == (200, [302])
    hops = server.state.api_requests[1:]
    assert [s.path for s in hops] == [f"/redirect?to={moved}", "/api/moved", "/api/moved"]
    assert bearer(hops[1]) == bearer(hops[0]) != bearer(hops[2])


def test_the_rejected_response_is_released(
    server: LoopbackServer, make_auth: Callable[..., ClientCredentialsAuth]
) -> None:
    async def two_calls() -> int:
        # One connection, and a rejection too long to arrive with its headers: a rejected
        # response that is not released would hold the connection the resend needs.
        connector = aiohttp.TCPConnector(limit=1)
        rejection = Reply(401, b"x" * 4_000_000, {"Content-Type": "text/plain"})
        async with aiohttp.ClientSession(
            middlewares=(AuthMiddleware(make_auth()),), connector=connector
        ) as session:
            for _ in range(2):
                server.state.api_script.append(rejection)
                async with session.get(server.url(), timeout=aiohttp.ClientTimeout(60)) as r:
                    assert r.status == 200
            return len(server.state.api_requests)

    assert asyncio.run(two_calls()) == 4


def test_http_to_a_remote_host_is_refused_before_sending(
    make_auth: Callable[..., ClientCredentialsAuth],
) -> None:
    with pytest.raises(InsecureTransportError):
        send(make_auth(), "GET", "http://api.example.com/v1/orders")


def test_one_object_serves_requests_httpx_and_aiohttp_with_one_token(
    server: LoopbackServer, make_auth: Callable[..., ClientCredentialsAuth]
) -> None:
    auth = make_auth()
    assert requests.get(server.url(), auth=auth, timeout=10).status_code == 200
    assert httpx.get(server.url(), auth=auth, timeout=10).status_code == 200
    assert send(auth, "GET", server.url())[0] == 200
    assert len(server.state.token_requests) == 1
    assert len({bearer(s) for s in server.state.api_requests}) == 1


def test_every_provider_through_aiohttp_in_the_demo() -> None:
    out = io.StringIO()
    assert run_demo(out, clients=["aiohttp"]), out.getvalue()


def test_it_takes_only_auth_objects() -> None:
    with pytest.raises(TypeError, match="delivery_auth auth object"):
        AuthMiddleware(("user", "password"))  # type: ignore[arg-type]


def test_importing_delivery_auth_does_not_import_aiohttp() -> None:
    code = "import sys, delivery_auth, delivery_auth.demo; print('aiohttp' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    assert result.stdout.strip() == "False"
