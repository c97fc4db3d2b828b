"""FedEx: client credentials as form fields (no Basic), the child-account grants and
their field names, NOT.AUTHORIZED.ERROR -> one refresh and one resend, a child secret
that never shows; against the emulator's FedEx page (loopback)."""

from __future__ import annotations

import logging
import threading
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
    FedExAuth,
    InvalidClientError,
    MemoryTokenCache,
)
from delivery_auth.emulator import CREDENTIALS

KNOWN = CREDENTIALS["fedex"]
CLIENT_ID, CLIENT_SECRET = KNOWN.client_id, KNOWN.client_secret
CHILD_KEY, CHILD_SECRET = KNOWN.extra["child_key"], KNOWN.extra["child_secret"]
CHILD = {"child_key": CHILD_KEY, "child_secret": CHILD_SECRET}
MakeAuth = Callable[..., FedExAuth]


@pytest.fixture
def server() -> Iterator[EmulatedProvider]:
    with EmulatedProvider("fedex") as srv:
        yield srv


@pytest.fixture
def make_auth(server: EmulatedProvider) -> Iterator[MakeAuth]:
    def build(client_secret: str = CLIENT_SECRET, **options: Any) -> FedExAuth:
        options.setdefault("token_url", server.token_url)
        options.setdefault("backoff", FAST_BACKOFF)
        return FedExAuth(CLIENT_ID, client_secret, **options)

    yield from closing(build)


def rate(client: str, auth: FedExAuth, server: EmulatedProvider) -> Any:
    return call(client, auth, "POST", server.resource_url, json={"accountNumber": {"value": "1"}})


@pytest.mark.parametrize(
    ("options", "form"),
    [
        ({}, {"grant_type": "client_credentials"}),
        (
            {"grant_type": "csp_credentials", **CHILD},
            {"grant_type": "csp_credentials", "child_Key": CHILD_KEY, "child_secret": CHILD_SECRET},
        ),
        (
            {"grant_type": "client_pc_credentials", **CHILD},
            {
                "grant_type": "client_pc_credentials",
                "child_Key": CHILD_KEY,
                "child_secret": CHILD_SECRET,
            },
        ),
    ],
    ids=["client_credentials", "csp_credentials", "client_pc_credentials"],
)
@pytest.mark.parametrize("client", CLIENTS)
def test_token_request_is_form_fields_without_basic(
    client: str,
    options: dict[str, str],
    form: dict[str, str],
    server: EmulatedProvider,
    make_auth: MakeAuth,
) -> None:
    auth = make_auth(**options)
    assert rate(client, auth, server).status == 200
    assert rate(client, auth, server).status == 200  # the cached token
    (token_request,) = server.token_requests
    assert token_request.path == "/oauth/token"
    assert token_request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert "Authorization" not in token_request.headers
    assert token_request.form == {**form, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert [seen.headers["Authorization"] for seen in server.api_requests] == [
        f"Bearer {server.issued[0]}"
    ] * 2
    assert server.token_answers[0]["token_type"] == "bearer"
    assert auth.get_token().token_type == "Bearer"


@pytest.mark.parametrize("client", CLIENTS)
def test_expired_token_not_authorized_refreshes_once_and_resends_once(
    client: str, server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    auth = make_auth()
    assert rate(client, auth, server).status == 200
    server.revoke_all()
    result = rate(client, auth, server)
    assert (result.status, result.history) == (200, [401])
    assert len(server.token_requests) == 2
    tokens = [seen.headers["Authorization"] for seen in server.api_requests]
    assert tokens[0] == tokens[1] != tokens[2]


@pytest.mark.parametrize("client", CLIENTS)
def test_bad_credentials_are_a_clear_error(
    client: str, server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    auth = make_auth(client_secret="not-the-secret-key-123")
    with pytest.raises(InvalidClientError) as caught:
        rate(client, auth, server)
    assert caught.value.status_code == 401
    assert "client_id and client_secret" in str(caught.value)
    assert "not-the-secret-key-123" not in str(caught.value)
    assert len(server.token_requests) == 1
    assert server.api_requests == []


def test_wrong_child_credentials_are_refused(server: EmulatedProvider, make_auth: MakeAuth) -> None:
    auth = make_auth(grant_type="csp_credentials", child_key=CHILD_KEY, child_secret="wrong-1")
    with pytest.raises(InvalidClientError):
        rate("httpx", auth, server)


def test_child_field_names_can_be_changed(server: EmulatedProvider, make_auth: MakeAuth) -> None:
    server.emu.fedex_child_fields = ("child_key", "child_secret")  # a FedEx that wants these
    spec_names = make_auth(grant_type="client_pc_credentials", **CHILD)
    with pytest.raises(InvalidClientError):
        rate("requests", spec_names, server)
    adapted = make_auth(
        grant_type="client_pc_credentials", child_fields=("child_key", "child_secret"), **CHILD
    )
    assert rate("requests", adapted, server).status == 200
    assert server.token_requests[-1].form["child_key"] == CHILD_KEY


@pytest.mark.parametrize("client", CLIENTS)
def test_the_child_secret_never_shows(
    client: str, server: EmulatedProvider, make_auth: MakeAuth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = {
        "transactionId": "t-1",
        "errors": [{"code": "NOT.AUTHORIZED.ERROR", "message": f"bad child {CHILD_SECRET}"}],
        "error": f"child_secret {CHILD_SECRET} refused",
        "error_description": f"child_secret={CHILD_SECRET}",
    }
    server.token_script.append(Reply(401, echo))
    auth = make_auth(grant_type="csp_credentials", **CHILD)
    with pytest.raises(InvalidClientError) as caught:
        rate(client, auth, server)
    error = caught.value
    shown = [str(error), repr(error), *(repr(v) for v in vars(error).values())]
    assert rate(client, auth, server).status == 200
    shown += [caplog.text, repr(auth), str(auth), repr(auth.get_token()), repr(server.emu.stats)]
    assert "***" in str(error)
    for text in shown:
        assert CHILD_SECRET not in text
        assert CLIENT_SECRET not in text
    assert f"child_key={CHILD_KEY!r}" in repr(auth)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"grant_type": "csp_credentials"}, "child_key and child_secret missing"),
        ({"grant_type": "client_pc_credentials", "child_key": "k"}, "child_secret missing"),
        ({"child_key": "k", "child_secret": "s-hidden"}, "sent only with grant_type="),
        ({"grant_type": "client_credentials", "child_secret": "s-hidden"}, "sent only with"),
        ({"grant_type": "password"}, "grant_type must be one of"),
        (
            {"grant_type": "csp_credentials", "child_fields": ("one",), **CHILD},
            "two form field names",
        ),
        ({"environment": "staging"}, "sandbox"),
    ],
)
def test_inconsistent_options_are_clear_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        FedExAuth(CLIENT_ID, CLIENT_SECRET, **options)
    assert "s-hidden" not in str(caught.value)
    assert CHILD_SECRET not in str(caught.value)


