"""The client secret and tokens never leak: not in logs (any level, any logger), exception
text, repr or str, whatever path the request takes."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import pytest
from conftest import CLIENTS, call
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer, Reply

from delivery_auth import ClientCredentialsAuth, DeliveryAuthError

MakeAuth = Callable[..., ClientCredentialsAuth]

ERROR_REPLIES = [
    Reply(401, {"error": "invalid_client", "error_description": f"bad secret {CLIENT_SECRET}"}),
    Reply(400, {"title": f"Invalid credentials for {CLIENT_SECRET}", "type": "x/400.1"}),
    Reply(500, f"<html>{CLIENT_SECRET}</html>"),
    Reply(200, "<html>maintenance</html>"),
    Reply(200, {"access_token": ""}),
    Reply(200, {"access_token": "tok-leak", "expires_in": "never"}),
    Reply(429, b"", {"Retry-After": "999"}),
    Reply(302, b"", {"Location": f"https://elsewhere.example/?secret={CLIENT_SECRET}"}),
]


@pytest.mark.parametrize("reply", ERROR_REPLIES, ids=lambda r: f"{r.status}")
@pytest.mark.parametrize("client", CLIENTS)
def test_error_paths_leak_nothing(
    server: LoopbackServer,
    make_auth: MakeAuth,
    debug_log: pytest.LogCaptureFixture,
    reply: Reply,
    client: str,
) -> None:
    server.state.token_script.extend([reply] * 3)
    auth = make_auth()
    with pytest.raises(DeliveryAuthError) as info:
        call(client, auth, "GET", server.url())
    texts = [str(info.value), repr(info.value), "".join(traceback.format_exception(info.value))]
    texts += [record.getMessage() for record in debug_log.records]
    texts += [repr(auth), str(auth), repr(auth._fetcher), repr(auth._engine.policy)]
    for text in texts:
        assert CLIENT_SECRET not in text
        assert "tok-leak" not in text
    description = info.value.__dict__.get("description") or ""
    assert CLIENT_SECRET not in description


def test_success_and_retry_paths_leak_nothing(
    server: LoopbackServer, make_auth: MakeAuth, debug_log: pytest.LogCaptureFixture
) -> None:
    auth = make_auth()
    for client in CLIENTS:
        assert call(client, auth, "GET", server.url()).status == 200
        server.state.revoke_all()
        assert call(client, auth, "GET", server.url()).status == 200
    issued = [f"tok-{n}" for n in range(1, server.state.issued + 1)]
    token = auth.get_token()
    for record in debug_log.records:
        message = record.getMessage()
        assert CLIENT_SECRET not in message
        assert token.access_token not in message
        assert not any(prefix + "-" in message for prefix in issued)
    ours = [r for r in debug_log.records if r.name == "delivery_auth"]
    assert ours, "our logger said nothing"
    for obj in (auth, token, auth._fetcher):
        assert CLIENT_SECRET not in repr(obj)
        assert token.access_token not in repr(obj)


def test_equality_by_value_without_exposing_the_secret() -> None:
    url = "https://auth.example.com/token"
    a = ClientCredentialsAuth(url, "id", "secret-one", scope="read")
    b = ClientCredentialsAuth(url, "id", "secret-one", scope="read")
    c = ClientCredentialsAuth(url, "id", "secret-two", scope="read")
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert a != "not an auth"
    assert "secret" not in repr(a)
    assert repr(a) == f"ClientCredentialsAuth(token_url={url!r}, client_id='id')"
    for auth in (a, b, c):
        auth.close()


def test_http_libraries_do_not_log_headers_either(
    server: LoopbackServer, make_auth: MakeAuth, debug_log: pytest.LogCaptureFixture
) -> None:
    debug_log.set_level(logging.DEBUG, logger="urllib3")  # restored after the test
    auth = make_auth(token_endpoint_auth_method="client_secret_basic")
    assert call("requests", auth, "GET", server.url()).status == 200
    assert call("httpx", auth, "GET", server.url()).status == 200
    import base64

    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    for record in debug_log.records:
        assert basic not in record.getMessage()
        assert auth.get_token().access_token not in record.getMessage()
