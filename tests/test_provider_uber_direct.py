"""Uber Direct: the form token request with its scope, the auth.uber.com / login.uber.com
choice, 30-day tokens, the 100-requests-an-hour quota met by a shared cache, and 401 ->
one refresh and one resend; against the emulator's Uber Direct page (loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import CLIENTS, FAST_BACKOFF, call, closing
from emulated import EmulatedProvider
from loopback import Reply

from delivery_auth import (
    ConfigurationError,
    DisallowedHostError,
    InvalidClientError,
    MemoryTokenCache,
    TokenEndpointUnavailableError,
    UberDirectAuth,
)
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.providers.uber_direct import LOGIN_TOKEN_URL, TOKEN_URL

CLIENT_ID = CREDENTIALS["uber_direct"].client_id
CLIENT_SECRET = CREDENTIALS["uber_direct"].client_secret
MakeAuth = Callable[..., UberDirectAuth]
THIRTY_DAYS = 2592000


@pytest.fixture
def server() -> Iterator[EmulatedProvider]:
    with EmulatedProvider("uber_direct") as srv:
        yield srv


@pytest.fixture
def make_auth(server: EmulatedProvider) -> Iterator[MakeAuth]:
    def build(client_secret: str = CLIENT_SECRET, **options: Any) -> UberDirectAuth:
        options.setdefault("token_url", server.token_url)
        options.setdefault("backoff", FAST_BACKOFF)
        return UberDirectAuth(CLIENT_ID, client_secret, **options)

    yield from closing(build)


def deliveries(client: str, auth: UberDirectAuth, server: EmulatedProvider) -> Any:
    return call(client, auth, "GET", server.resource_url)


@pytest.mark.parametrize(
    ("scope", "sent"),
    [
        (None, "eats.deliveries"),
        (["eats.deliveries", "direct.organizations"], "eats.deliveries direct.organizations"),
    ],
)
@pytest.mark.parametrize("client", CLIENTS)
def test_form_token_request_with_scope_then_reuse(
    client: str, scope: Any, sent: str, server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    auth = make_auth() if scope is None else make_auth(scope=scope)
    assert deliveries(client, auth, server).status == 200
    assert deliveries(client, auth, server).status == 200
    (token_request,) = server.token_requests
    assert token_request.path == "/oauth/v2/token"
    assert "Authorization" not in token_request.headers
    assert token_request.form == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": sent,
    }
    assert {seen.headers["Authorization"] for seen in server.api_requests} == {
        f"Bearer {server.issued[0]}"
    }


@pytest.mark.parametrize("client", CLIENTS)
def test_401_refreshes_once_and_resends_once(
    client: str, server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    auth = make_auth()
    assert deliveries(client, auth, server).status == 200
    server.revoke_all()
    result = deliveries(client, auth, server)
    assert (result.status, result.history) == (200, [401])
    assert len(server.token_requests) == 2


@pytest.mark.parametrize("client", CLIENTS)
def test_bad_credentials_are_a_clear_error(
    client: str, server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    with pytest.raises(InvalidClientError) as caught:
        deliveries(client, make_auth(client_secret="wrong-secret-4567"), server)
    assert caught.value.error == "invalid_client"
    assert "client_id and client_secret" in str(caught.value)
    assert "wrong-secret-4567" not in str(caught.value)
    assert server.api_requests == []


def test_a_thirty_day_token_is_refreshed_after_fifteen_days(
    server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    server.token_script.append(
        Reply(200, {"access_token": "uber-30d", "expires_in": THIRTY_DAYS, "token_type": "Bearer"})
    )
    lease = make_auth()._engine.current()
    assert lease.token.lifetime == THIRTY_DAYS
    assert lease.refresh_at - lease.token.obtained_at == pytest.approx(THIRTY_DAYS / 2)


def test_the_hourly_quota_is_met_by_one_shared_cache(
    server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    server.emu.uber_direct_token_quota = 1
    shared = MemoryTokenCache()
    workers = [make_auth(cache=shared) for _ in range(3)]

    async def all_workers() -> list[int]:
        async with httpx.AsyncClient() as session:
            answers = [await session.get(server.resource_url, auth=auth) for auth in workers]
        return [answer.status_code for answer in answers]

    assert asyncio.run(all_workers()) == [200, 200, 200]
    assert len(server.token_requests) == 1
    alone = make_auth()  # its own cache: a second token request, over the quota
    with pytest.raises(TokenEndpointUnavailableError, match="retry after 3600 s") as caught:
        deliveries("requests", alone, server)
    assert caught.value.status_code == 429
    assert len(server.token_requests) == 2  # a Retry-After of an hour is not waited for


def test_concurrent_cold_callers_share_one_token_request(
    server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    auth = make_auth()

    async def many() -> list[int]:
        async with httpx.AsyncClient(auth=auth) as session:
            answers = await asyncio.gather(*(session.get(server.resource_url) for _ in range(32)))
        return [answer.status_code for answer in answers]

    assert asyncio.run(many()) == [200] * 32
    assert len(server.token_requests) == 1


def test_token_urls_hosts_and_repr() -> None:
    with UberDirectAuth(CLIENT_ID, CLIENT_SECRET) as auth:
        assert auth.token_url == TOKEN_URL == "https://auth.uber.com/oauth/v2/token"
        assert auth.allowed_hosts == ("api.uber.com", "localhost", "127.0.0.0/8", "::1")
        assert repr(auth) == (
            f"UberDirectAuth(client_id={CLIENT_ID!r}, scope='eats.deliveries', "
            f"token_url={TOKEN_URL!r})"
        )
        assert CLIENT_SECRET not in repr(auth)
        with pytest.raises(DisallowedHostError, match="api-sandbox.uber.com"):
            call("httpx", auth, "GET", "https://api-sandbox.uber.com/v1/customers/c/deliveries")
    with UberDirectAuth(CLIENT_ID, CLIENT_SECRET, token_url=LOGIN_TOKEN_URL) as login:
        assert login.token_url == "https://login.uber.com/oauth/v2/token"
    with pytest.raises(ValueError, match="at least one scope"):
        UberDirectAuth(CLIENT_ID, CLIENT_SECRET, scope=" ")


def test_from_env(server: EmulatedProvider) -> None:
    env = {
        "UBER_DIRECT_CLIENT_ID": CLIENT_ID,
        "UBER_DIRECT_CLIENT_SECRET": CLIENT_SECRET,
        "UBER_DIRECT_SCOPE": "eats.deliveries direct.organizations",
    }
    with UberDirectAuth.from_env(env, token_url=server.token_url) as auth:
        assert auth.scope == "eats.deliveries direct.organizations"
        assert deliveries("httpx-async", auth, server).status == 200
    with pytest.raises(ConfigurationError) as caught:
        UberDirectAuth.from_env({})
    assert caught.value.missing == ("UBER_DIRECT_CLIENT_ID", "UBER_DIRECT_CLIENT_SECRET")