def test_a_child_accounts_token_is_not_its_parents(
    server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    cache = MemoryTokenCache()
    parent = make_auth(cache=cache)
    child = make_auth(cache=cache, grant_type="csp_credentials", **CHILD)
    other_grant = make_auth(cache=cache, grant_type="client_pc_credentials", **CHILD)
    same_child = make_auth(cache=cache, grant_type="csp_credentials", **CHILD)
    tokens = [auth.get_token() for auth in (parent, child, other_grant, same_child)]
    assert len(set(tokens[:3])) == 3
    assert tokens[3] == tokens[1]
    assert len(server.token_requests) == 3
    assert child == same_child
    assert child != other_grant
    assert parent != child


def test_concurrent_cold_callers_share_one_token_request(
    server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    auth = make_auth()
    barrier = threading.Barrier(32)
    statuses: list[int] = []
    with httpx.Client(auth=auth) as session:

        def one() -> None:
            barrier.wait()
            statuses.append(session.post(server.resource_url, json={}).status_code)

        threads = [threading.Thread(target=one) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200] * 32
    assert len(server.token_requests) == 1


@pytest.mark.parametrize(
    ("environment", "token_url", "host"),
    [
        ("production", "https://apis.fedex.com/oauth/token", "apis.fedex.com"),
        ("sandbox", "https://apis-sandbox.fedex.com/oauth/token", "apis-sandbox.fedex.com"),
    ],
)
def test_environments_and_their_hosts(environment: str, token_url: str, host: str) -> None:
    with FedExAuth(CLIENT_ID, CLIENT_SECRET, environment=environment) as auth:
        assert auth.token_url == token_url
        assert auth.allowed_hosts == (host, "localhost", "127.0.0.0/8", "::1")
        other = "apis.fedex.com" if host != "apis.fedex.com" else "apis-sandbox.fedex.com"
        with pytest.raises(DisallowedHostError, match=other):
            call("requests", auth, "GET", f"https://{other}/track/v1/trackingnumbers")
    with FedExAuth(CLIENT_ID, CLIENT_SECRET, allowed_hosts=["*.example.com"]) as custom:
        assert custom.allowed_hosts == ("*.example.com",)


def test_from_env(server: EmulatedProvider) -> None:
    env = {
        "FEDEX_CLIENT_ID": CLIENT_ID,
        "FEDEX_CLIENT_SECRET": CLIENT_SECRET,
        "FEDEX_CHILD_KEY": CHILD_KEY,
        "FEDEX_CHILD_SECRET": CHILD_SECRET,
        "FEDEX_GRANT_TYPE": "csp_credentials",
        "FEDEX_ENVIRONMENT": "sandbox",
    }
    with FedExAuth.from_env(env, token_url=server.token_url) as auth:
        assert (auth.environment, auth.grant_type, auth.child_key) == (
            "sandbox",
            "csp_credentials",
            CHILD_KEY,
        )
        assert rate("httpx-async", auth, server).status == 200
    with pytest.raises(ConfigurationError) as caught:
        FedExAuth.from_env({"FEDEX_CLIENT_ID": CLIENT_ID})
    assert caught.value.missing == ("FEDEX_CLIENT_SECRET",)
