"""Retry once, rewind bodies, respect origins: through every client, against real servers."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import httpx2
import pytest
import requests
import trio
from conftest import CLIENTS, call
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer, Reply

from delivery_auth import (
    ClientCredentialsAuth,
    DeliveryAuthError,
    DisallowedHostError,
    InsecureTransportError,
)

MakeAuth = Callable[..., ClientCredentialsAuth]
UNAUTHORIZED = Reply(401, {"error": "invalid_token"})


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("client", CLIENTS)
def test_header_is_bearer_token(server: LoopbackServer, make_auth: MakeAuth, client: str) -> None:
    auth = make_auth()
    assert call(client, auth, "GET", server.url()).status == 200
    sent = server.state.api_requests[0].headers["Authorization"]
    assert sent == f"Bearer {auth.get_token().access_token}"


@pytest.mark.parametrize("client", CLIENTS)
def test_401_twice_retries_exactly_once(
    server: LoopbackServer, make_auth: MakeAuth, client: str
) -> None:
    auth = make_auth()
    server.state.api_script.extend([UNAUTHORIZED, UNAUTHORIZED, UNAUTHORIZED])
    result = call(client, auth, "POST", server.url(), body=b"payload")
    assert (result.status, result.history) == (401, [401])
    assert len(server.state.api_requests) == 2
    assert len(server.state.token_requests) == 2
    first, second = server.state.api_requests
    assert first.headers["Authorization"] != second.headers["Authorization"]
    assert first.body == second.body == b"payload"


def test_retry_under_trio(server: LoopbackServer, make_auth: MakeAuth) -> None:
    auth = make_auth()

    async def get() -> tuple[int, int]:
        async with httpx.AsyncClient(auth=auth) as client:
            response = await client.get(server.url())
            return response.status_code, len(response.history)

    assert trio.run(get) == (200, 0)
    server.state.revoke_all()
    assert trio.run(get) == (200, 1)
    assert len(server.state.token_requests) == 2


@pytest.mark.parametrize("status", [403, 500, 400])
@pytest.mark.parametrize("client", CLIENTS)
def test_other_statuses_are_never_retried(
    server: LoopbackServer, make_auth: MakeAuth, client: str, status: int
) -> None:
    server.state.api_script.append(Reply(status, {"error": "nope"}))
    result = call(client, make_auth(), "GET", server.url())
    assert (result.status, result.history) == (status, [])
    assert len(server.state.token_requests) == 1
    assert len(server.state.api_requests) == 1


class TestBodies:
    def test_requests_generator_body_is_never_resent(
        self, server: LoopbackServer, make_auth: MakeAuth, caplog: pytest.LogCaptureFixture
    ) -> None:
        server.state.api_script.append(UNAUTHORIZED)

        def chunks() -> Iterator[bytes]:
            yield b"part-1;"
            yield b"part-2"

        response = requests.post(server.url(), data=chunks(), auth=make_auth())
        assert response.status_code == 401
        assert len(server.state.api_requests) == 1
        assert server.state.api_requests[0].body == b"part-1;part-2"
        assert "cannot be sent twice" in caplog.text

    def test_httpx_generator_body_is_never_resent(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        server.state.api_script.append(UNAUTHORIZED)

        def chunks() -> Iterator[bytes]:
            yield b"abc"

        with httpx.Client(auth=make_auth()) as client:
            assert client.post(server.url(), content=chunks()).status_code == 401
        assert len(server.state.api_requests) == 1

    def test_httpx_async_generator_body_is_never_resent(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        server.state.api_script.append(UNAUTHORIZED)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"abc"

        async def main() -> int:
            async with httpx.AsyncClient(auth=make_auth()) as client:
                return (await client.post(server.url(), content=chunks())).status_code

        assert asyncio.run(main()) == 401
        assert len(server.state.api_requests) == 1

    @pytest.mark.parametrize("client", ["requests", "httpx", "httpx2"])
    def test_seekable_file_is_resent_intact(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        payload = b"HEADER-SKIPPED|" + bytes(range(256)) * 40
        stream = io.BytesIO(payload)
        # requests sends a file from where it stands (the caller consumed a prefix) and must
        # rewind to there; httpx announces the whole file's length, so it starts at 0.
        start = 15 if client == "requests" else 0
        stream.seek(start)
        server.state.api_script.append(UNAUTHORIZED)
        result = call(client, make_auth(), "PUT", server.url(), body=stream)
        assert (result.status, result.history) == (200, [401])
        first, second = server.state.api_requests
        assert first.body == second.body == payload[start:]
        assert result.json()["body_sha256"] == sha(payload[start:])

    @pytest.mark.parametrize("client", ["requests", "httpx", "httpx-async", "httpx2"])
    def test_form_and_multipart_bodies_are_resent(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        auth = make_auth()
        upload = io.BytesIO(b"label-pdf-bytes")
        reject_next = server.state.api_script.append
        if client == "requests":
            reject_next(UNAUTHORIZED)
            assert requests.post(server.url(), data={"a": "1"}, auth=auth).status_code == 200
            reject_next(UNAUTHORIZED)
            r = requests.post(server.url(), files={"f": upload}, auth=auth)
            assert r.status_code == 200
        elif client == "httpx-async":

            async def go() -> None:
                async with httpx.AsyncClient(auth=auth) as c:
                    reject_next(UNAUTHORIZED)
                    assert (await c.post(server.url(), data={"a": "1"})).status_code == 200
                    reject_next(UNAUTHORIZED)
                    assert (await c.post(server.url(), files={"f": upload})).status_code == 200

            asyncio.run(go())
        else:
            module = httpx2 if client == "httpx2" else httpx
            with module.Client(auth=auth) as c:
                reject_next(UNAUTHORIZED)
                assert c.post(server.url(), data={"a": "1"}).status_code == 200
                reject_next(UNAUTHORIZED)
                assert c.post(server.url(), files={"f": upload}).status_code == 200
        bodies = [s.body for s in server.state.api_requests]
        assert len(bodies) == 4
        assert bodies[0] == bodies[1] == b"a=1"
        assert bodies[2] == bodies[3]
        assert b"label-pdf-bytes" in bodies[3]


class TestOrigins:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_cross_origin_redirect_does_not_carry_the_token(
        self,
        server: LoopbackServer,
        other_server: LoopbackServer,
        make_auth: MakeAuth,
        client: str,
    ) -> None:
        target = other_server.url("/api/elsewhere")
        result = call(client, make_auth(), "GET", server.url(f"/redirect?to={target}"))
        # The other origin never saw our token, so its 401 is not ours to retry.
        assert result.status == 401
        assert [s.headers.get("Authorization") for s in other_server.state.api_requests] == [None]
        assert len(server.state.token_requests) == 1
        assert len(server.state.api_requests) == 1

    @pytest.mark.parametrize("client", CLIENTS)
    def test_same_origin_redirect_then_401_is_retried_on_this_origin(
        self,
        server: LoopbackServer,
        other_server: LoopbackServer,
        make_auth: MakeAuth,
        client: str,
    ) -> None:
        auth = make_auth()
        assert call(client, auth, "GET", server.url()).status == 200
        server.state.revoke_all()
        result = call(client, auth, "GET", server.url(f"/redirect?to={server.url('/api/moved')}"))
        assert result.status == 200
        assert len(server.state.token_requests) == 2
        assert other_server.state.api_requests == []
        moved = [s for s in server.state.api_requests if s.path == "/api/moved"]
        # the first try carried the revoked token, the retry the fresh one
        assert len(moved) == 2
        assert moved[1].headers["Authorization"] == f"Bearer {auth.get_token().access_token}"
        assert moved[0].headers["Authorization"] != moved[1].headers["Authorization"]

    @pytest.mark.parametrize("client", CLIENTS)
    def test_disallowed_host_raises_before_sending(
        self, server: LoopbackServer, client: str
    ) -> None:
        auth = ClientCredentialsAuth(
            server.token_url, CLIENT_ID, CLIENT_SECRET, allowed_hosts=["api.example.com"]
        )
        with pytest.raises(DisallowedHostError, match=r"'127\.0\.0\.1'.*allowed_hosts"):
            call(client, auth, "GET", server.url())
        assert server.state.token_requests == []
        assert server.state.api_requests == []

    @pytest.mark.parametrize("client", CLIENTS)
    def test_plain_http_to_a_remote_host_raises_before_sending(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        with pytest.raises(InsecureTransportError, match="plain http"):
            call(client, make_auth(), "GET", "http://api.example.invalid/orders")
        assert server.state.token_requests == []


class TestStreaming:
    def test_httpx_streamed_response_is_not_read_by_the_flow(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        with (
            httpx.Client(auth=make_auth()) as client,
            client.stream("GET", server.url()) as response,
        ):
            assert response.status_code == 200
            assert not response.is_stream_consumed
            assert b"body_sha256" in response.read()

    def test_requests_streamed_response_is_not_read_by_the_hook(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        response = requests.get(server.url(), auth=make_auth(), stream=True)
        assert response.status_code == 200
        assert not response._content_consumed
        assert b"body_sha256" in response.raw.read()

    def test_requests_session_auth_and_cookies_on_retry(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        server.state.api_script.append(
            Reply(401, {"error": "invalid_token"}, {"Set-Cookie": "route=blue; Path=/"})
        )
        with requests.Session() as session:
            session.auth = make_auth()
            response = session.get(server.url())
        assert response.status_code == 200
        assert [h.status_code for h in response.history] == [401]
        assert server.state.api_requests[1].headers.get("Cookie") == "route=blue"


def test_retry_is_logged_without_tokens(
    server: LoopbackServer, make_auth: MakeAuth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="delivery_auth")
    auth = make_auth()
    old = auth.get_token()
    server.state.revoke_all()
    assert call("requests", auth, "GET", server.url()).status == 200
    messages = [r.getMessage() for r in caplog.records if "resending once" in r.getMessage()]
    assert messages == [
        f"The API rejected token {old.fingerprint} (HTTP 401); resending once with token "
        f"{auth.get_token().fingerprint}"
    ]


class TestAtMostOneRetry:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_retried_request_redirected_to_another_401_is_not_retried_again(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        again = server.url("/api/again")
        server.state.api_script.extend(
            [UNAUTHORIZED, Reply(302, b"", {"Location": again}), UNAUTHORIZED, UNAUTHORIZED]
        )
        result = call(client, make_auth(), "GET", server.url())
        assert result.status == 401
        assert len(server.state.api_requests) == 3  # first try, retry, its redirect target
        assert len(server.state.token_requests) == 2

    @pytest.mark.parametrize("client", CLIENTS)
    def test_a_redirect_after_the_retry_carries_the_fresh_token(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        auth = make_auth()
        server.state.api_script.extend(
            [UNAUTHORIZED, Reply(302, b"", {"Location": server.url("/api/moved")})]
        )
        result = call(client, auth, "GET", server.url())
        assert result.status == 200
        moved = server.state.api_requests[-1]
        assert moved.path == "/api/moved"
        assert moved.headers["Authorization"] == f"Bearer {auth.get_token().access_token}"
        assert len(server.state.token_requests) == 2

    @pytest.mark.parametrize("client", CLIENTS)
    def test_the_same_token_is_never_resent(
        self,
        server: LoopbackServer,
        make_auth: MakeAuth,
        client: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        same = Reply(200, {"access_token": "same-token", "expires_in": 3600})
        server.state.token_script.extend([same, same])
        server.state.api_script.append(UNAUTHORIZED)
        result = call(client, make_auth(), "GET", server.url())
        assert (result.status, result.history) == (401, [])
        assert len(server.state.api_requests) == 1
        assert len(server.state.token_requests) == 2
        assert "issued the same token again" in caplog.text


def test_requests_hooks_are_shared_only_when_stateless(
    server: LoopbackServer, make_auth: MakeAuth
) -> None:
    auth = make_auth()
    first = requests.Request("GET", server.url()).prepare()
    second = requests.Request("POST", server.url(), data=b"bytes").prepare()
    with_file = requests.Request("PUT", server.url(), data=io.BytesIO(b"file")).prepare()
    for prepared in (first, second, with_file):
        auth(prepared)
    (hook_1,), (hook_2,), (hook_3,) = (p.hooks["response"] for p in (first, second, with_file))
    assert hook_1 is hook_2  # body-less and bytes bodies: one hook per lease and origin
    assert hook_3 is not hook_1  # a file body carries its own rewind point
    other = requests.Request("GET", f"http://localhost:{server.server_address[1]}/x").prepare()
    auth(other)
    assert other.hooks["response"][0] is not hook_1  # another origin
    auth._engine.invalidate(auth.get_token())
    again = requests.Request("GET", server.url()).prepare()
    auth(again)
    assert again.hooks["response"][0] is not hook_1  # another lease


class TestRequestsFastLane:
    """The cached path of the requests adapter never outlives what it caches."""

    def test_a_revoked_token_is_not_sent_again_by_the_cached_path(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        with requests.Session() as session:
            assert session.get(server.url(), auth=auth).status_code == 200
            assert session.get(server.url(), auth=auth).status_code == 200  # cached path
            server.state.revoke_all()
            # rejected through httpx: the requests cached path must notice
            assert call("httpx", auth, "GET", server.url()).status == 200
            assert session.get(server.url(), auth=auth).status_code == 200
        sent = [s.headers["Authorization"] for s in server.state.api_requests]
        assert sent[0] == sent[1] == sent[2]  # the revoked token: twice via requests, once httpx
        assert sent[3] == sent[4] == f"Bearer {auth.get_token().access_token}"
        assert len(server.state.token_requests) == 2

    def test_other_origins_and_lookalikes_take_the_full_check(self, server: LoopbackServer) -> None:
        auth = ClientCredentialsAuth(
            server.token_url, CLIENT_ID, CLIENT_SECRET, allowed_hosts=["127.0.0.1"]
        )
        base = server.url("")
        assert requests.get(server.url(), auth=auth).status_code == 200
        for url in (
            f"{base}0/x",  # another port that starts with the same digits
            f"{base}.evil.example/x",
            f"{base}@evil.example/x",
            f"http://localhost:{server.server_address[1]}/x",
        ):
            prepared = requests.Request("GET", server.url()).prepare()
            prepared.url = url  # as written, even where requests itself would refuse to parse
            with pytest.raises((DisallowedHostError, InsecureTransportError, ValueError)):
                auth(prepared)
            assert "Authorization" not in prepared.headers
        auth.close()

    def test_close_stops_the_cached_path(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        auth = make_auth()
        assert requests.get(server.url(), auth=auth).status_code == 200
        auth.close()
        prepared = requests.Request("GET", server.url()).prepare()
        with pytest.raises(DeliveryAuthError, match="closed"):
            auth(prepared)
