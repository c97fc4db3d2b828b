"""PasswordGrantAuth: the OAuth2 resource-owner password grant with everything the engine
gives client credentials, and the password kept as secret as the client secret.

Against the loopback token endpoint (it issues tokens to the right client credentials
whatever the grant, and records what it received) through every client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import CLIENTS, FAST_BACKOFF, call, closing
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer, Reply

from delivery_auth import InvalidClientError, MemoryTokenCache, PasswordGrantAuth
from delivery_auth.cache.base import cache_key

USERNAME = "gkp-user-7"
PASSWORD = 'Pa$$w0rd+with:odd"chars'

MakeAuth = Callable[..., PasswordGrantAuth]


@pytest.fixture
def make_password_auth(server: LoopbackServer) -> Iterator[MakeAuth]:
    def build(password: str = PASSWORD, **options: Any) -> PasswordGrantAuth:
        options.setdefault("backoff", FAST_BACKOFF)
        return PasswordGrantAuth(
            server.token_url, CLIENT_ID, CLIENT_SECRET, USERNAME, password, **options
        )

    yield from closing(build)


@pytest.mark.parametrize("client", CLIENTS)
def test_first_call_reuse_rejection(
    client: str, server: LoopbackServer, make_password_auth: MakeAuth
) -> None:
    auth = make_password_auth()
    assert call(client, auth, "GET", server.url()).status == 200
    assert call(client, auth, "GET", server.url()).status == 200
    assert len(server.state.token_requests) == 1  # reused
    server.state.revoke_all()
    result = call(client, auth, "POST", server.url(), body=b'{"n": 1}')
    assert (result.status, result.history) == (200, [401])
    assert len(server.state.token_requests) == 2  # one new token, one resend
    for seen in server.state.token_requests:
        assert seen.form == {
            "grant_type": "password",
            "username": USERNAME,
            "password": PASSWORD,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }


def test_json_body_and_basic_client_auth(
    server: LoopbackServer, make_password_auth: MakeAuth
) -> None:
    auth = make_password_auth(
        token_request_format="json", token_endpoint_auth_method="client_secret_basic"
    )
    auth.get_token()
    (seen,) = server.state.token_requests
    assert json.loads(seen.body) == {
        "grant_type": "password",
        "username": USERNAME,
        "password": PASSWORD,
    }


def test_stampede_is_one_token_request(
    server: LoopbackServer, make_password_auth: MakeAuth
) -> None:
    auth = make_password_auth()
    server.state.token_gate = gate = threading.Event()
    callers = 24

    async def many() -> list[int]:
        async with httpx.AsyncClient(auth=auth, timeout=10) as client:
            tasks = [asyncio.ensure_future(client.get(server.url())) for _ in range(callers)]
            await asyncio.to_thread(server.state.token_arrived.wait, 10)
            gate.set()
            return [(await task).status_code for task in tasks]

    assert asyncio.run(many()) == [200] * callers
    assert len(server.state.token_requests) == 1


def test_refreshes_ahead_in_the_background(
    server: LoopbackServer, make_password_auth: MakeAuth
) -> None:
    auth = make_password_auth(refresh_ratio=0.0)  # due for refresh at once
    auth.get_token()
    server.state.token_issued.clear()
    assert call("requests", auth, "GET", server.url()).status == 200  # served at once ...
    assert server.state.token_issued.wait(10)  # ... while a new token is fetched
    assert len(server.state.token_requests) == 2
    assert server.state.token_requests[1].form["grant_type"] == "password"


def test_a_shared_cache_serves_the_same_user_only(server: LoopbackServer) -> None:
    cache = MemoryTokenCache()

    def build(username: str, password: str) -> PasswordGrantAuth:
        return PasswordGrantAuth(
            server.token_url, CLIENT_ID, CLIENT_SECRET, username, password, cache=cache
        )

    first, same, other_password, other_user = (
        build(USERNAME, PASSWORD),
        build(USERNAME, PASSWORD),
        build(USERNAME, "another-password"),
        build("someone-else", PASSWORD),
    )
    with first, same, other_password, other_user:
        assert first.get_token() == same.get_token()
        assert len(server.state.token_requests) == 1
        other_password.get_token()
        other_user.get_token()
        assert len(server.state.token_requests) == 3
        keys = {auth._engine._key for auth in (first, other_password, other_user)}
        assert len(keys) == 3
        assert first._engine._key != cache_key(server.token_url, CLIENT_ID, CLIENT_SECRET)
        assert first == same
        assert first != other_password
        assert PASSWORD not in str(first._identity())


@pytest.mark.parametrize(
    "reply",
    [
        Reply(400, {"error": "invalid_grant", "error_description": f"bad password {PASSWORD}"}),
        Reply(401, {"title": "Unauthorized", "detail": f"login {USERNAME}:{PASSWORD} refused"}),
    ],
    ids=["invalid_grant", "401-problem"],
)
@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_password_is_a_clear_error_without_the_password(
    client: str,
    reply: Reply,
    server: LoopbackServer,
    make_password_auth: MakeAuth,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.state.token_script.append(reply)
    auth = make_password_auth()
    with pytest.raises(InvalidClientError) as caught:
        call(client, auth, "GET", server.url())
    error = caught.value
    assert "username and password" in str(error)
    assert len(server.state.token_requests) == 1  # a refusal is not retried
    assert server.state.api_requests == []
    shown = str(error) + repr(error) + str(vars(error)) + caplog.text + repr(auth)
    assert PASSWORD not in shown
    assert CLIENT_SECRET not in shown


def test_repr_shows_the_user_not_the_password(make_password_auth: MakeAuth) -> None:
    auth = make_password_auth()
    assert USERNAME in repr(auth)
    assert PASSWORD not in repr(auth) + str(auth)


@pytest.mark.parametrize(
    ("username", "password", "says"),
    [("", PASSWORD, "username"), (USERNAME, "", "password"), (USERNAME, None, "password")],
)
def test_bad_arguments(server: LoopbackServer, username: str, password: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        PasswordGrantAuth(server.token_url, CLIENT_ID, CLIENT_SECRET, username, password)


def test_token_params_may_not_override_the_grant(server: LoopbackServer) -> None:
    with pytest.raises(ValueError, match="'password'"):
        PasswordGrantAuth(
            server.token_url,
            CLIENT_ID,
            CLIENT_SECRET,
            USERNAME,
            PASSWORD,
            token_params={"password": "x"},
        )
