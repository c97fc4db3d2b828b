"""Sendcloud: HTTP Basic with the public and secret key (the checks every static carrier
passes are in static_carriers.py), and with ``oauth=True`` client credentials with Basic
client authentication and ``scope=api``; against the emulator's Sendcloud page."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import CLIENTS, FAST_BACKOFF, call
from emulated import EmulatedProvider
from static_carriers import *  # noqa: F403 - the shared checks run with this carrier
from static_carriers import Carrier

from delivery_auth import InvalidClientError, SendcloudAuth
from delivery_auth.emulator import CREDENTIALS

KNOWN = CREDENTIALS["sendcloud"]


def _basic(secret: str) -> str:
    return "Basic " + base64.b64encode(f"{KNOWN.client_id}:{secret}".encode()).decode()


@pytest.fixture
def carrier() -> Carrier:
    return Carrier("sendcloud", "Authorization", _basic)


@pytest.fixture
def server(carrier: Carrier) -> Iterator[EmulatedProvider]:  # records its token endpoint too
    with EmulatedProvider("sendcloud", token_paths=("/oauth2/token",)) as srv:
        yield srv


def _oauth(server: EmulatedProvider, made: list[Any], **options: Any) -> SendcloudAuth:
    options.setdefault("backoff", FAST_BACKOFF)
    auth = server.emu.auth("sendcloud", oauth=True, **options)
    made.append(auth)
    assert isinstance(auth, SendcloudAuth)
    return auth


@pytest.mark.parametrize("client", CLIENTS)
def test_oauth_token_request_is_basic_client_auth_with_scope_api(
    client: str, server: EmulatedProvider, made: list[Any]
) -> None:
    auth = _oauth(server, made)
    assert call(client, auth, "GET", server.resource_url).status == 200
    assert call(client, auth, "GET", server.resource_url).status == 200
    (token_request,) = server.token_requests
    assert token_request.headers["Authorization"] == _basic(KNOWN.client_secret)
    assert token_request.form == {"grant_type": "client_credentials", "scope": "api"}
    (issued,) = server.issued
    assert [seen.headers["Authorization"] for seen in server.api_requests] == [
        f"Bearer {issued}"
    ] * 2


@pytest.mark.parametrize("client", CLIENTS)
def test_oauth_rejection_gets_one_fresh_token_and_one_resend(
    client: str, server: EmulatedProvider, made: list[Any]
) -> None:
    auth = _oauth(server, made)
    assert call(client, auth, "GET", server.resource_url).status == 200
    server.emu.revoke(server.issued[0])  # the access token, not the secret key
    result = call(client, auth, "POST", server.url("/api/v2/parcels"), body=b'{"parcel": {}}')
    assert (result.status, result.history) == (200, [401])
    assert len(server.token_requests) == 2
    first, second = server.issued
    assert [seen.headers["Authorization"] for seen in server.api_requests[1:]] == [
        f"Bearer {first}",
        f"Bearer {second}",
    ]
    assert server.api_requests[1].body == server.api_requests[2].body


@pytest.mark.parametrize("client", ["requests", "httpx"])
def test_oauth_concurrent_cold_callers_make_one_token_request(
    client: str, server: EmulatedProvider, made: list[Any]
) -> None:
    auth = _oauth(server, made)
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def one() -> None:
        barrier.wait(10)
        statuses.append(call(client, auth, "GET", server.resource_url).status)

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 16
    assert len(server.token_requests) == 1


def test_oauth_bad_secret_is_a_clear_error(server: EmulatedProvider, made: list[Any]) -> None:
    auth = _oauth(server, made, secret_key="wrong-secret-never-shown")
    with pytest.raises(InvalidClientError) as caught:
        auth.get_token()
    assert "wrong-secret-never-shown" not in str(caught.value)
    assert "invalid_client" in str(caught.value)


def test_basic_mode_makes_no_token_request_even_with_a_token_url() -> None:
    auth = SendcloudAuth("pub", "sec", token_url="http://127.0.0.1:9/oauth2/token")
    assert auth.get_token().access_token == base64.b64encode(b"pub:sec").decode()
    assert auth.token_requests == 0
    assert repr(auth) == "SendcloudAuth(public_key='pub', oauth=False)"
    assert "oauth=True" in repr(SendcloudAuth("pub", "sec", oauth=True))


@pytest.mark.parametrize(
    ("value", "oauth"), [("true", True), ("1", True), ("False", False), ("off", False)]
)
def test_from_env_reads_sendcloud_oauth(value: str, oauth: bool) -> None:
    env = {"SENDCLOUD_PUBLIC_KEY": "pub", "SENDCLOUD_SECRET_KEY": "sec", "SENDCLOUD_OAUTH": value}
    assert SendcloudAuth.from_env(env).oauth is oauth


def test_bad_settings_are_clear_errors() -> None:
    env = {"SENDCLOUD_PUBLIC_KEY": "pub", "SENDCLOUD_SECRET_KEY": "sec", "SENDCLOUD_OAUTH": "maybe"}
    with pytest.raises(ValueError, match="SENDCLOUD_OAUTH must be true or false"):
        SendcloudAuth.from_env(env)
    with pytest.raises(TypeError, match="oauth must be True or False"):
        SendcloudAuth("pub", "sec", oauth="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="public_key must not contain ':'"):
        SendcloudAuth("p:ub", "sec")
    with pytest.raises(ValueError, match="secret_key must be a non-empty string"):
        SendcloudAuth("pub", " ")
