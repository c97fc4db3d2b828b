"""DHL eCommerce: environments, the refresh policy DHL asks for, RFC 7807 token errors,
401 "Access token expired" -> one refresh and one resend; against the emulator's DHL
page (loopback)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import CLIENTS, FAST_BACKOFF, call, closing
from emulated import EmulatedProvider
from loopback import Reply

from delivery_auth import (
    DisallowedHostError,
    InvalidClientError,
    RefreshPolicy,
    TokenEndpointUnavailableError,
    TokenRequestError,
)
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.emulator.dhl import ERRORS_BASE
from delivery_auth.providers import PROVIDERS, ConfigurationError, DHLeCommerceAuth

CLIENT_ID = CREDENTIALS["dhl"].client_id
CLIENT_SECRET = CREDENTIALS["dhl"].client_secret
MakeAuth = Callable[..., DHLeCommerceAuth]


def dhl_problem(status_code: str, title: str) -> dict[str, str]:
    """A problem-details body to script (DHL's ``type`` URL scheme)."""
    return {"type": f"{ERRORS_BASE}/{status_code}", "title": title}


@pytest.fixture
def server() -> Iterator[EmulatedProvider]:
    with EmulatedProvider("dhl") as srv:
        yield srv


@pytest.fixture
def make_auth(server: EmulatedProvider) -> Iterator[MakeAuth]:
    def build(client_secret: str = CLIENT_SECRET, **options: Any) -> DHLeCommerceAuth:
        options.setdefault("token_url", server.token_url)
        options.setdefault("backoff", FAST_BACKOFF)
        return DHLeCommerceAuth(CLIENT_ID, client_secret, **options)

    yield from closing(build)


def label(client: str, auth: DHLeCommerceAuth, server: EmulatedProvider) -> Any:
    return call(client, auth, "POST", server.url("/shipping/v4/label"), json={"pickup": 5351})


def test_registered_under_its_short_name() -> None:
    assert PROVIDERS["dhl"] is DHLeCommerceAuth


@pytest.mark.parametrize(
    ("environment", "url"),
    [
        ("production", "https://api.dhlecs.com/auth/v4/accesstoken"),
        ("sandbox", "https://api-sandbox.dhlecs.com/auth/v4/accesstoken"),
        ("Sandbox", "https://api-sandbox.dhlecs.com/auth/v4/accesstoken"),
    ],
)
def test_environments(environment: str, url: str) -> None:
    assert DHLeCommerceAuth(CLIENT_ID, CLIENT_SECRET, environment=environment).token_url == url


def test_unknown_environment() -> None:
    with pytest.raises(ValueError, match="sandbox") as caught:
        DHLeCommerceAuth(CLIENT_ID, CLIENT_SECRET, environment="staging")
    assert "staging" in str(caught.value)


def test_refresh_policy_follows_dhl_advice() -> None:
    auth = DHLeCommerceAuth(CLIENT_ID, CLIENT_SECRET)
    # Half the 60-minute lifetime, and never later than 30 minutes after issue.
    assert auth._engine.policy == RefreshPolicy(refresh_ratio=0.5, max_age=1800.0)
    custom = DHLeCommerceAuth(CLIENT_ID, CLIENT_SECRET, refresh_ratio=0.25, max_token_age=900)
    assert custom._engine.policy == RefreshPolicy(refresh_ratio=0.25, max_age=900)


def test_refresh_is_scheduled_at_thirty_minutes(
    server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    server.token_script.append(Reply(200, {"access_token": "long-lived", "expires_in": 14400}))
    auth = make_auth()
    lease = auth._engine.current()
    assert lease.token.lifetime == 14400.0
    assert lease.refresh_at - lease.token.obtained_at == pytest.approx(1800.0)


class TestTokenRequest:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_form_fields_and_header(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        assert label(client, auth, server).status == 200
        (token_request,) = server.token_requests
        assert token_request.path == "/auth/v4/accesstoken"
        assert token_request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert token_request.form == {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        (api_request,) = server.api_requests
        assert api_request.headers["Authorization"] == f"Bearer {server.issued[0]}"
        assert auth.get_token().extra == {"client_id": CLIENT_ID}

    @pytest.mark.parametrize("status", [400, 401])
    @pytest.mark.parametrize("client", CLIENTS)
    def test_invalid_credentials_problem(
        self,
        client: str,
        status: int,
        server: EmulatedProvider,
        make_auth: MakeAuth,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        server.emu.dhl_invalid_credentials_status = status
        auth = make_auth(client_secret="not-the-secret-1234")
        with pytest.raises(InvalidClientError) as caught:
            label(client, auth, server)
        error = caught.value
        assert error.status_code == status
        assert error.error == "Invalid credentials"
        assert error.problem_type == f"{ERRORS_BASE}/{status}.0000005"
        assert "Invalid credentials" in str(error)
        assert f"problem {status}.0000005" in str(error)
        assert "client_id and client_secret" in str(error)
        assert "not-the-secret-1234" not in str(error) + caplog.text
        assert len(server.token_requests) == 1  # a 4xx is never retried
        assert server.api_requests == []

    def test_other_problem_is_a_token_request_error(
        self, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        server.token_script.append(
            Reply(
                403,
                dhl_problem("403.0000002", "Client not enabled for this API"),
                {"Content-Type": "application/problem+json"},
            )
        )
        with pytest.raises(TokenRequestError) as caught:
            label("httpx", make_auth(), server)
        assert caught.value.status_code == 403
        assert caught.value.error == "Client not enabled for this API"
        assert "problem 403.0000002" in str(caught.value)

    def test_server_errors_are_retried(self, server: EmulatedProvider, make_auth: MakeAuth) -> None:
        server.token_script.extend(
            [Reply(503, dhl_problem("503.0000001", "Service unavailable"))] * 3
        )
        with pytest.raises(TokenEndpointUnavailableError):
            label("requests", make_auth(), server)
        assert len(server.token_requests) == 3


class TestFailureSignals:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_access_token_expired_refreshes_once_and_resends_once(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        assert label(client, auth, server).status == 200
        server.revoke_all()
        result = label(client, auth, server)
        assert result.status == 200
        assert result.history == [401]
        assert len(server.token_requests) == 2
        assert len(server.api_requests) == 3
        tokens = [seen.headers["Authorization"] for seen in server.api_requests]
        assert tokens[0] == tokens[1] != tokens[2]

    @pytest.mark.parametrize("client", CLIENTS)
    def test_other_statuses_do_not_refresh(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        server.api_script.append(
            Reply(
                403,
                dhl_problem("403.0000010", "Forbidden"),
                {"Content-Type": "application/problem+json"},
            )
        )
        assert label(client, auth, server).status == 403
        assert len(server.token_requests) == 1
        assert len(server.api_requests) == 1


class TestHostsAndConfiguration:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_other_hosts_are_refused(self, client: str, make_auth: MakeAuth) -> None:
        with pytest.raises(DisallowedHostError) as caught:
            call(client, make_auth(), "GET", "https://api.dhl.com/track/shipments")
        assert "api.dhl.com" in str(caught.value)
        assert "allowed_hosts" in str(caught.value)

    def test_default_hosts(self) -> None:
        auth = DHLeCommerceAuth(CLIENT_ID, CLIENT_SECRET)
        assert auth.allowed_hosts == ("*.dhlecs.com", "localhost", "127.0.0.0/8", "::1")
        assert CLIENT_SECRET not in repr(auth)

    def test_from_env(self, server: EmulatedProvider) -> None:
        env = {
            "DHL_ECOMMERCE_CLIENT_ID": CLIENT_ID,
            "DHL_ECOMMERCE_CLIENT_SECRET": CLIENT_SECRET,
            "DHL_ECOMMERCE_ENVIRONMENT": "sandbox",
        }
        assert DHLeCommerceAuth.from_env(env).environment == "sandbox"
        with DHLeCommerceAuth.from_env(env, token_url=server.token_url) as auth:
            assert label("httpx-async", auth, server).status == 200

    def test_from_env_missing(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            DHLeCommerceAuth.from_env({"DHL_ECOMMERCE_CLIENT_ID": "x"})
        assert caught.value.missing == ("DHL_ECOMMERCE_CLIENT_SECRET",)
        assert "DHL_ECOMMERCE_CLIENT_SECRET" in str(caught.value)


@pytest.mark.parametrize("client", CLIENTS)
def test_no_secret_or_token_in_logs_or_reprs(
    client: str, server: EmulatedProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with DHLeCommerceAuth(CLIENT_ID, CLIENT_SECRET, token_url=server.token_url) as auth:
        assert (
            call(client, auth, "POST", server.url("/shipping/v4/label"), json={"pickup": 1}).status
            == 200
        )
        server.revoke_all()
        result = call(client, auth, "POST", server.url("/shipping/v4/label"), json={"pickup": 1})
        assert result.status == 200
        assert result.history
        shown = caplog.text + repr(auth) + str(auth) + repr(auth.get_token())
    secrets = server.secrets_seen()
    assert len(secrets) >= 3  # the client secret and two credentials
    for secret in secrets:
        assert secret not in shown
